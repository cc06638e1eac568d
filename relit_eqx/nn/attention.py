"""Multi-head ReLiT and AReLiT self-attention layers (the Mathematics page), built on `functional`.

One fused dense layer produces, per head, the raw key and query `[d]`, the value `[d]`,
the value gate logits `[d]`, the key gate logits, and (for the outer-product kernels) the
projections `p1, p2, p3 [eta]`:

    φ(k) = kernel(W_k x, W_p1 x),  φ(q) = kernel(W_q x, W_p2 x),  v = W_v x,
    β = σ(W_β x),  γ = vec(σ(W_p3 x) ⊗ σ(W_γ x))  (outer-product kernels; else σ(W_γ x)).

Heads run through the functional core under `jax.vmap`, are concatenated and projected
back to `d_model` by `W_o`. Weights use orthogonal initialisation with gain √2 (as the
authors do) and zero biases.
"""

from __future__ import annotations

import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from .._validation import check_positive, checked
from ..functional import (
    METHODS,
    AReLiTState,
    LoopInputs,
    Outer,
    OuterLoopInputs,
    ReLiTState,
    arelit_loop,
    arelit_loop_outer,
    arelit_state_floats,
    arelit_step,
    oscillators,
    relit_state_floats,
    relit_step,
)
from ..functional import arelit as arelit_fn
from ..functional import relit as relit_fn
from ..kernels import get_kernel
from ..update_rules import get_rule
from .dense import Dense
from .mixer import SequenceMixer, check_mixer_call, check_mixer_step

__all__ = ["ReLiTAttention", "AReLiTAttention"]


