"""Runs (PROV Activities): one row per crawl, import, load, training or colorization.

Every activity opens its run with ``activity(kind, agent, parameters)``, a context manager that
owns the run's whole life:

- the row is inserted and committed at once as ``running``, with the code version and its
  owner (host, process id and the process's start, so a reused pid is not the owner);
- a heartbeat thread stamps ``heartbeat_at`` every ``HEARTBEAT_S`` seconds;
- it ends exactly once: ``succeeded`` (or what the work set with ``run.end(...)``: ``partial``,
  ``skipped``), ``cancelled`` on Ctrl-C / SIGTERM, ``failed`` on any other exception, with the
  stats the work filled in and a JSON-safe one-line error.

``reap_vanished`` closes, as failed, runs whose owner is gone: a process of this host that no
longer exists (killed, terminal closed), or an owner elsewhere whose heartbeat stopped more than
``STALE_AFTER_S`` ago. The commands that list or start runs call it, and so does ``arhiva … --wait``
for the flow runs it follows: a run opened inside a Prefect flow run keeps that flow run's id in its
parameters (``FLOW_RUN_KEY``), so a flow run whose process vanished is known by its catalogue run.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from catalog.models import ColorizationRun, CrawlRun, TrainingRun

RUN_MODELS = {"crawl": CrawlRun, "training": TrainingRun, "colorization": ColorizationRun}
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0
ENDINGS = ("succeeded", "partial", "skipped", "failed", "cancelled")
FLOW_RUN_KEY = "prefect_flow_run_id"  # in a run's parameters: the Prefect flow run whose process opened it
VANISHED = ("process vanished", "owner stopped answering")  # how ``reap_vanished`` says why it closed a run

log = logging.getLogger(__name__)


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


# -- owners -----------------------------------------------------------------------------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """A token for when process ``pid`` started (boot id + start ticks), None when it does not exist.

    On systems without /proc, only whether the process exists is known ("?")."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    ticks = stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime, after the (comm) field
    return f"{_boot_id()}:{ticks}"


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def owner() -> dict[str, Any]:
    """This process as a run's owner."""
    pid = os.getpid()
    return {"owner_host": _host(), "owner_pid": pid, "owner_start": process_start(pid)}


def owner_gone(host: str | None, pid: int | None, start: str | None) -> bool:
    """Whether a run's owner on *this* host no longer exists (False for other hosts: use heartbeats)."""
    if host != _host() or pid is None:
        return False
    now = process_start(pid)
    if now is None:
        return True
    return start not in (None, "?") and now != "?" and now != start


def flow_run_link() -> dict[str, str]:
    """The Prefect flow run this process runs, as a run's parameter (a worker or ``serve`` sets
    ``PREFECT__FLOW_RUN_ID`` in the flow run's process); empty elsewhere."""
    ident = os.environ.get("PREFECT__FLOW_RUN_ID")
    return {FLOW_RUN_KEY: ident} if ident else {}


@contextmanager
def exclusive(engine: Engine, scope: str) -> Iterator[bool]:
    """Hold PostgreSQL's advisory lock for ``scope`` while the block runs; yield whether it was free.

    Session-level, on a connection held for the block: a process that dies releases it."""
    from sqlalchemy import text

    conn = engine.connect()
    key = {"k": f"arhiva:{scope}"}
    got = False
    try:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"), key).scalar())
        conn.commit()
        yield got
    finally:
        try:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), key)
                conn.commit()
        finally:
            conn.close()


# -- the one way to run a run -----------------------------------------------------------------
def one_line(exc: BaseException | str) -> str:
    """An exception as one line of valid text (lone surrogates from bad file names escaped).

    Errors that already speak to the user (ValueError, LookupError, OSError) keep their message
    alone; others are prefixed with their type."""
    if isinstance(exc, str):
        text = exc
    elif str(exc) and isinstance(exc, (ValueError, LookupError, OSError)):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:2000]


