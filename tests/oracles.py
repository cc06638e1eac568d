"""The float64 oracles live in the verification kit, `relit_eqx.testing.oracles`; the
suites import them from here under their short name."""

from relit_eqx.testing.oracles import *  # noqa: F403
