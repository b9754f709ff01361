"""Work on several machines: deployments on a Prefect work pool, workers, and fan-out.

- ``deploy_flows(pool)`` makes the work pool (``process`` workers unless it exists already) and
  registers the ``crawl``, ``train`` and ``colorize`` flows on it as deployments whose code is
  the installed ``arhiva`` package (a module path, no image, no code storage): every worker runs
  the flows of its own installation.
- ``start_worker(pool)`` runs ``prefect worker start`` for the pool in this process's
  environment (each machine: its own ``ARHIVA_HOME``; shared ``ARHIVA_DATABASE_URL``,
  ``ARHIVA_BLOBS`` and ``PREFECT_API_URL``).
- ``submit(flow, parameters, runs)`` creates ``runs`` flow runs of a deployment and returns their
  ids at once; ``wait(ids)`` follows them to the end. Colorize runs share a collection by
  claiming photos in PostgreSQL (``FOR UPDATE SKIP LOCKED``), so N runs on M workers colorize
  each photo once.

All of it needs a Prefect server that every machine reaches (``PREFECT_API_URL``), never the
temporary one a single command starts.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLOWS = ("crawl", "train", "colorize")
DEFAULT_POOL = "arhiva"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
STOP_GRACE_S = 30.0  # a stopped worker's flow runs have this long to report how they ended


class NoSharedServer(RuntimeError):
    """Work on a pool needs a Prefect server every machine reaches."""


def shared_api(reach: bool = True) -> str:
    """PREFECT_API_URL, checked to be an http(s) URL and, with ``reach``, to answer."""
    from urllib.parse import urlsplit

    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise NoSharedServer("work on a pool needs a Prefect server every worker reaches: start one "
                             "(`prefect server start`) and set PREFECT_API_URL on every machine")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise NoSharedServer(f"PREFECT_API_URL={url!r} is not the URL of a Prefect server's API "
                             "(like http://HOST:4200/api)")
    if reach:
        import httpx

        try:
            httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            raise NoSharedServer(f"the Prefect server in PREFECT_API_URL ({url}) does not answer: "
                                 f"{' '.join(str(exc).split()) or type(exc).__name__}") from None
    return url


def check_pool(pool: str) -> str:
    """A work pool's name as Prefect takes it (not empty; none of / % & > <)."""
    if not pool.strip():
        raise ValueError("--pool: a work pool needs a name")
    bad = sorted({c for c in pool if c in "/%&><"})
    if bad:
        raise ValueError(f"--pool {pool!r}: a work pool's name cannot hold {' '.join(bad)}")
    return pool


def _flow(name: str):
    if name == "crawl":
        from flows.crawl import crawl_flow as fn
    elif name == "train":
        from flows.train import train_flow as fn
    elif name == "colorize":
        from flows.colorize import colorize_flow as fn
    else:
        raise ValueError(f"unknown flow {name!r}; flows: {', '.join(FLOWS)}")
    return fn


def deployment_name(flow: str, pool: str = DEFAULT_POOL) -> str:
    """``flow/flow`` on the default pool, ``flow/flow-POOL`` on another: each pool keeps its own
    deployments (a GPU pool for colorize beside a CPU pool for crawls), where one name for every
    pool moved them to whichever pool was deployed last."""
    return f"{flow}/{_deployment(flow, pool)}"


def _deployment(flow: str, pool: str) -> str:
    return flow if pool == DEFAULT_POOL else f"{flow}-{pool}"


