"""The blob store's contract, one test body on both backends: a local folder and real S3 (SeaweedFS)."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import obstore
import pytest

from catalog import blobs_s3
from catalog.blobs import BlobCorrupt, BlobKeyError, BlobMissing, LocalBlobStore, blob_key, open_store, store_for_url
from catalog.settings import Settings


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path):
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    url = request.getfixturevalue("s3_url")
    return store_for_url(url, cache_dir=tmp_path / "cache")


@pytest.fixture()
def small_parts(monkeypatch):
    """Multipart uploads on S3 from 1 MiB up, in 5 MiB parts (the S3 minimum), so tests stay small."""
    monkeypatch.setattr(blobs_s3, "SINGLE_PUT_MAX", 1 << 20)
    monkeypatch.setattr(blobs_s3, "PART_SIZE", 5 << 20)


def test_content_addressed_write_once_and_read_back(store, tmp_path):
    data = b"a photograph's bytes"
    sha = store.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.exists(sha) and store.size(sha) == len(data)
    assert store.read(sha) == data
    with store.open(sha) as f:
        assert f.read() == data
    assert b"".join(store.iter_range(sha, 2, 12)) == data[2:12]
    assert store.put_bytes(data) == sha  # the same bytes again: stored once
    f = tmp_path / "same.bin"
    f.write_bytes(data)
    assert store.put_file(f) == sha and store.put_stream(io.BytesIO(data)) == sha
    assert list(store.iter_blobs()) == [(sha, len(data))]
    assert store.local_path(sha).read_bytes() == data
    assert store.path(sha).read_bytes() == data  # code written for the folder store reads S3 through the cache

    other = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(other) and store.size(other) is None
    with pytest.raises(BlobMissing):
        store.read(other)
    with pytest.raises(BlobKeyError):
        store.exists("../../etc/passwd")
    with pytest.raises(BlobCorrupt):  # a file that is not what its name says is refused, nothing stored
        store.put_file(f, expect=other)
    assert [s for s, _ in store.iter_blobs()] == [sha]


def test_large_blobs_are_streamed_in_and_out(store, tmp_path, small_parts):
    data = os.urandom(11 << 20)  # three multipart parts on S3
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    sha = store.put_file(src)
    assert store.size(sha) == len(data)
    assert store.put_stream(io.BytesIO(data)) == sha
    assert store.put_bytes(data[:-1]) == hashlib.sha256(data[:-1]).hexdigest()  # large bytes: multipart too
    assert store.read(hashlib.sha256(data[:-1]).hexdigest()) == data[:-1]
    with store.open(sha) as f:
        first = f.read(1 << 20)
        assert first == data[: 1 << 20]
        h = hashlib.sha256(first)
        while block := f.read(1 << 20):
            h.update(block)
    assert h.hexdigest() == sha
    assert b"".join(store.iter_range(sha, (5 << 20) - 3, (5 << 20) + 3)) == data[(5 << 20) - 3:(5 << 20) + 3]
    assert store.local_path(sha).stat().st_size == len(data)


def test_concurrent_writers_of_one_key(store, tmp_path, small_parts):
    small, big = os.urandom(300_000), os.urandom(6 << 20)
    (tmp_path / "big.bin").write_bytes(big)
    barrier = threading.Barrier(12)

    def write(i: int) -> str:
        barrier.wait()
        if i % 3 == 0:
            return store.put_file(tmp_path / "big.bin")
        return store.put_bytes(small)

    with ThreadPoolExecutor(12) as pool:
        shas = list(pool.map(write, range(12)))
    assert set(shas) == {hashlib.sha256(small).hexdigest(), hashlib.sha256(big).hexdigest()}
    assert store.read(shas[1]) == small and store.read(shas[0]) == big
    assert sorted(store.iter_blobs()) == sorted({(shas[1], len(small)), (shas[0], len(big))})
    if isinstance(store, LocalBlobStore):
        assert sorted(p.name for p in store.root.rglob("*") if p.is_file()) == sorted(set(shas))  # no temp files


def test_a_reader_never_sees_half_a_blob(store, tmp_path, small_parts):
    data = os.urandom(11 << 20)
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "big.bin").write_bytes(data)
    seen, done = [], threading.Event()

    deadline = time.monotonic() + 120

    def read_while_written():
        while (not done.is_set() or not seen or seen[-1] != "whole") and time.monotonic() < deadline:
            listed = sha in dict(store.iter_blobs())
            try:
                with store.open(sha) as f:
                    got = f.read()
            except BlobMissing:
                assert not listed, "listed but not readable"
                seen.append("missing")
                continue
            seen.append("whole" if got == data else f"partial {len(got)}")

    reader = threading.Thread(target=read_while_written, daemon=True)
    reader.start()
    try:
        store.put_file(tmp_path / "big.bin")
    finally:
        done.set()
        reader.join(60)
    assert "missing" in seen and seen[-1] == "whole"
    assert set(seen) == {"missing", "whole"}, [s for s in seen if s.startswith("partial")][:3]


def test_bytes_that_do_not_match_their_key_are_never_returned(s3_url, tmp_path):
    store = store_for_url(s3_url, cache_dir=tmp_path / "cache")
    sha = store.put_bytes(b"the real bytes")
    obstore.put(store.client, blob_key(sha), b"tampered bytes")  # behind the store's back
    with pytest.raises(BlobCorrupt):
        store.read(sha)
    with pytest.raises(BlobCorrupt):
        store.local_path(sha)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))  # nothing wrong kept in the cache


def test_written_once_the_first_object_stays(s3_url):
    store = store_for_url(s3_url)
    sha = store.put_bytes(b"first")
    before = obstore.head(store.client, blob_key(sha))
    store.put_bytes(b"first")
    store._put_small(sha, b"first")  # even a writer that skipped the existence check does not replace it
    assert obstore.head(store.client, blob_key(sha))["last_modified"] == before["last_modified"]


def test_the_store_follows_the_setting_and_crosses_process_boundaries(s3_url, tmp_path):
    local = open_store(Settings(home=tmp_path))
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "blobs"
    assert open_store(Settings(home=tmp_path, blobs=str(tmp_path / "elsewhere"))).root == tmp_path / "elsewhere"
    remote = open_store(Settings(home=tmp_path, blobs=s3_url))
    assert remote.url == s3_url and remote.cache.root == tmp_path / "cache" / "blobs"
    sha = remote.put_bytes(b"x")
    again = pickle.loads(pickle.dumps(remote))  # image workers are processes: the store travels pickled
    assert again.read(sha) == b"x"
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        store_for_url("gs://bucket/x")


def test_a_damaged_copy_in_the_local_cache_is_fetched_again(s3_url, tmp_path):
    data = os.urandom(3 << 20)
    cache = tmp_path / "cache"
    sha = store_for_url(s3_url, cache_dir=cache).put_bytes(data)
    path = store_for_url(s3_url, cache_dir=cache).local_path(sha)
    for damage in (lambda p: p.write_bytes(data[:1000]),                          # cut short
                   lambda p: p.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))):   # same size, one bit changed
        damage(path)
        again = store_for_url(s3_url, cache_dir=cache)  # the next run (another process) that needs it
        assert again.local_path(sha) == path and path.read_bytes() == data
        assert again.path(sha).read_bytes() == data
    store = store_for_url(s3_url, cache_dir=cache)
    assert store.local_path(sha).read_bytes() == data
    junk = path.with_name("junk")
    junk.write_bytes(b"not the checkpoint")
    os.replace(junk, path)  # changed after this process checked it: checked again
    assert store.local_path(sha).read_bytes() == data
    assert [p.name for p in cache.rglob("*") if p.is_file()] == [sha]


@pytest.mark.parametrize("bucket, rule", [
    ("bkt with space", "only letters, digits, dots, hyphens and underscores"),
    ("Bad_Bucket!", "only letters, digits, dots, hyphens and underscores"),
    ("ab", "3 to 63 characters long"), ("a" * 64, "3 to 63 characters long"),
    ("-bucket", "beginning and ending with a letter or digit"), ("bucket.", "beginning and ending"),
    ("my..bucket", "no two dots in a row"), ("192.168.0.1", "not an IP address"),
])
def test_bucket_names_s3_refuses_are_refused_before_any_request(bucket, rule):
    with pytest.raises(ValueError, match=f"S3 bucket name .* is not valid: a bucket name is {rule}"):
        store_for_url(f"s3://{bucket}/prefix")


def test_good_bucket_names_pass():
    for bucket in ("abc", "arhiva-photos", "photos.2024", "a" * 63, "0bucket9", "Old_Bucket"):
        assert store_for_url(f"s3://{bucket}/x").bucket == bucket


def test_blob_work_not_started_is_dropped_when_the_command_stops():
    """Ctrl-C or SIGTERM in the middle of migrate or verify (an exception in the loop over results):
    the blobs not yet started are dropped, not copied or hashed silently before the command ends."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from catalog.blob_migrate import _Breaker, _each

    ran = []

    def work(i):
        time.sleep(0.02)
        ran.append(i)
        return i

    with pytest.raises(KeyboardInterrupt), ThreadPoolExecutor(1) as pool:
        for _ in _each(pool, work, range(50), _Breaker()):
            raise KeyboardInterrupt
    assert len(ran) <= 3, ran
