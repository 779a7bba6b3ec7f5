"""The HTTP JSON API (FastAPI) over a Controller: /v1 workloads, endpoints, plan; health, metrics.

Errors are always `{"field": ..., "reason": ...}`: 422 bad input (pydantic's first error, or
an unknown model), 409 cannot be placed (the short resource: gpus, name, rate_rps, max_changes),
404 unknown workload, 401 missing or wrong bearer token, 413 body over the cap, 503 a server did
not start (the change was rolled back). OpenAPI at /openapi.json, docs at /docs.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from igniter_opt.controller.apply import ApplyError
from igniter_opt.controller.core import BadRequest, Controller, NotFound
from igniter_opt.controller.live import client_windows
from igniter_opt.controller.models import (
    EndpointOut,
    ErrorOut,
    PlanOut,
    WindowsIn,
    WorkloadChange,
    WorkloadIn,
    WorkloadOut,
    WorkloadsIn,
)
from igniter_opt.controller.placement import Unplaceable, gpus_of
from igniter_opt.controller.records import Endpoint, Placement, Spec

MAX_BODY_BYTES = 64 * 1024
MAX_WAIT_S = 60.0
OPEN_PATHS = ("/healthz", "/readyz")


def error(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"field": field, "reason": reason})


class BodyLimit:
    """ASGI middleware: 413 when the body is larger than the cap (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await error(413, "body", f"request body over {self.limit} bytes")(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooBig()
            return message
        try:
            await self.app(scope, limited, send)
        except _TooBig:
            await error(413, "body", f"request body over {self.limit} bytes")(scope, receive, send)


class _TooBig(Exception):
    pass


def _endpoint(e: Endpoint | None, name: str) -> EndpointOut | None:
    if e is None:
        return None
    return EndpointOut(workload=name, model_name=name, grpc_url=e.grpc_url, http_url=e.http_url, version=e.version,
                       server_id=e.server_id)


def _workload(p: Placement, e: Endpoint | None) -> WorkloadOut:
    return WorkloadOut(name=p.name, model=p.spec.model, slo_ms=p.spec.slo_ms, rate_rps=p.spec.rate_rps,
                       margin_pct=p.spec.margin_pct, gpu=p.gpu,
                       share_pct=p.share_pct, batch=p.batch, predicted_latency_ms=p.predicted_latency_ms,
                       predicted_throughput_rps=p.predicted_throughput_rps, endpoint=_endpoint(e, p.name))


def plan_out(ctl: Controller) -> PlanOut:
    plan, info = ctl.plan(), ctl.store.plan_info()
    gpus = [{"gpu": g, "total_share_pct": round(sum(m.share_pct for m in ms), 6),
             **({"gpu_type": info.gpu_types.get(str(g))} if ctl.fleet is not None else {}),
             "workloads": [{"name": m.name, "share_pct": m.share_pct, "batch": m.batch,
                            "predicted_latency_ms": m.predicted_latency_ms} for m in ms]}
            for g, ms in gpus_of(plan).items()]
    return PlanOut(policy=ctl.config.policy, fleet_gpus=ctl.config.gpus, num_gpus=len(gpus), status=info.status,
                   lower_bound=info.lower_bound, feasible=True, version=ctl.version(), objectives=info.objectives,
                   gpus=gpus, cost=info.cost if ctl.fleet is not None else None,
                   emulated=ctl.plane.emulation() is not None, emulation=ctl.plane.emulation())


def create_app(ctl: Controller, token: str | None = None, max_body: int = MAX_BODY_BYTES) -> FastAPI:
    """The FastAPI app over `ctl`; with `token`, every path but /healthz and /readyz needs
    `Authorization: Bearer <token>` (compared in constant time)."""
    app = FastAPI(title="igniter serve", version="1", description="iGniter provisioning controller",
                  responses={c: {"model": ErrorOut} for c in (401, 404, 409, 413, 422, 503)})

    @app.middleware("http")
    async def auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if token is not None and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return error(401, "authorization", "missing or wrong bearer token")
        return await call_next(request)

    app.add_middleware(BodyLimit, limit=max_body)
    _errors(app)
    _workload_routes(app, ctl)
    _service_routes(app, ctl)
    return app


def _errors(app: FastAPI) -> None:
    """Every error as {"field", "reason"} with its status (module docstring)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {"loc": ("body",), "msg": "invalid"}
        if first.get("type") == "json_invalid":
            return error(422, "body", f"malformed JSON: {dict(first.get('ctx') or {}).get('error', 'invalid')}")
        loc = [str(x) for x in first.get("loc", ()) if x != "body"] or ["body"]
        return error(422, ".".join(loc), str(first.get("msg", "invalid")))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, "path", str(exc.detail))

    @app.exception_handler(Unplaceable)
    async def conflict(_request: Request, exc: Unplaceable) -> JSONResponse:
        return error(409, exc.field, exc.reason)

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return error(404, exc.field, exc.reason)

    @app.exception_handler(BadRequest)
    async def bad(_request: Request, exc: BadRequest) -> JSONResponse:
        return error(422, exc.field, exc.reason)

    @app.exception_handler(ApplyError)
    async def failed(_request: Request, exc: ApplyError) -> JSONResponse:
        return error(503, "server", f"a server did not start; the change was rolled back: {exc}")


def _workload_routes(app: FastAPI, ctl: Controller) -> None:
    """/v1/workloads: admit, list, get, change, remove, and the endpoint long-poll."""

    def views(names: list[str]) -> list[WorkloadOut]:
        plan, eps = ctl.plan(), ctl.store.endpoints()
        return [_workload(plan[n], eps.get(n)) for n in names if n in plan]

    def admit(items: list[WorkloadIn]) -> dict[str, Any]:
        margin = ctl.config.margin_pct
        names = ctl.add([Spec(w.name, w.model, w.slo_ms, w.rate_rps, margin if w.margin_pct is None else w.margin_pct)
                         for w in items])
        return {"workloads": [w.model_dump() for w in views(names)], "version": ctl.version()}

    @app.post("/v1/workloads", status_code=201, response_model=dict[str, Any])
    def add(body: WorkloadIn) -> dict[str, Any]:
        """Admit one workload: its GPU, share, batch, predicted latency and endpoint."""
        return admit([body])

    @app.post("/v1/workloads:batch", status_code=201, response_model=dict[str, Any])
    def add_many(body: WorkloadsIn) -> dict[str, Any]:
        """Admit several workloads (all or none)."""
        return admit(body.workloads)

    @app.get("/v1/workloads", response_model=dict[str, Any])
    def list_workloads() -> dict[str, Any]:
        return {"workloads": [w.model_dump() for w in views(sorted(ctl.plan()))], "version": ctl.version()}

    @app.get("/v1/workloads/{name}", response_model=WorkloadOut)
    def get_workload(name: str) -> WorkloadOut:
        p = ctl.placement(name)
        return _workload(p, ctl.store.endpoints().get(name))

    @app.patch("/v1/workloads/{name}", response_model=WorkloadOut)
    def change(name: str, body: WorkloadChange) -> WorkloadOut:
        """Change the rate and/or SLO; the workload may move or be re-shared (new endpoint version)."""
        ctl.update(name, body.rate_rps, body.slo_ms)
        return get_workload(name)

    @app.delete("/v1/workloads/{name}", response_model=dict[str, Any])
    def remove(name: str) -> dict[str, Any]:
        ctl.remove(name)
        return {"removed": name, "version": ctl.version()}

    @app.get("/v1/workloads/{name}/endpoint", response_model=EndpointOut)
    async def endpoint(name: str, after_version: int = Query(-1, ge=-1),
                       wait: float = Query(0.0, ge=0, le=MAX_WAIT_S)) -> EndpointOut | JSONResponse:
        """The workload's endpoint; with after_version=N and wait=S, answers when its version
        exceeds N or after S seconds (long-poll), whichever comes first. 404 once it is removed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            e = await asyncio.to_thread(ctl.endpoint, name)
            if (e is not None and e.version > after_version) or loop.time() >= deadline:
                out = _endpoint(e, name)
                return out if out is not None else error(404, "endpoint", f"workload {name!r} has no endpoint yet")
            await asyncio.sleep(0.05)


def _service_routes(app: FastAPI, ctl: Controller) -> None:
    """/v1/plan, health, readiness and metrics."""

    @app.get("/v1/plan", response_model=PlanOut)
    def plan() -> PlanOut:
        return plan_out(ctl)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "emulated": ctl.plane.emulation() is not None}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        if not ctl.ready:
            return error(503, "controller", "not ready: re-adopting servers")
        emulation = ctl.plane.emulation()
        return JSONResponse({"status": "ready", "backend": ctl.plane.kind, "policy": ctl.config.policy,
                             "emulated": emulation is not None,
                             **({"emulation": emulation} if emulation is not None else {})})

    @app.post("/v1/windows", status_code=202, response_model=dict[str, Any])
    def windows(body: WindowsIn) -> Any:
        """Client-side windows (p50/p99, throughput, SLO violations) for /metrics."""
        plan = ctl.plan()
        unknown = sorted({w.workload for w in body.windows} - set(plan))
        if unknown:
            return error(404, "windows[].workload", f"no workload {', '.join(map(repr, unknown))}")
        ctl.live.feed(client_windows([w.model_dump() for w in body.windows]))
        return {"accepted": len(body.windows)}

    @app.get("/v1/corrections", response_model=dict[str, Any])
    def corrections() -> dict[str, Any]:
        """Shadow switches and breaks no shadow could take (measured vs predicted, old and new share)."""
        return {"corrections": ctl.store.corrections()}

    @app.get("/metrics")
    def metrics() -> Response:
        text = ctl.live.text(ctl.metrics.text)  # against the plan now: a removed workload's figures go at once
        return Response(text, media_type="text/plain; version=0.0.4")