def ensure_pool(pool: str, kind: str = "process") -> str:
    """The pool's type; the pool is created (of ``kind``) when it does not exist."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_work_pool(pool).type
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type=kind))
            return kind


def deploy_flows(pool: str = DEFAULT_POOL, flows: tuple[str, ...] = FLOWS) -> dict[str, str]:
    """Register the flows on ``pool``; return deployment name → id."""
    from prefect.deployments.runner import EntrypointType, deploy

    check_pool(pool)
    shared_api()
    ensure_pool(pool)
    deployments = [_flow(f).to_deployment(name=_deployment(f, pool), entrypoint_type=EntrypointType.MODULE_PATH,
                                          tags=["arhiva", f]) for f in flows]
    ids = deploy(*deployments, work_pool_name=pool, build=False, push=False, print_next_steps_message=False,
                 ignore_warnings=True)
    return {deployment_name(f, pool): str(i) for f, i in zip(flows, ids)}


def start_worker(pool: str = DEFAULT_POOL, *, name: str | None = None, limit: int | None = None,
                 grace: float | None = None, report: Callable[[str], None] | None = None) -> int:
    """``prefect worker start`` for ``pool`` in this environment; returns its exit status.

    Stopped (Ctrl-C, SIGTERM), it stops its flow runs first (``stop_worker``)."""
    check_pool(pool)
    shared_api()
    args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    if name:
        args += ["--name", name]
    if limit:
        args += ["--limit", str(limit)]
    from catalog.tethered import tethered

    proc = subprocess.Popen(tethered(args), start_new_session=True)  # dies with us (see catalog.tethered)
    try:
        return proc.wait()
    except BaseException:  # Ctrl-C / SIGTERM reach us: the flow runs end their way, then the worker
        stop_worker(proc, STOP_GRACE_S if grace is None else grace, report)
        raise


def stop_worker(proc: subprocess.Popen, grace: float, report: Callable[[str], None] | None = None) -> None:
    """Stop a Prefect worker started in a session of its own, and the flow runs it runs.

    Each flow process (a child of the worker, in a session of its own) gets one SIGTERM: Prefect's
    engine reports its flow run Crashed and the catalogue run ends ``cancelled``. When they have
    ended, or after ``grace`` seconds, the worker gets SIGTERM, and whatever is left is killed.
    (The worker's own shutdown sends its flow runs a second SIGTERM, which would cut short the
    first one's unwinding: so it comes last.)"""
    if report is None:
        from flows.cli.ui import say as report
    flows: list[int] = []
    left: list[int] = []
    try:
        deadline = time.monotonic() + grace
        while True:  # the worker may claim another flow run meanwhile: it is asked to stop too
            new = [p for p in _children(proc.pid) if p not in flows]
            for pid in new:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            if new and not flows:
                report(f"stopping: {len(new)} flow run(s) running here asked to stop (SIGTERM); waiting up to "
                       f"{grace:.0f} s for them to report how they ended")
            flows += new
            if time.monotonic() >= deadline or not any(_alive(p) for p in flows):
                break
            time.sleep(0.2)
        left = [p for p in flows if _alive(p)]
    finally:  # a second Ctrl-C during the grace still ends the flow processes and the worker
        for pid in [p for p in flows if _alive(p)]:  # each in its own process group, with what it started
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if left:
        report(f"{len(left)} flow run process(es) still running after {grace:.0f} s were killed: their flow runs "
               "are marked crashed by the next `--wait` that looks")
    elif flows:
        report(f"{len(flows)} flow run(s) stopped and reported")


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc; elsewhere none are known)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Submitted:
    flow: str
    ids: list[str]


def submit(flow: str, parameters: dict[str, Any], runs: int = 1, pool: str = DEFAULT_POOL) -> Submitted:
    """Create ``runs`` flow runs of the flow's deployment on ``pool`` (registered by ``deploy_flows``)."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    shared_api()
    _flow(flow).validate_parameters(parameters)  # the worker would refuse them later, less clearly
    ids = []
    for _ in range(runs):
        try:
            fr = run_deployment(deployment_name(flow, pool), parameters=parameters, timeout=0,
                                tags=["arhiva", f"arhiva-{flow}"])
        except ObjectNotFound:
            deploy_cmd = "arhiva deploy" + ("" if pool == DEFAULT_POOL else f" --pool {shlex.quote(pool)}")
            raise NoSharedServer(f"no deployment {deployment_name(flow, pool)!r} on the Prefect server: run "
                                 f"`{deploy_cmd}` first") from None
        ids.append(str(fr.id))
    return Submitted(flow, ids)


def states(ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """flow-run id → (state type, message)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    out = {}
    with get_client(sync_client=True) as client:
        for i in ids:
            fr = client.read_flow_run(UUID(i))
            out[i] = (fr.state.type.value if fr.state else "PENDING", fr.state.message if fr.state else None)
    return out


