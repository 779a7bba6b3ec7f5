"""CLI: watch a deployment at run time (`igniter top`) and make request tensors from images (`igniter inputs`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from igniter_opt.cli.app import EXIT_CHECK_FAILED, app, console, err_console, positive, print_error
from igniter_opt.data.errors import InputError
from igniter_opt.data.io import write_json
from igniter_opt.deploy.inputs import prepare_inputs
from igniter_opt.deploy.monitor import WindowRecord
from igniter_opt.deploy.top import MonitorSource, RunDirSource, render_table
from igniter_opt.deploy.topservice import ServiceError, ServiceSource


def _source(run_dir: Path, url: str | None, token_file: Path | None) -> MonitorSource:
    if url is None:
        return RunDirSource(run_dir)
    token = os.environ.get("IGNITER_TOKEN", "").strip() or None
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise InputError(f"--token-file {token_file}: cannot read it ({exc.strerror})") from None
    return ServiceSource(url, token)


def _latest(source: MonitorSource) -> list[WindowRecord]:
    try:
        return source.latest()
    except ServiceError as exc:
        print_error(str(exc))
        raise typer.Exit(EXIT_CHECK_FAILED) from None


@app.command("top")
def top_cmd(run_dir: Path = typer.Option(Path("igniter-run"), "--run-dir",
                                         help="The run directory of a running `igniter run` or `measure`."),
            url: str | None = typer.Option(None, "--url", help="A running `igniter serve` (its /v1 API and "
                                                               "/metrics) instead of a run directory."),
            token_file: Path | None = typer.Option(None, "--token-file",
                                                   help="--url: bearer token file (else $IGNITER_TOKEN)."),
            interval: float = typer.Option(0.5, "--interval", help="Refresh every S seconds.", callback=positive),
            once: bool = typer.Option(False, "--once", help="Print the newest windows once and exit.")) -> None:
    """Live table of each workload's newest window: rate, p99 vs SLO, share, GPU, shadow state."""
    source = _source(run_dir, url, token_file)
    if once:
        records = _latest(source)
        if not records:
            err_console.print(f"no windows yet in {source.describe()}", highlight=False)
            raise typer.Exit(EXIT_CHECK_FAILED)
        console.print(render_table(records))
        return
    from rich.live import Live

    try:
        with Live(render_table([], f"waiting for {source.describe()}"), console=console,
                  refresh_per_second=max(1.0, 1 / interval)) as live:
            while True:
                records = _latest(source)
                live.update(render_table(records) if records else render_table([], f"waiting for {source.describe()}"))
                time.sleep(interval)
    except KeyboardInterrupt:
        pass


@app.command("inputs")
def inputs_cmd(images: Path = typer.Argument(..., help="A folder of images (any format Pillow reads)."),
               model: str = typer.Option(..., "--model", help="The model whose input shape to make "
                                                              "(resnet50, alexnet, vgg19: 3x224x224; ssd: 3x300x300)."),
               output: Path = typer.Option(..., "-o", "--output",
                                           help="Folder for the tensors and inputs.json.")) -> None:
    """Turn a folder of images into request tensors (resize, crop, normalise) for `--input-data`."""
    result = prepare_inputs(images, model, output)
    for path, reason in result.skipped:
        print_error(f"skipped {path}: not a readable image ({reason})", label="warning:")
    console.print(f"{len(result.written)} tensor(s) {list(result.shape)} for {result.model} written to {output}"
                  + (f"; {len(result.skipped)} file(s) skipped" if result.skipped else ""), highlight=False)


@app.command("learn")
def learn_cmd(sources: list[Path] = typer.Argument(..., help="Run directories (their corrections.jsonl) or "
                                                            "corrections.jsonl files."),
              output: Path = typer.Option(..., "-o", "--output", help="The learned-margin file to write.")) -> None:
    """Aggregate recorded prediction errors per model into a learned-margin file for `solve --learned-margin`."""
    import json

    from igniter_opt.deploy.shadow import CORRECTIONS
    from igniter_opt.model.learned import aggregate

    records = []
    for src in sources:
        path = src / CORRECTIONS if src.is_dir() else src
        if not path.is_file():
            raise InputError(f"{path}: no corrections file (a run with --shadow writes RUN_DIR/{CORRECTIONS})")
        for n, line in enumerate(path.read_text().splitlines(), 1):
            try:
                records.append(json.loads(line))
            except ValueError:
                raise InputError(f"{path}: line {n}: not JSON") from None
    learned = aggregate(records)
    write_json(output, learned)
    for model, entry in learned["models"].items():
        console.print(f"{model}: x{entry['factor']:.3f} from {entry['samples']} measured break(s)", highlight=False)
    console.print(f"learned margin for {learned['gpu_type']} written to {output}", highlight=False)
