"""`python -m relit_eqx.cli …` is `relit-eqx …`."""

import sys

from . import main

sys.exit(main())
