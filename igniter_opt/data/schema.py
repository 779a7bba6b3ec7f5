"""The shapes of every file the CLI reads, as pydantic models, and one-line errors from them.

Instance, plan, a results CSV row and endpoints.json each have a schema here (fitted and raw
profiles: profileschema.py, on the same field types and messages): finite numbers (positive
where a rate, time, size or share must be), integer batches and counts, non-empty names, lists
of the right length. `parse` validates data and turns the first problem into an InputError
naming the file, the field path and the value:

    bad.json: field workloads[1].slo_ms: must be > 0, got -5

Cross-field rules (unique names, shares per GPU, equal list lengths) are checked by each schema's
`check`, with the same message form. The dataclasses of the library are built from the
validated models (igniter_opt.data.instance, .plan, igniter_opt.model.coefficients).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError
from typing_extensions import override

from igniter_opt.data.errors import InputError

# -- field types -------------------------------------------------------------------------------


def _integral(value: Any) -> Any:
    """Integers, and floats with no fractional part (8.0 -> 8); never bools or strings."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("int_type", "must be an integer")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise PydanticCustomError("int_type", "must be an integer")
        return int(value)
    return value


def _not_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("blank", "must be a non-empty string")
    return value


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Positive = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Share = Annotated[float, Field(strict=True, gt=0, le=100, allow_inf_nan=False)]
# The share step of a GPU: at most 1000 steps per GPU (MPS takes whole percents; a V100 step is
# 2.5%), so that no solver iterates or enumerates over billions of steps.
MIN_UNIT_PCT = 0.1
Unit = Annotated[float, Field(strict=True, ge=MIN_UNIT_PCT, le=100, allow_inf_nan=False)]
Count = Annotated[int, BeforeValidator(_integral), Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, BeforeValidator(_integral), Field(strict=True, ge=0)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200), BeforeValidator(_not_blank)]
Text = Annotated[str, Field(strict=True)]
Flag = Annotated[bool, Field(strict=True)]


Numbers2 = Annotated[list[Number], Field(min_length=2, max_length=2)]
Numbers3 = Annotated[list[Number], Field(min_length=3, max_length=3)]
Numbers5 = Annotated[list[Number], Field(min_length=5, max_length=5)]
CountPair = Annotated[list[Count], Field(min_length=2, max_length=2)]
SharePair = Annotated[list[Share], Field(min_length=2, max_length=2)]
GridRow = Annotated[list[Positive], Field(min_length=3, max_length=3)]
Grid = Annotated[list[GridRow], Field(min_length=3, max_length=3)]  # batch (rows) x share (columns)


# An instance holds at most this many workloads: the solvers are benchmarked to 10,000
# (benchmarks/bench_scale.py, docs/scale.md); twice that still keeps within memory.
MAX_WORKLOADS = 20_000


