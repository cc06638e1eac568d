"""Property checks for your own kernels, update rules and sequence models.

`relit_eqx.testing` runs the suites that prove the library's own components on any
kernel, update rule or model, so an extension is proven right without editing the
library (the Extending page):

- `check_kernel(kernel)`: finite, non-negative features of the declared width, and under
  every update rule and every form: equal to an independent float64 step loop, forms
  equal to each other, split-and-carry, resets anywhere (non-finite inputs before them
  included), gradients, gates exactly 0 and 1 and at 1e-6 and 1-1e-6, lengths not
  divisible by the chunk;
- `check_update_rule(rule)`: the same walk over every registered kernel;
- `check_arelit(oscillator)`: the same for AReLiT's oscillator families;
- `check_sequence_model(factory)`: the sequence-model contract on `factory(d_in, key)`.

Each check raises `PropertyFailure` (an `AssertionError`) naming the property, the form
and the shrunk counterexample. Hypothesis is needed (`pip install relit_eqx[testing]`);
`import relit_eqx` itself does not import it.
"""

from __future__ import annotations

try:
    import hypothesis as _hypothesis  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "relit_eqx.testing needs hypothesis: pip install 'relit_eqx[testing]'"
    ) from err

from . import oracles, strategies
from ._driver import PropertyFailure
from ._forms import (
    FORM_PROPERTIES,
    KERNEL_PROPERTIES,
    check_arelit,
    check_kernel,
    check_update_rule,
)
from ._models import MODEL_PROPERTIES, check_sequence_model

__all__ = [
    "check_kernel",
    "check_update_rule",
    "check_arelit",
    "check_sequence_model",
    "PropertyFailure",
    "KERNEL_PROPERTIES",
    "FORM_PROPERTIES",
    "MODEL_PROPERTIES",
    "oracles",
    "strategies",
]
