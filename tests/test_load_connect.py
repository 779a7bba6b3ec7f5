"""The load worker's probe before the load starts waits (up to CONNECT_S, for the gRPC channel to
be ready) for a server that is not accepting connections yet, where a plain request fails at once:
a CI run failed with
"load worker failed before start: UNAVAILABLE ... Connection refused" on a server that was up a
moment later. A real gRPC server answering Triton's ModelInfer with raw bytes binds late here."""

from __future__ import annotations

import asyncio

import pytest

grpc = pytest.importorskip("grpc", reason="needs the 'deploy' extra (tritonclient[grpc])")

from igniter_opt.deploy.backends.launcher import free_port  # noqa: E402
from igniter_opt.deploy.load.worker import _Client  # noqa: E402

pytestmark = pytest.mark.extra("deploy")


async def _late_server(port: int, after_s: float) -> grpc.aio.Server:
    """A ModelInfer endpoint (raw bytes in and out) that starts listening after `after_s`."""
    await asyncio.sleep(after_s)
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(lambda _request, _context: b"")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService", {"ModelInfer": handler}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def _probe(wait: bool) -> str:
    port = free_port()
    client = _Client(f"127.0.0.1:{port}")
    starting = asyncio.ensure_future(_late_server(port, 0.5))
    try:
        await client.infer(b"", 10.0, wait=wait)
        return "answered"
    except grpc.aio.AioRpcError as err:
        return err.code().name
    finally:
        server = await starting
        await server.stop(None)
        await client.close()


def test_the_probe_waits_for_a_server_that_binds_late_and_a_plain_request_does_not():
    assert asyncio.run(_probe(wait=True)) == "answered"
    assert asyncio.run(_probe(wait=False)) == "UNAVAILABLE"
