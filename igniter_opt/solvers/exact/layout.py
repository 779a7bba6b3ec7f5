"""One coefficient layout of the inverse model, shared by both compiled searches.

The set search (kernel.py) and the state search (statekernel.py) evaluate the same model as the
numpy oracle (oracle.py: `demand_terms`, `clock_ratio`, `scheduling_inc`, `needed_share`,
`violated`), on per-option coefficients stacked as rows of one (N_COEF, K) block, one column per
option, and on one hardware vector. Both build them here, so a row means the same thing in both;
tests/test_exact_twins.py checks every compiled routine against its oracle twin. These are
constants of the layout, not tuning.
"""

from __future__ import annotations

import numpy as np

from igniter_opt.model.coefficients import Hardware
from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.oracle import Options

# rows of the coefficient block: the Options field each holds
GAMMA, K4, K5, BATCH, P0, P1, C0, C1, KL2, KERN, TIDLE, LIMIT, LATCAP, RATE, TIO, TOUT, ALONE = range(17)
N_COEF = 17
# the hardware vector
HF, HCAP, HIDLE, HUNIT, HAF, HASCH, HBSCH = range(7)


def coefficients(o: Options, idx: Array) -> Array:
    """The (N_COEF, len(idx)) block of options idx in that order (contiguous, float)."""
    rows = [o.gamma, o.k4, o.k5, o.batch, o.power[:, 0], o.power[:, 1], o.l2[:, 0], o.l2[:, 1],
            o.k_l2, o.kernels, o.t_idle, o.limit, o.latency_cap, o.rate_need, o.transfer_in_out,
            o.transfer_out, o.alone]
    assert len(rows) == N_COEF
    return np.ascontiguousarray(np.stack([np.asarray(x, dtype=float)[idx] for x in rows]))


def hardware_vector(hw: Hardware) -> Array:
    """The hardware vector: clock, power cap, idle power, share unit, a_f, a_sch, b_sch."""
    return np.array([hw.max_frequency_mhz, hw.power_cap_w, hw.idle_power_w, hw.unit_pct, hw.a_f,
                     hw.a_sch, hw.b_sch], dtype=float)
