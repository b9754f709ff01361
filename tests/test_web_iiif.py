"""IIIF Presentation 3 manifests: validated against the v3 shape, images that resolve, rights rules."""
from __future__ import annotations

import copy
import io

import jsonschema
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from catalog.assets import get_store, link_asset, register_image
from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import Record
from catalog.web import create_app
from tests.web_catalogue import scene, web_catalogue_fixture  # noqa: F401  (the web_catalogue fixture)

CONTEXT = "http://iiif.io/api/presentation/3/context.json"

# The parts of the Presentation 3 specification a manifest of ours uses, as JSON Schema
# (https://iiif.io/api/presentation/3.0/): language maps, Manifest, Canvas, AnnotationPage,
# painting Annotation, Image and Choice bodies, rights, requiredStatement, homepage, thumbnail.
LANG_MAP = {"type": "object", "minProperties": 1, "additionalProperties": {"type": "array", "minItems": 1,
                                                                           "items": {"type": "string"}}}
HTTP_URI = {"type": "string", "pattern": "^https?://"}
LABEL_VALUE = {"type": "object", "required": ["label", "value"], "additionalProperties": False,
               "properties": {"label": LANG_MAP, "value": LANG_MAP}}
IMAGE = {"type": "object", "required": ["id", "type", "format"],
         "properties": {"id": HTTP_URI, "type": {"const": "Image"}, "format": {"type": "string", "pattern": "^image/"},
                        "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
                        "label": LANG_MAP},
         "dependentRequired": {"width": ["height"], "height": ["width"]}}
CHOICE = {"type": "object", "required": ["type", "items"],
          "properties": {"type": {"const": "Choice"}, "items": {"type": "array", "minItems": 2, "items": IMAGE}}}
ANNOTATION = {"type": "object", "required": ["id", "type", "motivation", "body", "target"],
              "properties": {"id": HTTP_URI, "type": {"const": "Annotation"}, "motivation": {"const": "painting"},
                             "body": {"oneOf": [IMAGE, CHOICE]}, "target": HTTP_URI}}
PAGE = {"type": "object", "required": ["id", "type", "items"],
        "properties": {"id": HTTP_URI, "type": {"const": "AnnotationPage"},
                       "items": {"type": "array", "minItems": 1, "items": ANNOTATION}}}
CANVAS = {"type": "object", "required": ["id", "type", "width", "height", "items"],
          "properties": {"id": HTTP_URI, "type": {"const": "Canvas"}, "label": LANG_MAP,
                         "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
                         "items": {"type": "array", "minItems": 1, "items": PAGE}}}
MANIFEST = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["@context", "id", "type", "label", "items"],
    "properties": {
        "@context": {"anyOf": [{"const": CONTEXT}, {"type": "array", "contains": {"const": CONTEXT}}]},
        "id": HTTP_URI, "type": {"const": "Manifest"}, "label": LANG_MAP, "summary": LANG_MAP,
        "metadata": {"type": "array", "items": LABEL_VALUE},
        "requiredStatement": LABEL_VALUE,
        "rights": {"type": "string",
                   "pattern": r"^http://(creativecommons\.org/(licenses|publicdomain)/|rightsstatements\.org/vocab/)"},
        "thumbnail": {"type": "array", "items": IMAGE},
        "homepage": {"type": "array", "items": {"type": "object", "required": ["id", "type", "label"],
                                                "properties": {"id": HTTP_URI, "type": {"const": "Text"},
                                                               "label": LANG_MAP, "format": {"type": "string"}}}},
        "items": {"type": "array", "minItems": 1, "items": CANVAS},
    },
}


@pytest.fixture()
def client(web_catalogue, engine):
    with TestClient(create_app(engine)) as c:
        yield c


def manifest(client, record_id):
    r = client.get(f"/iiif/records/{record_id}/manifest")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/ld+json")
    assert r.headers["access-control-allow-origin"] == "*"
    body = r.json()
    jsonschema.Draft202012Validator(MANIFEST).validate(body)
    return body


def painting_body(m):
    return m["items"][0]["items"][0]["items"][0]["body"]