class _LinearAttention(SequenceMixer):
    """Shared projections and head plumbing of ReLiT and AReLiT attention."""

    proj: Dense
    out: Dense
    d_model: int = eqx.field(static=True)
    n_heads: int = eqx.field(static=True)
    d_head: int = eqx.field(static=True)
    eta: int = eqx.field(static=True)
    kernel: str = eqx.field(static=True)
    method: str = eqx.field(static=True)
    chunk_size: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    @property
    def n_features(self) -> int:
        """Feature width `n` of one head."""
        return get_kernel(self.kernel).feature_dim(self.d_head, self.eta)

    def _widths(self) -> tuple[int, ...]:
        d, e = self.d_head, self.eta
        uses_p = get_kernel(self.kernel).uses_p
        gate = d if uses_p else self.n_features
        ps = (e, e, e) if uses_p else (0, 0, 0)
        return (d, d, d, d, gate, *ps)  # k, q, v, beta, gamma, p1, p2, p3

    def _init_layers(self, key: PRNGKeyArray, *, separate_p: bool = False) -> tuple[Dense, Dense]:
        """The fused projection and `W_o`, orthogonal with gain √2, zero biases. With
        `separate_p` (AReLiT, as the authors' AGaLiTe code), `[k q v β γ]` of all heads and
        `[p1 p2 p3]` of all heads are two separately initialised layers (so the narrow `p`
        block keeps the scale of a layer of its own width), interleaved per head into the
        fused layout; otherwise one orthogonal matrix."""
        k1, k2 = jax.random.split(key)
        widths, H, D = self._widths(), self.n_heads, self.d_model
        main, ps = sum(widths[:5]), sum(widths[5:])
        proj = Dense.orthogonal(D, H * (main + ps), key=k1)
        if ps and separate_p:
            w_main = Dense.orthogonal(D, H * main, key=k1).weight.reshape(D, H, main)
            w_p = Dense.orthogonal(D, H * ps, key=jax.random.fold_in(k1, 1)).weight.reshape(
                D, H, ps
            )
            weight = jnp.concatenate([w_main, w_p], axis=-1).reshape(D, H * (main + ps))
            proj = eqx.tree_at(lambda m: m.weight, proj, weight)
        return proj, Dense.orthogonal(H * self.d_head, D, key=k2)

    def _check(self, method: str, chunk_size: int, eps: float) -> None:
        check_positive(
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_head=self.d_head,
            eta=self.eta,
            chunk_size=chunk_size,
        )
        get_kernel(self.kernel)
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0; got {eps}")

    def _features(self, x: Float[Array, "... d_model"]) -> tuple[Array, ...]:
        """Per-head `(φ(q), φ(k), v, β, γ)`, each with a head axis before the last axis."""
        return self._features_of(self.proj(x))

    def _split(self, h: Float[Array, "... width"]) -> list[Array]:
        """The fused projection `h` per head: `k, q, v, β, γ` logits and `p1, p2, p3`."""
        h = h.reshape(*h.shape[:-1], self.n_heads, -1)
        bounds = list(itertools.accumulate(self._widths()))[:-1]
        return jnp.split(h, bounds, axis=-1)

    def _features_of(self, h: Float[Array, "... width"]) -> tuple[Array, ...]:
        """`_features` from the fused projection `h` (the output of `self.proj`)."""
        kern = get_kernel(self.kernel)
        k, q, v, b, g, p1, p2, p3 = self._split(h)
        pk, pq = (p1, p2) if kern.uses_p else (None, None)
        gamma = self._gamma(g, p3).full()
        return kern(q, pq), kern(k, pk), v, jax.nn.sigmoid(b), gamma

    def _gamma(self, g: Array, p3: Array) -> Outer:
        """The key gate as its factors: `γ = vec(σ(p3) ⊗ σ(g))` for the outer-product
        kernels (`[..., eta]`, `[..., d]`), else `γ = σ(g)` (`[..., 1]` ones, `[..., n]`)."""
        g = jax.nn.sigmoid(g)
        if get_kernel(self.kernel).uses_p:
            return Outer(jax.nn.sigmoid(p3), g)
        return Outer(jnp.ones((*g.shape[:-1], 1), g.dtype), g)

    def _merge(self, heads: Float[Array, "... H d"]) -> Float[Array, "... d_model"]:
        merged = heads.reshape(*heads.shape[:-2], self.n_heads * self.d_head)
        return self.out(merged)

    def _heads_step(self, h: Array, reset: Array, state: PyTree[Array]) -> tuple[Array, PyTree]:
        """One step of every head from the projection `h` of one input: `(out [H, d], state)`."""
        raise NotImplementedError

    def _recurrent(
        self, xs: Float[Array, "T d_model"], resets: Bool[Array, " T"], state: PyTree[Array]
    ) -> tuple[Float[Array, "T d_model"], PyTree[Array]]:
        """The training form `method="scan"`: `step` over the sequence.

        The features are formed inside the loop (never materialised for all `T` steps),
        and the backward pass keeps the state only at chunk boundaries: each chunk of
        `chunk_size` steps is rematerialised (`jax.checkpoint`). The projections into and
        out of the heads are batched over `T` outside the loop.
        """
        h = self.proj(xs)

        def one(st, x):
            h_t, reset_t = x
            out, st = self._heads_step(h_t, reset_t, st)
            return st, out

        @functools.partial(jax.checkpoint, prevent_cse=False)  # inside a scan: safe
        def chunk(st, x):
            return jax.lax.scan(one, st, x)

        T = xs.shape[0]
        L = min(self.chunk_size, T)
        n_full = T // L

        def blocks(x):
            return x[: n_full * L].reshape(n_full, L, *x.shape[1:])

        state, out = jax.lax.scan(chunk, state, (blocks(h), blocks(resets)))
        out = out.reshape(n_full * L, *out.shape[2:])
        if n_full * L < T:  # a last, shorter chunk
            state, tail = chunk(state, (h[n_full * L :], resets[n_full * L :]))
            out = jnp.concatenate([out, tail])
        return self._merge(out), state


