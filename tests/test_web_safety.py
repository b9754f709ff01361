"""``arhiva web`` against hostile text and clients: IIIF text stays text, manifests are advertised only
where they exist and answer viewers on other origins, tokens compare as bytes, links use the
configured public URL."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from catalog.settings import Settings
from catalog.web import create_app
from tests.web_catalogue import web_catalogue_fixture  # noqa: F401  (the web_catalogue fixture)


@pytest.fixture()
def client(web_catalogue, engine):
    with TestClient(create_app(engine)) as c:
        yield c


def _texts(manifest: dict) -> list[str]:
    """Every string a viewer may render as HTML (label, summary, metadata and requiredStatement values)."""
    out = [v for vals in manifest["label"].values() for v in vals]
    out += [v for vals in manifest.get("summary", {}).values() for v in vals]
    for row in manifest["metadata"] + ([manifest["requiredStatement"]] if "requiredStatement" in manifest else []):
        out += [v for vals in row["value"].values() for v in vals]
    return out


def test_harvested_text_that_looks_like_html_stays_plain_text_in_manifests(client, web_catalogue):
    m = client.get(f"/iiif/records/{web_catalogue.ids['xss']}/manifest").json()
    texts = _texts(m)
    assert "<i>Cahul</i> " in texts  # the text itself is kept, with the specification's trailing space
    assert any(t.startswith("<img src=x onerror") for t in texts)
    for t in texts:  # IIIF: a value is HTML only when it starts with '<' and ends with '>'
        assert not (t.startswith("<") and t.endswith(">")), t


def test_records_without_an_image_advertise_no_manifest(client, web_catalogue):
    ids = web_catalogue.ids
    plain = client.get(f"/api/records/{ids['undated']}").json()
    assert "manifest" not in plain["links"] and plain["links"]["self"].endswith(f"/api/records/{ids['undated']}")
    assert client.get(f"/api/records/{ids['soroca']}").json()["links"]["manifest"].endswith(
        f"/iiif/records/{ids['soroca']}/manifest")
    listed = client.get("/api/records", params={"limit": 100}).json()["items"]
    for item in listed:
        if "manifest" in item["links"]:
            assert client.get(item["links"]["manifest"]).status_code == 200
    assert any("manifest" not in item["links"] for item in listed)
    page = client.get(f"/records/{ids['undated']}", headers={"accept": "text/html"}).text
    assert "IIIF manifest" not in page
    assert "IIIF manifest" in client.get(f"/records/{ids['soroca']}", headers={"accept": "text/html"}).text


def test_manifests_and_files_answer_other_origins_errors_and_preflights_included(client, web_catalogue):
    rid = web_catalogue.ids["cat-1935"]
    for method, path, status in [("GET", "/iiif/records/987654/manifest", 404),
                                 ("GET", f"/iiif/records/{web_catalogue.ids['undated']}/manifest", 404),
                                 ("GET", "/iiif/records/x/manifest", 422),
                                 ("OPTIONS", f"/iiif/records/{rid}/manifest", 204),
                                 ("HEAD", f"/iiif/records/{rid}/manifest", 200),
                                 ("GET", f"/assets/{'0' * 64}", 404),
                                 ("HEAD", f"/assets/{web_catalogue.original}", 200)]:
        r = client.request(method, path, headers={"Origin": "https://viewer.example",
                                                  "Access-Control-Request-Method": "GET"})
        assert r.status_code == status, (method, path, r.text)
        assert r.headers["access-control-allow-origin"] == "*", (method, path)
        if method == "HEAD":
            assert r.content == b"" and int(r.headers["content-length"]) > 0
        if method == "OPTIONS":
            assert "GET" in r.headers["access-control-allow-methods"]


def test_a_non_ascii_token_matches(web_catalogue, engine):
    token = "parolă-ключ"
    with TestClient(create_app(engine, Settings(web_token=token))) as c:
        url = "/api/collections/token-check/records"
        body = {"record_ids": [web_catalogue.ids["soroca"]]}
        wrong = c.post(url, json=body, headers={"Authorization": "Bearer parola-kluch"})
        assert wrong.status_code == 401
        right = c.post(url, json=body, headers={"Authorization": f"Bearer {token}".encode()})
        assert right.status_code in (200, 201, 204), right.text
        gone = c.delete(f"{url}/{web_catalogue.ids['soroca']}",
                        headers={"Authorization": f"Bearer {token}".encode()})
        assert gone.status_code in (200, 204), gone.text


def test_absolute_links_use_the_public_url_not_the_host_header(web_catalogue, engine):
    public = "https://photos.example/arhiva/"
    with TestClient(create_app(engine, Settings(public_url=public))) as c:
        evil = {"host": "evil.example"}
        page = c.get("/api/records", params={"limit": 2, "offset": 2}, headers=evil).json()
        links = [page["next"], page["previous"]] + [v for it in page["items"] for v in it["links"].values()]
        links += [a[k] for it in page["items"] for a in it["assets"] for k in ("url", "thumbnail_url")]
        assert links and all(link.startswith(public) for link in links), links
        assert page["next"].startswith(f"{public}api/records?") and "after=" in page["next"]  # a cursor
        m = c.get(f"/iiif/records/{web_catalogue.ids['cat-1935']}/manifest", headers=evil).json()
        assert m["id"] == f"{public}iiif/records/{web_catalogue.ids['cat-1935']}/manifest"
        assert "evil.example" not in str(m)


def test_files_and_thumbnail_errors_are_documented_as_served(client, web_catalogue):
    spec = client.get("/openapi.json").json()
    asset = spec["paths"]["/assets/{sha256}"]["get"]["responses"]["200"]["content"]
    assert {"image/jpeg", "image/png", "image/tiff"} <= set(asset)
    thumb = spec["paths"]["/assets/{sha256}/thumb/{size}"]["get"]
    assert thumb["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "HTTPValidationError")
    r = client.get(f"/assets/{web_catalogue.original}/thumb/123")
    assert r.status_code == 422 and isinstance(r.json()["detail"], list)
    assert r.json()["detail"][0]["loc"] == ["path", "size"]
