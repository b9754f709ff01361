"""The JSON API over a real PostgreSQL catalogue: search, detail, assets, runs, models, safety."""
from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import delete, func, select, text, update

from catalog.db import session_scope
from catalog.models import Asset, Collection, CollectionMember, Record
from catalog.settings import Settings, get_settings
from catalog.web import create_app
from tests.web_catalogue import web_catalogue_fixture  # noqa: F401  (the web_catalogue fixture)


@pytest.fixture()
def cat(web_catalogue):
    return web_catalogue


@pytest.fixture()
def clean_db(engine):
    return engine  # the module's catalogue, not emptied


@pytest.fixture()
def client(cat, engine):
    with TestClient(create_app(engine)) as c:
        yield c


def keys(resp) -> set[str]:
    assert resp.status_code == 200, resp.text
    return {r["source_key"] for r in resp.json()["items"]}


def test_search_by_year_range_overlaps_and_counts(client, cat):
    r = client.get("/api/records", params={"year_from": 1930, "year_to": 1936})
    assert keys(r) == {"cat-1935", "soroca", "xss"}
    body = r.json()
    assert body["total"] == 3 and body["offset"] == 0 and body["next"] is None
    first = next(i for i in body["items"] if i["source_key"] == "cat-1935")
    assert first["colorized"] is True
    roles = {a["role"] for a in first["assets"]}
    assert roles == {"original", "colorized"}
    assert all(a["url"].endswith(a["sha256"]) for a in first["assets"])
    assert first["links"]["manifest"].endswith(f"/iiif/records/{first['id']}/manifest")
    assert "undated" in keys(client.get("/api/records", params={"year_from": 1900, "include_undated": True}))
    assert "undated" not in keys(client.get("/api/records", params={"year_from": 1900}))


def test_search_by_words_place_colorization_collection(client):
    assert keys(client.get("/api/records", params={"q": "catedrala chisinau"})) == {"cat-1935"}
    assert keys(client.get("/api/records", params={"q": "улица"})) == {"bender"}
    assert keys(client.get("/api/records", params={"bbox": "28.0,48.0,28.5,48.3"})) == {"soroca"}
    assert keys(client.get("/api/records", params={"colorized": True})) == {"cat-1935"}
    assert "cat-1935" not in keys(client.get("/api/records", params={"colorized": False}))
    assert len(keys(client.get("/api/records", params={"collection": "moldova", "limit": 50}))) == 9
    for param, name in (("collection", "nope"), ("source", "Pastvu")):  # a typo is an error, not nothing
        r = client.get("/api/records", params={param: name, "facets": True})
        assert r.status_code == 422 and f"no {param} named {name!r} (there are: " in r.json()["detail"][0]["msg"]
    assert keys(client.get("/api/records", params={"source": "pastvu", "year_from": 1960})) == {"bender"}


def test_pages_are_stable_and_capped(cat, clean_db):
    with TestClient(create_app(clean_db, Settings(page_size_max=4))) as c:
        r = c.get("/api/records", params={"limit": 100000})
        body = r.json()
        assert r.status_code == 200 and body["limit"] == 4 and len(body["items"]) == 4 and body["total"] == 9
        seen = [i["id"] for i in body["items"]]
        while body["next"]:
            body = c.get(body["next"]).json()
            seen += [i["id"] for i in body["items"]]
        assert seen == sorted(seen) and len(set(seen)) == 9
        assert body["previous"] is not None


def test_record_detail_with_revisions_colorizations_and_timeline(client, cat):
    r = client.get(f"/api/records/{cat.ids['cat-1935']}")
    assert r.status_code == 200
    d = r.json()
    assert d["date_text"] == "circa 1935" and (d["year_lo"], d["year_hi"]) == (1935, 1935)
    assert d["licence"] == "http://creativecommons.org/licenses/by/4.0/"
    assert d["attribution"].startswith("Colecția") and d["url"] == "https://pastvu.com/p/1001"
    assert d["collections"] == ["moldova"]
    assert [rev["revision"] for rev in d["revisions"]] == [1, 2]
    change = {c["field"]: c for c in d["revisions"][1]["changes"]}
    assert set(change) == {"title"} and change["title"]["after"].endswith("„Nașterea Domnului”")
    assert d["revisions"][1]["raw_changed"] is True
    (col,) = d["colorizations"]
    assert col["model_version"]["name"] == "unet-r18-2026-06" and col["result_sha256"] == cat.colorized
    assert col["run"]["kind"] == "colorization" and col["run"]["id"] == cat.colorization_run
    kinds = [e["kind"] for e in d["timeline"]]
    assert kinds[0] == "harvested" and {"revised", "asset", "colorized"} <= set(kinds)
    harvested = d["timeline"][0]
    assert harvested["run"] == {**harvested["run"], "kind": "crawl", "id": cat.crawl_run, "agent": "pastvu"}