class _Schema(BaseModel):
    """Unknown fields are ignored (files written by other versions stay readable)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def check(self, origin: str, prefix: str = "") -> None:
        """Cross-field rules (field paths below `prefix`); raise InputError via `fail`."""


class _Closed(_Schema):
    """Unknown fields are an error (a typo in a hand-written file must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def fail(origin: str, field: str, problem: str, value: Any = ..., ) -> InputError:
    """The one-line error: `origin: field F: problem, got V`."""
    where = f" field {field}:" if field else ""
    got = "" if value is ... else f", got {short(value)}"
    return InputError(f"{origin}:{where} {problem}{got}")


def short(value: Any, limit: int = 60) -> str:
    """repr of a value, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def duplicates(names: Iterable[str]) -> tuple[int, str] | None:
    """(index, name) of the first name seen before, or None."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            return i, name
        seen.add(name)
    return None


# -- instance ----------------------------------------------------------------------------------


class WorkloadSpec(_Closed):
    name: Name
    model: Name
    slo_ms: Positive
    rate_rps: Positive


class GpuTypeSpec(_Closed):
    """One GPU type of a fleet: its profile, how many exist (absent: unlimited), its price per hour."""

    type: Name
    profile: Name
    count: NonNegativeInt | None = None
    price_per_hour: NonNegative | None = None


class InstanceSpec(_Closed):
    name: Name
    profile: Name | None = None
    fleet: Annotated[list[GpuTypeSpec], Field(min_length=1)] | None = None
    batch_policy: Literal["paper", "joint"] = "paper"
    workloads: Annotated[list[WorkloadSpec], Field(min_length=1, max_length=MAX_WORKLOADS)]

    @override
    def check(self, origin: str, prefix: str = "") -> None:
        dup = duplicates(w.name for w in self.workloads)
        if dup:
            raise fail(origin, f"workloads[{dup[0]}].name", f"duplicate workload name {dup[1]!r}")
        if self.fleet is None:
            if self.profile is None:
                raise fail(origin, "profile", "missing (give a profile, or a fleet of GPU types)")
            return
        dup = duplicates(t.type for t in self.fleet)
        if dup:
            raise fail(origin, f"fleet[{dup[0]}].type", f"GPU type {dup[1]!r} is named twice")
        priced = [t.price_per_hour is not None for t in self.fleet]
        if any(priced) and not all(priced):
            i = priced.index(False)
            raise fail(origin, f"fleet[{i}].price_per_hour", "missing: give every type a price, or none "
                       "(the objective is then the GPU count)")
        if self.profile is not None and self.profile != self.fleet[0].profile:
            raise fail(origin, "profile", f"differs from the fleet's first type's profile "
                       f"{self.fleet[0].profile!r} (give a fleet, or a profile, or both the same)", self.profile)


# -- plan --------------------------------------------------------------------------------------

SHARE_SLACK = 1e-6  # float noise allowed on a GPU's share sum


class PlacedSpec(_Schema):
    name: Name
    model: Name
    batch: Count
    resource_pct: Share
    rate_rps: Positive
    slo_ms: Positive
    predicted_latency_ms: Number | None = None
    predicted_throughput_rps: Number | None = None
    meets_slo: Flag | None = None


class GpuSpec(_Schema):
    workloads: list[PlacedSpec]
    gpu_type: Name | None = None


class PlanSpec(_Schema):
    instance: Text
    solver: Text
    profile: Name
    status: Text
    gpus: list[GpuSpec]
    num_gpus: NonNegativeInt | None = None
    lower_bound: NonNegativeInt | None = None
    gap: Number | None = None
    solve_seconds: NonNegative = 0.0
    feasible: Flag = False
    message: Text = ""
    space: Text = ""
    margin_pct: Annotated[float, Field(strict=True, ge=0, lt=100, allow_inf_nan=False)] = 0.0
    cost: NonNegative | None = None
    cost_bound: NonNegative | None = None
    fleet: Annotated[list[GpuTypeSpec], Field(min_length=1)] | None = None

    @override
    def check(self, origin: str, prefix: str = "") -> None:
        if self.num_gpus is not None and self.num_gpus != len(self.gpus):
            raise fail(origin, "num_gpus", f"does not match the {len(self.gpus)} GPU(s) listed", self.num_gpus)
        names = [(j, i, w.name) for j, g in enumerate(self.gpus) for i, w in enumerate(g.workloads)]
        dup = duplicates(n for _, _, n in names)
        if dup:
            j, i, name = names[dup[0]]
            raise fail(origin, f"gpus[{j}].workloads[{i}].name", f"duplicate workload name {name!r}")
        for j, g in enumerate(self.gpus):
            total = sum(w.resource_pct for w in g.workloads)
            if total > 100 + SHARE_SLACK:
                raise fail(origin, f"gpus[{j}].workloads", f"shares sum to {total:g}% > 100%")


# -- results CSV and endpoints.json ------------------------------------------------------------


def _cell(kind: type) -> Any:
    def convert(value: Any) -> Any:
        if value in ("", None):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise PydanticCustomError("cell", "must be a number or empty") from None
        if not math.isfinite(number):
            raise PydanticCustomError("cell", "must be a finite number or empty")
        if kind is int:
            if not number.is_integer() or number < 0:
                raise PydanticCustomError("cell", "must be a whole number >= 0 or empty")
            return int(number)
        return number
    return BeforeValidator(convert)


class ResultRowSpec(_Schema):
    instance: Annotated[str, Field(min_length=1)]
    family: str = ""
    workloads: Annotated[int | None, _cell(int)] = None
    solver: Annotated[str, Field(min_length=1)]
    status: Annotated[str, Field(min_length=1)]
    gpus: Annotated[int | None, _cell(int)] = None
    lower_bound: Annotated[int | None, _cell(int)] = None
    gap: Annotated[float | None, _cell(float)] = None
    seconds: Annotated[float | None, _cell(float)] = None
    feasible: Literal["True", "False", ""] = ""
    cost: Annotated[float | None, _cell(float)] = None


class MarginRowSpec(_Schema):
    """One row of `igniter compare --json` (read back by `igniter report compare.json`)."""

    instance: Text = ""
    solver: Name
    margin_pct: Annotated[float, Field(strict=True, ge=0, lt=100, allow_inf_nan=False)]
    num_gpus: NonNegativeInt | None
    status: Name
    feasible: Flag


class ServerSpec(_Schema):
    name: Name
    model_name: Name
    grpc_url: Name
    gpu: NonNegativeInt | None = None


class EndpointsSpec(_Schema):
    servers: list[ServerSpec]


# -- parsing and messages ----------------------------------------------------------------------

MESSAGES = {
    "missing": "missing",
    "extra_forbidden": "unknown field",
    "float_type": "must be a number",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "string_too_short": "must be a non-empty string",
    "string_too_long": "must be at most {max_length} characters",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "finite_number": "must be a finite number",
    "greater_than": "must be > {gt:g}",
    "greater_than_equal": "must be >= {ge:g}",
    "less_than": "must be < {lt:g}",
    "less_than_equal": "must be <= {le:g}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "literal_error": "must be one of {expected}",
}


def field_path(loc: Iterable[Any], prefix: str = "") -> str:
    """('workloads', 0, 'slo_ms') -> 'workloads[0].slo_ms'."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += f".{part}" if out else str(part)
    return out


def message(exc: ValidationError, origin: str, what: str = "", prefix: str = "") -> str:
    """The first error of a ValidationError as one line."""
    err = exc.errors(include_url=False)[0]
    kind, loc = err["type"], err["loc"]
    try:
        problem = MESSAGES[kind].format(**(err.get("ctx") or {}))
    except (KeyError, ValueError, IndexError):
        problem = err["msg"]
    if kind == "model_type" and not loc and what:
        problem = f"{what} must be a JSON object"
    value = ... if kind == "missing" else err.get("input", ...)
    return str(fail(origin, field_path(loc, prefix), problem, value))


Spec = TypeVar("Spec", bound=_Schema)


def parse(spec: type[Spec], data: Any, origin: str, what: str = "", prefix: str = "") -> Spec:
    """Validate data against a schema (and its cross-field rules); InputError in one line."""
    try:
        model = spec.model_validate(data)
    except ValidationError as exc:
        raise InputError(message(exc, origin, what, prefix)) from None
    model.check(origin, prefix)
    return model
