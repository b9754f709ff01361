"""Extraction of shapes other projects and institutions publish (tests/fixtures/archive/wild, README there)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from catalog.licences import pick_licences
from crawlers.archive import iiif, oai
from crawlers.archive.found import merge
from crawlers.archive.pages import parse_page

WILD = Path(__file__).parent / "fixtures" / "archive" / "wild"
W = "https://wild.example"
OAI_URL = f"{W}/oai?verb=ListRecords&metadataPrefix=oai_dc"


def doc(name: str):
    return json.loads((WILD / name).read_text(encoding="utf-8"))


def page(name: str, url: str):
    result = parse_page((WILD / name).read_text(encoding="utf-8"), url)
    assert len(result.views) == 1, [v.title for v in result.views]
    return result.views[0]


def oai_page(token: str = "page2"):
    body = (WILD / "oai_listrecords_page1.xml").read_bytes().replace(b"{token}", token.encode())
    return oai.parse_oai(body, OAI_URL)


# -- IIIF ------------------------------------------------------------------------------------------

def test_iiif_v2_manifest_without_context_is_read():
    m = doc("iiif_v2_no_context.json")
    assert iiif.iiif_version(m) == 2 and iiif.is_manifest(m)
    v = iiif.parse_manifest(m, f"{W}/iiif/2/ms-0042/manifest")
    assert v.title == "Harvest festival in the village square"
    assert v.date_text == "1949-05"  # "Date Issued"
    assert v.image_url == f"{W}/iiif/image/ms-0042-r/full/full/0/default.jpg"
    rec = merge([v]).record
    assert (rec.year_lo, rec.year_hi) == (1949, 1949)
    # the licence list keeps its order; the CC licence beats the terms-of-use page and the free text
    assert rec.licence == "http://creativecommons.org/licenses/by-nc/4.0/"
    assert rec.extra["licences"] == ["http://creativecommons.org/licenses/by-nc/4.0/", f"{W}/about/terms-of-use"]
    assert "Reuse permitted for non-commercial purposes" in rec.rights  # free text kept as rights
    assert rec.attribution == "Provided by the Wild Example Library, Special Collections"


def test_iiif_date_of_origin_in_english_and_attribution_that_is_a_licence():
    v = iiif.parse_manifest(doc("iiif_v2_date_of_origin.json"), f"{W}/iiif/2/cod-0611/manifest.json")
    assert v.date_text == "zweite Hälfte des 19. Jahrhunderts"  # "Date of Origin (German)", first of the two
    rec = merge([v]).record
    assert (rec.year_lo, rec.year_hi) == (1850, 1899)
    assert rec.licence == "http://creativecommons.org/publicdomain/mark/1.0/" and rec.attribution is None


def test_iiif_navdate_and_date_statement():
    m = doc("iiif_v3_navdate.json")
    v = iiif.parse_manifest(m, m["id"])
    assert v.date_text == "1949-01-01:T00:00:00Z"
    rec = merge([v]).record
    assert (rec.year_lo, rec.year_hi) == (1949, 1949)
    assert rec.licence == "http://rightsstatements.org/vocab/NoC-US/1.0/"  # requiredStatement held the URI
    stated = copy.deepcopy(m)
    stated["metadata"].append({"label": {"en": ["Date Statement"]}, "value": {"en": ["ca. 1885"]}})
    assert iiif.parse_manifest(stated, m["id"]).date_text == "ca. 1885"  # a metadata date beats navDate


# -- OAI-PMH ---------------------------------------------------------------------------------------

def test_oai_creators_split_and_deduplicated():
    levee, market = oai_page().records
    assert levee.author == "Polk, Lewis; Mosley, Richard"
    assert market.author == "Studio Foto Modern; Ionescu, Petru"


def test_oai_free_text_rights_and_open_access_are_not_licences():
    levee, market = oai_page().records
    assert levee.date_text == "circa June 1946"  # the accession timestamps are not the photo's date
    rec = merge([levee]).record
    assert rec.licence is None and "openAccess" in rec.rights and "Special Collections desk" in rec.rights
    assert merge([market]).record.licence is None
    assert pick_licences(["openAccess", "info:eu-repo/semantics/openAccess", "Domeniu public"]) == ["Domeniu public"]
    third = oai.parse_oai((WILD / "oai_listrecords_page2.xml").read_bytes().replace(b"{token}", b"t"), OAI_URL)
    assert merge(third.records).record.licence == "http://creativecommons.org/licenses/by/4.0/"


def test_oai_payload_does_not_depend_on_the_page_it_came_on():
    first = merge([oai_page("page2-1").records[0]]).record
    again = oai.parse_oai((WILD / "oai_listrecords_page1.xml").read_bytes().replace(b"{token}", b"page2-9"),
                          f"{W}/oai?verb=ListRecords&resumptionToken=page2-8")
    second = merge([again.records[0]]).record
    assert first.payload_hash() == second.payload_hash()
    assert list(first.raw) == [f"oai:{W}/oai?verb=GetRecord&metadataPrefix=oai_dc&identifier=oai%3Awild.example%3A10.7%2F101"]


# -- item pages ------------------------------------------------------------------------------------

def test_omeka_classic_item_page():
    v = page("omeka_classic_item.html", f"{W}/items/show/42")
    assert v.title == "Ferry crossing at the river mill" and v.date_text == "c. 1925"
    assert v.author == "Brown, Walter; Brown & Sons Studio" and v.identifier == "LH-PH-0042"
    assert v.image_url == f"{W}/files/original/9b1f0c2d3e4a5b6c7d8e9f00a1b2c3d4.jpg"
    rec = merge([v]).record
    assert (rec.year_lo, rec.year_hi, rec.licence) == (1925, 1925, "Public domain")


def test_open_graph_only_page_gives_a_record_without_a_date():
    v = page("og_only_photo.html", f"{W}/photo/8841")
    assert v.title == "Tram depot yard, looking north"
    assert v.image_url == f"{W}/media/photos/8841/large.jpg" and v.source_url == f"{W}/photo/8841"
    assert v.date_text is None  # article:published_time dates the web page, not the photograph


def test_contentdm_item_pages():
    v = page("contentdm7_item.html", f"{W}/digital/collection/photos/id/117")
    assert (v.title, v.date_text, v.author) == ("Bandstand in the park, Sunday concert", "1938-06", "Hale, Edith")
    assert "the mayor's car" in v.description  # \\x27 in the page's JavaScript string
    assert v.image_url == f"{W}/digital/iiif/photos/117/full/full/0/default.jpg"
    assert merge([v]).record.licence == "http://rightsstatements.org/vocab/NoC-US/1.0/"
    old = page("contentdm6_item.html", f"{W}/cdm/ref/collection/photos/id/52")
    assert (old.title, old.date_text) == ("Flood on Main Street", "1927?")  # not dmcreated 2012-05-02
    assert merge([old]).record.licence is None


def test_dspace_item_page():
    v = page("dspace_item.html", f"{W}/handle/10.7/77")
    assert v.date_text == "1937"  # DCTERMS.issued; dateAccepted/available are the repository's timestamps
    assert v.image_url == f"{W}/bitstream/handle/10.7/77/steps_1937.jpg?sequence=1&isAllowed=y"
    rec = merge([v]).record
    assert rec.licence == "http://creativecommons.org/licenses/by-nc/4.0/" and "Contact the archives" in rec.rights


def test_atom_description_page():
    v = page("atom_item.html", f"{W}/index.php/workers-at-the-brick-kiln")
    assert (v.title, v.date_text, v.author) == ("Workers at the brick kiln", "1934-1936", "Novák Studio")
    assert v.identifier == "WEMA F12-3-0017"
    assert v.image_url.endswith("/brick-kiln-1935.jpg")  # the linked master, not the _141 reference copy
    rec = merge([v]).record
    assert (rec.year_lo, rec.year_hi, rec.licence) == (1934, 1936, None)


def test_islandora_object_page():
    v = page("islandora_item.html", f"{W}/islandora/object/photos%3A12")
    assert (v.title, v.date_text, v.author) == ("Children at the village well", "1952", "Marin, Ana")
    assert v.image_url == f"{W}/islandora/object/photos%3A12/datastream/OBJ/view"
    assert merge([v]).record.licence == "http://rightsstatements.org/vocab/InC-EDU/1.0/"


def test_omeka_api_items_are_keyed_by_their_own_address_not_the_list_page():
    from crawlers.archive import omeka

    items = json.loads((WILD.parent / "omeka_s" / "api_items_page1.json").read_text(encoding="utf-8"))
    api = "https://colectii.memoria-chisinau.example/api/items?site_id=1&per_page=3"
    first = merge([omeka.parse_item(items[0], f"{api}&page=1")]).record
    shifted = merge([omeka.parse_item(items[0], f"{api}&page=2")]).record  # the list moved under it
    assert first.payload_hash() == shifted.payload_hash()


# -- schema.org JSON-LD with more than one node ----------------------------------------------------

def photos(name: str, url: str):
    """Every record a page makes, merged as a crawl merges them (grouped by identity)."""
    from crawlers.archive.found import Grouper

    result = parse_page((WILD / name).read_text(encoding="utf-8"), url)
    g = Grouper()
    for v in result.views:
        g.add(v)
    return result, {m.key: m for m in (merge(views) for views in g.groups())}


def test_a_photograph_and_the_fonds_it_is_part_of_make_the_photograph_s_record():
    url = f"{W}/fototeca/hotin-cetatea-40"
    v = page("jsonld_photo_in_fonds.html", url)  # the CreativeWork it isPartOf is its context, not a photo
    assert (v.title, v.date_text, v.author, v.identifier) == ("Hotin. Cetatea", "1917", "Fotograf necunoscut",
                                                               "FH-40")
    assert v.image_url == f"{W}/img/40.jpg" and v.source_url == url and v.key is None
    rec = merge([v]).record
    assert (rec.source_key, rec.year_lo, rec.year_hi) == (url, 1917, 1917)


def test_an_image_object_beside_a_collection_without_an_image_is_the_page_s_photograph():
    url = f"{W}/2020/05/moara-cosauti/"
    v = page("jsonld_yoast_image_page.html", url)  # WebPage, ImageObject, CreativeWork, Organization, …
    assert (v.title, v.date_text, v.attribution) == ("Moara de apă de la Cosăuți", "1936", "Colecția familiei Lungu")
    assert v.image_url == f"{W}/wp-content/uploads/2020/05/moara-cosauti.jpg"  # the file, not the 1024 copy
    assert v.source_url == url
    assert merge([v]).record.year_lo == 1936  # never the page's datePublished


def test_two_photographs_in_a_graph_make_one_record_each_keyed_by_their_image():
    url = f"{W}/objects/harbour-two-views"
    result, recs = photos("jsonld_graph_two_photos.html", url)
    # photograph a's image is a reference to the ImageObject node: its file, not a third photograph
    assert set(recs) == {f"{W}/media/harbour-a.jpg", f"{W}/media/harbour-b.jpg"}
    a, b = recs[f"{W}/media/harbour-a.jpg"], recs[f"{W}/media/harbour-b.jpg"]
    assert (a.record.title, a.record.year_lo, a.record.extra["date"]["approx"], a.image_url) == (
        "Harbour from the lighthouse", 1905, True, f"{W}/media/harbour-a.jpg")
    assert (b.record.title, b.record.year_lo, b.image_url) == ("Harbour at low tide", 1907, f"{W}/media/harbour-b.jpg")
    assert all(v.source_url == url for v in result.views)  # both shown on the page, both keep its address


def test_two_image_objects_in_a_top_level_array_make_one_record_each():
    url = f"{W}/album/soroca-doua-vederi"
    result, recs = photos("jsonld_two_photos_array.html", url)
    assert len(result.views) == 2  # the album both are part of is not a third record
    assert {k: (m.record.title, m.record.year_lo, m.record.year_hi) for k, m in recs.items()} == {
        f"{W}/media/album/soroca-cetatea.jpg": ("Soroca. Cetatea dinspre Nistru", 1936, 1936),
        f"{W}/media/album/soroca-piata.jpg": ("Soroca. Piața centrală", 1938, 1940)}
    assert recs[f"{W}/media/album/soroca-cetatea.jpg"].record.author == "Nicolae Iorga"