def wait(ids: list[str], *, every: float = 2.0, timeout: float | None = None, progress=None,
         look_every: float = 10.0) -> dict[str, tuple[str, str | None]]:
    """Follow the flow runs until each is final; ``progress(states)`` after each look.

    Every ``look_every`` seconds the catalogue is asked about the runs still running: a flow run
    whose process is gone (``gone``) is marked Crashed on the Prefect server, with the reason, and
    counts as ended."""
    deadline = time.monotonic() + timeout if timeout else None
    crashed: dict[str, tuple[str, str | None]] = {}
    next_look = time.monotonic() + min(look_every, 2.0)
    while True:
        now = states(ids) | crashed
        if progress is not None:
            progress(now)
        if all(t in FINAL for t, _ in now.values()):
            return now
        if time.monotonic() >= next_look:
            next_look = time.monotonic() + look_every
            for i, why in gone([i for i, (t, _) in now.items() if t == "RUNNING"]).items():
                crashed[i] = ("CRASHED", why)
                mark_crashed(i, why)
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"flow runs still running after {timeout:.0f} s")
        time.sleep(every)


@dataclass
class CatalogueRun:
    """A catalogue run opened by a flow run's process (``catalog.runs.FLOW_RUN_KEY``)."""

    kind: str
    id: int
    status: str
    error: str | None
    stats: dict[str, Any]


def catalogue_runs(ids: list[str], *, reap: bool = True,
                   stale_after_s: float | None = None) -> dict[str, list[CatalogueRun]]:
    """flow-run id → the catalogue runs its process opened; runs whose owner vanished are closed first."""
    from sqlalchemy import select

    from catalog.db import open_catalog, session_scope
    from catalog.runs import FLOW_RUN_KEY, RUN_MODELS, STALE_AFTER_S, reap_vanished

    out: dict[str, list[CatalogueRun]] = {i: [] for i in ids}
    if not ids:
        return out
    with session_scope(open_catalog()) as s:
        if reap:
            reap_vanished(s, STALE_AFTER_S if stale_after_s is None else stale_after_s)
        for kind, model in RUN_MODELS.items():
            key = model.parameters[FLOW_RUN_KEY].astext
            rows = s.execute(select(key, model.id, model.status, model.error, model.stats)
                             .where(key.in_(ids)).order_by(model.id))
            for flow_run, rid, status, error, stats in rows:
                out[flow_run].append(CatalogueRun(kind, rid, status, error, stats or {}))
    return out


def gone(ids: list[str], stale_after_s: float | None = None) -> dict[str, str]:
    """Of flow runs Prefect still shows running, those whose process is gone, with why.

    Known by the catalogue runs their process opened: one closed as vanished (its process gone on
    its host, or no heartbeat from another host for ``STALE_AFTER_S``). A flow run with a
    catalogue run still running, with none yet, or with all of them ended, is alive as far as
    anyone knows. A catalogue that cannot be read
    says nothing (the wait goes on)."""
    import logging

    from catalog.runs import STALE_AFTER_S, VANISHED

    stale = STALE_AFTER_S if stale_after_s is None else stale_after_s
    try:
        found = catalogue_runs(ids, stale_after_s=stale)
    except Exception as exc:  # the catalogue is away for a moment: look again later
        logging.getLogger(__name__).debug("catalogue runs of flow runs %s: %s", ids, exc)
        return {}
    out = {}
    for i, runs in found.items():
        if not runs or any(r.status == "running" for r in runs):
            continue
        dead = [r for r in runs if r.status == "failed" and (r.error or "").startswith(VANISHED)]
        if dead:
            r = dead[-1]
            out[i] = f"its process is gone ({_name(r)}: {r.error})"
        # all its runs ended and the flow run never reported: not enough, a flow may work on after
        # its run (a crawl's colorization after it fetches its model first)
    return out


def _name(r: CatalogueRun) -> str:
    return f"{r.kind} run {r.id}"


def mark_crashed(flow_run_id: str, why: str) -> None:
    """Tell the Prefect server that a flow run crashed (its process is gone and cannot)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(flow_run_id), Crashed(message=why))
    except Exception as exc:  # the wait still ends: the server is told next time someone looks
        import logging

        logging.getLogger(__name__).warning("could not mark flow run %s crashed: %s", flow_run_id, exc)
