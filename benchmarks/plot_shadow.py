"""Plot p99 per window against the SLO for every workload of a run (like the paper's figure 17).

Reads RUN_DIR/monitor.jsonl and RUN_DIR/corrections.jsonl (what `igniter run --shadow` leaves),
draws one panel per workload: p99 of the answering server's requests per window (solid), p99 of
every completion in the window including a replaced server's backlog (dotted), the SLO (dashed),
and a vertical line where the workload was switched to its shadow. Milliseconds are the plan's
(the emulation's time scale divided out). Copies the two files beside the figure (`--keep`).

    PYTHONPATH=. python benchmarks/plot_shadow.py RUN_DIR -o docs/figures/shadow-exp5.png --keep benchmarks/runtime
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from igniter_opt.deploy.monitor import MONITOR_FILE, read_records
from igniter_opt.deploy.shadow import CORRECTIONS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--keep", type=Path, help="Copy monitor.jsonl and corrections.jsonl into this folder.")
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_records(args.run_dir / MONITOR_FILE)
    corrections = [json.loads(line) for line in (args.run_dir / CORRECTIONS).read_text().splitlines() if line]
    names = list(dict.fromkeys(r.workload for r in records))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        mine = [r for r in records if r.workload == name]
        scale = next((c["time_scale"] for c in corrections if "time_scale" in c), None) or 1.0
        t = [r.t_s for r in mine]
        ax.plot(t, [r.p99_ms / scale if r.p99_ms is not None else float("nan") for r in mine], "o-", ms=3,
                label="p99 (answering server)")
        ax.plot(t, [r.p99_all_ms / scale if r.p99_all_ms is not None else float("nan") for r in mine], ":",
                color="gray", label="p99 (all completions)")
        ax.axhline(mine[0].slo_ms / scale, ls="--", color="red", label="SLO")
        for c in corrections:
            if c.get("workload") == name and c.get("action") == "switched":
                at = c["first_violation_t_s"] + c["switch_delay_s"]
                ax.axvline(at, color="green", lw=1)
                ax.annotate(f"switch to {c['new_share_pct']:g}%\n{c['switch_delay_s']:.2f} s after the\n"
                            f"first violating window", (at, ax.get_ylim()[1] * 0.9), fontsize=7,
                            xytext=(4, -22), textcoords="offset points")
        ax.set_title(name)
        ax.set_xlabel("time since the load started (s)")
        ax.set_ylabel("latency (plan ms)")
        ax.set_ylim(bottom=0)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle(args.title or "p99 per window vs SLO (EMULATED GPU)", fontsize=10)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        for f in (MONITOR_FILE, CORRECTIONS):
            shutil.copyfile(args.run_dir / f, args.keep / f"exp5-{f}")
    print(f"figure written to {args.output}")


if __name__ == "__main__":
    main()
