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

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

FLOWS = ("crawl", "train", "colorize")
DEFAULT_POOL = "arhiva"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class NoSharedServer(RuntimeError):
    """Work on a pool needs a Prefect server every machine reaches."""


def shared_api() -> str:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise NoSharedServer("work on a pool needs a Prefect server every worker reaches: start one "
                             "(`prefect server start`) and set PREFECT_API_URL on every machine")
    return url


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


def deployment_name(flow: str) -> str:
    return f"{flow}/{flow}"


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

    shared_api()
    ensure_pool(pool)
    deployments = [_flow(f).to_deployment(name=f, entrypoint_type=EntrypointType.MODULE_PATH,
                                          tags=["arhiva", f]) for f in flows]
    ids = deploy(*deployments, work_pool_name=pool, build=False, push=False, print_next_steps_message=False,
                 ignore_warnings=True)
    return {deployment_name(f): str(i) for f, i in zip(flows, ids)}


def start_worker(pool: str = DEFAULT_POOL, *, name: str | None = None, limit: int | None = None) -> int:
    """``prefect worker start`` for ``pool`` in this environment; returns its exit status."""
    shared_api()
    args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    if name:
        args += ["--name", name]
    if limit:
        args += ["--limit", str(limit)]
    from catalog.runs import die_with_parent

    proc = subprocess.Popen(args, start_new_session=True, preexec_fn=die_with_parent)  # noqa: PLW1509
    try:
        return proc.wait()
    except BaseException:  # Ctrl-C / SIGTERM reach us: the worker stops its way (SIGTERM), then we go
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except BaseException:
            proc.kill()
        raise


@dataclass
class Submitted:
    flow: str
    ids: list[str]


def submit(flow: str, parameters: dict[str, Any], runs: int = 1) -> Submitted:
    """Create ``runs`` flow runs of the flow's deployment (registered by ``deploy_flows``)."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    shared_api()
    _flow(flow).validate_parameters(parameters)  # the worker would refuse them later, less clearly
    ids = []
    for _ in range(runs):
        try:
            fr = run_deployment(deployment_name(flow), parameters=parameters, timeout=0,
                                tags=["arhiva", f"arhiva-{flow}"])
        except ObjectNotFound:
            raise NoSharedServer(f"no deployment {deployment_name(flow)!r} on the Prefect server: run "
                                 "`arhiva deploy` first") from None
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


def wait(ids: list[str], *, every: float = 2.0, timeout: float | None = None,
         progress=None) -> dict[str, tuple[str, str | None]]:
    """Follow the flow runs until each is final; ``progress(states)`` after each look."""
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        now = states(ids)
        if progress is not None:
            progress(now)
        if all(t in FINAL for t, _ in now.values()):
            return now
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"flow runs still running after {timeout:.0f} s")
        time.sleep(every)
