"""The robustness margin: how far inside the model's limits a plan must stay.

At margin m (percent) a workload holds when its predicted latency is <= (1 - m/100) SLO/2 and its
predicted throughput is >= (1 + m/100) rate. Every solver and `verify` take their limits from
here, so a plan solved at margin m verifies at margin m. The batch rule keeps the true SLO and
rate (docs/decisions.md): the margin tightens the check, not the batch choice.
"""

from __future__ import annotations

import math

from igniter_opt.data.errors import InputError


def check_margin(margin_pct: float, what: str = "margin") -> float:
    """The margin as a float when 0 <= margin < 100, else an InputError naming it."""
    try:
        value = float(margin_pct)
    except (TypeError, ValueError):
        raise InputError(f"{what} {margin_pct!r}: must be a number of percent in [0, 100)") from None
    if isinstance(margin_pct, bool) or not math.isfinite(value) or not 0 <= value < 100:
        raise InputError(f"{what} {value:g}: must be a number of percent in [0, 100)")
    return value


def latency_limit_ms(slo_ms: float, margin_pct: float = 0.0) -> float:
    """Most predicted latency allowed: (1 - m/100) SLO/2 (exactly SLO/2 at margin 0)."""
    half = slo_ms / 2
    return half if margin_pct == 0 else half * (1 - margin_pct / 100)


def rate_target_rps(rate_rps: float, margin_pct: float = 0.0) -> float:
    """Least predicted throughput required: (1 + m/100) rate (exactly the rate at margin 0)."""
    return rate_rps if margin_pct == 0 else rate_rps * (1 + margin_pct / 100)
