"""Flow commands: train, colorize, serve. Prefect and torch load inside the commands; the training
defaults are ``colorization.config.TrainConfig``'s."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

from colorization import DEFAULT_VIVID  # the package itself imports no torch
from colorization.config import DEFAULTS, MAX_BATCH_SIZE, MAX_CROP_SIZE, MAX_EPOCHS, MAX_WIDTH, MIN_CROP_SIZE
from flows.cli.ui import Table, console, err, escape, fail, progress, say, warn

app = typer.Typer()

# Bounds of the colorize options: a number past them is a typo, which would otherwise reach SQL's
# LIMIT, or memory, as a crash in the middle of a run (flows.colorize.SIZE_BOUNDS; no Prefect import here)
MAX_PHOTOS = 1_000_000_000  # --limit, --min-photos
MAX_COLORIZE_BATCH = 1024  # --batch-size: photos through the network at once
MAX_CLAIM = 10_000  # --claim-size: one task's photos (their results stay in memory until its transaction commits)
MAX_RENDER = 4096  # --render-size
MAX_RUNS = 1000  # --runs


def _show(summary: dict, title: str) -> None:
    t = Table(title=title, show_header=False)
    for k, v in summary.items():
        if not isinstance(v, (dict, list)):
            t.add_row(str(k), f"{v:.3f}" if isinstance(v, float) else str(v))
    console.print(t)


def _submit(flow: str, parameters: dict, runs: int, wait: bool, pool: str) -> None:
    """Flow runs on the work pool's workers: their ids at once, or, with ``wait``, how each ended."""
    from flows.deploy import FINAL, submit
    from flows.deploy import wait as wait_for

    done = submit(flow, parameters, runs, pool)
    for i in done.ids:
        console.print(i)
    say(f"{len(done.ids)} {flow} flow run(s) submitted to the work pool")
    if not wait:
        return
    try:
        with progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()) as bar:
            task = bar.add_task("waiting…", total=None)

            def show(states: dict) -> None:
                ended = sum(t in FINAL for t, _ in states.values())
                queued = sum(t in ("SCHEDULED", "PENDING") for t, _ in states.values())
                bar.update(task, description=f"{ended} of {len(states)} flow run(s) ended"
                           + (f", {queued} waiting for a worker" if queued else ""))

            final = wait_for(done.ids, progress=show)
    except KeyboardInterrupt:
        warn("stopped waiting: the flow runs carry on on the workers (cancel one with "
             "`prefect flow-run cancel ID`, or in the Prefect UI)")
        raise
    if _report_runs(final):
        raise typer.Exit(1)


def _report_runs(final: dict) -> bool:
    """How each flow run ended, with what its catalogue runs say (photos that failed…), as a local
    run says it; whether any flow run or catalogue run ended other than well."""
    from flows.deploy import catalogue_runs

    try:
        found = catalogue_runs(list(final), reap=False)
    except Exception as exc:  # the flow runs' states are still worth showing
        warn(f"could not read the catalogue runs of these flow runs: {exc}")
        found = {}
    t = Table("flow run", "state", "catalogue run", "message")
    for i, (state, message) in final.items():
        t.add_row(i, state, ", ".join(f"{r.kind} {r.id} {r.status}" for r in found.get(i, [])), message or "")
    console.print(t)
    bad = any(state != "COMPLETED" for state, _ in final.values())
    for i, ran in found.items():
        for r in ran:
            if r.status not in ("partial", "failed", "cancelled"):
                continue
            bad = True
            err.print(f"[yellow]flow run {i}[/yellow]: {r.kind} run {r.id} {r.status}: {escape(r.error or '')}",
                      highlight=False)
            for f in r.stats.get("failures") or []:
                err.print(f"  [yellow]not colorized[/yellow] {f['sha256'][:12]}… (records {f['records']}): "
                          f"{escape(f['error'])}", highlight=False)
    failed = sum(r.stats.get("failed") or 0 for ran in found.values() for r in ran if r.kind == "colorization")
    if failed:
        err.print(f"[yellow]{failed} photo(s) could not be colorized[/yellow] (`--retry-failed` tries them again)",
                  highlight=False)
    return bad


def _no_wait_alone(wait: bool, option: str) -> None:
    if wait:
        fail(f"--wait follows flow runs on the workers: it goes with {option}")


def _no_pool_alone(pool: str, option: str) -> None:
    if pool != "arhiva":
        fail(f"--pool sends flow runs to that pool's workers: it goes with {option}")