def test_assets_runs_and_model_versions(client, cat):
    a = client.get(f"/api/assets/{cat.colorized}").json()
    assert a["is_colour"] is True and a["media_type"] == "image/jpeg"
    assert a["records"] == [{"record_id": cat.ids["cat-1935"], "role": "colorized"}]
    assert a["produced_by"]["model_version"]["id"] == cat.model_id
    runs = client.get("/api/runs").json()
    assert runs["total"] == 4 and {r["kind"] for r in runs["items"]} == {"crawl", "training", "colorization"}
    crawl = client.get("/api/runs", params={"kind": "crawl"}).json()
    assert crawl["total"] == 2 and all(r["source"] == "pastvu" for r in crawl["items"])
    one = client.get(f"/api/runs/colorization/{cat.colorization_run}").json()
    assert one["model_version_id"] == cat.model_id and one["stats"] == {"done": 1}
    mv = client.get(f"/api/model-versions/{cat.model_id}").json()
    assert mv["architecture"] == "unet-resnet18" and mv["colorizations"] == 1 and mv["metrics"] == {"psnr": 24.1}
    assert client.get("/api/model-versions").json()["total"] == 1
    assert client.get("/api/collections").json() == [{"name": "moldova", "description": None, "records": 9,
                                                      "records_exact": True, "records_label": "9"}]
    assert client.get("/api/sources").json()[0]["records"] == 9


def test_files_and_thumbnails_cached_as_derived_assets(client, cat, clean_db):
    f = client.get(f"/assets/{cat.original}")
    assert f.status_code == 200 and f.headers["content-type"] == "image/jpeg"
    assert f.content == get_settings().blob_root.joinpath(f"sha256/{cat.original[:2]}/{cat.original[2:4]}/"
                                                          f"{cat.original}").read_bytes()
    with session_scope(clean_db) as s:
        before = s.scalar(select(func.count()).select_from(Asset))
    t = client.get(f"/assets/{cat.original}/thumb/200")
    assert t.status_code == 200 and t.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(t.content)).size) == 200
    again = client.get(f"/assets/{cat.original}/thumb/200")
    assert again.content == t.content
    with session_scope(clean_db) as s:
        assert s.scalar(select(func.count()).select_from(Asset)) == before + 1
        src = s.get(Asset, cat.original)
        thumb = s.get(Asset, src.info["thumbnails"]["200"])
        assert thumb.info["derived_from"] == cat.original and thumb.info["max_side"] == 200
    assert client.get(f"/assets/{cat.original}/thumb/123").status_code == 422


