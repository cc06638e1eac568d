"""The strategies and jitted calls live in the verification kit,
`relit_eqx.testing.strategies`; the suites import them from here under their short name."""

from relit_eqx.testing.strategies import *  # noqa: F403