def describe_training(p: dict) -> str:
    """The progress line of a training run: its phase, stage, epoch and step (``flows.train.TrainingProgress``)."""
    head = f"training run {p.get('run_id')}"
    phase = p.get("phase")
    if phase is None:
        return f"{head}: starting…"
    if phase != "training":
        return f"{head}: {phase}…"
    epochs, steps = p.get("epochs") or 0, p.get("steps")
    epoch = min(p.get("epoch", 0) + 1, epochs) if epochs else p.get("epoch", 0) + 1
    return (f"{head}: stage {p.get('stage', 1)}, epoch {epoch} / {epochs or '?'}, "
            f"step {p.get('step', 0)} / {steps or '?'}")


@app.command("train")
def train(
    collection: str = typer.Option(..., "--collection", "-c", help="Collection whose colour photos to learn from."),
    name: Optional[str] = typer.Option(None, "--name", help="Model version name (default COLLECTION-vN)."),
    base: str = typer.Option("latest", "--base", help="latest (fine-tune the newest), none, or a version name."),
    stage1_epochs: int = typer.Option(DEFAULTS.stage1_epochs, "--stage1-epochs", min=0, max=MAX_EPOCHS,
                                      help="Stage 1 (pretraining) epochs."),
    stage2_epochs: int = typer.Option(DEFAULTS.stage2_epochs, "--stage2-epochs", min=0, max=MAX_EPOCHS,
                                      help="Stage 2 epochs (adversarial + L1 for the regression head)."),
    crop_size: int = typer.Option(DEFAULTS.crop_size, "--crop-size", min=MIN_CROP_SIZE, max=MAX_CROP_SIZE,
                                  help=f"Training crop side (multiple of 32, at least {MIN_CROP_SIZE})."),
    batch_size: int = typer.Option(DEFAULTS.batch_size, "--batch-size", min=1, max=MAX_BATCH_SIZE),
    width: int = typer.Option(DEFAULTS.width, "--width", min=8, max=MAX_WIDTH,
                              help="Encoder width, a multiple of 8 (64 = ResNet-18; from scratch only)."),
    min_photos: int = typer.Option(4, "--min-photos", min=1, max=MAX_PHOTOS,
                                   help="Train only with at least this many new photos."),
    device: str = typer.Option(DEFAULTS.device, "--device", help="auto, cpu, cuda or mps."),
    submit: bool = typer.Option(False, "--submit", help="Run on a worker of the work pool (`arhiva deploy`), "
                                                        "not here; print the flow run's id."),
    wait: bool = typer.Option(False, "--wait", help="With --submit: wait for the flow run to end."),
    pool: str = typer.Option("arhiva", "--pool", help="With --submit: the work pool (`arhiva deploy --pool`)."),
) -> None:
    """Train a model version on the collection's colour photos not used before (a Prefect flow)."""
    from colorization.config import TrainConfig, config_problem, device_problem
    from flows.cli.flowrun import RunWatcher, flow_session

    problem = device_problem(device) or config_problem(TrainConfig(
        stage1_epochs=stage1_epochs, stage2_epochs=stage2_epochs, crop_size=crop_size, batch_size=batch_size,
        width=width))
    if problem:
        fail(problem)

    if not submit:
        _no_wait_alone(wait, "--submit")
        _no_pool_alone(pool, "--submit")
    parameters = dict(collection=collection, name=name, base=base, stage1_epochs=stage1_epochs,
                      stage2_epochs=stage2_epochs, crop_size=crop_size, batch_size=batch_size, width=width,
                      min_photos=min_photos, device=device)
    if submit:
        _submit("train", parameters, 1, wait, pool)
        return
    with flow_session(), RunWatcher("training", describe_training):
        from flows.train import train_flow

        summary = train_flow(**parameters)
    if summary.get("status") == "skipped":
        say(f"nothing to do: {summary.get('reason')} (training run {summary.get('run_id')})", "yellow")
        return
    _show(summary, f"training: {summary.get('status')}")


def describe_colorization(p: dict) -> str:
    """The progress line of a colorization run (its ``progress`` stats, ``flows.colorize``)."""
    return (f"colorization run {p.get('run_id')}: {p.get('photos', 0)} / {p.get('pending_before', '?')} "
            f"photo(s) colorized")


