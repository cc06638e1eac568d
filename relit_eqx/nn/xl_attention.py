"""Transformer-XL relative multi-head attention over a fixed-size memory (Dai et al. 2019).

The memory caches the keys and values of the last `M` mixer inputs in a ring buffer, so
one `step` costs `O(M·d)`: nothing of the past is projected again. A query at step `t`
sees the keys at steps `t - M, ..., t` (a sliding window of `M + 1`), minus everything
before the last episode reset; `__call__` over a segment applies the same window, so it
equals `T` calls of `step`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._validation import check_positive, checked
from .dense import Dense
from .mixer import SequenceMixer, check_mixer_call, check_mixer_step

__all__ = ["XLAttention", "XLMemory", "relative_encodings"]


def relative_encodings(n: int, d_model: int) -> Float[Array, "n d_model"]:
    """Sinusoidal encodings $R_0, \\dots, R_{n-1}$ of the relative distances `0..n-1`.

    $R_\\delta = [\\sin(\\delta ω_1), \\dots, \\sin(\\delta ω_{\\lceil d/2 \\rceil}),
    \\cos(\\delta ω_1), \\dots]$ truncated to `d_model` entries, with
    $ω_i = 10000^{-2(i-1)/d}$ (the Transformer-XL layout).
    """
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, d_model, 2, dtype=np.float64) / d_model))
    angles = np.arange(n, dtype=np.float64)[:, None] * inv_freq[None, :]
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)[:, :d_model]
    return jnp.asarray(table, dtype=jnp.float32)


class XLMemory(eqx.Module):
    """The recurrent state of `XLAttention`: a ring buffer of cached keys and values.

    Slot `next_slot` is written next and holds the oldest entry (distance `M` from the
    next query); slot `next_slot - 1` holds the newest (distance 1). Invalid slots
    (never written, or from before a reset) are masked out of the attention.
    """

    keys: Float[Array, "M n_heads d_head"]
    values: Float[Array, "M n_heads d_head"]
    valid: Bool[Array, " M"]
    next_slot: Int[Array, ""]


class XLAttention(SequenceMixer):
    """Multi-head relative attention with a memory of the last `M` inputs (Transformer-XL).

    For a query at step $i$ and a key at step $j$ (with $0 \\le i - j \\le M$), per head,

    $$s_{ij} = \\frac{(q_i + u)^\\top k_j + (q_i + v)^\\top W_R R_{i-j}}{\\sqrt{d_{head}}},$$

    where $q = W_q x$, $k = W_k x$, $R$ are sinusoidal relative encodings and $u$, $v$
    learned biases. The softmax runs over the visible keys; the heads' value averages are
    concatenated and projected back to `d_model`. The positional term is evaluated as
    $(W_R^\\top (q_i + v))^\\top R_{i-j}$, which costs $O(M·d)$ per query.
    """

    query_proj: Dense
    key_proj: Dense
    value_proj: Dense
    output_proj: Dense
    position_proj: Float[Array, "n_heads d_head d_model"]
    content_bias: Float[Array, "n_heads d_head"]
    position_bias: Float[Array, "n_heads d_head"]
    d_model: int = eqx.field(static=True)
    n_heads: int = eqx.field(static=True)
    d_head: int = eqx.field(static=True)
    memory_length: int = eqx.field(static=True)

    def __init__(
        self,
        d_model: int,
        *,
        n_heads: int,
        d_head: int,
        memory_length: int,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `d_model`: width of the inputs and outputs.
        - `n_heads`: number of attention heads.
        - `d_head`: width of each head's queries, keys and values.
        - `memory_length`: `M`, the number of past steps each query can see.
        - `key`: a `jax.random.PRNGKey` for the initialisation.
        """
        check_positive(d_model=d_model, n_heads=n_heads, d_head=d_head, memory_length=memory_length)
        d_model, n_heads, d_head = int(d_model), int(n_heads), int(d_head)
        width = n_heads * d_head
        kq, kk, kv, ko, kr, ku, kb = jr.split(key, 7)
        self.query_proj = Dense(d_model, width, use_bias=False, key=kq)
        self.key_proj = Dense(d_model, width, use_bias=False, key=kk)
        self.value_proj = Dense(d_model, width, use_bias=False, key=kv)
        self.output_proj = Dense(width, d_model, use_bias=False, key=ko)
        lim = 1 / math.sqrt(d_model)
        self.position_proj = jr.uniform(kr, (n_heads, d_head, d_model), minval=-lim, maxval=lim)
        self.content_bias = 0.02 * jr.normal(ku, (n_heads, d_head))
        self.position_bias = 0.02 * jr.normal(kb, (n_heads, d_head))
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_head
        self.memory_length = int(memory_length)

    def init_state(self) -> XLMemory:
        """An empty memory: zero keys and values, all slots invalid."""
        shape = (self.memory_length, self.n_heads, self.d_head)
        return XLMemory(
            keys=jnp.zeros(shape, jnp.float32),
            values=jnp.zeros(shape, jnp.float32),
            valid=jnp.zeros((self.memory_length,), jnp.bool_),
            next_slot=jnp.zeros((), jnp.int32),
        )

    @property
    def state_size(self) -> int:
        """Floats held in the state: the cached keys and values, `2·M·n_heads·d_head`.

        The validity mask (`M` booleans) and the slot index (one integer) are not counted.
        """
        return 2 * self.memory_length * self.n_heads * self.d_head

    def _project(self, x: Float[Array, " d_model"]):
        shape = (self.n_heads, self.d_head)
        return (
            self.query_proj(x).reshape(shape),
            self.key_proj(x).reshape(shape),
            self.value_proj(x).reshape(shape),
        )

    def _position_scores(self, q: Float[Array, "n_heads d_head"]) -> Float[Array, "n_heads m1"]:
        # (q + v)ᵀ W_R R_δ for δ = 0..M, as (W_Rᵀ (q + v))ᵀ R_δ.
        p = jnp.einsum("hd,hdm->hm", q + self.position_bias, self.position_proj)
        return p @ relative_encodings(self.memory_length + 1, self.d_model).T

    def _merge_heads(self, o: Float[Array, "n_heads d_head"]) -> Float[Array, " d_model"]:
        return self.output_proj(o.reshape(self.n_heads * self.d_head))

    @checked(check_mixer_step)
    def step(
        self, x: Float[Array, " d_model"], reset: Bool[Array, ""], state: XLMemory
    ) -> tuple[Float[Array, " d_model"], XLMemory]:
        """Attend from `x` over the memory and `x` itself, then push `x` into the memory.

        **Arguments:**

        - `x`: the mixer input at this step.
        - `reset`: if true, the memory is emptied before `x` is absorbed.
        - `state`: the memory before this step.

        **Returns:**

        The attention output `[d_model]` and the memory after this step.
        """
        m = self.memory_length
        q, k, v = self._project(x)
        valid = state.valid & jnp.logical_not(reset)
        # Invalid slots (before a reset, never written) are selected away, not weighted by
        # 0: whatever they hold (NaN included) cannot reach this step or its gradients.
        keys, values = (jnp.where(valid[:, None, None], x, 0.0) for x in (state.keys, state.values))
        # Distance from this query to each slot: 1 for the newest, M for the oldest.
        slots = jnp.arange(m)
        distance = (state.next_slot - slots - 1) % m + 1
        position = self._position_scores(q)
        mem_scores = jnp.einsum("hd,shd->hs", q + self.content_bias, keys)
        mem_scores = mem_scores + position[:, distance]
        self_score = jnp.sum((q + self.content_bias) * k, axis=-1) + position[:, 0]
        scores = jnp.concatenate([mem_scores, self_score[:, None]], axis=-1)
        scores = scores / math.sqrt(self.d_head)
        scores = jnp.where(jnp.append(valid, True), scores, -jnp.inf)
        weights = jax.nn.softmax(scores, axis=-1)
        o = jnp.einsum("hs,shd->hd", weights[:, :m], values) + weights[:, m:] * v
        slot = state.next_slot
        new_state = XLMemory(
            keys=state.keys.at[slot].set(k),
            values=state.values.at[slot].set(v),
            valid=valid.at[slot].set(True),
            next_slot=(slot + 1) % m,
        )
        return self._merge_heads(o), new_state

    @checked(check_mixer_call)
    def __call__(
        self, xs: Float[Array, "T d_model"], resets: Bool[Array, " T"], state: XLMemory
    ) -> tuple[Float[Array, "T d_model"], XLMemory]:
        """A whole segment at once: keys and values of memory ++ segment, windowed causally.

        **Arguments:**

        - `xs`: the mixer inputs over `T` steps.
        - `resets`: `resets[t]` hides the memory and `xs[:t]` from the queries at `t`
          and later.
        - `state`: the memory before step 0.

        **Returns:**

        The attention outputs `[T, d_model]` and the memory after step `T - 1`
        (identical to `T` calls of `step`).
        """
        m = self.memory_length
        t = xs.shape[0]
        if t == 0:
            return jnp.zeros((0, self.d_model), jnp.float32), state
        q, k, v = jax.vmap(self._project)(xs)
        # Chronological order, oldest first: memory positions 0..M-1, segment M..M+T-1.
        keys = jnp.concatenate([jnp.roll(state.keys, -state.next_slot, axis=0), k])
        values = jnp.concatenate([jnp.roll(state.values, -state.next_slot, axis=0), v])
        valid = jnp.concatenate([jnp.roll(state.valid, -state.next_slot), jnp.ones(t, bool)])
        memory_keys, memory_values = keys, values  # as they are, for the state
        key_pos = jnp.arange(m + t)
        query_pos = m + jnp.arange(t)
        # Position of the latest reset at or before each query (0: none in the segment).
        start = jax.lax.cummax(jnp.where(resets, query_pos, 0))
        distance = query_pos[:, None] - key_pos[None, :]
        visible = (
            (distance >= 0)
            & (distance <= m)
            & (key_pos[None, :] >= start[:, None])
            & valid[None, :]
        )
        position = jax.vmap(self._position_scores)(q)
        index = jnp.broadcast_to(jnp.clip(distance, 0, m)[:, None, :], (t, self.n_heads, m + t))
        position = jnp.take_along_axis(position, index, axis=-1)
        # A key or value that is not finite is replaced by 0 and the queries that see it
        # are set to NaN afterwards: a query that does not see it (a reset lies between)
        # is then untouched by it, gradients included (a weight 0 times NaN would be NaN).
        finite = jnp.isfinite(keys) & jnp.isfinite(values)
        keys, values = (jnp.where(finite, x, 0.0) for x in (keys, values))
        sees_bad = jnp.any(visible & ~jnp.all(finite, axis=(1, 2))[None, :], axis=1)  # [T]
        scores = jnp.einsum("thd,shd->ths", q + self.content_bias[None], keys) + position
        scores = scores / math.sqrt(self.d_head)
        scores = jnp.where(visible[:, None, :], scores, -jnp.inf)
        weights = jax.nn.softmax(scores, axis=-1)
        o = jnp.einsum("ths,shd->thd", weights, values)
        o = jnp.where(sees_bad[:, None, None], jnp.nan, o)
        ys = jax.vmap(self._merge_heads)(o)
        # The last M entries, laid out in the ring as `T` steps would have left them.
        next_slot = (state.next_slot + t) % m
        final_valid = valid[t:] & (key_pos[t:] >= start[-1])
        new_state = XLMemory(
            keys=jnp.roll(memory_keys[t:], next_slot, axis=0),
            values=jnp.roll(memory_values[t:], next_slot, axis=0),
            valid=jnp.roll(final_valid, next_slot),
            next_slot=next_slot,
        )
        return ys, new_state