def test_unknown_ids_give_404(client, cat):
    missing = "0" * 64
    for url in ("/api/records/987654", f"/api/assets/{missing}", "/api/runs/crawl/98765",
                "/api/model-versions/98765", "/iiif/records/987654/manifest", f"/assets/{missing}",
                f"/assets/{missing}/thumb/200"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "not found" in r.json()["detail"] or "no image" in r.json()["detail"]
    html = client.get("/records/987654", headers={"accept": "text/html"})
    assert html.status_code == 404 and "record 987654 not found" in html.text


@pytest.mark.parametrize("params, reason", [
    ({"year_from": "abc"}, "year_from"),
    ({"year_from": 1940, "year_to": 1920}, "years: 1940 is after 1920"),
    ({"year_from": 99999}, "year_from"),
    ({"bbox": "1,2,3"}, "bbox"),
    ({"bbox": "28,50,29,40"}, "bbox: latitudes"),
    ({"bbox": "nan,1,2,3"}, "bbox"),
    ({"status": "deleted"}, "status"),
    ({"colorized": "maybe"}, "colorized"),
    ({"limit": 0}, "limit"),
    ({"offset": -1}, "offset"),
    ({"q": "x" * 501}, "q"),
    ({"q": "a\x00b"}, "NUL"),
    ({"q": "catedrala " * 25}, "at most 24 words"),
    ({"collection": "a\x00"}, "NUL"),
])
def test_bad_parameters_give_422_with_the_reason(client, params, reason):
    r = client.get("/api/records", params=params)
    assert r.status_code == 422, r.text
    assert reason in r.text


def test_unknown_query_parameters_are_refused_not_ignored(client, cat):
    # a mistyped filter would otherwise answer the whole catalogue as if it were the search asked for
    r = client.get("/api/records", params={"years": "1930-1936"})
    assert r.status_code == 422, r.text
    msg = r.json()["detail"][0]["msg"]
    assert "unknown query parameter 'years'" in msg and "year_from" in msg
    r = client.get("/api/records", params={"year_form": 1930})
    assert "did you mean 'year_from'" in r.json()["detail"][0]["msg"]
    assert client.get("/api/runs", params={"status": "done"}).status_code == 422  # runs take kind, not status
    assert client.get(f"/api/records/{cat.ids['soroca']}", params={"q": "x"}).status_code == 422
    # the parameters a route takes, and a client's cache buster, are fine
    assert keys(client.get("/api/records", params={"year_from": 1930, "year_to": 1936, "_": "1733"})) == {
        "cat-1935", "soroca", "xss"}
    assert client.get("/api/runs", params={"kind": "crawl", "limit": 5}).status_code == 200
    # the HTML pages stay lenient (links from elsewhere carry tracking parameters)
    assert client.get("/?utm_source=x&utm_source=y", headers={"accept": "text/html"}).status_code == 200
    # a parameter given twice was answered for one of them, silently; both cursors, for "after"
    for path in ("/api/records", "/"):
        r = client.get(f"{path}?collection=moldova&collection=other&year_from=1&year_from=2000")
        assert r.status_code == 422 and "collection: given 2 times; give it once" in r.text, (path, r.text)
        r = client.get(path, params={"after": "100", "before": "50"})
        assert r.status_code == 422 and "give one cursor" in r.text
    # a cache buster stays the client's: not copied into the next link
    page = client.get("/api/records", params={"limit": 1, "_": "1733", "_x": "2"}).json()
    assert page["next"] and "_=" not in page["next"] and "_x" not in page["next"]


def test_head_answers_like_get_everywhere(client, cat):
    for path in ("/", f"/records/{cat.ids['soroca']}", "/api/records", f"/api/records/{cat.ids['soroca']}"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200, path  # was 405 but for /iiif and /assets
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
        assert "access-control-allow-origin" not in head.headers  # CORS stays for /iiif and /assets
    assert client.head("/api/records/999999").status_code == 404


def test_bad_ids_give_422(client):
    assert client.get("/api/records/abc").status_code == 422
    assert client.get("/api/records/0").status_code == 422
    assert client.get(f"/api/records/{2**70}").status_code == 422
    assert client.get("/api/assets/NOTASHA").status_code == 422
    assert client.get("/api/runs/harvest/1").status_code == 422


def test_asset_keys_cannot_escape_the_blob_store(client, cat, clean_db):
    for url in ("/assets/../../etc/passwd", "/assets/..%2F..%2Fetc%2Fpasswd", "/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                "/assets/sha256%2Fab%2Fcd%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/static/..%2F..%2Fdb.py",
                "/static/../../catalog/db.py"):
        r = client.get(url)
        assert r.status_code in (404, 422), url
        assert "root:" not in r.text and "sessionmaker" not in r.text
    with session_scope(clean_db) as s:  # a tampered key in the database is refused too
        key = s.get(Asset, cat.original).blob_key
        s.execute(update(Asset).where(Asset.sha256 == cat.original).values(blob_key="../../../../etc/passwd"))
    try:
        assert client.get(f"/assets/{cat.original}").status_code == 404
    finally:
        with session_scope(clean_db) as s:
            s.execute(update(Asset).where(Asset.sha256 == cat.original).values(blob_key=key))


def test_only_images_are_served(client, clean_db):
    with session_scope(clean_db) as s:
        ckpt = s.execute(select(Asset).where(Asset.media_type == "application/octet-stream")).scalar_one()
    assert client.get(f"/api/assets/{ckpt.sha256}").status_code == 200  # described
    assert client.get(f"/assets/{ckpt.sha256}").status_code == 404  # never served


def test_read_only_without_a_token(client, cat):
    spec = client.get("/openapi.json").json()
    methods = {m for path in spec["paths"].values() for m in path}
    assert methods == {"get"}
    r = client.post("/api/collections/moldova/records", json={"record_ids": [cat.ids["soroca"]]})
    assert r.status_code in (404, 405)
    assert client.delete(f"/api/collections/moldova/records/{cat.ids['soroca']}").status_code in (404, 405)


def test_writing_needs_the_configured_token(cat, clean_db):
    app = create_app(clean_db, Settings(web_token="s3cret-token"))
    ids = [cat.ids["soroca"], cat.ids["balti"]]
    with TestClient(app) as c:
        url = "/api/collections/favourites/records"
        assert c.post(url, json={"record_ids": ids}).status_code == 401
        assert c.post(url, json={"record_ids": ids}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        auth = {"Authorization": "Bearer s3cret-token"}
        r = c.post(url, json={"record_ids": ids}, headers=auth)
        assert r.status_code == 200 and r.json() == {"name": "favourites", "description": None, "records": 2,
                                                  "records_exact": True, "records_label": "2"}
        assert c.post(url, json={"record_ids": [987654]}, headers=auth).status_code == 404
        assert c.post(url, json={"record_ids": []}, headers=auth).status_code == 422
        assert keys(c.get("/api/records", params={"collection": "favourites"})) == {"soroca", "balti"}
        gone = c.delete(f"{url}/{ids[0]}", headers=auth)
        assert gone.status_code == 204
        assert c.delete(f"{url}/{ids[0]}", headers=auth).status_code == 404
        assert c.delete(f"{url}/{ids[1]}").status_code == 401
        for name in ("%20", "%09", "%C2%A0", "%E2%80%8B", "gara%20", "gara%E2%80%8B"):  # spaces, a zero-width space: was a 500
            r = c.post(f"/api/collections/{name}/records", json={"record_ids": ids}, headers=auth)
            assert r.status_code == 422 and "collection name" in r.json()["detail"][0]["msg"], (name, r.text)
        r = c.delete(f"/api/collections/nope/records/{ids[1]}", headers=auth)
        assert r.status_code == 404 and r.json()["detail"] == "no collection 'nope'"
    with session_scope(clean_db) as s:
        assert s.scalar(select(func.count()).select_from(CollectionMember)
                        .where(CollectionMember.record_id == ids[1])) == 2
        s.execute(delete(Collection).where(Collection.name == "favourites"))


@pytest.mark.parametrize("name", ["albume/1930", "a/records", "x/records/5", "/început", "sfârșit/"])
def test_membership_routes_reach_a_collection_whose_name_has_a_slash(cat, clean_db, name):
    """A name with ``/`` (a search finds it) is reached by the membership calls too, sent
    percent-encoded as a client sends a path segment, or with its slashes as they are; the name
    is whatever comes before the route's last ``/records`` (and record id), so a name that
    itself holds ``/records`` stays whole."""
    from urllib.parse import quote

    ids = [cat.ids["soroca"], cat.ids["balti"]]
    auth = {"Authorization": "Bearer tok"}
    with TestClient(create_app(clean_db, Settings(web_token="tok"))) as c:
        try:
            r = c.post(f"/api/collections/{quote(name, safe='')}/records", json={"record_ids": ids}, headers=auth)
            assert r.status_code == 200, r.text
            assert (r.json()["name"], r.json()["records"]) == (name, 2)
            assert keys(c.get("/api/records", params={"collection": name})) == {"soroca", "balti"}
            r = c.delete(f"/api/collections/{quote(name, safe='')}/records/{ids[0]}", headers=auth)
            assert r.status_code == 204, r.text
            r = c.delete(f"/api/collections/{name}/records/{ids[1]}", headers=auth)  # slashes as they are
            assert r.status_code == 204, r.text
            assert keys(c.get("/api/records", params={"collection": name})) == set()
            r = c.post(f"/api/collections/{name}/records", json={"record_ids": ids[:1]}, headers=auth)
            assert r.status_code == 200 and r.json()["name"] == name, r.text
            r = c.delete(f"/api/collections/{quote(name, safe='')}/records/{ids[1]}", headers=auth)
            assert r.status_code == 404 and r.json()["detail"] == f"record {ids[1]} is not in collection {name!r}"
        finally:
            with session_scope(clean_db) as s:
                s.execute(delete(Collection).where(Collection.name == name))


def test_reading_routes_cannot_write(client, clean_db):
    """The request session is a read-only transaction."""
    from catalog.web.deps import read_session

    class Req:
        app = client.app

    gen = read_session(Req())
    session = next(gen)
    with pytest.raises(Exception, match="read-only"):
        session.execute(text("UPDATE records SET title = 'x'"))
    gen.close()


def test_harvested_html_is_escaped(client, cat):
    page = client.get(f"/records/{cat.ids['xss']}").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<i>Cahul</i>" not in page and 'href="javascript:' not in page
    grid = client.get("/", params={"q": "titlu"}).text
    assert "<script>alert" not in grid and "&lt;b&gt;HTML&lt;/b&gt;" in grid
    echoed = client.get("/", params={"q": "<script>alert(9)</script>"}).text
    assert "<script>alert(9)" not in echoed
    csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp


def test_search_page_shows_count_grid_and_errors(client, cat):
    r = client.get("/", params={"year_from": 1930, "year_to": 1936})
    assert r.status_code == 200 and 'id="result-count"' in r.text and "<strong>3</strong> records" in r.text
    assert r.text.count('class="card"') == 3 and "colorized</span>" in r.text
    bad = client.get("/", params={"year_from": 1940, "year_to": 1930})
    assert bad.status_code == 422 and "years: 1940 is after 1930" in bad.text
    assert client.get("/", params={"page": "x"}).status_code == 422
    assert client.get("/", params={"page": 417}).status_code == 200  # offset 9,984: the deepest by number
    deep = client.get("/", params={"page": 418})  # said "between 1 and 416666", then refused as an offset
    assert deep.status_code == 422 and "page: must be between 1 and 417" in deep.text and "next" in deep.text
    typo = client.get("/", params={"collection": "moldva"})  # an edited link: says so, not "0 records"
    assert typo.status_code == 422 and "no collection named" in typo.text and "moldova" in typo.text
    rec = client.get(f"/records/{cat.ids['cat-1935']}").text
    for text_ in ("circa 1935", "Chișinău, Piața Catedralei", "creativecommons.org/licenses/by/4.0/",
                  "Colecția Muzeului Național", "https://pastvu.com/p/1001", "unet-r18-2026-06", "Revision 2",
                  'type="range"', cat.colorized, cat.original):
        assert text_ in rec, text_


def test_cli_has_the_web_command():
    from typer.testing import CliRunner

    from flows.cli import app

    r = CliRunner().invoke(app, ["web", "--help"])
    assert r.exit_code == 0 and "--host" in r.output and "--port" in r.output


def test_record_pages_without_image_or_colorization(client, cat, clean_db):
    undated = client.get(f"/records/{cat.ids['undated']}")
    assert undated.status_code == 200 and "No image stored" in undated.text and "undated" in undated.text
    plain = client.get(f"/records/{cat.ids['soroca']}").text
    assert "not colorized yet" in plain and 'type="range"' not in plain
    with session_scope(clean_db) as s:
        s.execute(update(Record).where(Record.id == cat.ids["orhei"]).values(status="withdrawn",
                                                                           withdrawn_at=func.now()))
    try:
        page = client.get(f"/records/{cat.ids['orhei']}").text
        assert "This record is withdrawn" in page and "Withdrawn: gone from the source" in page
        assert "orhei" not in keys(client.get("/api/records", params={"limit": 50}))
        assert keys(client.get("/api/records", params={"status": "withdrawn"})) == {"orhei"}
    finally:
        with session_scope(clean_db) as s:
            s.execute(update(Record).where(Record.id == cat.ids["orhei"]).values(status="active", withdrawn_at=None))


def test_the_web_package_imports_no_torch_scrapy_or_prefect():
    import subprocess
    import sys

    code = ("import sys, catalog.web.app, catalog.web.api, catalog.web.pages, catalog.web.files; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'scrapy', 'prefect', 'twisted'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
