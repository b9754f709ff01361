"""Runs (PROV Activities): one row per crawl, training or colorization."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from catalog.models import ColorizationRun, CrawlRun, TrainingRun

RUN_MODELS = {"crawl": CrawlRun, "training": TrainingRun, "colorization": ColorizationRun}


@lru_cache(maxsize=1)
def code_version() -> str:
    """arhiva's version plus the git commit when running from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("arhiva")
    except PackageNotFoundError:
        v = "0+unknown"
    root = Path(__file__).resolve().parent.parent
    if (root / ".git").exists():
        try:
            sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, timeout=2).stdout.strip()
            if sha:
                v = f"{v}+g{sha}"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return v


def start_run(session: Session, kind: str, agent: str, parameters: dict[str, Any] | None = None,
              **links: Any) -> int:
    """Insert a run row in status 'running' and return its id (caller commits)."""
    model = RUN_MODELS[kind]
    run = model(agent=agent, code_version=code_version(), parameters=parameters or {}, **links)
    session.add(run)
    session.flush()
    return run.id


def finish_run(session: Session, kind: str, run_id: int, status: str, stats: dict[str, Any] | None = None,
               error: str | None = None) -> None:
    model = RUN_MODELS[kind]
    values: dict[str, Any] = {"status": status, "ended_at": func.now(), "error": error}
    if stats is not None:
        values["stats"] = stats
    session.execute(update(model).where(model.id == run_id).values(**values))
