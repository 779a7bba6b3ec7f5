"""The shapes of a fitted profile and of a raw profile (its merged sections), as pydantic models.

Field types, the one-line errors and `parse` are schema.py's; each spec's `check` adds the rules
that span fields (a fitted profile's physics on its grid, a raw section's list lengths).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from typing_extensions import override

from igniter_opt.data.schema import (
    Count,
    CountPair,
    Grid,
    Name,
    NonNegative,
    NonNegativeInt,
    Number,
    Numbers2,
    Numbers3,
    Numbers5,
    Positive,
    SharePair,
    Text,
    Unit,
    _Schema,
    fail,
    parse,
)

# -- fitted profile ----------------------------------------------------------------------------


class HardwareSpec(_Schema):
    max_frequency_mhz: Positive
    power_cap_w: Positive
    idle_power_w: NonNegative
    bandwidth_bytes_per_ms: Positive
    unit_pct: Unit
    a_f: Number
    a_sch: Number
    b_sch: Number


class ModelSpec(_Schema):
    kernels: NonNegativeInt
    t_idle_ms: NonNegative
    input_bytes: NonNegative
    output_bytes: NonNegative
    k: Numbers5
    power: Numbers2
    l2: Numbers2
    k_l2: Number


class RangeSpec(_Schema):
    """The grid a profile was fitted on: smallest and largest batch and share (%)."""

    batch: CountPair
    share_pct: SharePair

    def check(self, origin: str, prefix: str = "") -> None:
        for key in ("batch", "share_pct"):
            lo, hi = getattr(self, key)
            if lo > hi:
                raise fail(origin, f"{prefix}.{key}", "must be [smallest, largest]", [lo, hi])


class ProfileSpec(_Schema):
    name: Name
    gpu: Text = ""
    source: Text = ""
    notes: list[Text] = Field(default_factory=list)
    hardware: HardwareSpec
    models: Annotated[dict[Name, ModelSpec], Field(min_length=1)]
    fitted_range: RangeSpec | None = None

    @override
    def check(self, origin: str, prefix: str = "") -> None:
        if self.fitted_range is not None:
            self.fitted_range.check(origin, "fitted_range")
        self._physics(origin)

    def _physics(self, origin: str) -> None:
        """Refuse coefficients that break physics on the fitted grid (else every solver answers
        with plans the model cannot mean): idle power at or above the cap, a clock that rises
        above the cap, a negative scheduling delay, L2 interference that speeds a workload up,
        power or L2 that falls as throughput rises, a solo time that is not positive."""
        hw = self.hardware
        if hw.idle_power_w >= hw.power_cap_w:
            raise fail(origin, "hardware.idle_power_w", f"idle power must be below the power cap "
                       f"({hw.power_cap_w:g} W)", hw.idle_power_w)
        if hw.a_f > 0:
            raise fail(origin, "hardware.a_f", "the clock cannot rise above the power cap (must be <= 0)", hw.a_f)
        if hw.a_sch < 0 or 2 * hw.a_sch + hw.b_sch < 0:
            raise fail(origin, "hardware.a_sch", "the scheduling delay a_sch n + b_sch must be >= 0 "
                       f"for n >= 2 (b_sch {hw.b_sch:g})", hw.a_sch)
        lo, hi = self.fitted_range.batch if self.fitted_range else (1, 32)
        share_lo, share_hi = self.fitted_range.share_pct if self.fitted_range else (hw.unit_pct, 100)
        for name, m in self.models.items():
            where = f"models.{name}"
            for key, value in (("k_l2", m.k_l2), ("power[0]", m.power[0]), ("l2[0]", m.l2[0])):
                if value < 0:
                    raise fail(origin, f"{where}.{key}", "must be >= 0 (interference, power and L2 grow "
                               "with load)", value)
            k1, k2, k3, k4, k5 = m.k
            for b in range(int(lo), int(hi) + 1):
                for r in (share_lo, share_hi):
                    t_solo = (k1 * b * b + k2 * b + k3) / (r + k4) + k5
                    if not t_solo > 0:
                        raise fail(origin, f"{where}.k", f"the solo time at batch {b}, share {r:g}% is "
                                   f"{t_solo:.4g} ms (must be > 0 on the fitted range)", list(m.k))


# -- raw profile (JSON lines, sections merged) -------------------------------------------------



class RawHardwareSpec(_Schema):
    idlepower: NonNegative
    power: Annotated[list[Positive], Field(min_length=3)]
    frequency: Annotated[list[Positive], Field(min_length=3)]
    idletime: Annotated[list[NonNegative], Field(min_length=3)]
    maxGPUfrequency: Positive
    maxGPUpower: Positive
    unit: Unit
    bandwidth: Positive
    gpu: Text = ""

    def check(self, origin: str, prefix: str = "") -> None:
        n = len(self.power)
        for key in ("frequency", "idletime"):
            if len(getattr(self, key)) != n:
                raise fail(origin, f"{prefix}.{key}", f"must have as many entries as {prefix}.power ({n})",
                           getattr(self, key))


class RawModelSpec(_Schema):
    kernel: Count
    inputdata: NonNegative
    outputdata: NonNegative
    idletime_1: NonNegative
    l2cache: Positive
    activetime_1: Positive
    activetime_2: Positive
    frequency_2: Positive
    gpulatency: Grid
    frequency: Grid
    power: Grid
    l2caches: Numbers3

    def check(self, origin: str, prefix: str = "") -> None:
        low = min(min(row) for row in self.gpulatency)
        if low <= self.idletime_1:
            raise fail(origin, f"{prefix}.gpulatency", f"every latency must exceed idletime_1 "
                               f"({self.idletime_1:g} ms)", low)


def check_raw(raw: Any, origin: str) -> dict[str, dict[str, Any]]:
    """Validate a merged raw profile: a hardware section and at least one model section."""
    if "hardware" not in raw:
        raise fail(origin, "hardware", "section missing")
    parse(RawHardwareSpec, raw["hardware"], origin, prefix="hardware")
    models = [name for name in raw if name != "hardware"]
    if not models:
        raise fail(origin, "", "no model section (each DNN needs one besides 'hardware')")
    for name in models:
        if not name.strip():
            raise fail(origin, "", "a section name must be a non-empty model name", name)
        parse(RawModelSpec, raw[name], origin, prefix=name)
    return raw
