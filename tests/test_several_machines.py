"""The proof that arhiva runs on several machines sharing only PostgreSQL and an object store.

A real ``prefect server start`` keeping its state in PostgreSQL, SeaweedFS as the S3 store, and two
``arhiva worker`` processes, each with its own empty ``ARHIVA_HOME`` (no shared folder): a
collection is imported, a tiny model trained on a worker, the collection colorized over both;
then, in a second round, one worker is killed mid-claim and the other finishes the rest.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from catalog.models import Asset, Colorization, ModelVersion, RecordAsset
from tests.cli_user import Background, alive, children_of, run
from tests.conftest import TEST_PG, create_database, database_url, drop_database
from tests.helpers import jpeg_bytes
from tests.prefect_server import PrefectServer
from tests.s3_server import free_ports

pytestmark = pytest.mark.slow
POOL = "arhiva-proof"
YEARS = "1900-1950"


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """``prefect server start`` on a free port, its state in a PostgreSQL database of its own."""
    name = create_database("arhiva_prefect")
    try:
        with PrefectServer.start(f"{TEST_PG}/{name}", tmp_path_factory.mktemp("prefect-server")) as api:
            yield api
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def catalogue():
    name = create_database("arhiva_machines")
    url = database_url(name)
    yield url
    drop_database(name)


def machine(tmp: Path, name: str, shared: dict[str, str]) -> dict[str, str]:
    """The environment of one machine: its own ARHIVA_HOME and Prefect home, the shared settings."""
    home = tmp / name
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARHIVA_", "PREFECT_", "AWS_"))}
    return env | shared | {"ARHIVA_HOME": str(home / "arhiva"), "PREFECT_HOME": str(home / "prefect"),
                           "HOME": str(home), "PREFECT_WORKER_QUERY_SECONDS": "1", "COLUMNS": "200"}


def photos(folder: Path) -> tuple[int, int]:
    """A collection: colour photos (to learn from) and greyscale ones dated in and out of YEARS."""
    folder.mkdir()
    colour = grey = 0
    for i in range(8):
        (folder / f"colour_{1920 + i}.jpg").write_bytes(jpeg_bytes(100 + i, (96, 72)))
        colour += 1
    for i in range(16):
        (folder / f"grey_{1905 + 2 * i}.jpg").write_bytes(jpeg_bytes(200 + i, (96, 72), grey=True))
        grey += 1
    (folder / "grey_1975.jpg").write_bytes(jpeg_bytes(300, (96, 72), grey=True))  # outside the years
    return colour, grey


def results(engine, render_size: int) -> dict[str, list[str]]:
    """source sha256 → result sha256s of the colorizations made at ``render_size``."""
    with Session(engine) as s:
        out: dict[str, list[str]] = {}
        for src, res, params in s.execute(select(Colorization.source_sha256, Colorization.result_sha256,
                                                 Colorization.params).where(Colorization.status == "done")):
            if params.get("render_size") == render_size:
                out.setdefault(src, []).append(res)
        return out


def expected(engine) -> set[str]:
    """Greyscale originals of records dated inside YEARS."""
    from catalog.models import Record

    lo, hi = (int(y) for y in YEARS.split("-"))
    with Session(engine) as s:
        return set(s.execute(select(Asset.sha256).join(RecordAsset, RecordAsset.asset_sha256 == Asset.sha256)
                             .join(Record, Record.id == RecordAsset.record_id)
                             .where(RecordAsset.role == "original", Asset.is_colour.is_(False),
                                    Record.year_lo <= hi, Record.year_hi >= lo)).scalars())


def blob_files(env: dict[str, str]) -> list[Path]:
    root = Path(env["ARHIVA_HOME"]) / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_two_machines_share_a_collection_through_postgresql_and_s3(prefect_server, catalogue, s3_server, s3_url,
                                                                    tmp_path):
    from catalog.blobs_s3 import S3BlobStore

    shared = {"ARHIVA_DATABASE_URL": catalogue, "ARHIVA_BLOBS": s3_url, "PREFECT_API_URL": prefect_server,
              **s3_server.env()}
    a, b, desk = (machine(tmp_path, n, shared) for n in ("worker-a", "worker-b", "desk"))
    engine = create_engine(catalogue)

    assert run(["db", "upgrade"], desk).code == 0
    colour, grey = photos(Path(desk["HOME"]) / "scans")
    r = run(["import", str(Path(desk["HOME"]) / "scans"), "--collection", "fonds"], desk)
    assert r.code == 0, r
    todo = expected(engine)
    assert len(todo) == grey
    deployed = run(["deploy", "--pool", POOL], desk)
    assert deployed.code == 0 and "colorize/colorize" in deployed.out, deployed

    # one flow run at a time per machine: a worker polling first cannot take both runs of a round
    # (it did: round 2's two runs both went to the worker about to be killed, and none was left)
    workers = {n: Background(["worker", "--pool", POOL, "--name", n, "--limit", "1"], env, tmp_path)
               for n, env in (("a", a), ("b", b))}
    try:
        trained = run(["train", "--collection", "fonds", "--stage1-epochs", "1", "--stage2-epochs", "1",
                       "--crop-size", "64", "--batch-size", "4", "--width", "16", "--min-photos", "2",
                       "--device", "cpu", "--submit", "--wait", "--pool", POOL], desk, timeout=600)
        assert trained.code == 0 and "COMPLETED" in trained.out, trained
        with Session(engine) as s:
            ckpt = s.execute(select(ModelVersion.checkpoint_sha256)).scalar_one()

        # each run colorizes at most half the photos, so the batch is done only if both take part
        # (without the limit, the run that starts first could finish all before the other starts)
        round1 = run(["colorize", "--collection", "fonds", "--years", YEARS, "--runs", "2", "--wait", "--pool", POOL,
                      "--limit", str(len(todo) // 2), "--render-size", "64", "--batch-size", "2",
                      "--claim-size", "2", "--device", "cpu"], desk, timeout=600)
        assert round1.code == 0 and round1.out.count("COMPLETED") == 2, round1
        done = results(engine, 64)
        assert set(done) == todo and all(len(v) == 1 for v in done.values())  # each photo once
        with Session(engine) as s:
            per_run = s.execute(select(Colorization.run_id, func.count()).where(Colorization.source_sha256.in_(todo))
                                .group_by(Colorization.run_id)).all()
        assert sorted(n for _, n in per_run) == [len(todo) // 2] * 2, per_run  # both runs took part

        store = S3BlobStore.from_url(s3_url)  # the bucket itself, as any machine sees it
        assert store.exists(ckpt) and all(store.exists(v[0]) for v in done.values())
        assert not blob_files(a) and not blob_files(b) and not blob_files(desk), "nothing on local disk"

        rid = _record_of(engine, next(iter(done)))
        chain = json.loads(run(["records", "--id", str(rid), "--provenance", "--format", "json"], desk).out)
        (c,) = chain["colorizations"]
        assert c["checkpoint_sha256"] == ckpt and c["training_run_id"] and c["training_examples"]
        assert chain["record"]["first_seen_run_id"] and chain["originals"]

        port = free_ports(1)[0]
        web = Background(["web", "--port", str(port)], desk, tmp_path)
        try:
            sha = next(iter(done.values()))[0]

            def fetched():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/assets/{sha}", timeout=5) as resp:
                        return resp.read()
                except OSError:
                    return None
            body = web.wait_for(fetched, timeout=120)
            assert hashlib.sha256(body).hexdigest() == sha  # served from the bucket, byte for byte
        finally:
            web.signal(signal.SIGTERM)
            web.finish()

        # Round 2, new parameters: kill worker a while it works; b finishes the rest.
        submitted = run(["colorize", "--collection", "fonds", "--years", YEARS, "--runs", "2", "--pool", POOL,
                         "--render-size", "96",
                         "--batch-size", "1", "--claim-size", "2", "--device", "cpu"], desk)
        assert submitted.code == 0 and len(submitted.out.split()) == 2, submitted
        deadline = time.monotonic() + 300
        while len(results(engine, 96)) < 2:
            assert time.monotonic() < deadline, "round 2 did not start"
            time.sleep(0.2)
        victims = [workers["a"].pid, *children_of(workers["a"].pid)]
        for pid in children_of(workers["a"].pid):
            try:
                os.killpg(pid, signal.SIGKILL)  # the Prefect worker and the flow run it started
            except ProcessLookupError:
                pass
        workers["a"].signal(signal.SIGKILL)
        while time.monotonic() < deadline and set(results(engine, 96)) != todo:
            time.sleep(0.5)
        second = results(engine, 96)
        assert set(second) == todo and all(len(v) == 1 for v in second.values()), (len(second), len(todo))
        assert not any(alive(p) for p in victims)
    finally:
        for w in workers.values():
            if w.proc.poll() is None:
                w.signal(signal.SIGTERM)
                w.finish(timeout=60)


def _record_of(engine, sha: str) -> int:
    with Session(engine) as s:
        return s.execute(select(RecordAsset.record_id).where(RecordAsset.asset_sha256 == sha,
                                                             RecordAsset.role == "original")).scalars().first()


# -- flow runs that end badly: said, and never waited on forever -------------------------------
TRAIN_TINY = ["--crop-size", "64", "--batch-size", "4", "--width", "16", "--min-photos", "2", "--device", "cpu"]
TRAIN_LONG = ["train", "--stage1-epochs", "100000", "--stage2-epochs", "1", *TRAIN_TINY, "--submit", "--wait",
              "--pool", "arhiva-fleet"]


@pytest.fixture(scope="module")
def fleet(prefect_server, tmp_path_factory):
    """A catalogue of its own, blobs in a folder every 'machine' reads, the flows on a pool of their
    own, and a tiny model trained on a worker; yields (desk, worker) environments and the engine."""
    name = create_database("arhiva_fleet")
    tmp = tmp_path_factory.mktemp("fleet")
    shared = {"ARHIVA_DATABASE_URL": database_url(name), "ARHIVA_BLOBS": str(tmp / "blobs"),
              "PREFECT_API_URL": prefect_server}
    desk, box = machine(tmp, "desk", shared), machine(tmp, "box", shared)
    engine = create_engine(shared["ARHIVA_DATABASE_URL"])
    try:
        assert run(["db", "upgrade"], desk).code == 0
        scans = Path(desk["HOME"]) / "fonds"
        photos(scans)
        assert run(["import", str(scans), "--collection", "fonds"], desk).code == 0
        deployed = run(["deploy", "--pool", FLEET_POOL], desk)
        assert deployed.code == 0, deployed
        with worker(box, tmp):
            trained = run(["train", "--collection", "fonds", "--stage1-epochs", "1", "--stage2-epochs", "1",
                           *TRAIN_TINY, "--submit", "--wait", "--pool", FLEET_POOL], desk, timeout=600)
            assert trained.code == 0, trained
        yield desk, box, engine, tmp
    finally:
        engine.dispose()
        drop_database(name)


FLEET_POOL = "arhiva-fleet"


class worker:
    """``arhiva worker`` on the fleet's pool for the block; stopped with SIGTERM at its end."""

    def __init__(self, env: dict[str, str], tmp: Path):
        self.bg = Background(["worker", "--pool", FLEET_POOL, "--limit", "1"], env, tmp)

    def __enter__(self) -> Background:
        return self.bg

    def __exit__(self, *exc) -> None:
        if self.bg.proc.poll() is None:
            self.bg.signal(signal.SIGTERM)
            self.bg.finish(timeout=120)


