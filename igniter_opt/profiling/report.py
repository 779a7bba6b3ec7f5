"""docs/validation-<gpu>.md: the validation's error table with what the profile rests on.

The provenance comes from the files themselves (the raw profile's budget, L2 source and notes, the
fitted profile's notes), not from the script that ran them: on the first H200 lease the script
printed `--l2 ncu` for a profile whose L2 demands were the unit proxy (ncu did not finish).
"""

from __future__ import annotations

from typing import Any

from igniter_opt.data.profiles import RawProfile
from igniter_opt.model.coefficients import Profile


def provenance_lines(raw: RawProfile, profile: Profile) -> list[str]:
    """What the fitted profile rests on, one bullet each: run budget and time, L2 source, notes."""
    hw = raw.get("hardware", {})
    lines = [f"- profile run: budget {hw.get('budget_s', 'n/a')} s, measurements done after "
             f"{hw.get('profile_seconds', 'n/a')} s, dtype {hw.get('dtype', 'n/a')}, "
             f"CUDA graphs {hw.get('cuda_graphs', 'n/a')}"]
    sources = {str(section.get("l2_source", "ncu")) for name, section in raw.items() if name != "hardware"}
    proxy = any(s.startswith("provisional") or s.startswith("unit") for s in sources)
    lines.append(f"- L2 demand: {', '.join(sorted(sources))}" +
                 (" (the unit proxy: the model's L2 term rests on k_l2 alone)" if proxy else ""))
    lines += [f"- raw note: {note}" for note in hw.get("notes", [])]
    lines += [f"- profile note: {note}" for note in profile.notes]
    return lines


def validation_markdown(report: dict[str, Any], raw: RawProfile, profile: Profile, *, gpu: str, smi: str,
                        commands: list[str], run_seconds: int, validate_seconds: int, source: str) -> str:
    """The report: GPU, timings, commands, provenance, error table per model, median error."""
    lines = [f"# Validation on {gpu}", "", f"GPU (nvidia-smi): {smi}", "",
             f"Profile run took {run_seconds} s; validation took {validate_seconds} s "
             f"({report['measured']} of {report['samples']} co-locations measured, {report['seconds']} s each, "
             f"dtype {report['dtype']}, CUDA graphs {report['cuda_graphs']}).", "", "Commands:", "", "```",
             *commands, "```", "", "What the profile rests on (read from the raw and fitted files):", "",
             *provenance_lines(raw, profile), "",
             "Relative error |predicted - measured| / measured, per model (latency = input H2D + DNN + output "
             "D2H; throughput = achieved requests/s):", "",
             "| model | n | latency median | p90 | max | throughput median | p90 | max |",
             "|---|---|---|---|---|---|---|---|"]
    for name, stats in report["errors"].items():
        cells = [f"{100 * stats[kind][k]:.1f}%" for kind in ("latency", "throughput") for k in ("median", "p90", "max")]
        lines.append(f"| {name} | {stats['latency']['n']} | " + " | ".join(cells) + " |")
    med = report["median_latency_error"]
    lines += ["", f"median error: {100 * med:.1f}%" if med is not None else "median error: n/a (nothing measured)",
              "", f"Raw measurements: {source}."]
    return "\n".join(lines) + "\n"
