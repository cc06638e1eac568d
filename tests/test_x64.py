"""One float64 run: the evaluation forms agree with each other and with the oracle to
~1e-10 (issue 3 item 6: proof of the algebra, not of a tolerance).

x64 must be enabled before JAX starts, so the run happens in its own interpreter
(`JAX_ENABLE_X64=1`), leaving the rest of the session in float32. The inputs include
stretches of extreme gates (1e-6 and 1-1e-6), consecutive resets, a random starting
state and, for AReLiT, a counter of 10^8 + 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SCRIPT = r"""
import json, sys
import numpy as np
import jax
assert jax.config.jax_enable_x64, "x64 is not enabled"
sys.path.insert(0, sys.argv[1])
import oracles as O
import strategies as S
from relit_eqx.update_rules import RULES

rng = np.random.default_rng(7)
T, d, n, CS = 37, 3, 6, 8
q = np.abs(rng.normal(size=(T, n))) * (rng.uniform(size=(T, n)) < 0.7)
k = np.abs(rng.normal(size=(T, n))) * (rng.uniform(size=(T, n)) < 0.7)
v = rng.normal(size=(T, d))
beta = rng.uniform(0.0, 1.0, (T, d))
gamma = rng.uniform(0.0, 1.0, (T, n))
beta[4:14], gamma[4:12] = 1 - 1e-6, 1 - 1e-6   # forget hard for more than a chunk
beta[20:30], gamma[14:26] = 1e-6, 1e-6          # barely forget
res = np.zeros(T, bool)
res[[10, 11, 31]] = True                         # consecutive resets and a later one
C0, s0 = rng.normal(size=(d, n)), np.abs(rng.normal(size=n))

def err(a, e, scale):
    a, e = np.asarray(a), np.asarray(e, dtype=np.float64)
    assert a.dtype == np.float64, a.dtype
    return float(np.max(np.abs(a - e) / (np.abs(e) + scale + 1e-300)))

results = {}
for name in ("gated",):
    rule = RULES[name]
    e_out, e_C, e_s = O.relit_step(q, k, v, beta, gamma, res, C0, s0, rule=name)
    m_out, m_C, m_s = O.relit_magnitude(q, k, v, beta, gamma, res, C0, s0, rule=name)
    for m in sorted(rule.methods):
        case = S.Case("relu", q, k, v, beta, gamma, res, (C0, s0))
        out, (C, s) = S.run(S.Flavor("relit", name, ()), case, m, chunk_size=CS)
        results[f"relit-{name}-{m}"] = max(err(out, e_out, m_out), err(C, e_C, m_C),
                                            err(s, e_s, m_s))
for osc, r in (("paper", 2), ("fourier", 4)):
    V0, K0 = rng.normal(size=(r, d)), rng.normal(size=(r, n))
    tick = 10**8 + 3
    e = O.arelit_step(q, k, v, beta, gamma, res, V0, K0, s0, tick, r=r, oscillator=osc)
    mg = O.arelit_step(q, k, v, beta, gamma, res, V0, K0, s0, tick, r=r, oscillator=osc,
                       magnitude=True)
    for m in ("scan", "associative", "chunked"):
        case = S.Case("relu", q, k, v, beta, gamma, res, (V0, K0, s0, np.int32(tick)), r=r)
        out, (V, K, s, tk) = S.run(S.Flavor("arelit", osc, ()), case, m, chunk_size=CS)
        assert int(tk) == e[4]
        results[f"arelit-{osc}-r{r}-{m}"] = max(
            err(out, e[0], mg[0]), err(V, e[1], mg[1]), err(K, e[2], mg[2]),
            err(s, e[3], mg[3]))
print("RESULTS" + json.dumps(results))
"""


def test_forms_agree_in_float64():
    """With x64 enabled, every form of ReLiT (gated rule) and of AReLiT (paper r = 2,
    fourier r = 4) equals the float64 step oracle within 1e-10 relative to
    `|x| + magnitude` (outputs and final state) and returns float64; hence the forms
    agree with each other to ~1e-10."""
    env = {**os.environ, "JAX_ENABLE_X64": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(TESTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS"))
    results = json.loads(line[len("RESULTS") :])
    assert any(key.startswith("relit-gated-chunked") for key in results)
    assert len(results) == 3 + 6
    bad = {key: val for key, val in results.items() if not val <= 1e-10}
    assert not bad, f"float64 disagreement beyond 1e-10: {bad}"