def colour_collection(env: dict[str, str], name: str, seed: int) -> None:
    folder = Path(env["HOME"]) / name
    folder.mkdir()
    for i in range(4):
        (folder / f"colour_{1920 + i}.jpg").write_bytes(jpeg_bytes(seed + i, (96, 72)))
    assert run(["import", str(folder), "--collection", name], env).code == 0


def running_training(engine) -> int | None:
    """A training run opened by a flow run (the flow run's id in its parameters), still running."""
    from catalog.models import TrainingRun
    from catalog.runs import FLOW_RUN_KEY

    with Session(engine) as s:
        rows = s.execute(select(TrainingRun.id, TrainingRun.parameters).where(TrainingRun.status == "running")).all()
    return next((rid for rid, params in rows if FLOW_RUN_KEY in params), None)


def training_status(engine, rid: int) -> tuple[str, str | None]:
    from catalog.models import TrainingRun

    with Session(engine) as s:
        return tuple(s.execute(select(TrainingRun.status, TrainingRun.error).where(TrainingRun.id == rid)).one())


def test_runs_wait_says_which_photos_failed_and_exits_1(fleet):
    desk, box, engine, tmp = fleet
    store = Path(desk["ARHIVA_BLOBS"])
    grey = sorted(expected(engine))[0]
    blob = next(store.rglob(grey))
    blob.rename(blob.with_name(blob.name + ".away"))  # a photo gone from the store
    try:
        with worker(box, tmp):
            r = run(["colorize", "--collection", "fonds", "--years", YEARS, "--runs", "1", "--wait", "--pool", FLEET_POOL,
                     "--render-size", "32", "--batch-size", "4", "--device", "cpu"], desk, timeout=600)
    finally:
        blob.with_name(blob.name + ".away").rename(blob)
    assert r.code == 1, r
    assert "partial" in r.out and "1 photo(s) could not be colorized" in r.err, r
    assert "not colorized" in r.err and grey[:12] in r.err, r


