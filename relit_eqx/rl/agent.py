"""The actor-critic agent: a memory model followed by a policy head and a value head.

    obs_t ──► model (any registered sequence model) ──► y_t ──► policy head ──► π(·|h_t)
                                                          └──► value head  ──► V(h_t)

The model carries the recurrent state; `reset_t = True` zeroes it before `obs_t` is
absorbed (SPEC §4). Batching is `jax.vmap`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from ..envs import Box, Discrete
from ..models import SequenceModel
from ..nn.dense import Dense

__all__ = ["Categorical", "DiagGaussian", "MLPHead", "Agent"]

_LOG_2PI = math.log(2 * math.pi)


class Categorical(eqx.Module):
    """A categorical distribution over the last axis of `logits` (`[..., n]`)."""

    logits: Float[Array, "*batch n"]

    def sample(self, key: PRNGKeyArray) -> Int[Array, "*batch"]:
        return jax.random.categorical(key, self.logits, axis=-1)

    def mode(self) -> Int[Array, "*batch"]:
        return jnp.argmax(self.logits, axis=-1)

    def log_prob(self, action: Int[Array, "*batch"]) -> Float[Array, "*batch"]:
        logp = jax.nn.log_softmax(self.logits, axis=-1)
        return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def entropy(self) -> Float[Array, "*batch"]:
        """`H = -Σ_a p_a log p_a`."""
        logp = jax.nn.log_softmax(self.logits, axis=-1)
        return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


class DiagGaussian(eqx.Module):
    """A Gaussian with diagonal covariance over the last axis (`mean`, `log_std`: `[..., n]`)."""

    mean: Float[Array, "*batch n"]
    log_std: Float[Array, "*batch n"]

    def sample(self, key: PRNGKeyArray) -> Float[Array, "*batch n"]:
        noise = jax.random.normal(key, jnp.shape(self.mean), jnp.result_type(self.mean))
        return self.mean + jnp.exp(self.log_std) * noise

    def mode(self) -> Float[Array, "*batch n"]:
        return self.mean

    def log_prob(self, action: Float[Array, "*batch n"]) -> Float[Array, "*batch"]:
        """`Σ_i [-(a_i-μ_i)²/(2σ_i²) - log σ_i - log(2π)/2]`."""
        z = (action - self.mean) * jnp.exp(-self.log_std)
        return jnp.sum(-0.5 * z**2 - self.log_std - 0.5 * _LOG_2PI, axis=-1)

    def entropy(self) -> Float[Array, "*batch"]:
        """`Σ_i [log σ_i + (1 + log 2π)/2]`."""
        return jnp.sum(self.log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)


_ACTIVATIONS = {"tanh": jax.nn.tanh, "relu": jax.nn.relu}


class MLPHead(eqx.Module):
    """A small MLP with orthogonal initialisation: hidden layers with gain √2, output
    layer with gain `out_gain` (0.01 for a policy, 1 for a value), zero biases."""

    layers: tuple[Dense, ...]
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        hidden: Sequence[int],
        *,
        out_gain: float,
        activation: str = "tanh",
        key: PRNGKeyArray,
    ):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}; got {activation!r}"
            )
        sizes = [in_size, *hidden, out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        gains = [math.sqrt(2.0)] * len(hidden) + [out_gain]
        self.layers = tuple(
            Dense.orthogonal(a, b, gain=g, key=k)
            for a, b, g, k in zip(sizes[:-1], sizes[1:], gains, keys, strict=True)
        )
        self.activation = activation

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        act = _ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return self.layers[-1](x)


class Agent(eqx.Module):
    """Memory model → policy head and value head.

    **Arguments:**

    - `model`: a sequence model (SPEC §5) whose `d_in` is the flattened observation size.
    - `action_space`: `Discrete(n)` (categorical policy over `n` logits) or `Box(shape)`
      (diagonal Gaussian with a state-independent learned `log_std`, initially 0).
    - `hidden`: hidden layer widths of both heads (`()` for linear heads).
    - `activation`: `"tanh"` or `"relu"` between head layers.
    - `policy_gain`, `value_gain`: orthogonal-init gains of the heads' output layers
      (0.01 gives a near-uniform initial policy).
    - `key`: a PRNG key for the heads.
    """

    model: SequenceModel
    policy_head: MLPHead
    value_head: MLPHead
    log_std: Float[Array, " n"] | None
    action_shape: tuple[int, ...] = eqx.field(static=True)
    discrete: bool = eqx.field(static=True)

    def __init__(
        self,
        model: SequenceModel,
        action_space: Discrete | Box,
        *,
        hidden: Sequence[int] = (64,),
        activation: str = "tanh",
        policy_gain: float = 0.01,
        value_gain: float = 1.0,
        key: PRNGKeyArray,
    ):
        kp, kv = jax.random.split(key)
        self.model = model
        self.discrete = isinstance(action_space, Discrete)
        if isinstance(action_space, Discrete):
            n_out = action_space.n
            self.action_shape = ()
            self.log_std = None
        elif isinstance(action_space, Box):
            n_out = math.prod(action_space.shape)
            self.action_shape = tuple(action_space.shape)
            self.log_std = jnp.zeros((n_out,), jnp.float32)
        else:
            raise TypeError(f"action_space must be Discrete or Box; got {action_space!r}")
        d = model.d_model
        self.policy_head = MLPHead(
            d, n_out, hidden, out_gain=policy_gain, activation=activation, key=kp
        )
        self.value_head = MLPHead(d, 1, hidden, out_gain=value_gain, activation=activation, key=kv)

    def init_state(self) -> PyTree[Array]:
        """The memory model's zero state."""
        return self.model.init_state()

    def _heads(self, y: Float[Array, " d_model"]) -> tuple[Categorical | DiagGaussian, Array]:
        out = self.policy_head(y)
        value = self.value_head(y)[0]
        if self.discrete:
            return Categorical(out), value
        assert self.log_std is not None
        mean = out.reshape(self.action_shape)
        return DiagGaussian(
            mean, jnp.broadcast_to(self.log_std.reshape(self.action_shape), mean.shape)
        ), value

    def step(
        self, obs: Float[Array, "..."], reset: Bool[Array, ""], state: PyTree[Array]
    ) -> tuple[Categorical | DiagGaussian, Float[Array, ""], PyTree[Array]]:
        """One step of acting.

        **Arguments:** `obs` (one observation), `reset` (True when `obs` starts an
        episode), `state` (the memory state).

        **Returns:** `(dist, value, state)`: the action distribution (`Categorical` with
        `logits [n]` or `DiagGaussian` with `mean, log_std [*action_shape]`), `V(h_t)`,
        and the new memory state.
        """
        y, state = self.model.step(jnp.ravel(obs).astype(jnp.float32), reset, state)
        dist, value = self._heads(y)
        return dist, value, state

    def __call__(
        self, obs_seq: Float[Array, "T ..."], resets: Bool[Array, " T"], state: PyTree[Array]
    ) -> tuple[Categorical | DiagGaussian, Float[Array, " T"], PyTree[Array]]:
        """The training pass over a sequence (the model's parallel/training form).

        **Returns:** `(dist, values, final_state)`, `dist` batched over `T`.
        """
        xs = jnp.reshape(obs_seq, (obs_seq.shape[0], -1)).astype(jnp.float32)
        ys, state = self.model(xs, resets, state)
        dist, values = jax.vmap(self._heads)(ys)
        return dist, values, state
