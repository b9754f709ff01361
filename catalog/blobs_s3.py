"""Blobs in S3-compatible object storage (AWS S3, MinIO, SeaweedFS, Ceph RGW, Cloudflare R2).

Keys are the local store's (``<prefix>/sha256/ab/cd/<sha256>``), so a catalogue's
``assets.blob_key`` is the same on both backends. The client is ``obstore``
(Rust ``object_store``, no Python dependencies): retries with back-off, streamed
reads, multipart uploads read from a file, presigned URLs.

Settings: ``ARHIVA_BLOBS=s3://bucket/prefix``; the endpoint, region and credentials
come from the usual variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), or, when no
key is in the environment, from ``~/.aws/credentials`` (profile ``AWS_PROFILE`` or
``default``). An ``http://`` endpoint (a store on a private network) is allowed as given.

Write-once: a blob already there is not sent again; a new one is uploaded in one
conditional request (``If-None-Match: *``) when small, or as a multipart upload
streamed from a file when large (the object appears only when complete; two
writers of one key upload the same bytes). Whole reads are checked against the
hash; ``local_path`` keeps checked copies in a local cache (``ARHIVA_HOME/cache/blobs``), each hashed
again when a process first uses it (a damaged copy is fetched again).

obstore's errors become ``BlobStoreError`` with a one-line reason (``short_error``);
``BlobStoreUnavailable`` when the store cannot be reached or refuses this machine.
"""
from __future__ import annotations

import configparser
import copy
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import obstore as obs
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotSupportedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from catalog.blobs import (
    _SHA,
    CHUNK,
    BlobCorrupt,
    BlobMissing,
    BlobStore,
    BlobStoreError,
    BlobStoreUnavailable,
    LocalBlobStore,
    blob_key,
    sha256_bytes,
)