def long_training(desk, engine, tmp, collection: str):
    """``train --submit --wait`` of a training that lasts (TRAIN_LONG), once its run has started on
    a worker: the waiting command and the training run's id."""
    waiting = Background([*TRAIN_LONG[:1], "--collection", collection, *TRAIN_LONG[1:]], desk, tmp)
    return waiting, waiting.wait_for(lambda: running_training(engine), timeout=300)


def test_a_worker_stopped_with_sigterm_ends_its_flow_runs_and_wait_says_so(fleet):
    desk, box, engine, tmp = fleet
    colour_collection(desk, "stopped", 500)
    with worker(box, tmp) as w:
        waiting, rid = long_training(desk, engine, tmp, "stopped")
        time.sleep(2)  # inside the training
        w.signal(signal.SIGTERM)
        stopped = w.finish(timeout=120)
    assert stopped.code == 143 and "1 flow run(s) running here asked to stop" in stopped.err, stopped
    assert "stopped and reported" in stopped.err, stopped
    ended = waiting.finish(timeout=120)  # the wait ends with the flow run
    assert ended.code == 1 and "CRASHED" in ended.out, str(ended)
    assert training_status(engine, rid)[0] == "cancelled", (training_status(engine, rid), str(stopped), str(ended))
    assert f"training run {rid} cancelled" in ended.err, ended


