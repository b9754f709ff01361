"""Content-addressed blob store: ``blobs/sha256/ab/cd/<sha256>``.

Writes go to a temporary file in the same folder, are fsynced and renamed,
so a reader never sees half a file and the same bytes are stored once.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

_SHA = re.compile(r"^[0-9a-f]{64}$")


class BlobKeyError(ValueError):
    pass


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_key(sha256: str) -> str:
    if not _SHA.match(sha256 or ""):
        raise BlobKeyError(f"not a sha256 hex digest: {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class BlobStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    def path_for_key(self, key: str) -> Path:
        """Path of a stored key; refuses keys that would leave the store."""
        parts = key.split("/")
        if len(parts) != 4 or parts[0] != "sha256" or blob_key(parts[3]) != key:
            raise BlobKeyError(f"not a blob key: {key!r}")
        return self.root / key

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        sha = sha256_bytes(data)
        target = self.path(sha)
        if not target.is_file():
            self._write_atomic(target, lambda f: f.write(data))
        return sha

    def put_stream(self, stream: BinaryIO, chunk: int = 1 << 20) -> str:
        """Store a stream without holding it in memory."""
        self.root.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                while block := stream.read(chunk):
                    h.update(block)
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            sha = h.hexdigest()
            target = self.path(sha)
            if target.is_file():
                os.unlink(tmp)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return sha
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def put_file(self, path: Path | str) -> str:
        with open(path, "rb") as f:
            return self.put_stream(f)

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    @staticmethod
    def _write_atomic(target: Path, write) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