def json_safe(value: Any) -> Any:
    """Stats as JSON can hold them: text made valid UTF-8, odd objects as strings."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, SIGTERM (ours or Prefect's TerminationSignal), or a cancellation."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    return type(exc).__name__ in ("TerminationSignal", "Cancelled", "CancelledError", "Interrupted")


# The attribute an exception that ended a run as failed carries: "KIND run ID" (the innermost run).
RUN_FAILED = "arhiva_failed_run"
# Crawl runs that are a folder's import or a file's load, by their agent (the rest are harvests)
CRAWL_RUN_KINDS = {"import": "import", "load": "load"}


def crawl_run_kind(agent: str | None) -> str:
    """``import``, ``load`` or ``crawl``: how the CLI and the docs name a run that brought records."""
    return CRAWL_RUN_KINDS.get(agent or "", "crawl")


@dataclass
class Run:
    """The handle a running activity holds: its id, its stats, and how it should end."""

    kind: str
    id: int
    engine: Engine
    stats: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    message: str | None = None
    collect: Callable[[], dict[str, Any]] | None = None

    def end(self, status: str, message: str | None = None) -> None:
        """End as ``status`` (partial, skipped, failed…) instead of succeeded when the work returns."""
        if status not in ENDINGS:
            raise ValueError(f"unknown run status {status!r}")
        self.outcome, self.message = status, message

    def save_stats(self) -> None:
        """Store the stats so far (progress others can read while the run goes on)."""
        model = RUN_MODELS[self.kind]
        with Session(self.engine) as s, s.begin():
            s.execute(update(model).where(model.id == self.id).values(stats=json_safe(self.stats)))


class _Heartbeat(threading.Thread):
    def __init__(self, engine: Engine, kind: str, run_id: int, every: float):
        super().__init__(name=f"arhiva-heartbeat-{kind}-{run_id}", daemon=True)
        self.engine, self.model, self.run_id, self.every = engine, RUN_MODELS[kind], run_id, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(self.model).where(self.model.id == self.run_id,
                                                          self.model.status == "running")
                                 .values(heartbeat_at=func.now()))
            except Exception as exc:  # the database is away for a moment: try again next beat
                log.debug("heartbeat of %s run %s: %s", self.model.__tablename__, self.run_id, exc)


@contextmanager
def activity(kind: str, agent: str, parameters: dict[str, Any] | None = None, *, engine: Engine,
             stats: Callable[[], dict[str, Any]] | None = None, heartbeat_s: float = HEARTBEAT_S,
             **links: Any) -> Iterator[Run]:
    """Open a run, yield its handle, end it exactly once (see the module docstring).

    ``stats``: called once at the end, however the work ended, for the stats to store (else
    ``run.stats`` as the work left it). ``links``: the run table's own columns (``source_id``…)."""
    model = RUN_MODELS[kind]
    with Session(engine) as s, s.begin():
        reap_vanished(s)
        row = model(agent=agent, code_version=code_version(),
                    parameters=json_safe((parameters or {}) | flow_run_link()),
                    heartbeat_at=func.now(), **owner(), **links)
        s.add(row)
        s.flush()
        run = Run(kind, row.id, engine, collect=stats)
    beat = _Heartbeat(engine, kind, run.id, heartbeat_s)
    beat.start()
    try:
        yield run
    except BaseException as exc:
        beat.stopped.set()
        status = "cancelled" if is_interrupt(exc) else "failed"
        error = run.message or ("interrupted" if status == "cancelled" and not str(exc) else one_line(exc))
        _end(run, status, error)
        if status == "failed" and getattr(exc, RUN_FAILED, None) is None:
            try:  # the work had started: the CLI says which run failed, and exits 1 rather than 2
                setattr(exc, RUN_FAILED, f"{crawl_run_kind(agent) if kind == 'crawl' else kind} run {run.id}")
            except AttributeError:  # an exception that takes no attributes
                pass
        raise
    else:
        beat.stopped.set()
        status = run.outcome or "succeeded"
        _end(run, status, run.message if status in ("failed", "cancelled", "partial") else None,
             note=run.message if status == "skipped" else None)


def _end(run: Run, status: str, error: str | None, note: str | None = None) -> None:
    model = RUN_MODELS[run.kind]
    try:
        stats = dict(run.collect() if run.collect is not None else run.stats)
    except Exception as exc:  # the run still ends
        stats = {"stats_error": one_line(exc)}
    if note:
        stats.setdefault("note", note)
    values = {"status": status, "ended_at": func.now(), "stats": json_safe(stats),
              "error": one_line(error) if error else None}
    try:
        with Session(run.engine) as s, s.begin():
            s.execute(update(model).where(model.id == run.id, model.status == "running").values(**values))
    except Exception:  # the database went away: the next command reaps the run as vanished
        log.exception("could not end %s run %s as %s", run.kind, run.id, status)


_COUNTS = (("records/new", "new"), ("records/changed", "changed"), ("records/unchanged", "unchanged"),
           ("records/withdrawn", "withdrawn"), ("records/rejected", "rejected"), ("images/stored", "images"),
           ("errors", "errors"))


def stats_line(stats: dict[str, Any]) -> str:
    """A run's stats in one short line: a crawl's counts (final or so far), else its plain values."""
    summary, progress = stats.get("summary"), stats.get("progress")
    if isinstance(summary, dict) and isinstance(summary.get("records"), dict):
        flat = {f"records/{k}": v for k, v in summary["records"].items()}
        flat["images/stored"] = (summary.get("images") or {}).get("stored", 0)
        flat["errors"] = (summary.get("errors") or {}).get("count", 0)
    elif isinstance(summary, dict):  # loads and imports keep their own report
        return ", ".join(f"{k} {v}" for k, v in summary.items() if isinstance(v, (int, float)) and v)
    elif isinstance(progress, dict):
        flat = progress
    else:
        note = f"{stats['note']}; " if stats.get("note") else ""
        return note + ", ".join(f"{k}={v}" for k, v in stats.items()
                                if k != "note" and isinstance(v, (str, int, float)))[:120]
    return ", ".join(f"{name} {flat.get(key, 0)}" for key, name in _COUNTS if flat.get(key))


def reap_vanished(session: Session, stale_after_s: float = STALE_AFTER_S) -> list[tuple[str, int]]:
    """Close as failed every running run whose owner is gone; return (kind, id) of those closed."""
    closed: list[tuple[str, int]] = []
    for kind, model in RUN_MODELS.items():
        rows = session.execute(
            select(model.id, model.owner_host, model.owner_pid, model.owner_start,
                   (func.now() - func.coalesce(model.heartbeat_at, model.started_at)).label("quiet"))
            .where(model.status == "running")).all()
        for rid, host, pid, start, quiet in rows:
            if owner_gone(host, pid, start):
                why = f"process vanished (pid {pid} on {host} is gone)"
            elif host != _host() and quiet is not None and quiet.total_seconds() > stale_after_s:
                why = (f"owner stopped answering (no heartbeat from {host or 'an unknown host'} "
                       f"for {int(quiet.total_seconds())} s)")
            else:
                continue
            n = session.execute(update(model).where(model.id == rid, model.status == "running")
                                .values(status="failed", ended_at=func.now(), error=why)).rowcount
            if n:
                closed.append((kind, rid))
    return closed