def test_a_killed_worker_does_not_leave_wait_hanging(fleet):
    desk, box, engine, tmp = fleet
    colour_collection(desk, "killed", 600)
    with worker(box, tmp) as w:
        waiting, rid = long_training(desk, engine, tmp, "killed")
        tree, todo = [], [w.pid]
        while todo:  # the worker, the Prefect worker, the flow run's process (a session of its own), its children
            tree.append(todo.pop())
            todo += children_of(tree[-1])
        for pid in tree:
            os.kill(pid, signal.SIGKILL)  # no word from any of them
        w.finish(timeout=30)
    ended = waiting.finish(timeout=120)
    assert ended.code == 1 and "CRASHED" in ended.out and "process vanished" in ended.text, str(ended)
    status, error = training_status(engine, rid)
    assert status == "failed" and "process vanished" in error


def test_a_flow_run_is_gone_only_when_its_catalogue_run_says_so(env):
    """Across machines the catalogue's heartbeat decides: a flow run whose run stopped beating is
    gone; one still beating, with no run yet, or whose runs ended (its flow may work on after
    them) is not."""
    from sqlalchemy import text

    from catalog.models import TrainingRun
    from catalog.runs import FLOW_RUN_KEY
    from flows.deploy import gone

    def row(flow_run: str, quiet_s: int, status: str = "running") -> None:
        with Session(env) as s, s.begin():
            r = TrainingRun(agent="prefect:train", code_version="t", parameters={FLOW_RUN_KEY: flow_run},
                            owner_host="another-machine", owner_pid=1, status=status)
            s.add(r)
            s.flush()
            s.execute(text("UPDATE training_runs SET heartbeat_at = now() - make_interval(secs => :q), "
                           "ended_at = CASE WHEN status = 'running' THEN NULL ELSE now() - make_interval(secs => :q) "
                           "END WHERE id = :id"), {"q": quiet_s, "id": r.id})

    row("silent", 120)
    row("beating", 5)
    row("ended", 120, status="succeeded")
    found = gone(["silent", "beating", "ended", "not-started"], stale_after_s=60)
    assert set(found) == {"silent"}, found  # "ended": its flow may work on after its run
    assert "no heartbeat from another-machine" in found["silent"]
    assert gone(["beating"], stale_after_s=600) == {}


