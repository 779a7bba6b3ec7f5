"""Write synthetic-slow.json: a SYNTHETIC GPU profile derived from the bundled V100 one.

Not a measured GPU. It exists so that tests, the mixed-fleet example and benchmarks/bench_fleets.py
have a second GPU type with different coefficients; `scripts/gpu_profile.sh` is the way to make a
real profile. The transformation (also written into the profile's "notes"):

- every model's k1, k2, k3 and k5 times SLOWDOWN (1.6): each inference's active time 1.6x longer
  at every batch and share, as on a slower GPU;
- max_frequency_mhz times CLOCK (0.8) and power_cap_w times POWER (0.7): a lower clock and cap;
- everything else (k4, idle times, transfer sizes, L2 and power lines, scheduling) unchanged.

Run: python examples/fleets/make_synthetic_profile.py   (rewrites the file next to this script)
"""

from __future__ import annotations

import json
from pathlib import Path

SLOWDOWN = 1.6
CLOCK = 0.8
POWER = 0.7
HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "igniter_opt" / "profiles" / "v100.json"
TARGET = HERE / "synthetic-slow.json"
TRANSFORMATION = (f"SYNTHETIC, not measured: derived from the bundled v100 profile by "
                  f"examples/fleets/make_synthetic_profile.py: k1, k2, k3, k5 x {SLOWDOWN}, "
                  f"max_frequency_mhz x {CLOCK}, power_cap_w x {POWER}; all else unchanged")


def synthetic(v100: dict) -> dict:
    """The transformed copy of the V100 profile."""
    out = json.loads(json.dumps(v100))
    out["name"] = "synthetic-slow"
    out["gpu"] = "SYNTHETIC slower GPU (derived from the V100 profile, not measured)"
    out["source"] = "igniter_opt/profiles/v100.json"
    out["notes"] = [TRANSFORMATION]
    hw = out["hardware"]
    hw["max_frequency_mhz"] *= CLOCK
    hw["power_cap_w"] *= POWER
    for coef in out["models"].values():
        k = coef["k"]
        coef["k"] = [k[0] * SLOWDOWN, k[1] * SLOWDOWN, k[2] * SLOWDOWN, k[3], k[4] * SLOWDOWN]
    return out


if __name__ == "__main__":
    TARGET.write_text(json.dumps(synthetic(json.loads(SOURCE.read_text())), indent=2) + "\n")
    print(f"wrote {TARGET}")