class ReLiTAttention(_LinearAttention):
    """Multi-head ReLiT self-attention (the Mathematics page).

    **Arguments:** `d_model`; keyword `n_heads`, `d_head`, `eta`, `kernel` (a name in
    `relit_eqx.kernels.KERNELS`), `update_rule` (a name in `relit_eqx.update_rules.RULES`),
    `method` (`"scan"`, `"associative"`, `"chunked"`), `chunk_size`, `eps`, `key`.

    `method="scan"` runs the layer's own `step` over the sequence (`_recurrent`);
    `"associative"` and `"chunked"` form the features for all steps and call
    `relit_eqx.functional.relit`.

    State: `ReLiTState(C [H, d, n], s [H, n])`.
    """

    update_rule: str = eqx.field(static=True)

    def __init__(
        self,
        d_model: int,
        *,
        n_heads: int = 4,
        d_head: int = 64,
        eta: int = 4,
        kernel: str = "pp_relu",
        update_rule: str = "gated",
        method: str = "chunked",
        chunk_size: int = 8,
        eps: float = 1e-6,
        key: PRNGKeyArray,
    ):
        self.d_model, self.n_heads, self.d_head, self.eta = d_model, n_heads, d_head, eta
        self.kernel, self.update_rule, self.method = kernel, update_rule, method
        self.chunk_size, self.eps = chunk_size, eps
        self._check(method, chunk_size, eps)
        rule = get_rule(update_rule)
        if method not in rule.methods:
            raise ValueError(
                f"update_rule {update_rule!r} does not support method {method!r}; "
                f"it supports {sorted(rule.methods)}"
            )
        self.proj, self.out = self._init_layers(key)

    def init_state(self) -> ReLiTState:
        """Zero state: `C [H, d, n]`, `s [H, n]`."""
        H, d, n = self.n_heads, self.d_head, self.n_features
        return ReLiTState(C=jnp.zeros((H, d, n)), s=jnp.zeros((H, n)))

    @property
    def state_size(self) -> int:
        """Floats in the state: `H·(d·n + n)`."""
        return relit_state_floats(self.d_head, self.n_features, n_heads=self.n_heads)

    @checked(check_mixer_call)
    def __call__(
        self, xs: Float[Array, "T d_model"], resets: Bool[Array, " T"], state: ReLiTState
    ) -> tuple[Float[Array, "T d_model"], ReLiTState]:
        """Training form over `T` steps with the layer's `method`; returns `(ys, state)`
        (`T = 0`: `[0, d_model]` and the state unchanged)."""
        if xs.shape[0] == 0:
            return jnp.zeros((0, self.d_model), xs.dtype), state
        if self.method == "scan":
            return self._recurrent(xs, resets, state)
        fq, fk, v, b, g = (jnp.swapaxes(x, 0, 1) for x in self._features(xs))  # [H, T, .]

        def head(q, k, v, b, g, st):
            return relit_fn(
                q, k, v, b, g, resets, st,
                rule=self.update_rule, method=self.method,
                chunk_size=self.chunk_size, eps=self.eps,
            )  # fmt: skip

        out, state = jax.vmap(head)(fq, fk, v, b, g, state)
        return self._merge(jnp.swapaxes(out, 0, 1)), state

    @checked(check_mixer_step)
    def step(
        self, x: Float[Array, " d_model"], reset: Bool[Array, ""], state: ReLiTState
    ) -> tuple[Float[Array, " d_model"], ReLiTState]:
        """Inference form: one step of the recurrence; returns `(y, state)`."""
        out, state = self._heads_step(self.proj(x), reset, state)
        return self._merge(out), state

    def _heads_step(self, h: Array, reset: Array, state: PyTree[Array]) -> tuple[Array, PyTree]:
        rule = get_rule(self.update_rule)

        def head(q, k, v, b, g, st):
            return relit_step(rule, q, k, v, b, g, reset, st, self.eps)

        fq, fk, v, b, g = self._features_of(h)
        return jax.vmap(head)(fq, fk, v, b, g, state)


