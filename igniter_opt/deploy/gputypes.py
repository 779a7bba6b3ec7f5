"""Plan GPUs of a mixed fleet on devices of their type (docs/fleets.md, "Deploy").

local: `--gpu-map T=0,1` (repeatable) names the host's device indices of type T; the k-th plan
GPU of type T runs on the map's k-th index of T (wrapping round, with a warning, when the plan has
more GPUs of T than the map lists). A plan with types needs a map entry for each of them on a GPU
host; a missing type is refused before anything starts, naming it.

ray: a plan GPU of type T is a placement-group bundle that also asks for Ray's
`accelerator_type:<T>` resource (what Ray declares for a node's GPU model, and what
`ray start --resources '{"accelerator_type:T": 1}'` declares by hand), so its actors land on a node
of that type; a cluster with no node of a type is refused before the placement group is made.
"""

from __future__ import annotations

from igniter_opt.data.errors import InputError
from igniter_opt.data.plan import Plan

ACCELERATOR = "accelerator_type:"
ACCELERATOR_AMOUNT = 0.001  # what Ray's own `accelerator_type=` option requests per task or actor


def parse_gpu_map(items: list[str] | None) -> dict[str, list[int]]:
    """`["v100=0,1", "t4=2"]` -> {"v100": [0, 1], "t4": [2]}; InputError naming the item."""
    out: dict[str, list[int]] = {}
    for item in items or []:
        name, sep, indices = item.partition("=")
        name = name.strip()
        try:
            devices = [int(x) for x in indices.split(",") if x.strip()]
        except ValueError:
            devices = []
        if not sep or not name or not devices or any(d < 0 for d in devices):
            raise InputError(f"--gpu-map {item!r}: expected TYPE=INDEX[,INDEX...], e.g. v100=0,1")
        if name in out:
            raise InputError(f"--gpu-map {item!r}: type {name!r} is mapped twice")
        out[name] = devices
    return out


def plan_types(plan: Plan) -> list[str]:
    """The GPU types a plan uses, in first-use order (empty for a single-profile plan)."""
    seen: list[str] = []
    for g in plan.gpus:
        if g.gpu_type is not None and g.gpu_type not in seen:
            seen.append(g.gpu_type)
    return seen


def device_indices(plan: Plan, gpu_map: dict[str, list[int]], n_gpus: int) -> tuple[list[int], list[str]]:
    """The host device of each plan GPU, and warnings. Without types (or without a map for a plan
    of one type) plan GPU j runs on device j mod n_gpus as before; a typed plan of several types
    needs every type in the map."""
    types = plan_types(plan)
    if not gpu_map and len(types) <= 1:
        return [j % max(1, n_gpus) for j in range(plan.num_gpus)], []
    missing = [t for t in types if t not in gpu_map]
    if missing:
        raise InputError(f"--gpu-map: the plan has GPUs of type {missing[0]!r} and the map names no device of "
                         f"that type (give --gpu-map {missing[0]}=INDEX[,INDEX...])")
    bad = [d for devices in gpu_map.values() for d in devices if d >= n_gpus]
    if bad:
        raise InputError(f"--gpu-map: device {bad[0]} does not exist on this host ({n_gpus} GPU(s))")
    used: dict[str, int] = {}
    out, warnings = [], []
    for g in plan.gpus:
        t = g.gpu_type or types[0]
        k = used.get(t, 0)
        used[t] = k + 1
        out.append(gpu_map[t][k % len(gpu_map[t])])
    for t, n in used.items():
        if n > len(gpu_map[t]):
            warnings.append(f"the plan uses {n} GPUs of type {t}, --gpu-map lists {len(gpu_map[t])}: "
                            f"they share devices {gpu_map[t]}")
    return out, warnings


def accelerator_resource(gpu_type: str | None) -> dict[str, float]:
    """The extra bundle resource of a plan GPU of a type (none for an untyped GPU)."""
    return {} if gpu_type is None else {f"{ACCELERATOR}{gpu_type}": ACCELERATOR_AMOUNT}
