"""Relative output error of AReLiT (fourier) against ReLiT as r grows, on gated random inputs.

    python benchmarks/arelit_error.py [T]

One head, d = 64, eta = 4 (n = 256), gates from sigmoids of standard normals, no resets.
ReLiT is run with eps/r so that the only difference is the approximation of C.
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from relit_eqx.functional import arelit, relit


def main(T: int = 256) -> None:
    rng = np.random.default_rng(0)
    d, n = 64, 256
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    q, k = rng.random((T, n)).astype(np.float32), rng.random((T, n)).astype(np.float32)
    v = rng.normal(size=(T, d)).astype(np.float32)
    beta = sig(rng.normal(size=(T, d))).astype(np.float32)
    gamma = sig(rng.normal(size=(T, n))).astype(np.float32)
    resets = np.zeros(T, bool)
    print(f"| r | relative error vs ReLiT (T = {T}) |\n|---|---|")
    for r in (1, 2, 4, 8, 16, 32):
        a, _ = arelit(q, k, v, beta, gamma, resets, r=r, oscillator="fourier", method="chunked")
        b, _ = relit(q, k, v, beta, gamma, resets, eps=1e-6 / r, method="chunked")
        err = float(jax.numpy.linalg.norm(a - b) / jax.numpy.linalg.norm(b))
        print(f"| {r} | {err:.3e} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
