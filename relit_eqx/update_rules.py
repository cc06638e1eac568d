"""Update rules of the recurrent state `(C, s)` and their registry.

An update rule says how one step `(k_t, v_t, β_t, γ_t)` (keys already feature-mapped)
changes the state `C ∈ R^(d×n)`, `s ∈ R^n`, and how a query reads it. Each rule's
docstring writes its recurrence down. Rules whose decay is an outer product of two
vectors (`gated`, `linear`) expose `factors`, and then every evaluation form of
`relit_eqx.functional` runs them; the others name the forms they support in `methods`.
Registering a rule (one `register_rule` line) puts it under the shared equivalence suite.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["Factors", "UpdateRule", "RULES", "register_rule", "get_rule"]


class Factors(NamedTuple):
    """A step written as `C_t = (a_t ⊗ g_t) ⊙ C_{t-1} + u_t ⊗ w_t`, `s_t = g_t ⊙ s_{t-1} + w_t`.

    Leading axes (e.g. time) are allowed: `a, u: [..., d]`, `g, w: [..., n]`.
    """

    a: Array
    g: Array
    u: Array
    w: Array

    def with_resets(self, resets: Array) -> Factors:
        """Zero decays where `resets` (`bool [T]`) is true: an episode boundary is a zero
        decay, the one mechanism every form shares. Axes after time (heads, widths) are
        broadcast."""
        keep = ~resets.reshape(*resets.shape, *(1,) * (self.a.ndim - resets.ndim))
        return self._replace(a=jnp.where(keep, self.a, 0.0), g=jnp.where(keep, self.g, 0.0))


def normalised_readout(C: Array, s: Array, q: Array, eps: float) -> Array:
    """`C q / (sᵀ q + ε)`: the linear-attention readout of the Mathematics page."""
    return (C @ q) / (s @ q + eps)


class UpdateRule(eqx.Module):
    """Base class of an update rule.

    Subclasses set the class variables `name` (registry key) and `methods` (the forms
    they support, a subset of `{"scan", "associative", "chunked"}`) and implement `step`
    (the recurrence: the scan form, and the specification). A rule whose decay is an outer
    product sets `factored = True` and implements `factors`, which unlocks the associative
    and chunked forms; a rule with a full `d × n` decay implements `full`, which unlocks
    the associative form.
    """

    name: ClassVar[str]
    methods: ClassVar[frozenset[str]]
    factored: ClassVar[bool] = False

    def step(
        self,
        C: Float[Array, "d n"],
        s: Float[Array, " n"],
        q: Float[Array, " n"],
        k: Float[Array, " n"],
        v: Float[Array, " d"],
        beta: Float[Array, " d"],
        gamma: Float[Array, " n"],
        eps: float,
    ) -> tuple[Float[Array, " d"], Float[Array, "d n"], Float[Array, " n"]]:
        """One step from a state already zeroed by a reset; returns `(out, C, s)`."""
        raise NotImplementedError

    def factors(self, k: Array, v: Array, beta: Array, gamma: Array) -> Factors:
        """The step as factored decays and inputs (see `Factors`)."""
        raise NotImplementedError(f"update rule {self.name!r} has no factored decay")

    def full(
        self, k: Array, v: Array, beta: Array, gamma: Array
    ) -> tuple[Array, Array, Array, Array]:
        """`(D, U, g, w)` with `C_t = D_t ⊙ C_{t-1} + U_t`, `s_t = g_t ⊙ s_{t-1} + w_t`,
        for rules whose decay does not factor."""
        raise NotImplementedError(f"update rule {self.name!r} has no full-decay form")


class Gated(UpdateRule):
    """The paper's gated rule (the Mathematics page), factored decay:

    `C_t = ((1-β_t) ⊗ (1-γ_t)) ⊙ C_{t-1} + (β_t ⊙ v_t) ⊗ (γ_t ⊙ φ(k_t))`,
    `s_t = (1-γ_t) ⊙ s_{t-1} + γ_t ⊙ φ(k_t)`, `a_t = C_t φ(q_t) / (s_tᵀ φ(q_t) + ε)`.
    """

    name: ClassVar[str] = "gated"
    methods: ClassVar[frozenset[str]] = frozenset({"scan", "associative", "chunked"})
    factored: ClassVar[bool] = True

    def step(self, C, s, q, k, v, beta, gamma, eps):
        C = jnp.outer(1 - beta, 1 - gamma) * C + jnp.outer(beta * v, gamma * k)
        s = (1 - gamma) * s + gamma * k
        return normalised_readout(C, s, q, eps), C, s

    def factors(self, k, v, beta, gamma):
        return Factors(a=1 - beta, g=1 - gamma, u=beta * v, w=gamma * k)


class Linear(UpdateRule):
    """Linear attention without forgetting (Katharopoulos et al. 2020); β, γ are ignored:

    `C_t = C_{t-1} + v_t ⊗ φ(k_t)`, `s_t = s_{t-1} + φ(k_t)`, same readout as `gated`.
    """

    name: ClassVar[str] = "linear"
    methods: ClassVar[frozenset[str]] = frozenset({"scan", "associative", "chunked"})
    factored: ClassVar[bool] = True

    def step(self, C, s, q, k, v, beta, gamma, eps):
        C = C + jnp.outer(v, k)
        s = s + k
        return normalised_readout(C, s, q, eps), C, s

    def factors(self, k, v, beta, gamma):
        return Factors(a=jnp.ones_like(v), g=jnp.ones_like(k), u=v, w=k)


class ProjectedSigmoid(UpdateRule):
    """What the authors' ReLiT code runs; its decay does not factor:

    `C_t = (1 - β_t⊗γ_t) ⊙ C_{t-1} + (β_t⊗γ_t) ⊙ (v_t ⊗ φ(k_t))`,
    `s_t = (1-γ_t) ⊙ s_{t-1} + γ_t ⊙ φ(k_t)`, same readout as `gated`.
    Forms: step (scan) and associative scan.
    """

    name: ClassVar[str] = "projected_sigmoid"
    methods: ClassVar[frozenset[str]] = frozenset({"scan", "associative"})

    def step(self, C, s, q, k, v, beta, gamma, eps):
        D, U, g, w = self.full(k, v, beta, gamma)
        C = D * C + U
        s = g * s + w
        return normalised_readout(C, s, q, eps), C, s

    def full(self, k, v, beta, gamma):
        bg = beta[..., :, None] * gamma[..., None, :]
        return 1 - bg, bg * (v[..., :, None] * k[..., None, :]), 1 - gamma, gamma * k


def _sum_normalise(x: Array, eps: float) -> Array:
    return x / (jnp.sum(jnp.abs(x), axis=-1, keepdims=True) + eps)


class Delta(UpdateRule):
    """The delta rule (Schlag et al. 2021) with sum-normalised features:

    `k̂_t = φ(k_t) / (Σ|φ(k_t)| + ε)`, `q̂_t` likewise,
    `C_t = C_{t-1} + (β_t ⊙ (v_t - C_{t-1} k̂_t)) ⊗ k̂_t`, `a_t = C_t q̂_t`.
    The normaliser `s` is not used and is carried unchanged. Form: step (scan).
    """

    name: ClassVar[str] = "delta"
    methods: ClassVar[frozenset[str]] = frozenset({"scan"})

    def step(self, C, s, q, k, v, beta, gamma, eps):
        kh = _sum_normalise(k, eps)
        C = C + jnp.outer(beta * (v - C @ kh), kh)
        return C @ _sum_normalise(q, eps), C, s


RULES: dict[str, UpdateRule] = {}
"""The registered update rules by name: `gated`, `linear`, `projected_sigmoid`, `delta`."""


def register_rule(rule: UpdateRule) -> UpdateRule:
    """Register an update rule instance under `rule.name` and return it.

    Every registered rule is walked by the shared equivalence suite (`tests/test_forms.py`)
    over the forms in `rule.methods`; `ValueError` if the name is taken.
    """
    if rule.name in RULES:
        raise ValueError(f"update rule {rule.name!r} is already registered")
    RULES[rule.name] = rule
    return rule


def get_rule(name: str) -> UpdateRule:
    """The rule registered under `name`; `ValueError` listing the choices otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; registered rules: {sorted(RULES)}") from None


register_rule(Gated())
register_rule(Linear())
register_rule(ProjectedSigmoid())
register_rule(Delta())