def test_colorized_record_offers_original_and_colorized_as_a_choice(client, web_catalogue):
    cat = web_catalogue
    m = manifest(client, cat.ids["cat-1935"])
    body = painting_body(m)
    assert body["type"] == "Choice"
    original, colorized = body["items"]
    assert original["id"].endswith(f"/assets/{cat.original}") and original["label"] == {"en": ["Original"]}
    assert colorized["id"].endswith(f"/assets/{cat.colorized}")
    assert colorized["label"] == {"en": ["Colorized (unet-r18-2026-06)"]}
    canvas = m["items"][0]
    assert (canvas["width"], canvas["height"]) == (original["width"], original["height"]) == (480, 360)
    assert m["items"][0]["items"][0]["items"][0]["target"] == canvas["id"]
    assert m["rights"] == "http://creativecommons.org/licenses/by/4.0/"
    assert m["requiredStatement"]["value"] == {"none": ["Colecția Muzeului Național / PastVu"]}
    assert m["id"] == f"http://testserver/iiif/records/{cat.ids['cat-1935']}/manifest"
    assert {h["id"] for h in m["homepage"]} == {f"http://testserver/records/{cat.ids['cat-1935']}",
                                                 "https://pastvu.com/p/1001"}
    labels = {row["label"]["en"][0]: row["value"]["none"][0] for row in m["metadata"]}
    assert labels["Date"] == "circa 1935" and labels["Years"] == "1935"
    for img in (original, colorized, *m["thumbnail"]):  # every image resolves, in the format it claims
        r = client.get(img["id"])
        assert r.status_code == 200 and r.headers["content-type"] == img["format"]
        if "width" in img:
            assert Image.open(io.BytesIO(r.content)).size == (img["width"], img["height"])


def test_plain_record_has_a_single_image_and_rights_only_for_uris(client, web_catalogue):
    cat = web_catalogue
    m = manifest(client, cat.ids["str-20s"])  # licence "Public domain": text, not a URI
    assert painting_body(m)["type"] == "Image" and "rights" not in m and "requiredStatement" not in m
    assert manifest(client, cat.ids["gara-1899"])["rights"] == "http://rightsstatements.org/vocab/NoC-US/1.0/"
    xss = manifest(client, cat.ids["xss"])  # a javascript: URL is no homepage; text is kept as data
    assert all(h["id"].startswith("http") for h in xss["homepage"]) and len(xss["homepage"]) == 1
    assert xss["label"]["none"][0].startswith("<script>")  # JSON carries text as is; pages escape it
    # the homepage's label is the same plain text (no language claimed; a trailing space keeps a
    # viewer from reading it as HTML), not the title as "en" HTML
    assert xss["homepage"][0]["label"] == xss["label"] and xss["label"]["none"][0].endswith("</b> ")


def test_records_without_images_and_unknown_records_give_404(client, web_catalogue):
    r = client.get(f"/iiif/records/{web_catalogue.ids['undated']}/manifest")
    assert r.status_code == 404 and "no original image" in r.json()["detail"]
    assert client.get("/iiif/records/987654/manifest").status_code == 404
    assert client.get("/iiif/records/x/manifest").status_code == 422


def test_tiff_originals_are_given_as_a_jpeg_derivative(client, engine):
    buf = io.BytesIO()
    scene(3, (2000, 1500)).save(buf, "TIFF")
    with session_scope(engine) as s:
        src = get_or_create_source(s, "tiffs", "folder")
        rid = upsert_records(s, src.id, [RecordIn("t1", title="A TIFF scan")]).ids["t1"]
        tif = register_image(s, get_store(), buf.getvalue())
        link_asset(s, rid, tif.sha256, "original")
    try:
        body = painting_body(manifest(client, rid))
        assert body["format"] == "image/jpeg" and body["id"].endswith(f"/assets/{tif.sha256}/thumb/1600")
        assert (body["width"], body["height"]) == (1600, 1200)
        r = client.get(body["id"])
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (1600, 1200)
    finally:
        with session_scope(engine) as s:
            s.execute(update(Record).where(Record.id == rid).values(status="withdrawn"))


def test_the_shape_check_catches_broken_manifests(client, web_catalogue):
    good = manifest(client, web_catalogue.ids["cat-1935"])
    for breakage in (lambda m: m.pop("items"), lambda m: m.update(type="Collection"),
                     lambda m: m["items"][0].pop("width"), lambda m: m.update(label="not a language map"),
                     lambda m: painting_body(m)["items"].pop(), lambda m: m.update(rights="Public domain")):
        broken = copy.deepcopy(good)
        breakage(broken)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(MANIFEST).validate(broken)
