"""Flow commands: train, colorize, models, serve. Prefect and torch load inside the commands."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from colorization import DEFAULT_VIVID  # the package itself imports no torch

console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _show(summary: dict, title: str) -> None:
    t = Table(title=title, show_header=False)
    for k, v in summary.items():
        if not isinstance(v, (dict, list)):
            t.add_row(str(k), f"{v:.3f}" if isinstance(v, float) else str(v))
    console.print(t)


def register(app: typer.Typer, crawl_app: typer.Typer) -> None:
    @app.command("train")
    def train(
        collection: str = typer.Option(..., "--collection", "-c", help="Collection whose colour photos to learn from."),
        name: Optional[str] = typer.Option(None, "--name", help="Model version name (default COLLECTION-vN)."),
        base: str = typer.Option("latest", "--base", help="latest (fine-tune the newest), none, or a version name."),
        stage1_epochs: int = typer.Option(2, "--stage1-epochs", min=0, help="L1 pretraining epochs."),
        stage2_epochs: int = typer.Option(8, "--stage2-epochs", min=0, help="Adversarial + L1 epochs."),
        crop_size: int = typer.Option(256, "--crop-size", help="Training crop side (multiple of 32)."),
        batch_size: int = typer.Option(16, "--batch-size", min=1),
        width: int = typer.Option(64, "--width", help="Decoder width (from scratch only)."),
        min_photos: int = typer.Option(4, "--min-photos", help="Train only with at least this many new photos."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    ) -> None:
        """Train a model version on the collection's colour photos not used before (a Prefect flow)."""
        from flows.prefect_env import bind_console
        from flows.train import train_flow

        bind_console()

        try:
            summary = train_flow(collection=collection, name=name, base=base, stage1_epochs=stage1_epochs,
                                 stage2_epochs=stage2_epochs, crop_size=crop_size, batch_size=batch_size,
                                 width=width, min_photos=min_photos, device=device)
        except LookupError as exc:
            _fail(str(exc).strip("'\""))
        _show(summary, f"training: {summary.get('status')}")

    @app.command("colorize")
    def colorize(
        collection: str = typer.Option(..., "--collection", "-c"),
        years: Optional[str] = typer.Option(None, "--years", "-y", help="FROM-TO: records whose years overlap."),
        model: Optional[str] = typer.Option(None, "--model", help="Model version name (default: the current one)."),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="At most N photos this run."),
        batch_size: int = typer.Option(8, "--batch-size", min=1),
        render_size: int = typer.Option(256, "--render-size", help="Working size of the network."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
        claim_size: Optional[int] = typer.Option(
            None, "--claim-size", min=1, help="Photos claimed per task (default 4 × batch size)."),
        vivid: float = typer.Option(DEFAULT_VIVID, "--vivid", min=0.0, max=1.0,
                                    help="0 = conservative (near grey where the model is unsure) .. 1 = vivid."),
    ) -> None:
        """Colorize a collection's greyscale photos by year range; results go back to the catalogue."""
        from catalog.queries import QueryError, parse_years
        from flows.colorize import colorize_flow
        from flows.prefect_env import bind_console

        bind_console()

        if years:
            try:
                parse_years(years)
            except QueryError as exc:
                _fail(str(exc))
        try:
            summary = colorize_flow(collection=collection, years=years, model=model, limit=limit,
                                    batch_size=batch_size, render_size=render_size, device=device,
                                    claim_size=claim_size, vivid=vivid)
        except LookupError as exc:
            _fail(str(exc).strip("'\""))
        _show(summary, f"colorization: {summary.get('status')}")

    models_app = typer.Typer(help="Model versions: which is current and why; promote or roll back.")
    app.add_typer(models_app, name="models")

    @models_app.callback(invoke_without_command=True)
    def models(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
        """Model versions with their held-out metrics, lineage, and which one is current and why."""
        if ctx.invoked_subcommand is not None:
            return
        from flows.cli.models_view import list_models, print_models

        rows = list_models()
        if as_json:
            console.print_json(json.dumps(rows))
            return
        print_models(console, rows)

    @models_app.command("promote")
    def promote(name: str = typer.Argument(..., help="The model version to make current.")) -> None:
        """Make a version current by hand: default and scheduled colorization use it from now on."""
        from flows.cli.models_view import make_current

        _set_current(make_current, name, rollback=False)

    @models_app.command("rollback")
    def rollback(name: str = typer.Argument(..., help="A version that was current before.")) -> None:
        """Go back to a version that was current before; its results become the ones shown again."""
        from flows.cli.models_view import make_current

        _set_current(make_current, name, rollback=True)

    def _set_current(make_current, name: str, rollback: bool) -> None:
        try:
            info = make_current(name, rollback=rollback)
        except LookupError as exc:
            _fail(exc.args[0])
        console.print(f"{info['name']} is the current model version"
                      + (f" (was {info['previous']})" if info["previous"] else "")
                      + f"; {info['shown']} record(s) now show its results.")

    @app.command("serve")
    def serve(config: Path = typer.Option(None, "--config", help="Schedule file (default $ARHIVA_HOME/schedules.toml)."),
              dry_run: bool = typer.Option(False, "--dry-run", help="Check the file and list the deployments only.")) -> None:
        """Register the scheduled deployments (crawl, train, colorize) and serve them with Prefect."""
        from catalog.settings import get_settings
        from flows.serve import ScheduleError, load_schedule

        path = config or (get_settings().home / "schedules.toml")
        try:
            entries = load_schedule(path)
        except ScheduleError as exc:
            _fail(str(exc))
        t = Table("deployment", "flow", "cron", "timezone", "parameters")
        for e in entries:
            t.add_row(e["name"], e["kind"], e["cron"], e["timezone"], json.dumps(e["parameters"], ensure_ascii=False))
        console.print(t)
        if dry_run:
            return
        from flows.serve import serve as run_serve

        err.print("serving; watch the runs in the Prefect UI (`prefect server start`, http://127.0.0.1:4200). "
                  "Ctrl-C or SIGTERM stops.")
        run_serve(entries)
