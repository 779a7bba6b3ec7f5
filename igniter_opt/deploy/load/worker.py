"""A load worker process: drives its shards of the open-loop load and sends back per-request times.

Run as `python -m igniter_opt.deploy.load.worker` by generator.run_load; the pipe protocol and the
types both sides pass are in protocol.py (this module never imports the generator).

A target with `follow_url` (an `igniter serve` workload's /v1/workloads/NAME/endpoint) is
followed: a task long-polls it, and when the version grows new requests go to the new server
(connected first) while requests in flight finish on the old one (docs/service.md). With
`options.follow` (a deployment's endpoints.json) a task re-reads that file when it changes and
re-routes each workload by name (a switch to a shadow server, docs/runtime.md); warm shadows listed
there are connected in advance. With `options.progress_s` > 0 completions are streamed to the
parent while the load runs (live monitoring).

Requests go through tritonclient's generated gRPC service stub on a grpc.aio channel, each a
ModelInferRequest built once per workload and payload (batch 1; ones, or the target's payloads sent
round-robin): rebuilding it per call, as
`tritonclient.grpc.aio.InferenceServerClient.infer` does, costs more CPU than the call itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from igniter_opt.deploy.load.protocol import READY, LoadOptions, Shard, Target, recv, send

CONNECT_S = 5.0  # how long a probe waits for a server to accept connections


def describe(exc: BaseException) -> str:
    """One line for an error: a gRPC status and its details, else the exception's first line."""
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {(details() or '').splitlines()[0] if details() else ''}"[:200]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200]


class _Progress:
    """Completions not yet streamed to the parent, per shard (live monitoring)."""

    def __init__(self) -> None:
        self.finished: dict[int, list[int]] = {}

    def take(self, shards: list[Shard], state: list[dict]) -> list[dict]:
        chunks = []
        for k, (shard, st) in enumerate(zip(shards, state)):
            idx = np.asarray(self.finished.pop(k, []), dtype=int)
            if idx.size:
                chunks.append({"name": shard.target.name, "arrivals": shard.arrivals[idx], "done": st["done"][idx],
                               "ok": st["ok"][idx]})
        return chunks


