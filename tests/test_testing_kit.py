"""The verification kit catches errors: deliberately broken variants fail the matching check.

Each mutant below is a small, realistic mistake in a user's extension; each must make
the matching `relit_eqx.testing` check fail with a `PropertyFailure` (an
`AssertionError`) that names the property and the form. (The library's own kernels,
rules and models pass the same checks in `test_forms.py`, `test_contract.py` and
`test_model_forms.py`.) Shrinking is switched off where an example costs a compile per
shrink step; the kernel mutant keeps it, so the reported counterexample is the shrunk one.
"""

from __future__ import annotations

import equinox as eqx
import hypothesis
import jax
import jax.numpy as jnp
import pytest
from hypothesis import Phase

from relit_eqx import functional
from relit_eqx.kernels import Kernel
from relit_eqx.models import SequenceModel, get_model, small_kwargs
from relit_eqx.testing import (
    PropertyFailure,
    check_kernel,
    check_sequence_model,
    check_update_rule,
)
from relit_eqx.update_rules import RULES, Gated

NO_SHRINK = hypothesis.settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)


# ------------------------------------------------------------------------------------
# A kernel with negative features
# ------------------------------------------------------------------------------------

IDENTITY = Kernel(name="identity", uses_p=False, fn=lambda x, p, eta: x, dim=lambda d, eta: d)


def test_negative_features_fail_the_features_property():
    with pytest.raises(PropertyFailure) as info:
        check_kernel(IDENTITY, max_examples=5)
    err = info.value
    assert isinstance(err, AssertionError)
    assert err.property == "features"
    assert "property 'features'" in str(err)
    assert "negative features" in str(err)
    assert "kernel=identity" in err.counterexample


# ------------------------------------------------------------------------------------
# An update rule whose chunked form drops a reset inside a chunk
# ------------------------------------------------------------------------------------


class ChunkedDropsResets(Gated):
    """The gated rule under another name; `drops_resets` below breaks its chunked form."""

    name = "mutant_drops_resets_in_chunk"
    methods = frozenset({"scan", "chunked"})


@pytest.fixture
def drops_resets(monkeypatch):
    """The chunked form, for `ChunkedDropsResets` only, sees only the resets at chunk
    starts (steps 0, L, 2L, ...): the mistake of resetting once per chunk."""
    original = functional.relit_chunked

    def broken(rule, q, k, v, beta, gamma, resets, state, eps, chunk_size):
        if isinstance(rule, ChunkedDropsResets):
            resets = resets & (jnp.arange(resets.shape[0]) % chunk_size == 0)
        return original(rule, q, k, v, beta, gamma, resets, state, eps, chunk_size)

    monkeypatch.setattr(functional, "relit_chunked", broken)


def test_chunked_form_dropping_resets_fails(drops_resets):
    with pytest.raises(PropertyFailure) as info:
        check_update_rule(ChunkedDropsResets(), kernels=["relu"], settings=NO_SHRINK)
    err = info.value
    # The scan form (the rule's own `step`) passes; the chunked form fails the first
    # property whose drawn input has a reset inside a chunk after some history.
    assert err.property in ("oracle", "split_and_carry", "reset")
    assert "method='chunked'" in err.form
    assert f"property '{err.property}' fails in mutant_drops_resets_in_chunk" in str(err)
    assert "resets at [" in err.counterexample and "resets at []" not in err.counterexample
    assert "mutant_drops_resets_in_chunk" not in RULES  # registered for the check only


def test_chunked_form_dropping_resets_fails_the_reset_property(drops_resets):
    with pytest.raises(PropertyFailure) as info:
        check_update_rule(
            ChunkedDropsResets(),
            kernels=["relu"],
            properties=["reset"],
            methods=["chunked"],
            settings=NO_SHRINK,
        )
    assert info.value.property == "reset"
    assert "property 'reset'" in str(info.value)


# ------------------------------------------------------------------------------------
# An update rule whose associative combine is off by one step
# ------------------------------------------------------------------------------------


class AssociativeOffByOne(Gated):
    """The gated rule whose factored decays are one step late: the associative form then
    composes each step's input with the previous step's decay (the scan form runs the
    rule's `step`, which is right)."""

    name = "mutant_associative_off_by_one"
    methods = frozenset({"scan", "associative"})

    def factors(self, k, v, beta, gamma):
        f = Gated.factors(self, k, v, beta, gamma)
        late = lambda x: jnp.concatenate([jnp.ones_like(x[:1]), x[:-1]])  # noqa: E731
        return f._replace(a=late(f.a), g=late(f.g))


def test_associative_off_by_one_fails():
    with pytest.raises(PropertyFailure) as info:
        check_update_rule(AssociativeOffByOne(), kernels=["elu+1"], settings=NO_SHRINK)
    err = info.value
    assert err.property == "oracle"
    assert "method='associative'" in err.form
    assert "out vs float64 loop" in err.detail or "final state vs loop" in err.detail


# ------------------------------------------------------------------------------------
# A model whose step and __call__ differ after a reset
# ------------------------------------------------------------------------------------


class StepIgnoresReset(SequenceModel):
    """GRU whose `step` forgets to apply the reset (its `__call__` is right)."""

    inner: eqx.Module
    d_in: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)

    def __init__(self, d_in, key):
        self.inner = get_model("gru")(d_in, key=key, **small_kwargs("gru"))
        self.d_in = d_in
        self.d_model = self.inner.d_model

    def init_state(self):
        return self.inner.init_state()

    def __call__(self, xs, resets, state):
        return self.inner(xs, resets, state)

    def step(self, x, reset, state):
        return self.inner.step(x, jnp.zeros((), bool), state)

    @property
    def state_size(self):
        return self.inner.state_size


def test_step_ignoring_resets_fails_call_equals_step():
    with pytest.raises(PropertyFailure) as info:
        check_sequence_model(StepIgnoresReset, settings=NO_SHRINK)
    err = info.value
    assert err.property == "call_equals_step"
    assert "property 'call_equals_step'" in str(err)
    assert "__call__ vs step" in err.form
    assert "resets at [" in err.counterexample and "resets at []" not in err.counterexample


def test_the_unbroken_model_passes():
    """The control: the same wrapper with `step` passing the reset on passes."""

    class StepKeepsReset(StepIgnoresReset):
        def step(self, x, reset, state):
            return self.inner.step(x, reset, state)

    check_sequence_model(
        StepKeepsReset, properties=["call_equals_step", "reset"], settings=NO_SHRINK
    )


# ------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown property 'orcale'"):
        check_update_rule("gated", properties=["orcale"])
    with pytest.raises(ValueError, match="unknown method 'parallel'"):
        check_update_rule("gated", methods=["parallel"])
    with pytest.raises(ValueError, match="a different rule is registered under this name"):

        class Impostor(Gated):
            pass

        check_update_rule(Impostor(), properties=["zero_inputs"])
    with pytest.raises(ValueError, match="max_examples must be a positive int"):
        check_kernel("relu", max_examples=0)
    with pytest.raises(ValueError, match="unknown kernel 'rleu'"):
        check_kernel("rleu")
    with pytest.raises(ValueError, match="T must be an int >= 3"):
        check_sequence_model(StepIgnoresReset, T=2)
    with pytest.raises(TypeError, match="has no 'init_state'"):
        check_sequence_model(lambda d_in, key: jax.numpy.zeros(d_in))


def test_hypothesis_is_not_imported_by_the_library():
    import subprocess
    import sys

    code = (
        "import sys, relit_eqx, relit_eqx.models, relit_eqx.rl; print('hypothesis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
