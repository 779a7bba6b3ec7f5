"""Apply a new plan as a diff, make-before-break, with the state committed around every step.

1. `starting` rows are committed for each workload that is new or whose configuration (GPU, share,
   batch, SLO, rate) changed, then their servers are spawned (pids committed) and awaited.
2. A server that fails to start is stopped and spawned once more (new id, new ports). Any start fails
   twice: the new servers are stopped and their rows deleted; plan, endpoints and the
   running servers are as before (ApplyError).
3. One transaction: the new plan, a version bump, each started workload's endpoint switched to
   its new server, the replaced and removed workloads' old servers marked `draining` until now +
   grace, removed workloads' endpoints deleted.
4. The controller's drainer stops draining servers once their grace has passed (`drain_due`).

Untouched workloads keep their servers and endpoints. A controller killed at any point finds on
restart: `starting` rows (stopped), `draining` rows (stopped), `serving` rows (adopted).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from igniter_opt.controller.dataplane import DataPlane
from igniter_opt.controller.records import Endpoint, Plan, PlanInfo, Server
from igniter_opt.controller.state import Store
from igniter_opt.deploy.types import LaunchError


class ApplyError(RuntimeError):
    """A server did not start; the change was rolled back."""


def to_start(old: Plan, new: Plan) -> list[str]:
    """Workloads that need a new server: new ones and those whose configuration changed."""
    return sorted(n for n, p in new.items() if n not in old or not p.same_config(old[n]))


def apply_plan(store: Store, plane: DataPlane, old: Plan, new: Plan, info: PlanInfo, grace_s: float) -> int:
    """Make `new` the running plan (module docstring); the new version."""
    names = to_start(old, new)
    started = _start(store, plane, new, names) if plane.kind != "none" else []
    serving = {s.workload: s for s in store.servers() if s.status == "serving"}
    replaced = [serving[n] for n in serving if n not in new or n in names]
    with store.transaction() as db:
        store.write_plan(db, new, info)
        version = store.bump(db)
        for s in started:
            s.status = "serving"
            store.put_server(db, s)
        by_name = {s.workload: s for s in started}
        for n in names:
            new_server = by_name.get(n)
            store.put_endpoint(db, Endpoint(n, new_server.id, new_server.grpc_url, new_server.http_url, version)
                               if new_server else Endpoint(n, None, None, None, version))
        for s in replaced:
            s.status, s.drain_until = "draining", time.time() + grace_s
            store.put_server(db, s)
        for n in old:
            if n not in new:
                store.delete_endpoint(db, n)
    plane.observe(new, store.servers(), store.endpoints())
    return version


def _start(store: Store, plane: DataPlane, new: Plan, names: list[str]) -> list[Server]:
    """Spawn one server per name (rows committed first), wait for all (a failed one spawned once
    more); every one ready or ApplyError."""
    spawned: list[Server] = []
    try:
        for n in names:
            spawned.append(_begin(store, plane, n, new))
        with ThreadPoolExecutor(max_workers=max(1, len(spawned))) as pool:
            results = list(pool.map(_ready(plane), spawned))
        for i, error in enumerate(results):  # one more try, new ports: a port picked free can be taken
            if error:                        # before the server binds it, and a start can fail once
                print(f"igniter: {error}; starting it once more on new ports", file=sys.stderr, flush=True)
                # await_ready stopped it; a new id too: a Ray actor's name frees only once it is dead
                with store.transaction() as db:
                    store.delete_server(db, spawned[i].id)
                spawned[i] = _begin(store, plane, spawned[i].workload, new)
                again = _ready(plane)(spawned[i])
                results[i] = f"{error}; again: {again}" if again else ""
        failed = [r for r in results if r]
        if failed:
            raise ApplyError("; ".join(failed))
    except BaseException as exc:
        for s in spawned:
            plane.stop(s)
        with store.transaction() as db:
            for n in names:
                db.execute("DELETE FROM servers WHERE workload=? AND status='starting'", (n,))
        if isinstance(exc, LaunchError):
            raise ApplyError(str(exc)) from None
        raise
    return spawned


def _begin(store: Store, plane: DataPlane, name: str, new: Plan) -> Server:
    """Commit a `starting` row for `name`, spawn its server, commit its pid and ports."""
    with store.transaction() as db:
        server = Server(id=store.next_server_id(db, name), workload=name, status="starting")
        store.put_server(db, server)
    server = plane.spawn(server, new[name])
    with store.transaction() as db:
        store.put_server(db, server)
    return server


def _ready(plane: DataPlane) -> Callable[[Server], str]:
    def wait(server: Server) -> str:
        try:
            plane.await_ready(server)
        except LaunchError as exc:
            return str(exc)
        return ""
    return wait


def drain_due(store: Store, plane: DataPlane, now: float | None = None) -> list[str]:
    """Stop the draining servers whose grace has passed; their ids."""
    now = time.time() if now is None else now
    done = []
    for s in store.servers():
        if s.status == "draining" and s.drain_until <= now:
            plane.stop(s)
            with store.transaction() as db:
                store.delete_server(db, s.id)
            done.append(s.id)
    return done
