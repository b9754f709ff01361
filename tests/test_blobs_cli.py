"""``arhiva blobs migrate / verify / get`` and an import that writes to S3, run as a user runs them."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import obstore

from catalog.blobs import LocalBlobStore, blob_key, store_for_url
from tests.helpers import jpeg_bytes

CLI = [sys.executable, "-c", "from flows.cli import main; main()"]


def arhiva(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--home", str(home), *args], capture_output=True, text=True, timeout=300,
                          env=os.environ | env)


def summary(proc: subprocess.CompletedProcess) -> dict:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def fill_local(root: Path, n: int, size: int = 1000) -> dict[str, int]:
    """``n`` blobs laid out as the local store keeps them (written directly: quick)."""
    out = {}
    for i in range(n):
        data = i.to_bytes(4, "big") * (size // 4 + i % 7)
        sha = hashlib.sha256(data).hexdigest()
        path = root / blob_key(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out[sha] = len(data)
    return out


def remote(url: str) -> dict[str, int]:
    return dict(store_for_url(url).iter_blobs())


def test_migrate_checks_every_hash_and_a_second_run_copies_nothing(s3_url, tmp_path):
    home = tmp_path / "home"
    blobs = fill_local(home / "blobs", 30)
    bad = hashlib.sha256(b"what the name says").hexdigest()
    (home / "blobs" / blob_key(bad)).parent.mkdir(parents=True, exist_ok=True)
    (home / "blobs" / blob_key(bad)).write_bytes(b"something else")  # rotten on disk

    first = arhiva("blobs", "migrate", "--to", s3_url, "--json", home=home)
    assert first.returncode == 1  # the corrupt file is reported, not copied
    got = summary(first)
    assert (got["found"], got["copied"], got["already_there"], got["corrupt"]) == (31, 30, 0, [bad])
    assert remote(s3_url) == blobs

    second = summary(arhiva("blobs", "migrate", "--to", s3_url, "--json", home=home))
    assert (second["copied"], second["already_there"], second["deleted_local"]) == (0, 30, 0)
    assert len(list(LocalBlobStore(home / "blobs").iter_blobs())) == 31  # nothing deleted unless asked

    (home / "blobs" / blob_key(bad)).unlink()
    table = arhiva("blobs", "migrate", "--to", s3_url, "--delete-local", home=home)
    assert table.returncode == 0 and "local files deleted" in table.stdout and "30" in table.stdout
    assert list(LocalBlobStore(home / "blobs").iter_blobs()) == []
    assert remote(s3_url) == blobs
    check = arhiva("blobs", "verify", "--store", s3_url, "--no-catalogue", "--json", home=home)
    assert check.returncode == 0 and summary(check)["checked"] == 30 and summary(check)["corrupt"] == []


def test_a_migration_killed_midway_is_finished_by_the_next_run(s3_url, tmp_path):
    home = tmp_path / "home"
    blobs = fill_local(home / "blobs", 800)
    proc = subprocess.Popen([*CLI, "--home", str(home), "blobs", "migrate", "--to", s3_url, "--jobs", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(remote(s3_url)) < 40 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the migration ended before it could be killed"
    there = remote(s3_url)
    assert 40 <= len(there) < len(blobs)
    assert all(blobs[sha] == size for sha, size in there.items())  # nothing half-written is listed

    rest = summary(arhiva("blobs", "migrate", "--to", s3_url, "--json", home=home))
    assert (rest["already_there"], rest["copied"]) == (len(there), len(blobs) - len(there))
    assert remote(s3_url) == blobs
    check = summary(arhiva("blobs", "verify", "--store", s3_url, "--no-catalogue", "--json", home=home))
    assert check["checked"] == len(blobs) and check["corrupt"] == []


def test_import_writes_to_s3_and_nothing_under_home(clean_db, arhiva_s3_env, arhiva_env, tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(3):
        (scans / f"photo_19{30 + i}.jpg").write_bytes(jpeg_bytes(i, grey=True))
    (scans / "broken.jpg").write_bytes(jpeg_bytes(9)[:100])
    done = arhiva("import", str(scans), "--collection", "albume", "--json", home=arhiva_env)
    assert done.returncode in (0, 1), done.stderr
    shas = {hashlib.sha256((scans / f"photo_19{30 + i}.jpg").read_bytes()).hexdigest() for i in range(3)}
    assert set(remote(arhiva_s3_env)) == shas
    assert not (arhiva_env / "blobs").exists()

    check = arhiva("blobs", "verify", "--json", home=arhiva_env)
    assert check.returncode == 0, check.stdout + check.stderr
    report = summary(check)
    assert report["checked"] == 3 and report["missing"] == [] and report["store"] == arhiva_s3_env

    store = store_for_url(arhiva_s3_env)
    gone, rotten, fine = sorted(shas)
    obstore.delete(store.client, blob_key(gone))
    obstore.put(store.client, blob_key(rotten), b"not the photo")
    check = arhiva("blobs", "verify", "--json", home=arhiva_env)
    assert check.returncode == 1
    report = summary(check)
    assert (report["missing"], report["corrupt"], report["wrong_size"]) == ([gone], [rotten], [rotten])

    out = tmp_path / "out.jpg"
    assert arhiva("blobs", "get", fine, "-o", str(out), home=arhiva_env).returncode == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == fine
    bad = arhiva("blobs", "get", rotten, "-o", str(tmp_path / "bad.jpg"), home=arhiva_env)
    assert bad.returncode == 1 and "does not match its hash" in bad.stderr
    assert not list(tmp_path.glob("bad.jpg*"))  # nothing half-checked left behind
    assert arhiva("blobs", "where", home=arhiva_env).stdout.strip() == arhiva_s3_env


def test_a_crawl_with_image_worker_processes_writes_to_s3(clean_db, arhiva_s3_env, arhiva_env):
    """Images measured and stored by worker processes (the store travels to them pickled) land in the bucket."""
    from sqlalchemy import select

    from catalog.db import session_scope
    from catalog.models import Asset
    from crawlers.runner import run_crawl
    from crawlers.settings import LOCAL_PROFILE
    from tests.pastvu_server import CHISINAU, FakePastvu, generate_photos

    with FakePastvu(generate_photos(12, seed=5)) as server:
        summary = run_crawl("pastvu", {"bbox": ",".join(map(str, CHISINAU)), "api_url": server.api_url,
                                       "tile_size": 0.02},
                            settings_overrides=LOCAL_PROFILE | server.allow | {"ARHIVA_IMAGE_WORKERS": 2,
                                                                                     "LOG_LEVEL": "WARNING"})
    assert summary["status"] == "succeeded" and summary["images"]["stored"] > 0, summary
    with session_scope(clean_db) as s:
        assets = set(s.execute(select(Asset.sha256)).scalars())
    assert assets and set(remote(arhiva_s3_env)) == assets
    assert not (arhiva_env / "blobs").exists()
