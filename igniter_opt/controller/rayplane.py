"""The `ray` data plane: each server a detached, named Ray actor, each GPU slot a detached
placement group, so both outlive the controller and a restarted one finds them by name.

- GPU slot j -> placement group `<ns>-gpu<j>` of one bundle {"GPU": 1} (STRICT_PACK, detached):
  one whole device of one node, kept while the controller is away; slots fill the cluster's nodes,
  so a plan spreads over nodes as it grows. With a fleet (`--fleet`) a slot of type T also asks
  for Ray's accelerator_type:T (deploy/gputypes.py, as deploy's ray backend does), so it lands on a
  node of that type; a fleet type no alive node declares is refused when the plane is made, before
  anything starts.
- server -> actor named by its server id in the namespace `<ns>` (igniter-serve-<hash of the state
  directory>), lifetime detached, in its slot's bundle with a token GPU fraction (a slot briefly
  holds the old and the new server of a workload during make-before-break; the share is MPS's
  business, CUDA_MPS_ACTIVE_THREAD_PERCENTAGE). The actor starts tritonserver on its node with
  deploy's `local` launcher (the server dies with its actor, PR_SET_PDEATHSIG).
- re-adoption: the actor by name answers `alive` and the server's health answers from here;
  orphans are the named actors of the namespace the state does not know.

Needs a running cluster (--address or RAY_ADDRESS): a local Ray started by the controller would
die with it, and so would every server.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from typing_extensions import override

from igniter_opt.controller.dataplane import DataPlane
from igniter_opt.controller.records import Placement, Server
from igniter_opt.data.errors import InputError
from igniter_opt.deploy.backends.launcher import wait_ready
from igniter_opt.deploy.backends.ray import _remote_classes, missing_type, node_totals
from igniter_opt.deploy.gputypes import accelerator_resource
from igniter_opt.deploy.types import LaunchError
from igniter_opt.platform.raycluster import import_ray, probe

TOKEN_GPU = 1e-4


class RayPlane(DataPlane):
    """Servers as detached actors on a Ray cluster (module docstring)."""

    kind = "ray"

    def __init__(self, state_dir: str | Path, address: str | None, tritonserver: str | None = None,
                 ready_timeout_s: float = 120.0, placement_timeout_s: float = 30.0,
                 slot_types: list[str] | None = None) -> None:
        address = address or os.environ.get("RAY_ADDRESS")
        if not address:
            raise InputError("--backend ray needs a running cluster: --address HOST:PORT or RAY_ADDRESS (a Ray "
                             "started by the controller would take the servers down with it)")
        self.ray = import_ray()
        state = str(Path(state_dir).resolve())
        self.ns = "igniter-serve-" + hashlib.sha1(state.encode()).hexdigest()[:10]
        self.run_dir = state + "/ray"
        if not self.ray.is_initialized():
            probe(address)
            self.ray.init(address=address, namespace=self.ns, log_to_driver=False, logging_level=logging.WARNING)
        # a fleet: slot j's bundle also asks for its type's accelerator_type resource
        self.slot_types = list(slot_types or [])
        self.bundles = [{"GPU": 1.0, **accelerator_resource(t)} for t in self.slot_types]
        missing = missing_type(self.bundles, node_totals(self.ray), whose="--fleet: the fleet")
        if missing:
            self.ray.shutdown()
            raise InputError(missing)
        self.options = {"fp16": False, "response_cache": False, "tritonserver": tritonserver,
                        "ready_timeout_s": ready_timeout_s}
        self.ready_timeout_s = ready_timeout_s
        self.placement_timeout_s = placement_timeout_s
        self.warnings: list[str] = []
        self._nodes: dict[int, dict[str, Any]] = {}
        self._pending: dict[str, Any] = {}

    def _slot(self, slot: int) -> tuple[Any, dict[str, Any]]:
        """The slot's placement group (created and placed on first use) and its node's set-up."""
        from ray.util.placement_group import get_placement_group, placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        name = f"{self.ns}-gpu{slot}"
        try:
            pg = get_placement_group(name)
        except ValueError:
            bundle = self.bundles[slot] if slot < len(self.bundles) else {"GPU": 1.0}
            pg = placement_group([bundle], strategy="STRICT_PACK", name=name, lifetime="detached")
        ready, _ = self.ray.wait([pg.ready()], timeout=self.placement_timeout_s)
        if not ready:
            remove_placement_group(pg)
            kind = "" if slot >= len(self.slot_types) else f" of type {self.slot_types[slot]}"
            raise LaunchError(f"GPU slot {slot}: no free GPU{kind} on the Ray cluster within "
                              f"{self.placement_timeout_s:g} s")
        if slot not in self._nodes:
            setup = _remote_classes(self.ray)["setup"].options(
                scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=0))
            node = self.ray.get(setup.remote(self.run_dir, "auto", True), timeout=60)
            if node["error"]:
                raise LaunchError(node["error"])
            if not node["gpu"] and not self.warnings:
                self.warnings.append("the cluster's nodes have no GPU: CPU stand-ins, shares are NOT enforced")
            self._nodes[slot] = node
        return pg, self._nodes[slot]

    def spawn(self, server: Server, placement: Placement) -> Server:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        pg, node = self._slot(placement.gpu)
        actor = _remote_classes(self.ray)["server"].options(
            name=server.id, namespace=self.ns, lifetime="detached", num_gpus=TOKEN_GPU, num_cpus=0,
            scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=0)).remote()
        spec = placement.spec
        workload = {"name": spec.name, "model": spec.model, "batch": placement.batch, "slo_ms": spec.slo_ms,
                    "rate_rps": spec.rate_rps, "share_pct": placement.share_pct}
        self._pending[server.id] = actor.start.remote(f"{self.run_dir}/{server.id}", workload, node["gpu"],
                                                      node["pipe_dir"], self.options)
        return Server(id=server.id, workload=server.workload, status=server.status, repository=server.id)

    def await_ready(self, server: Server) -> None:
        ref = self._pending.pop(server.id, None)
        if ref is None:
            raise LaunchError(f"server {server.id} was never started")
        try:
            out = self.ray.get(ref, timeout=60.0 + 3 * self.ready_timeout_s)
        except Exception as exc:  # a Ray error or the timeout: the actor is removed below
            self.stop(server)
            cause = getattr(exc, "cause", None) or exc
            raise LaunchError(f"server {server.id}: {str(cause).strip().splitlines()[-1]}") from None
        host, _, http_port = out["http_url"].removeprefix("http://").rpartition(":")
        server.host, server.http_port = host, int(http_port)
        server.grpc_port = int(out["grpc_url"].rpartition(":")[2])
        server.pid = int(out["server_pid"])

    def _actor(self, server: Server) -> Any:
        try:
            return self.ray.get_actor(server.id, namespace=self.ns)
        except ValueError:
            return None

    def alive(self, server: Server) -> bool:
        actor = self._actor(server)
        if actor is None:
            return False
        try:
            if not self.ray.get(actor.alive.remote(), timeout=30):
                return False
            wait_ready(server.http_url, 5.0, what=server.id)
        except Exception:  # a dead actor or a server that does not answer
            return False
        return True

    def stop(self, server: Server) -> None:
        actor = self._actor(server)
        if actor is None:
            return
        try:
            self.ray.get(actor.stop.remote(), timeout=30)
        except Exception:  # a dead actor: killed below anyway
            pass
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # already gone
            pass

    def sweep(self, keep: list[Server]) -> list[str]:
        from ray.util import list_named_actors

        known = {s.id for s in keep}
        killed = []
        for entry in list_named_actors(all_namespaces=True):
            if entry.get("namespace") == self.ns and entry.get("name") not in known:
                self.stop(Server(id=entry["name"], workload="", status="orphan"))
                killed.append(entry["name"])
        return killed

    @override
    def release(self, used: set[int]) -> list[int]:
        from ray.util.placement_group import get_placement_group, placement_group_table, remove_placement_group

        released = []
        prefix = f"{self.ns}-gpu"
        for info in placement_group_table().values():
            name = str(info.get("name", ""))
            if name.startswith(prefix) and info.get("state") != "REMOVED" and int(name[len(prefix):]) not in used:
                try:
                    remove_placement_group(get_placement_group(name))
                except Exception:  # already gone
                    continue
                self._nodes.pop(int(name[len(prefix):]), None)
                released.append(int(name[len(prefix):]))
        return released

    @override
    def close(self, teardown: bool) -> None:
        if teardown:
            from ray.util.placement_group import get_placement_group, placement_group_table, remove_placement_group

            for info in placement_group_table().values():
                if str(info.get("name", "")).startswith(f"{self.ns}-gpu") and info.get("state") != "REMOVED":
                    try:
                        remove_placement_group(get_placement_group(info["name"]))
                    except Exception:  # already gone
                        pass
        self.ray.shutdown()
