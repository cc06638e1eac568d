"""The `gla` update rule (gated linear attention), registered with `register_rule`."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from relit_eqx.update_rules import Factors, UpdateRule, normalised_readout, register_rule


class GLA(UpdateRule):
    """Gated linear attention: only the key side decays; β is ignored.

    `C_t = (1 ⊗ (1-γ_t)) ⊙ C_{t-1} + v_t ⊗ k_t`, `s_t = (1-γ_t) ⊙ s_{t-1} + k_t`,
    `out_t = C_t q_t / (s_tᵀ q_t + ε)` (keys and queries already feature-mapped).
    The decay is an outer product, so every evaluation form runs it.
    """

    name: ClassVar[str] = "gla"
    methods: ClassVar[frozenset[str]] = frozenset({"scan", "associative", "chunked"})
    factored: ClassVar[bool] = True

    def step(self, C, s, q, k, v, beta, gamma, eps):
        C = C * (1 - gamma)[None, :] + jnp.outer(v, k)
        s = (1 - gamma) * s + k
        return normalised_readout(C, s, q, eps), C, s

    def factors(self, k, v, beta, gamma):
        return Factors(a=jnp.ones_like(v), g=1 - gamma, u=v, w=k)


def gla_step_numpy(C, s, q, k, v, beta, gamma, eps):
    """The same step written again in float64 numpy, elementwise: the independent
    reference that `relit_eqx.testing.check_update_rule(..., oracle=)` compares with."""
    d, n = C.shape
    C_new = np.empty((d, n))
    for i in range(d):
        for j in range(n):
            C_new[i, j] = C[i, j] * (1.0 - gamma[j]) + v[i] * k[j]
    s_new = np.array([s[j] * (1.0 - gamma[j]) + k[j] for j in range(n)])
    den = sum(s_new[j] * q[j] for j in range(n)) + eps
    out = np.array([sum(C_new[i, j] * q[j] for j in range(n)) / den for i in range(d)])
    return out, C_new, s_new


register_rule(GLA())
