"""A real ``prefect server start`` for tests and benchmarks, its state in a PostgreSQL database.

    with PrefectServer.start(pg_url, folder) as api:   # http://127.0.0.1:<port>/api
        ...
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.s3_server import free_ports


@dataclass
class PrefectServer:
    api: str
    folder: Path
    process: subprocess.Popen = field(repr=False)

    @classmethod
    def start(cls, database_url: str, folder: Path, timeout: float = 180) -> PrefectServer:
        """``database_url``: ``postgresql://…/db`` (asyncpg is the driver Prefect's server uses)."""
        port = free_ports(1)[0]
        url = database_url.split("://", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(folder), PREFECT_SERVER_DATABASE_CONNECTION_URL=f"postgresql+asyncpg://{url}",
                   PREFECT_UI_ENABLED="false", PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        log = open(folder / "server.log", "w")  # noqa: SIM115 - the child writes to it
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        server = cls(f"http://127.0.0.1:{port}/api", folder, proc)
        deadline = time.monotonic() + timeout
        while not server.healthy():
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"prefect server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        return server

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> str:
        return self.api

    def __exit__(self, *exc) -> None:
        self.stop()
