"""Ray is an extra: the core never imports it, and the ray backend says how to install it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import sys
{block}
from igniter_opt.cli import main
sys.argv = ["igniter", *{args!r}]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("RAY_IMPORTED" if "ray" in sys.modules else "RAY_NOT_IMPORTED", code)
"""


def _igniter(args: list[str], block_ray: bool, cwd: Path) -> subprocess.CompletedProcess:
    code = RUN.format(block="sys.modules['ray'] = None  # import ray -> ImportError" if block_ray else "", args=args)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_core_commands_never_import_ray(tmp_path):
    done = _igniter(["solve", str(ROOT / "instances" / "paper" / "motivation.json"), "-o", str(tmp_path / "p.json")],
                    block_ray=False, cwd=tmp_path)
    assert done.stdout.strip().endswith("RAY_NOT_IMPORTED 0"), done.stderr
    done = _igniter(["solve", str(ROOT / "instances" / "paper" / "motivation.json")], block_ray=True, cwd=tmp_path)
    assert done.stdout.strip().endswith("0"), done.stderr


def test_ray_backend_without_ray_says_how_to_install(tmp_path):
    plan = tmp_path / "p.json"
    assert _igniter(["solve", str(ROOT / "instances" / "paper" / "motivation.json"), "-o", str(plan)],
                    block_ray=True, cwd=tmp_path).stdout.strip().endswith("0")
    done = _igniter(["run", str(plan), "--backend", "ray", "--run-dir", str(tmp_path / "run")], block_ray=True,
                    cwd=tmp_path)
    assert done.stdout.strip().endswith("2"), (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if "igniter-opt[cluster]" in line]
    assert len(lines) == 1 and "pip install 'igniter-opt[cluster]'" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