SINGLE_PUT_MAX = 16 << 20   # larger blobs go up as multipart uploads streamed from their file
PART_SIZE = 8 << 20
LIST_PAGE = 1000
# migrate and verify: a few quick retries (obstore's default is 10 within 3 minutes, seconds per request
# when the store is down), so that an unreachable store is noticed in seconds
BULK_RETRIES = {"max_retries": 3, "retry_timeout": timedelta(seconds=30),
                "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2)}}

log = logging.getLogger(__name__)


class S3BlobStore(BlobStore):
    """One bucket (and key prefix) of an S3-compatible store; picklable (the client is made on first use)."""

    def __init__(self, bucket: str, prefix: str = "", *, cache_dir: Path | str | None = None,
                 options: dict | None = None):
        check_bucket(bucket)
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.options = dict(options or {})
        self.cache = LocalBlobStore(cache_dir) if cache_dir else None
        self._client: S3Store | None = None
        self._conditional = True  # If-None-Match puts, until the store says it has none
        self._checked: dict[str, tuple[int, int, int]] = {}  # cached copies hashed by this process: their stat

    @classmethod
    def from_url(cls, url: str, *, cache_dir: Path | str | None = None) -> S3BlobStore:
        p = urlparse(url)
        return cls(p.netloc, p.path, cache_dir=cache_dir)

    def __getstate__(self):
        return self.__dict__ | {"_client": None, "_checked": {}}

    def for_bulk(self) -> S3BlobStore:
        """A copy that retries less (``BULK_RETRIES``): ``migrate`` and ``verify`` stop on an unreachable store."""
        other = copy.copy(self)
        other.options = self.options | {"retry_config": BULK_RETRIES}
        other._client = None
        return other

    @property
    def client(self) -> S3Store:
        if self._client is None:
            self._client = S3Store(self.bucket, prefix=self.prefix or None, **_connection_options() | self.options)
        return self._client

    # -- reading --------------------------------------------------------------------------------------
    def size(self, sha256: str) -> int | None:
        key = blob_key(sha256)
        try:
            with self._errors(f"cannot look up blob {sha256} in"):
                return int(obs.head(self.client, key)["size"])
        except FileNotFoundError:
            return None

    def exists(self, sha256: str) -> bool:
        return self.size(sha256) is not None

    def open(self, sha256: str) -> BinaryIO:
        key, doing = blob_key(sha256), f"cannot read blob {sha256} from"
        try:
            with self._errors(doing):
                result = obs.get(self.client, key)
        except FileNotFoundError:
            raise BlobMissing(f"no blob {sha256} in {self.url}") from None
        return io.BufferedReader(_StreamReader(result.stream(min_chunk_size=CHUNK),
                                                 lambda: self._errors(doing)), CHUNK)

    def iter_range(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        if end <= start:
            return
        key, doing = blob_key(sha256), f"cannot read blob {sha256} from"
        try:
            with self._errors(doing):
                result = obs.get(self.client, key, options={"range": (start, end)})
        except FileNotFoundError:
            raise BlobMissing(f"no blob {sha256} in {self.url}") from None
        with self._errors(doing):
            for chunk in result.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)

    def local_path(self, sha256: str) -> Path:
        """A checked local copy in the cache (downloaded once; another machine gets a model by its hash)."""
        if self.cache is None:
            raise RuntimeError(f"{self.url}: no local cache folder configured")
        path = self.cache.path(sha256)
        if self._cached_copy_good(sha256, path):
            return path
        self.cache.delete(sha256)
        with self.open(sha256) as f:
            try:
                self.cache.put_stream(f, expect=sha256)
            except BlobCorrupt:
                raise BlobCorrupt(f"blob {sha256} in {self.url} does not match its hash") from None
        self._cached_copy_good(sha256, path)
        return path

    def _cached_copy_good(self, sha256: str, path: Path) -> bool:
        """Whether the cached copy is whole: hashed the first time this process uses it (a 50 MB checkpoint
        takes ~50 ms, read again right after from the page cache), then trusted while its stat is unchanged."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        mark = (st.st_size, st.st_mtime_ns, st.st_ino)
        if self._checked.get(sha256) == mark:
            return True
        if _digest(path)[0] != sha256:
            log.warning("the cached copy of blob %s is damaged: fetched again from %s", sha256, self.url)
            return False
        self._checked[sha256] = mark
        return True

    def path(self, sha256: str) -> Path:
        """The local store's name: code written for a folder (``store.path(sha)``) reads the cached copy."""
        return self.local_path(sha256)

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        try:
            for page in obs.list(self.client, prefix="sha256", chunk_size=LIST_PAGE):
                for meta in page:
                    key = meta["path"]
                    name = key.rsplit("/", 1)[-1]
                    if _SHA.match(name) and key == blob_key(name):
                        yield name, int(meta["size"])
        except BaseError as exc:
            raise store_error(exc, f"cannot list {self.url}") from exc

    def presign(self, sha256: str, seconds: int) -> str:
        """A URL anyone may GET for ``seconds`` (``arhiva web`` redirects to it when asked to)."""
        return obs.sign(self.client, "GET", blob_key(sha256), timedelta(seconds=seconds))

    # -- writing --------------------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        sha = sha256_bytes(data)
        with self._errors(f"cannot write blob {sha} to"):
            if not self.exists(sha):
                if len(data) <= SINGLE_PUT_MAX:
                    self._put_small(sha, data)
                else:
                    self._put_large(sha, data, len(data))
        return sha

    def put_file(self, path: Path | str, expect: str | None = None) -> str:
        path = Path(path)
        sha, size = _digest(path)
        if expect is not None and sha != expect:
            raise BlobCorrupt(f"expected blob {expect}, {path} hashes to {sha}")
        with self._errors(f"cannot write blob {sha} to"):
            if self.exists(sha):
                return sha
            if size <= SINGLE_PUT_MAX:
                self._put_small(sha, path.read_bytes())
            else:
                self._put_large(sha, path, size)
        return sha

    def _put_large(self, sha: str, source: Path | bytes, size: int) -> None:
        """A multipart upload (read from the file as it goes); the object appears when it is complete."""
        obs.put(self.client, blob_key(sha), source, use_multipart=True, chunk_size=PART_SIZE, max_concurrency=4)
        if self.size(sha) != size:
            raise BlobCorrupt(f"blob {sha} in {self.url}: stored size differs from the source's {size}")

    def put_stream(self, stream: BinaryIO) -> str:
        data = b""
        while len(data) <= SINGLE_PUT_MAX and (block := stream.read(SINGLE_PUT_MAX + 1 - len(data))):
            data += block
        if len(data) <= SINGLE_PUT_MAX:
            return self.put_bytes(data)
        return super().put_stream(_Prepend(data, stream))

    def _put_small(self, sha: str, data: bytes) -> None:
        """One request; with ``If-None-Match: *`` where the store has it, so a blob is never rewritten.
        (Requests are signed with their payload's sha256, so the store itself refuses altered bytes.)"""
        try:
            obs.put(self.client, blob_key(sha), data, mode="create" if self._conditional else "overwrite",
                    use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            return  # another writer got there first: same key, same bytes
        except NotSupportedError:
            self._conditional = False
            obs.put(self.client, blob_key(sha), data, use_multipart=False)

    @contextmanager
    def _errors(self, doing: str):
        """obstore's errors as ours: ``doing`` ("cannot read blob … from") the store's URL, and why."""
        try:
            yield
        except BlobStoreError:
            raise
        except BaseError as exc:
            raise store_error(exc, f"{doing} {self.url}") from exc


_BUCKET_RULES = (
    (lambda b: 3 <= len(b) <= 63, "3 to 63 characters long"),
    # AWS now wants lowercase; uppercase and underscores pass, as older buckets and other stores
    # (Ceph, MinIO in legacy mode) have them: what is refused is what no URL's host can hold
    (lambda b: re.fullmatch(r"[A-Za-z0-9._-]+", b), "only letters, digits, dots, hyphens and underscores"),
    (lambda b: b[0].isalnum() and b[-1].isalnum(), "beginning and ending with a letter or digit"),
    (lambda b: ".." not in b, "no two dots in a row"),
    (lambda b: not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", b), "not an IP address"),
)


def check_bucket(bucket: str) -> None:
    """S3's bucket naming rules, checked before the client sees the name (it panics on some)."""
    if not bucket:
        raise ValueError("an S3 blob store needs a bucket: s3://bucket/prefix")
    for good, rule in _BUCKET_RULES:
        if not good(bucket):
            raise ValueError(f"S3 bucket name {bucket!r} is not valid: a bucket name is {rule} (s3://bucket/prefix)")


_REFUSALS = {  # S3 error codes that refuse this machine everything, in words
    "NoSuchBucket": "the bucket does not exist (create it first)",
    "AccessDenied": "access denied (these credentials lack permission for the bucket)",
    "InvalidAccessKeyId": "the store does not know this access key (AWS_ACCESS_KEY_ID)",
    "SignatureDoesNotMatch": "the secret key does not match the access key (AWS_SECRET_ACCESS_KEY)",
}
_CONNECTION = re.compile(r"HttpError \{\s*kind: (Connect|Request|Timeout|Interrupted)")
_ENDPOINT = re.compile(r"performing [A-Z]+ (https?://[^/\s]+)")
_STATUS = re.compile(r"status code: (\d{3}[^:<]*)")


def short_error(exc: BaseException) -> str:
    """obstore's errors carry a ~2 KB debug dump: what went wrong, in one short line."""
    text = str(exc)
    for code, words in _REFUSALS.items():
        if f"<Code>{code}</Code>" in text:
            return words
    if m := _CONNECTION.search(text):
        where = _ENDPOINT.search(text)
        return f"cannot connect to {where.group(1) if where else 'the store'} ({_connection_cause(text, m.group(1))})"
    if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
        return "access denied (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions)"
    if status := _STATUS.search(text):
        code, message = re.search(r"<Code>([^<]+)</Code>", text), re.search(r"<Message>([^<]+)</Message>", text)
        return (f"the store answered {status.group(1).strip()}" + (f": {code.group(1)}" if code else "")
                + (f" ({message.group(1)[:200]})" if message else ""))
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _connection_cause(text: str, kind: str) -> str:
    if "ConnectionRefused" in text:
        return "connection refused"
    if "dns error" in text or "failed to lookup address" in text:
        return "host name not found"
    if kind == "Timeout" or "TimedOut" in text or "timed out" in text:
        return "timed out"
    if kind == "Interrupted" or any(w in text for w in ("ConnectionReset", "IncompleteMessage", "connection closed")):
        return "connection dropped"
    return "connection failed"


def store_error(exc: BaseException, message: str) -> BlobStoreError:
    """``message: reason`` as ours; ``BlobStoreUnavailable`` when every request would fail alike."""
    reason = short_error(exc)
    text = str(exc)
    unavailable = (isinstance(exc, (PermissionDeniedError, UnauthenticatedError)) or bool(_CONNECTION.search(text))
                   or any(f"<Code>{code}</Code>" in text for code in _REFUSALS))
    return (BlobStoreUnavailable if unavailable else BlobStoreError)(f"{message}: {reason}", reason)


def _digest(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _connection_options() -> dict:
    """What the environment does not give obstore by itself: http endpoints, ~/.aws/credentials."""
    env = os.environ
    out: dict = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT") or ""
    if endpoint.startswith("http://"):
        out["client_options"] = {"allow_http": True}
    if not env.get("AWS_ACCESS_KEY_ID"):
        creds = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
        profile = env.get("AWS_PROFILE") or "default"
        parser = configparser.ConfigParser()
        if creds.is_file() and parser.read(creds) and parser.has_section(profile):
            sec = parser[profile]
            for ours, theirs in (("access_key_id", "aws_access_key_id"), ("secret_access_key", "aws_secret_access_key"),
                                 ("session_token", "aws_session_token")):
                if sec.get(theirs):
                    out[ours] = sec[theirs]
    return out


class _StreamReader(io.RawIOBase):
    """A readable file over obstore's chunk iterator (for ``io.BufferedReader``); ``errors()``: a context
    manager that turns obstore's errors into ours."""

    def __init__(self, chunks, errors):
        self._chunks, self._rest, self._errors = chunks, memoryview(b""), errors

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while not self._rest:
            with self._errors():
                chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = memoryview(bytes(chunk))
        n = min(len(buf), len(self._rest))
        buf[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


class _Prepend(io.RawIOBase):
    """``head`` then the rest of ``stream``: a stream whose first bytes were already read."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head, self._stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if self._head:
            out, self._head = (self._head, b"") if n < 0 or n >= len(self._head) else (self._head[:n], self._head[n:])
            return out
        return self._stream.read(n)