@app.command("colorize")
def colorize(
    collection: str = typer.Option(..., "--collection", "-c"),
    years: Optional[str] = typer.Option(None, "--years", "-y", help="FROM-TO: records whose years overlap."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model version name (default: the current one)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, max=MAX_PHOTOS,
                                        help="At most N photos this run."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, max=MAX_COLORIZE_BATCH),
    render_size: int = typer.Option(256, "--render-size", min=32, max=MAX_RENDER, help="Working size of the network."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    claim_size: Optional[int] = typer.Option(
        None, "--claim-size", min=1, max=MAX_CLAIM, help="Photos claimed per task (default 4 × batch size)."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Try again the photos earlier runs could not colorize."),
    runs: Optional[int] = typer.Option(
        None, "--runs", min=1, max=MAX_RUNS,
        help="Fan out: N flow runs on the workers of the work pool (`arhiva deploy`), sharing the photos; prints "
             "their ids and returns."),
    wait: bool = typer.Option(False, "--wait", help="With --runs: wait for every flow run to end."),
    pool: str = typer.Option("arhiva", "--pool", help="With --runs: the work pool (`arhiva deploy --pool`)."),
    vivid: float = typer.Option(DEFAULT_VIVID, "--vivid", min=0.0, max=1.0,
                                help="0 = conservative (near grey where the model is unsure) .. 1 = vivid."),
) -> None:
    """Colorize a collection's greyscale photos by year range; results go back to the catalogue.

    A photo that cannot be read is recorded as failed (with the reason) and the others go on;
    later runs skip it unless --retry-failed. Exits 1 when a photo failed."""
    from catalog.queries import QueryError, parse_years
    from colorization.config import device_problem
    from flows.cli.flowrun import RunWatcher, flow_session

    if device_problem(device):
        fail(device_problem(device))
    if years:
        try:
            parse_years(years)
        except QueryError as exc:
            fail(str(exc))

    if not runs:
        _no_wait_alone(wait, "--runs N")
        _no_pool_alone(pool, "--runs N")
    if runs:
        _submit("colorize", dict(collection=collection, years=years, model=model, limit=limit,
                                 batch_size=batch_size, render_size=render_size, device=device,
                                 claim_size=claim_size, retry_failed=retry_failed, vivid=vivid), runs, wait, pool)
        return

    with flow_session(), RunWatcher("colorization", describe_colorization):
        from flows.colorize import colorize_flow

        summary = colorize_flow(collection=collection, years=years, model=model, limit=limit,
                                batch_size=batch_size, render_size=render_size, device=device,
                                claim_size=claim_size, retry_failed=retry_failed, vivid=vivid)
    if summary.get("status") == "skipped":
        say(f"nothing to do: {summary.get('reason')} (colorization run {summary.get('run_id')})", "yellow")
        return
    _show(summary, f"colorization: {summary.get('status')}")
    for f in summary.get("failures") or []:
        err.print(f"  [yellow]not colorized[/yellow] {f['sha256'][:12]}… (records {f['records']}): "
                  f"{escape(f['error'])}", highlight=False)
    if summary.get("failed"):
        raise typer.Exit(1)


@app.command("serve")
def serve(config: Path = typer.Option(None, "--config", help="Schedule file (default $ARHIVA_HOME/schedules.toml)."),
          pool: Optional[str] = typer.Option(
              None, "--pool", help="Register the schedules on this work pool (`arhiva deploy`) and return: its "
                                   "workers run them. Without it, the flow runs run in this process."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Check the file and list the deployments only.")) -> None:
    """Register the scheduled deployments (crawl, train, colorize) and serve them with Prefect.

    Schedules fire only on a real Prefect server (PREFECT_API_URL); ``--dry-run`` checks every
    entry against the flow it starts and lists the deployments. Without --pool the scheduled flow
    runs run here, in this process, until it is stopped; with --pool the workers of the pool run them."""
    from catalog.settings import get_settings
    from flows.serve import ScheduleError, check_entries, load_schedule

    path = config or (get_settings().home / "schedules.toml")
    try:
        entries = load_schedule(path)
        check_entries(entries)
    except ScheduleError as exc:
        fail(str(exc))
    t = Table("deployment", "flow", "cron", "timezone", "parameters")
    for e in entries:
        t.add_row(e["name"], e["kind"], e["cron"], e["timezone"], json.dumps(e["parameters"], ensure_ascii=False))
    console.print(t)
    if dry_run:
        return
    if pool is not None:
        from flows.deploy import check_pool
        from flows.serve import deploy_schedules

        made = deploy_schedules(entries, check_pool(pool))
        say(f"{len(made)} scheduled deployment(s) registered on work pool {pool!r} ({', '.join(made)}): the "
            "Prefect server fires them and the pool's workers (`arhiva worker`) run them; nothing needs to stay "
            "running here")
        return
    from flows.cli.flowrun import flow_session
    from flows.serve import serve as run_serve

    with flow_session() as api:
        if api.temporary:
            warn("PREFECT_API_URL is not set: the deployments are registered on a temporary server, whose "
                 "schedules never fire; start `prefect server start` and set PREFECT_API_URL")
        say(f"serving {len(entries)} deployment(s) on the {api}: their flow runs run in this process, on this "
            "machine (`--pool NAME` leaves them to a pool's workers); watch the runs in its UI. Ctrl-C or SIGTERM "
            "stops.")
        run_serve(entries)
