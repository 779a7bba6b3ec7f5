"""`igniter serve --backend ray` on a real 2-node Ray cluster (ray.cluster_utils: a head and two
workers declaring 2 GPUs each, none present), real tritonservers (CPU stand-ins) and real gRPC load:
the plan spans both nodes, changes are make-before-break, a SIGKILLed controller's detached actors
keep serving and are re-adopted, and tear-down leaves no server, actor or placement group.

Run: pytest -m ray (about 2 minutes on 2 cores)."""

from __future__ import annotations

import faulthandler
import json
import signal
import time

import pytest

ray = pytest.importorskip("ray", reason="pip install 'igniter-opt[cluster]'")
pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")

from conftest import local_ray_cluster, triton_pids  # noqa: E402
from test_service_e2e import Service, in_background, stable, targets  # noqa: E402

from igniter_opt.deploy.backends.launcher import free_port  # noqa: E402
from igniter_opt.deploy.backends.local import find_tritonserver  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.triton, pytest.mark.slow, pytest.mark.extra("service", "deploy", "cluster"),
              pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver (pip install nvidia-pytriton)")]


@pytest.fixture()
def cluster():
    """A head (no GPU) and two worker nodes declaring 2 GPUs and 4 CPUs each."""
    faulthandler.dump_traceback_later(400, exit=True)
    try:
        with local_ray_cluster([{"num_cpus": 4, "num_gpus": 2}] * 2) as c:
            yield c
    finally:
        faulthandler.cancel_dump_traceback_later()


def ours(ns_prefix: str = "igniter-serve-") -> tuple[list[str], dict[str, str]]:
    """Our named actors, and our live placement groups with their node."""
    actors = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
              if a["namespace"].startswith(ns_prefix)]
    groups = {g["name"]: g["bundles_to_node_id"].get(0, "") for g in ray.util.placement_group_table().values()
              if g["name"].startswith(ns_prefix) and g["state"] != "REMOVED"}
    return actors, groups


def test_serve_on_two_ray_nodes(cluster, tmp_path):
    state = (tmp_path / "state").resolve()
    args = ("--backend", "ray", "--address", cluster.address)
    service = Service(state, free_port(), *args)
    services = [service]
    try:
        for name in ("a", "b", "c"):  # 52.5% of a GPU each: one GPU slot each, 3 slots over 2-GPU nodes
            done = service.client("add", name, "--model", "vgg19", "--slo", "10", "--rate", "10", "--json")
            assert done.returncode == 0, (done.stderr, service.log.read_text())
            assert json.loads(done.stdout)["workloads"][0]["endpoint"]["grpc_url"]
        actors, groups = ours()
        assert len(actors) == 3 and len(groups) == 3
        assert set(groups.values()) == {n.node_id for n in cluster.igniter_workers}  # both nodes
        listing = service.get("/v1/workloads")
        thread, results = in_background(targets(service.url, listing, ["a", "b", "c"]), 8.0)
        time.sleep(3)
        changed = service.client("set", "a", "--slo", "12", "--json")  # new share: new actor, old drained
        assert changed.returncode == 0, changed.stderr
        thread.join(timeout=180)
        for r in results[0]:
            assert r.errors == 0, (r.name, r.error_samples)
        assert service.client("rm", "c").returncode == 0
        listing = service.get("/v1/workloads")
        deadline = time.monotonic() + 60  # grace 2 s, then the drained actor stops its server (<= 10 s)
        while len(ours()[0]) > 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sorted(a.split("-s")[0] for a in ours()[0]) == ["a", "b"]
        used = {w["gpu"] for w in listing["workloads"]}  # the slots emptied (c's, maybe a's old) given back
        while len(ours()[1]) > len(used) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sorted(int(g.rsplit("gpu", 1)[1]) for g in ours()[1]) == sorted(used)
        service.proc.kill()  # detached actors keep serving; a restart re-adopts them
        service.proc.wait()
        service = Service(state, free_port(), *args, "--teardown")
        services.append(service)
        ls = service.client("ls", "--json")
        assert stable(json.loads(ls.stdout)) == stable(listing)
        assert "adopted 2 server(s)" in service.log.read_text()
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(timeout=120) == 0, service.log.read_text()
        deadline = time.monotonic() + 30
        while (any(ours()) or triton_pids(state)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ours() == ([], {}) and triton_pids(state) == []
    finally:
        for s in services:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
