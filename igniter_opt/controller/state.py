"""The controller's state in SQLite under --state-dir: workloads with their placement, the plan's
proof, servers (pid, ports) and endpoints, and a version counter; every change one transaction.

One controller per state directory: an exclusive lock on the folder (data.lock.exclusive, a flock
on STATE/.igniter.lock that names its holder; the kernel releases it when the process dies,
SIGKILL included) refuses a second one. One connection, used under the
store's lock (the controller serialises mutations anyway; reads from request threads take the same
short lock). WAL mode, synchronous=FULL: a SIGKILLed controller
finds the last committed step on restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from igniter_opt.controller.records import Endpoint, Placement, Plan, PlanInfo, Server, Spec
from igniter_opt.data.lock import exclusive

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workloads (
  name TEXT PRIMARY KEY, model TEXT NOT NULL, slo_ms REAL NOT NULL, rate_rps REAL NOT NULL,
  margin_pct REAL NOT NULL, gpu INTEGER NOT NULL, share_pct REAL NOT NULL, batch INTEGER NOT NULL,
  predicted_latency_ms REAL, predicted_throughput_rps REAL);
CREATE TABLE IF NOT EXISTS servers (
  id TEXT PRIMARY KEY, workload TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER NOT NULL,
  http_port INTEGER NOT NULL, grpc_port INTEGER NOT NULL, metrics_port INTEGER NOT NULL,
  repository TEXT NOT NULL, host TEXT NOT NULL, drain_until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
  workload TEXT PRIMARY KEY, server_id TEXT, grpc_url TEXT, http_url TEXT, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, unix_s REAL NOT NULL, workload TEXT NOT NULL, record TEXT NOT NULL);
"""

DB_NAME = "state.sqlite"


class Store:
    """The SQLite state of one controller."""

    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._held = ExitStack()
        self._held.enter_context(exclusive(self.dir, "this --state-dir"))
        self._db = sqlite3.connect(self.dir / DB_NAME, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._held.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the body raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- meta --------------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else str(row[0])

    @staticmethod
    def set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                   (key, value))

    def version(self) -> int:
        return int(self.get_meta("version", "0") or 0)

    def bump(self, db: sqlite3.Connection) -> int:
        """The next version (inside a transaction)."""
        row = db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        version = (int(row[0]) if row else 0) + 1
        self.set_meta(db, "version", str(version))
        return version

    # -- plan --------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        with self._lock:
            rows = self._db.execute("SELECT name, model, slo_ms, rate_rps, margin_pct, gpu, share_pct, batch, "
                                    "predicted_latency_ms, predicted_throughput_rps FROM workloads "
                                    "ORDER BY gpu, name").fetchall()
        return {r[0]: Placement(Spec(*r[:5]), *r[5:]) for r in rows}

    def plan_info(self) -> PlanInfo:
        raw = self.get_meta("plan_info")
        return PlanInfo(**json.loads(raw)) if raw else PlanInfo()

    def write_plan(self, db: sqlite3.Connection, plan: Plan, info: PlanInfo) -> None:
        db.execute("DELETE FROM workloads")
        db.executemany("INSERT INTO workloads VALUES(?,?,?,?,?,?,?,?,?,?)",
                       [(p.name, p.spec.model, p.spec.slo_ms, p.spec.rate_rps, p.spec.margin_pct, p.gpu,
                         p.share_pct, p.batch,
                         p.predicted_latency_ms, p.predicted_throughput_rps) for p in plan.values()])
        self.set_meta(db, "plan_info", json.dumps(info.to_dict()))

    # -- servers and endpoints ---------------------------------------------------------------------

    def servers(self) -> list[Server]:
        with self._lock:
            rows = self._db.execute("SELECT id, workload, status, pid, http_port, grpc_port, metrics_port, "
                                    "repository, host, drain_until FROM servers ORDER BY id").fetchall()
        return [Server(*r) for r in rows]

    @staticmethod
    def put_server(db: sqlite3.Connection, s: Server) -> None:
        db.execute("INSERT OR REPLACE INTO servers VALUES(?,?,?,?,?,?,?,?,?,?)",
                   (s.id, s.workload, s.status, s.pid, s.http_port, s.grpc_port, s.metrics_port, s.repository,
                    s.host, s.drain_until))

    @staticmethod
    def delete_server(db: sqlite3.Connection, server_id: str) -> None:
        db.execute("DELETE FROM servers WHERE id=?", (server_id,))

    def endpoints(self) -> dict[str, Endpoint]:
        with self._lock:
            rows = self._db.execute("SELECT workload, server_id, grpc_url, http_url, version FROM endpoints").fetchall()
        return {r[0]: Endpoint(*r) for r in rows}

    @staticmethod
    def put_endpoint(db: sqlite3.Connection, e: Endpoint) -> None:
        db.execute("INSERT OR REPLACE INTO endpoints VALUES(?,?,?,?,?)",
                   (e.workload, e.server_id, e.grpc_url, e.http_url, e.version))

    @staticmethod
    def delete_endpoint(db: sqlite3.Connection, workload: str) -> None:
        db.execute("DELETE FROM endpoints WHERE workload=?", (workload,))

    @staticmethod
    def add_correction(db: sqlite3.Connection, workload: str, record: dict[str, Any]) -> None:
        """A shadow switch or a break no shadow could take (controller/shadows.py), as JSON."""
        db.execute("INSERT INTO corrections (unix_s, workload, record) VALUES(?,?,?)",
                   (time.time(), workload, json.dumps(record)))

    def corrections(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT record FROM corrections ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def next_server_id(self, db: sqlite3.Connection, workload: str) -> str:
        row = db.execute("SELECT value FROM meta WHERE key='server_seq'").fetchone()
        seq = (int(row[0]) if row else 0) + 1
        self.set_meta(db, "server_seq", str(seq))
        return f"{workload}-s{seq}"