class AReLiTAttention(_LinearAttention):
    """Multi-head AReLiT self-attention (the Mathematics page): ReLiT's projections and gated rule with
    `C` replaced by `r` rank-one summaries.

    **Arguments:** as `ReLiTAttention` (without `update_rule`), plus `r` and `oscillator`
    (`"paper"` or `"fourier"`).

    `method="scan"` runs `relit_eqx.functional.arelit_loop` (the form `arelit(...,
    method="loop")`) on the gated rule's factors of all steps: the recurrence in a loop
    with a hand-written backward pass (reverse mode only). With `factored=True` it runs `arelit_loop_outer` instead, on the
    outer-product features held as their two factors: less memory traffic outside the
    loop, more work inside it (measured: 11% faster on one CPU core, 4–7% slower on two; the
    Performance page). `authors_init=True` initialises the `p`-projections as a layer of
    their own, as the authors' code does.

    State: `AReLiTState(v_tilde [H, R, d], k_tilde [H, R, n], s [H, n], tick [H])`.
    """

    r: int = eqx.field(static=True)
    oscillator: str = eqx.field(static=True)
    factored: bool = eqx.field(static=True)

    def __init__(
        self,
        d_model: int,
        *,
        n_heads: int = 4,
        d_head: int = 64,
        eta: int = 4,
        r: int = 2,
        oscillator: str = "paper",
        kernel: str = "pp_relu",
        method: str = "scan",
        chunk_size: int = 16,
        eps: float = 1e-6,
        factored: bool = False,
        authors_init: bool = False,
        key: PRNGKeyArray,
    ):
        self.d_model, self.n_heads, self.d_head, self.eta = d_model, n_heads, d_head, eta
        self.kernel, self.method, self.chunk_size, self.eps = kernel, method, chunk_size, eps
        self.r, self.oscillator, self.factored = r, oscillator, bool(factored)
        self._check(method, chunk_size, eps)
        if self.factored and method != "scan":
            raise ValueError(
                f"factored=True chooses the loop of method='scan'; got method={method!r}"
            )
        oscillators.check_oscillator(r, oscillator)
        self.proj, self.out = self._init_layers(key, separate_p=authors_init)

    def init_state(self) -> AReLiTState:
        """Zero state: `v_tilde [H, R, d]`, `k_tilde [H, R, n]`, `s [H, n]`, `tick [H]`."""
        H, R, d, n = self.n_heads, self.r, self.d_head, self.n_features
        return AReLiTState(
            v_tilde=jnp.zeros((H, R, d)),
            k_tilde=jnp.zeros((H, R, n)),
            s=jnp.zeros((H, n)),
            tick=jnp.zeros((H,), jnp.int32),
        )

    @property
    def state_size(self) -> int:
        """Floats in the state: `H·(r·d + r·n + n)` (the integer counters not counted)."""
        return arelit_state_floats(self.d_head, self.n_features, self.r, n_heads=self.n_heads)

    @checked(check_mixer_call)
    def __call__(
        self, xs: Float[Array, "T d_model"], resets: Bool[Array, " T"], state: AReLiTState
    ) -> tuple[Float[Array, "T d_model"], AReLiTState]:
        """Training form over `T` steps with the layer's `method`; returns `(ys, state)`
        (`T = 0`: `[0, d_model]` and the state unchanged, its counters reduced)."""
        state = self._reduce_ticks(state)
        if xs.shape[0] == 0:
            return jnp.zeros((0, self.d_model), xs.dtype), state
        if self.method == "scan":
            return self._scan(xs, resets, state)
        fq, fk, v, b, g = (jnp.swapaxes(x, 0, 1) for x in self._features(xs))

        def head(q, k, v, b, g, st):
            return arelit_fn(
                q, k, v, b, g, resets, st,
                r=self.r, oscillator=self.oscillator, method=self.method,
                chunk_size=self.chunk_size, eps=self.eps,
            )  # fmt: skip

        out, state = jax.vmap(head)(fq, fk, v, b, g, state)
        return self._merge(jnp.swapaxes(out, 0, 1)), state

    @checked(check_mixer_step)
    def step(
        self, x: Float[Array, " d_model"], reset: Bool[Array, ""], state: AReLiTState
    ) -> tuple[Float[Array, " d_model"], AReLiTState]:
        """Inference form: one step of the recurrence; returns `(y, state)`."""
        out, state = self._heads_step(self.proj(x), reset, self._reduce_ticks(state))
        return self._merge(out), state

    def _reduce_ticks(self, state: AReLiTState) -> AReLiTState:
        """The counters reduced modulo the period (`oscillators.reduce_tick`): exact for a
        concrete state of any size, `ValueError` if negative."""
        return state._replace(tick=oscillators.reduce_tick(state.tick, self.r, self.oscillator))

    def _heads_step(self, h: Array, reset: Array, state: PyTree[Array]) -> tuple[Array, PyTree]:
        def head(q, k, v, b, g, st):
            return arelit_step(q, k, v, b, g, reset, st, self.r, self.oscillator, self.eps)

        fq, fk, v, b, g = self._features_of(h)
        return jax.vmap(head)(fq, fk, v, b, g, state)

    def _scan(
        self, xs: Float[Array, "T d_model"], resets: Bool[Array, " T"], state: AReLiTState
    ) -> tuple[Float[Array, "T d_model"], AReLiTState]:
        """The training form `method="scan"`: the step loop with a hand-written backward
        pass (`functional.arelit_loop`), on the gated rule's factors formed for all steps
        before the loop and recomputed from the projection in the
        backward pass (`jax.checkpoint`): `arelit_loop` on the `n`-wide features, or with
        `factored=True` `arelit_loop_outer` on their outer-product factors
        (`Kernel.outer_factors`), so that no `n`-wide array is formed outside the loop."""

        def counters(tick0):
            return oscillators.counter_features(
                resets, tick0, self.r, self.oscillator, state.v_tilde.dtype
            )

        tau, f = jax.vmap(counters, out_axes=1)(state.tick)  # [T, H], [T, H, R]
        carry = (state.v_tilde, state.k_tilde, state.s)
        c = oscillators.normaliser(self.r, self.oscillator)
        h = self.proj(xs)
        eps, L = self.eps, self.chunk_size
        if self.factored:
            fo = jax.checkpoint(lambda h: self._outer_factors(h, f))(h)
            out, (V, K, s) = arelit_loop_outer(fo, resets, carry, c=c, eps=eps, chunk_size=L)
        else:
            fl = jax.checkpoint(lambda h: self._loop_factors(h, f))(h)
            out, (V, K, s) = arelit_loop(fl, resets, carry, c=c, eps=eps, chunk_size=L)
        return self._merge(out), AReLiTState(v_tilde=V, k_tilde=K, s=s, tick=tau[-1])

    def _loop_factors(self, h: Array, f: Array) -> LoopInputs:
        """`LoopInputs` `[T, H, .]` from the projection `h` and the oscillator features."""
        fq, fk, v, b, g = self._features_of(h)
        a, g, u, w = get_rule("gated").factors(fk, v, b, g)
        return LoopInputs(q=fq, a=a, g=g, u=u, w=w, f=f)

    def _outer_factors(self, h: Array, f: Array) -> OuterLoopInputs:
        """`OuterLoopInputs`: `φ(q)`, `γ` and `w = γ⊙φ(k)` as factors (`[T, H, E]`,
        `[T, H, M]`), `a`, `u` and the oscillator features `f`."""
        kern = get_kernel(self.kernel)
        k, q, v, b, g, p1, p2, p3 = self._split(h)  # [T, H, .]
        pk, pq = (p1, p2) if kern.uses_p else (None, None)
        fq, fk = Outer(*kern.outer_factors(q, pq)), Outer(*kern.outer_factors(k, pk))
        gamma = self._gamma(g, p3)
        beta = jax.nn.sigmoid(b)
        rule = get_rule("gated")
        if fk.p.shape[-1] == gamma.p.shape[-1]:  # γ ⊙ φ(k) is again an outer product
            fac = rule.factors(fk.x, v, beta, gamma.x)
            w = Outer(gamma.p * fk.p, fac.w)
        else:
            fac = rule.factors(fk.full(), v, beta, gamma.full())
            w = Outer(jnp.ones_like(gamma.x[..., :1]), fac.w)
        return OuterLoopInputs(fq.p, fq.x, fac.a, gamma.p, gamma.x, fac.u, w.p, w.x, f)