def test_serve_with_a_pool_leaves_the_schedules_to_its_workers(prefect_server, tmp_path):
    env = machine(tmp_path, "desk", {"PREFECT_API_URL": prefect_server})
    path = tmp_path / "schedules.toml"
    path.write_text('[[colorize]]\nname = "colorize-nightly"\ncron = "30 3 * * *"\ncollection = "fonds"\n')
    r = run(["serve", "--config", str(path), "--pool", "arhiva-cron"], env)
    assert r.code == 0 and "the pool's workers" in r.err, r
    with urllib.request.urlopen(f"{prefect_server}/deployments/name/colorize/colorize-nightly", timeout=10) as resp:
        d = json.loads(resp.read())
    assert d["work_pool_name"] == "arhiva-cron" and d["schedules"][0]["schedule"]["cron"] == "30 3 * * *"
    assert d["entrypoint"] == "flows.colorize.colorize_flow"  # the installed package's flow, as `deploy` registers


def test_each_pool_keeps_its_own_deployments(prefect_server, tmp_path):
    """A CPU pool and a GPU pool: deploying to one no longer moves the other's deployments to it,
    and the hint to start a worker can be pasted into a shell as it is."""
    from urllib.parse import quote

    env = machine(tmp_path, "desk", {"PREFECT_API_URL": prefect_server})
    for pool, hint in (("cpu box", "arhiva worker --pool 'cpu box'"), ("gpu", "arhiva worker --pool gpu")):
        r = run(["deploy", "--pool", pool], env)
        assert r.code == 0 and f"colorize/colorize-{pool}" in r.out and hint in r.err, r
    for pool in ("cpu box", "gpu"):
        with urllib.request.urlopen(f"{prefect_server}/deployments/name/colorize/{quote(f'colorize-{pool}')}",
                                    timeout=10) as resp:
            assert json.loads(resp.read())["work_pool_name"] == pool
    r = run(["colorize", "-c", "x", "--runs", "1", "--pool", "nowhere"], env)
    assert r.code != 0 and "arhiva deploy --pool nowhere" in r.err, r


@pytest.mark.parametrize("args, api, words", [
    (["deploy"], "http://127.0.0.1:{port}/api", ["http://127.0.0.1:", "PREFECT_API_URL", "does not answer"]),
    (["colorize", "-c", "x", "--runs", "1"], "not a url", ["PREFECT_API_URL='not a url'", "is not the URL"]),
    (["deploy", "--pool", ""], "http://127.0.0.1:{port}/api", ["a work pool needs a name"]),
    (["deploy", "--pool", "a/b"], "http://127.0.0.1:{port}/api", ["cannot hold /"]),
    (["colorize", "-c", "x", "--wait"], None, ["--wait", "--runs N"]),
    (["train", "-c", "x", "--wait"], None, ["--wait", "--submit"]),
    (["colorize", "-c", "x", "--pool", "gpu"], None, ["--pool", "--runs N"]),
])
def test_pool_commands_say_what_is_wrong(tmp_path, args, api, words):
    shared = {"PREFECT_API_URL": api.format(port=free_ports(1)[0])} if api else {}
    r = run(args, machine(tmp_path, "desk", shared))
    assert r.code == 2 and "Traceback" not in r.err, r
    for w in words:
        assert w in r.err, r
