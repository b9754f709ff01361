"""``arhiva models``: list the model versions (which is current and why), promote, roll back.

Catalogue-only (no torch, no Prefect): the listing reads the versions' recorded metrics.
"""
from __future__ import annotations

import json
from typing import Any

import typer

from flows.cli.ui import Table, console, fail

app = typer.Typer(name="models", help="Model versions: which is current and why; promote or roll back.")


@app.callback(invoke_without_command=True)
def models(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Model versions with their held-out metrics, lineage, and which one is current and why."""
    if ctx.invoked_subcommand is not None:
        return
    rows = list_models()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    print_models(rows)


@app.command("promote")
def promote(name: str = typer.Argument(..., help="The model version to make current.")) -> None:
    """Make a version current by hand: default and scheduled colorization use it from now on."""
    _set_current(name, rollback=False)


@app.command("rollback")
def rollback(name: str = typer.Argument(..., help="A version that was current before.")) -> None:
    """Go back to a version that was current before; its results become the ones shown again."""
    _set_current(name, rollback=True)


def _set_current(name: str, rollback: bool) -> None:
    try:
        info = make_current(name, rollback=rollback)
    except LookupError as exc:
        fail(exc.args[0])
    line = (f"{info['name']} is the current model version" + (f" (was {info['previous']})" if info["previous"] else "")
                + f"; {info['shown']} record(s) now show its results.")
    console.print(line, markup=False)


def list_models() -> list[dict[str, Any]]:
    from sqlalchemy import func, select

    from catalog.db import open_catalog, session_scope
    from catalog.models import ModelVersion, TrainingExample, TrainingRun

    with session_scope(open_catalog()) as s:
        counts = {(mv, split): n for mv, split, n in s.execute(
            select(TrainingExample.model_version_id, TrainingExample.split, func.count())
            .group_by(TrainingExample.model_version_id, TrainingExample.split)).all()}
        names = dict(s.execute(select(ModelVersion.id, ModelVersion.name)).all())
        rows = []
        for mv in s.execute(select(ModelVersion).order_by(ModelVersion.id)).scalars():
            run = s.get(TrainingRun, mv.training_run_id) if mv.training_run_id else None
            ev = mv.evaluation or {}
            rows.append({"id": mv.id, "name": mv.name, "architecture": mv.architecture, "current": mv.is_current,
                         "decision": mv.decision,
                         "promoted_at": mv.promoted_at.isoformat(timespec="seconds") if mv.promoted_at else None,
                         "parent": names.get(mv.parent_id), "training_run": mv.training_run_id,
                         "collection": (run.parameters or {}).get("collection") if run else None,
                         "train_photos": counts.get((mv.id, "train"), 0),
                         "val_photos": counts.get((mv.id, "val"), 0), "metrics": mv.metrics,
                         "heldout": {"photos": len(ev.get("heldout") or []), "metrics": ev.get("metrics"),
                                     "greyscale": ev.get("greyscale"), "compared_with": ev.get("compared_with")},
                         "checkpoint_sha256": mv.checkpoint_sha256,
                         "created_at": mv.created_at.isoformat(timespec="seconds")})
    return rows


def print_models(rows: list[dict[str, Any]]) -> None:
    t = Table("id", "name", "current", "parent", "collection", "train/val", "held-out CIEDE2000",
              "false colour", "why", "created")
    for r in rows:
        m = r["heldout"]["metrics"] or {}
        t.add_row(str(r["id"]), r["name"], "●" if r["current"] else "", r["parent"] or "—", r["collection"] or "—",
                  f"{r['train_photos']}/{r['val_photos']}",
                  _number(m, "ciede2000", "{:.2f}") + (f" ({r['heldout']['photos']} photos)" if m else ""),
                  _number(m, "false_colour", "{:.2%}"), r["decision"] or "—", r["created_at"])
    console.print(t)
    current = next((r for r in rows if r["current"]), None)
    console.print(f"current: {current['name']} — {current['decision']}" if current else "no current model version yet",
                  markup=False)


def _number(metrics: dict[str, Any], key: str, fmt: str) -> str:
    value = metrics.get(key)
    return fmt.format(value) if isinstance(value, (int, float)) else "—"


def make_current(name: str, *, rollback: bool) -> dict[str, Any]:
    """Make version ``name`` current (``rollback``: it must have been current before)."""
    from sqlalchemy import select

    from catalog.db import open_catalog, session_scope
    from catalog.model_versions import current_model, set_current
    from catalog.models import ModelVersion

    with session_scope(open_catalog()) as s:
        mv = s.execute(select(ModelVersion).where(ModelVersion.name == name)).scalar()
        if mv is None:
            raise LookupError(f"no model version named {name!r}")
        if rollback and mv.promoted_at is None:
            raise LookupError(f"{name} was never the current version: use `arhiva models promote {name}`")
        previous = current_model(s)
        prev_name = previous.name if previous is not None and previous.id != mv.id else None
        how = "rolled back to by hand" if rollback else "promoted by hand"
        shown = set_current(s, mv, f"current: {how} (arhiva models {'rollback' if rollback else 'promote'})"
                                   + (f", replacing {prev_name}" if prev_name else ""))
        return {"name": mv.name, "previous": prev_name, "shown": shown}
