"""Batch solving, reports and instance families: resumable, crash- and timeout-proof, reproducible."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from igniter_opt.bench.batch import run_batch
from igniter_opt.bench.families import COMMITTED, FamilySpec, generate, write_family
from igniter_opt.bench.pool import solve_task
from igniter_opt.bench.report import build_report, gaps, load_report, markdown, parse_rows
from igniter_opt.bench.results import COLUMNS, read_results
from igniter_opt.data.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ROOT / "instances"


# Task functions run in worker processes: module level, so the workers can import them.
def sleepy_task(path: str, solver: str, time_limit: float) -> dict:
    """Sleeps far past any limit on instances named *slow*, else solves normally."""
    if "slow" in Path(path).stem:
        time.sleep(60)
    return solve_task(path, solver, time_limit)


def dying_task(path: str, solver: str, time_limit: float) -> dict:
    """The worker process dies hard (no exception, no row sent) on instances named *die*."""
    if "die" in Path(path).stem:
        os._exit(3)
    return solve_task(path, solver, time_limit)


def slow_task(path: str, solver: str, time_limit: float) -> dict:
    time.sleep(1.5)  # 12 tasks on 2 workers: 9 s, time for the test to see 3 rows and press Ctrl-C under load
    return solve_task(path, solver, time_limit)


@pytest.fixture()
def small_set(tmp_path: Path) -> Path:
    """Six small paper instances in tmp/set/paper."""
    folder = tmp_path / "set" / "paper"
    write_family(FamilySpec("paper", sizes=(4, 8), count=1), folder)
    return folder.parent


def rows_by_key(csv_path: Path) -> dict[tuple[str, str], dict]:
    return {(r["instance"], r["solver"]): r for r in read_results(csv_path)}


def test_batch_writes_one_row_per_pair_and_resumes(small_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    first = run_batch([small_set], ["greedy", "ffd"], time_limit=5, jobs=2, results_csv=out, progress=False)
    assert first.total == 12 and first.ran == 12 and first.skipped == 0
    before = out.read_bytes()
    rows = read_results(out)
    assert len(rows) == 12 and set(rows[0]) == set(COLUMNS)
    assert all(r["family"] == "paper" and r["status"] == "heuristic" and int(r["gpus"]) >= 1 for r in rows)
    assert {r["workloads"] for r in rows} == {"4", "8"}

    again = run_batch([small_set], ["greedy", "ffd"], time_limit=5, jobs=2, results_csv=out, progress=False)
    assert again.ran == 0 and again.skipped == 12
    assert out.read_bytes() == before  # nothing re-solved, rows unchanged

    # a half-written last row (killed mid-write) is dropped and that task runs again
    out.write_bytes(before + b"set/paper/x.json,paper,4,gre")
    assert len(read_results(out)) == 12
    meta = json.loads(out.with_suffix(".meta.json").read_text())
    assert len(meta["runs"]) == 2 and meta["runs"][0]["ran"] == 12 and "cores" in meta["runs"][0]["machine"]


def test_malformed_instance_and_dead_worker_become_rows(small_set: Path, tmp_path: Path) -> None:
    (small_set / "paper" / "broken.json").write_text('{"name": "broken", "workloads": [')
    copy = json.loads((small_set / "paper" / "paper-tight-n04-0.json").read_text())
    (small_set / "paper" / "die.json").write_text(json.dumps({**copy, "name": "die"}))
    out = tmp_path / "results.csv"
    summary = run_batch([small_set], ["greedy"], time_limit=5, jobs=2, results_csv=out, progress=False,
                        task_fn=dying_task)
    rows = rows_by_key(out)
    assert summary.ran == 8 and len(rows) == 8
    broken = next(r for (k, _), r in rows.items() if k.endswith("broken.json"))
    assert broken["status"] == "error" and "malformed JSON" in broken["error"]
    died = next(r for (k, _), r in rows.items() if k.endswith("die.json"))
    assert died["status"] == "crashed" and "exit code 3" in died["error"]
    good = [r for r in rows.values() if r["status"] == "heuristic"]
    assert len(good) == 6  # the batch went on around both failures

    # --retry-failed reruns exactly the failed pairs; the newest row wins
    again = run_batch([small_set], ["greedy"], time_limit=5, jobs=2, results_csv=out, progress=False,
                      retry_failed=True)
    assert again.ran == 2 and again.skipped == 6
    assert rows_by_key(out)[next(k for k in rows if k[0].endswith("die.json"))]["status"] == "heuristic"


def test_time_limit_kills_an_overrunning_task(small_set: Path, tmp_path: Path) -> None:
    slow = small_set / "paper" / "slow.json"
    copy = json.loads((small_set / "paper" / "paper-tight-n04-0.json").read_text())
    slow.write_text(json.dumps({**copy, "name": "slow"}))
    out = tmp_path / "results.csv"
    start = time.monotonic()
    # 5 + 1 s: a healthy task's first solve in a fresh worker takes over 1 s on a busy 2-core
    # machine (lazy imports), so a tighter limit would kill healthy tasks too
    summary = run_batch([small_set], ["greedy"], time_limit=5, kill_margin=1, jobs=2,
                        results_csv=out, progress=False, task_fn=sleepy_task)
    assert time.monotonic() - start < 55  # the slow task sleeps 60 s: it was killed, not awaited
    rows = rows_by_key(out)
    timed_out = [r for r in rows.values() if r["status"] == "timeout"]
    assert len(timed_out) == 1 and timed_out[0]["instance"].endswith("slow.json")
    assert 5.9 <= float(timed_out[0]["seconds"]) < 50 and "killed after" in timed_out[0]["error"]
    assert summary.statuses["heuristic"] == 6


def _processes_in_session(sid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the name: state, ppid, pgrp, session
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_ctrl_c_stops_workers_and_the_batch_resumes(small_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_batch import slow_task
        from igniter_opt.bench.batch import run_batch
        s = run_batch([{str(small_set)!r}], ["greedy", "ffd"], time_limit=5, jobs=2,
                      results_csv={str(out)!r}, progress=False, task_fn=slow_task)
        print("interrupted" if s.interrupted else "finished", s.ran, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while len(read_results(out)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    stdout, _ = proc.communicate(timeout=30)
    assert stdout.startswith("interrupted")
    finished = read_results(out)
    assert 3 <= len(finished) < 12 and int(stdout.split()[1]) == len(finished)
    gone_by = time.monotonic() + 15  # the forkserver exits once its preload ends and sees EOF
    while _processes_in_session(proc.pid) and time.monotonic() < gone_by:
        time.sleep(0.2)
    assert _processes_in_session(proc.pid) == []  # no orphan workers, no forkserver left

    resumed = run_batch([small_set], ["greedy", "ffd"], time_limit=5, jobs=2, results_csv=out,
                        progress=False)
    assert resumed.skipped == len(finished) and resumed.ran == 12 - len(finished)
    assert read_results(out)[: len(finished)] == finished and len(rows_by_key(out)) == 12


def test_unknown_solver_and_no_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        run_batch([tmp_path], ["greedy"], results_csv=tmp_path / "r.csv", progress=False)
    with pytest.raises(InputError):
        run_batch([tmp_path], ["simplex"], results_csv=tmp_path / "r.csv", progress=False)


HAND_MADE = """\
instance,family,workloads,solver,gpus,lower_bound,status,gap,seconds,feasible,total_share,slo_violations,error
a.json,fam,8,greedy,4,3,feasible,,0.01,True,300,0,
a.json,fam,8,milp,3,3,optimal,0,2,True,290,0,
a.json,fam,8,ffd,3,3,feasible,,0.001,False,250,2,
b.json,fam,8,greedy,5,4,feasible,,0.03,True,400,0,
b.json,fam,8,milp,5,4,time_limit,0.2,60,True,420,0,
b.json,fam,8,ffd,4,4,feasible,,0.002,True,390,0,
c.json,fam,16,greedy,10,8,feasible,,0.05,False,900,1,
c.json,fam,16,milp,8,8,optimal,0,10,True,780,0,
d.json,fam,16,greedy,8,8,feasible,,0.05,True,700,0,
d.json,fam,16,milp,,,timeout,,75,,,,killed after 75 s
"""


def test_report_numbers_on_a_hand_made_csv(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(HAND_MADE)
    report = load_report(path)
    assert report.exact == "milp" and report.solvers == ["greedy", "ffd", "milp"]
    groups = {(g.family, g.size): g for g in report.groups}
    g8 = groups[("fam", 8)]
    assert g8.instances == 2 and g8.mean_gpus == {"greedy": 4.5, "ffd": 3.5, "milp": 4.0}
    assert g8.paired == 2 and g8.fewer_pct == 50.0 and g8.saved_pct == pytest.approx(12.5)  # (25 + 0) / 2
    assert g8.slo_broken == {"greedy": 0, "ffd": 1, "milp": 0} and g8.optimal["milp"] == 1
    assert g8.time_pct["milp"] == pytest.approx((31.0, 54.2, 60.0))
    g16 = groups[("fam", 16)]  # d: milp timed out; c: the greedy plan breaks an SLO, nothing to beat
    assert g16.paired == 0 and g16.fewer_pct is None and g16.saved_pct is None
    assert g16.mean_gpus["milp"] == 8.0 and g16.slo_broken["greedy"] == 1
    assert g16.time_pct["milp"][0] == pytest.approx(42.5)  # the timeout counts with its 75 s
    whole = groups[("fam", 0)]
    assert whole.instances == 4 and whole.paired == 2 and whole.fewer_pct == pytest.approx(50.0)
    assert whole.saved_pct == pytest.approx((25 + 0) / 2)
    # gap to the best bound any solver reported, feasible plans only (c's greedy plan breaks an SLO)
    assert gaps(report, "greedy").tolist() == pytest.approx([0.25, 0.2, 0.0])
    assert gaps(report, "milp").tolist() == pytest.approx([0.0, 0.2, 0.0])
    text = markdown(report, str(path))
    # ffd's mean at 8 and the greedy's at 16 average plans that break an SLO: marked, and explained
    assert "| fam | 8 | 2 | 4.50 | 3.50† | 4.00 | 50.0 | 12.5 | 1/2 |" in text
    assert "| fam | 16 | 2 | 9.00† | – | 8.00 | – | – | 1/2 |" in text
    assert "†: the mean includes plans that break an SLO" in text
    assert "milp timeout: 1" in text


@pytest.mark.extra("plot")
def test_report_cli_writes_markdown_and_figures(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from igniter_opt.cli import app

    path = tmp_path / "results.csv"
    path.write_text(HAND_MADE)
    result = CliRunner().invoke(app, ["report", str(path), "-o", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    for name in ("report.md", "gpus_saved.png", "solve_time.png", "gap.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 1000
    assert "GPUs saved" in (tmp_path / "rep" / "report.md").read_text()


def test_report_without_exact_solver_has_no_comparison() -> None:
    rows = list(csv.DictReader(HAND_MADE.splitlines()))
    report = build_report(parse_rows(r for r in rows if r["solver"] != "milp"))
    assert report.exact is None and all(g.saved_pct is None for g in report.groups)


def _sample(spec: FamilySpec) -> list:
    """A few instances of a committed spec: first and last of its size list, first two indices."""
    small = FamilySpec(spec.family, (spec.sizes[0], spec.sizes[-1]), min(spec.count, 2), spec.seed,
                       spec.kinds, spec.profile)
    wanted = {inst.name for inst in generate(small)}
    return [inst for inst in generate(spec) if inst.name in wanted] if spec.family == "paper" else \
        list(generate(small))


@pytest.mark.parametrize("spec", COMMITTED, ids=lambda s: f"{s.family}-{'-'.join(s.kinds) or 'all'}")
def test_committed_instances_regenerate_byte_for_byte(spec: FamilySpec, tmp_path: Path) -> None:
    folder = INSTANCES / spec.family
    for inst in _sample(spec):
        inst.save(tmp_path / "x.json")
        committed = folder / f"{inst.name}.json"
        assert committed.is_file(), f"{committed} missing: regenerate with `{spec.command(str(folder))}`"
        assert (tmp_path / "x.json").read_bytes() == committed.read_bytes(), committed


def test_committed_set_is_exactly_what_the_specs_write() -> None:
    expected = {f"{spec.family}/{inst.name}.json" for spec in COMMITTED for inst in generate(spec)}
    on_disk = {p.relative_to(INSTANCES).as_posix() for p in INSTANCES.glob("*/*.json")}
    hand_made = {"paper/motivation.json"}
    assert on_disk - expected == hand_made and expected <= on_disk
    assert len(on_disk) >= 200


def test_generator_cli_is_deterministic_and_checks_input(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from igniter_opt.cli import app

    runner = CliRunner()
    args = ["instances", "generate", "--family", "stress", "--sizes", "4", "--count", "2", "--seed", "5"]
    for out in ("a", "b"):
        assert runner.invoke(app, [*args, "-o", str(tmp_path / out)]).exit_code == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 8  # 4 kinds x 1 size x 2
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    bad = subprocess.run([sys.executable, "-m", "igniter_opt", "instances", "generate", "--family", "stress",
                          "--kinds", "huge", "--sizes", "4", "-o", str(tmp_path / "c")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--kinds huge" in bad.stderr and not (tmp_path / "c").exists()


# --- the resume key is what determines the answer; one writer per CSV --------------------------

def test_resume_key_is_content_solver_and_answer_options(small_set: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "results.csv"
    one = small_set / "paper" / "paper-tight-n04-0.json"
    first = run_batch([one], ["greedy", "milp"], time_limit=5, jobs=1, results_csv=out, progress=False)
    assert first.ran == 2
    row = next(r for r in read_results(out) if r["solver"] == "milp")
    assert len(row["instance_sha256"]) == 64 and "time_limit=5" in row["options"]
    assert next(r for r in read_results(out) if r["solver"] == "greedy")["options"] == ""

    # the same bytes under another name, in another folder, run from another working directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "copy.json").write_bytes(one.read_bytes())
    monkeypatch.chdir(elsewhere)
    again = run_batch(["copy.json"], ["greedy", "milp"], time_limit=5, jobs=1, results_csv=out,
                      progress=False)
    assert again.ran == 0 and again.skipped == 2

    # another time limit changes milp's answer, not the greedy's
    longer = run_batch(["copy.json"], ["greedy", "milp"], time_limit=7, jobs=1, results_csv=out,
                       progress=False)
    assert longer.ran == 1 and longer.statuses and longer.skipped == 1
    assert [r["options"] for r in read_results(out) if r["solver"] == "milp"][-1].endswith("time_limit=7")

    # edited content (here: the batch policy) is a new instance, whatever its path
    data = json.loads((elsewhere / "copy.json").read_text())
    (elsewhere / "copy.json").write_text(json.dumps({**data, "batch_policy": "joint"}))
    edited = run_batch(["copy.json"], ["greedy"], time_limit=5, jobs=1, results_csv=out, progress=False)
    assert edited.ran == 1


def test_instances_in_the_current_folder_get_a_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mine"
    write_family(FamilySpec("paper", sizes=(4,), count=1), folder)
    monkeypatch.chdir(folder)
    out = tmp_path / "results.csv"
    run_batch(["paper-tight-n04-0.json"], ["greedy"], time_limit=5, jobs=1, results_csv=out, progress=False)
    (row,) = read_results(out)
    assert row["instance"] == "paper-tight-n04-0.json" and row["family"] == "mine"


def test_a_second_writer_is_refused_in_one_line(small_set: Path, tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "results.csv"
    with out.open("a") as held:  # another batch holds the lock (flock is per open file)
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match="another igniter batch is writing"):
            run_batch([small_set], ["greedy"], time_limit=5, jobs=1, results_csv=out, progress=False)
        res = subprocess.run([sys.executable, "-m", "igniter_opt", "batch", str(small_set), "--solvers",
                              "greedy", "-q", "-o", str(out)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "another igniter batch" in res.stderr and "Traceback" not in res.stderr
    assert read_results(out) == []  # nothing was written while it was held
    done = run_batch([small_set], ["greedy"], time_limit=5, jobs=1, results_csv=out, progress=False)
    assert done.ran == 6  # released: the next batch runs


def test_old_results_files_are_read_by_report_but_not_appended_to(tmp_path: Path) -> None:
    from igniter_opt.bench.results import LEGACY_COLUMNS

    old = tmp_path / "old.csv"
    with old.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(LEGACY_COLUMNS)
        writer.writerow(["paper/x.json", "paper", "4", "greedy", "2", "1", "feasible", "", "0.01", "True",
                         "120", "0", ""])
    assert read_results(old)[0]["instance_sha256"] == ""
    assert load_report(old).results[0].gpus == 2
    with pytest.raises(InputError, match="older igniter batch"):
        run_batch([INSTANCES / "paper" / "motivation.json"], ["greedy"], results_csv=old, progress=False)