async def _drive(k: int, shard: Shard, client_of: Callable[[], Any], requests: list[bytes], mono0: float,
                 options: LoadOptions, state: dict, progress: _Progress) -> dict:
    arr = shard.arrivals
    done, ok = state["done"], state["ok"]
    errors: Counter = Counter()
    pending: set[asyncio.Task] = set()

    async def one(i: int) -> None:
        try:
            await client_of().infer(requests[i % len(requests)], options.timeout_s)  # round-robin payloads
            ok[i] = True
        except Exception as exc:  # every failure is counted, a few messages kept
            errors[describe(exc)] += 1
        done[i] = time.monotonic() - mono0
        if options.progress_s > 0:
            progress.finished.setdefault(k, []).append(i)

    i = 0
    while i < arr.size:
        now = time.monotonic() - mono0
        if arr[i] > now:
            await asyncio.sleep(arr[i] - now)
            continue
        while i < arr.size and arr[i] <= now:
            task = asyncio.ensure_future(one(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
    if pending:
        _, late = await asyncio.wait(set(pending), timeout=options.drain_s)
        for task in late:
            task.cancel()
        if late:
            errors[f"no answer {options.drain_s:g} s after the last arrival"] += len(late)
            await asyncio.gather(*late, return_exceptions=True)
    return {"name": shard.target.name, "arrivals": arr, "done": done, "ok": ok, "errors": dict(errors)}


def infer_requests(target: Target) -> list[bytes]:
    """The serialised ModelInferRequests (batch 1) of a target, built once and sent many times: one per
    payload of the target (sent round-robin), else one of ones."""
    from tritonclient.grpc import service_pb2

    shape = [1, *target.input_dims]
    tensor = service_pb2.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=shape)
    payloads = target.payloads or (np.ones(shape, dtype=np.float32).tobytes(),)
    return [service_pb2.ModelInferRequest(model_name=target.model_name, inputs=[tensor],
                                          raw_input_contents=[data]).SerializeToString() for data in payloads]


def _routes_from(path: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """workload -> gRPC address, and the warm shadows' (workload, address), from an endpoints.json
    (empty when it cannot be read right now)."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return {}, []
    routes = {s["name"]: s["grpc_url"] for s in doc.get("servers", []) if "name" in s and "grpc_url" in s}
    shadows = [(s.get("workload", ""), s["grpc_url"]) for s in doc.get("shadows", []) if "grpc_url" in s]
    return routes, shadows


async def _follow(path: str, routes: dict[str, Any], clients: dict[str, _Client], every_s: float = 0.05) -> None:
    """Re-route workloads when the endpoints file changes (a switch to a shadow server)."""
    stamp = None
    while True:
        await asyncio.sleep(every_s)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mtime_ns, st.st_ino) == stamp:
            continue
        stamp = (st.st_mtime_ns, st.st_ino)
        now, shadows = _routes_from(path)
        for name, url in shadows:  # connect to a warm shadow before it is needed
            if name in routes and url not in clients:
                clients[url] = _Client(url)
                clients[url].connect()
        for name, url in now.items():
            if name in routes and routes[name].url != url:
                if url not in clients:
                    clients[url] = _Client(url)
                routes[name] = clients[url]


async def _stream(shards: list[Shard], state: list[dict], progress: _Progress, every_s: float,
                  stdout: IO[bytes]) -> None:
    """Send the parent what completed, every `every_s` (live monitoring)."""
    while True:
        await asyncio.sleep(every_s)
        chunks = progress.take(shards, state)
        if chunks:
            send(stdout, ("progress", chunks))


class _Client:
    """A raw gRPC channel to Triton's ModelInfer, sending pre-serialised requests.

    Requests are serialised once (tritonclient's ModelInferRequest) and responses are not parsed
    (a gRPC error still raises): the load generator's per-request CPU is what limits its rate.
    """

    METHOD = "/inference.GRPCInferenceService/ModelInfer"

    def __init__(self, url: str) -> None:
        import grpc

        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self.url = url
        self.channel = grpc.aio.insecure_channel(url, options=options)
        self.model_infer = self.channel.unary_unary(self.METHOD)

    def connect(self) -> None:
        """Start connecting now (in the background) rather than at the first request."""
        self.channel.get_state(try_to_connect=True)

    async def infer(self, request: bytes, timeout_s: float, wait: bool = False) -> None:
        """One request. `wait`: first up to CONNECT_S for the server to accept connections (a CI
        run's probe was refused by a server up a moment later); then the request as always, so
        that servers that are gone still fail with UNAVAILABLE. For the probe before the load
        starts and before a switch; the load itself fails fast, as a client would."""
        if wait:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.channel.channel_ready(), CONNECT_S)
        await self.model_infer(request, timeout=timeout_s)

    async def close(self) -> None:
        await self.channel.close()


def poll_endpoint(url: str, token: str | None, after_version: int, wait_s: float) -> dict:
    """One long-poll of an `igniter serve` endpoint resource (blocking; run in a thread)."""
    req = urllib.request.Request(f"{url}?after_version={after_version}&wait={wait_s:g}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=wait_s + 10.0) as resp:
        return dict(json.loads(resp.read()))


class _Follower:
    """The current client of one followed target, switched when its endpoint's version grows."""

    def __init__(self, target: Target, client: _Client, request: bytes, version: int) -> None:
        self.target, self.client, self.request, self.version = target, client, request, version
        self.retired: list[_Client] = []
        self.switches = 0

    async def run(self, wait_s: float = 10.0) -> None:
        t = self.target
        assert t.follow_url is not None
        while True:
            try:
                ep = await asyncio.to_thread(poll_endpoint, t.follow_url, t.follow_token, self.version, wait_s)
            except Exception:  # the controller restarting or away: the servers still serve; retry
                await asyncio.sleep(0.5)
                continue
            if ep.get("version", -1) > self.version:
                url = ep.get("grpc_url")
                if url and url != self.client.url:
                    new = _Client(url)
                    await new.infer(self.request, 30.0, wait=True)  # connected and answering before the switch
                    self.retired.append(self.client)
                    self.client = new
                    self.switches += 1
                self.version = int(ep["version"])


async def _connect(shards: list[Shard], clients: dict[str, _Client], routes: dict[str, _Client],
                   requests: dict[str, list[bytes]], followers: dict[str, _Follower]) -> None:
    """Build every workload's requests and reach its server (one request answered) before READY."""
    for s in shards:
        t = s.target
        if t.name not in requests:
            requests[t.name] = infer_requests(t)
        if t.follow_url is not None and t.name not in followers:
            ep = await asyncio.to_thread(poll_endpoint, t.follow_url, t.follow_token, -1, 0.0)
            client = _Client(ep.get("grpc_url") or t.url)
            followers[t.name] = _Follower(t, client, requests[t.name][0], int(ep.get("version", -1)))
            await client.infer(requests[t.name][0], 60.0, wait=True)
        elif t.follow_url is None and t.name not in routes:
            if t.url not in clients:
                clients[t.url] = _Client(t.url)
            routes[t.name] = clients[t.url]
            await clients[t.url].infer(requests[t.name][0], 60.0, wait=True)  # connected and the model answers


async def _run(shards: list[Shard], options: LoadOptions, stdin: IO[bytes], stdout: IO[bytes]) -> list:
    clients: dict[str, _Client] = {}
    routes: dict[str, _Client] = {}     # workload -> the client of its current server (endpoints.json)
    requests: dict[str, list[bytes]] = {}
    followers: dict[str, _Follower] = {}
    tasks: list[asyncio.Task] = []
    try:
        await _connect(shards, clients, routes, requests, followers)
        stdout.write(READY)
        stdout.flush()
        start_at = await asyncio.get_running_loop().run_in_executor(None, recv, stdin)
        mono0 = time.monotonic() + (start_at - time.time())
        state = [{"done": np.full(s.arrivals.size, np.nan), "ok": np.zeros(s.arrivals.size, dtype=bool)}
                 for s in shards]
        progress = _Progress()
        tasks = [asyncio.ensure_future(f.run()) for f in followers.values()]
        if options.follow:
            tasks.append(asyncio.ensure_future(_follow(options.follow, routes, clients)))
        if options.progress_s > 0:
            tasks.append(asyncio.ensure_future(_stream(shards, state, progress, options.progress_s, stdout)))

        def client_of(t: Target) -> Callable[[], Any]:
            if t.name in followers:
                f = followers[t.name]
                return lambda: f.client
            return lambda: routes[t.name]
        results = await asyncio.gather(*[_drive(k, s, client_of(s.target), requests[s.target.name], mono0, options,
                                                state[k], progress) for k, s in enumerate(shards)])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if options.progress_s > 0:  # the last completions, before the final answer
            chunks = progress.take(shards, state)
            if chunks:
                send(stdout, ("progress", chunks))
        return results
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in [*clients.values(), *(c for f in followers.values() for c in [f.client, *f.retired])]:
            await c.close()


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but protocol on the real stdout
    try:
        shards, options = recv(stdin)
        send(stdout, ("ok", asyncio.run(_run(shards, options, stdin, stdout))))
    except KeyboardInterrupt:
        pass
    except BaseException as exc:  # report, never hang the parent
        try:
            send(stdout, ("error", describe(exc)))
        except OSError:
            pass


if __name__ == "__main__":
    main()
