"""Pure extraction of the archive spider against the fixtures, no network."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.licences import normalise_licence, pick_licences
from crawlers.archive import commons, iiif, oai, omeka
from crawlers.archive.found import Found, Grouper, merge
from crawlers.archive.pages import parse_caption, parse_page
from crawlers.archive.sniff import sniff
from crawlers.archive.text import canonical_url, pick_lang
from crawlers.archive.xmlsafe import UnsafeXML, parse_xml

FIX = Path(__file__).parent / "fixtures" / "archive"
OMEKA = "https://colectii.memoria-chisinau.example"
BASA = "https://basarabica.example"
OAI_URL = f"{BASA}/oai/request?verb=ListRecords&metadataPrefix=oai_dc&set=cartipost"


def page(rel: str, url: str):
    return parse_page((FIX / rel).read_text(encoding="utf-8"), url)


def doc(rel: str):
    return json.loads((FIX / rel).read_text(encoding="utf-8"))


# -- OAI-PMH -------------------------------------------------------------------------------------

def test_oai_first_page():
    p = oai.parse_oai((FIX / "oai/listrecords_cartipost_page1.xml").read_bytes(), OAI_URL)
    assert p.error_code is None and p.complete_list_size == 5 and p.cursor == 0
    assert p.token == "oai_dc/cartipost/3/5+2026-11-26T10:15:02Z"
    r212, r457, r633 = p.records
    assert r212.title == "Chișinău. Strada Alexandrovskaia"  # ro preferred over the ru first title
    assert r212.alt_titles == ["Кишинёв. Александровская улица"]
    assert r212.date_text == "1904"  # not 1905 from the description
    assert r212.image_url == f"{BASA}/files/cp-0212-r.jpg"
    assert r212.source_url == f"{BASA}/item/cp-0212"
    assert r212.oai["identifier"] == "oai:basarabica.example:cp-0212"
    assert r457.image_url is None and r457.follow == [f"{BASA}/iiif/3/cp-0457/manifest"]
    assert f"{BASA}/iiif/3/cp-0457/manifest" in r457.aliases
    assert r457.licences_raw == ["Domeniu public"] and r457.date_text == "[anii 1920]"
    assert r633.licences_raw == [] and r633.date_text == "1941-1944"


def test_oai_last_page_and_token_encoding():
    p = oai.parse_oai((FIX / "oai/listrecords_cartipost_page2.xml").read_bytes(), OAI_URL)
    assert p.token is None  # the empty token ends the list
    assert [r.date_text for r in p.records] == [None, "cca. 1910"]
    assert oai.next_page_url(OAI_URL, "oai_dc/cartipost/3/5+2026-11-26T10:15:02Z") == (
        f"{BASA}/oai/request?verb=ListRecords&resumptionToken=oai_dc%2Fcartipost%2F3%2F5%2B2026-11-26T10%3A15%3A02Z")


@pytest.mark.parametrize("name,code", [("error_badResumptionToken.xml", "badResumptionToken"),
                                       ("error_noRecordsMatch.xml", "noRecordsMatch"),
                                       ("error_badArgument.xml", "badArgument")])
def test_oai_errors(name, code):
    p = oai.parse_oai((FIX / "oai" / name).read_bytes(), OAI_URL)
    assert p.error_code == code and not p.records


def test_oai_deleted_and_timestamps():
    p = oai.parse_oai((FIX / "awkward/oai_deleted.xml").read_bytes(), OAI_URL)
    assert p.deleted == [{"identifier": "oai:basarabica.example:cp-0633", "datestamp": "2026-11-30T08:00:00Z"}]
    assert p.records[0].date_text == "[191-?]"  # the DSpace-style timestamp is not the photo's date
    assert p.token is None


def _oai_record(ident: str, *dc: str) -> str:
    return (f"<record><header><identifier>{ident}</identifier><datestamp>2026-12-01T00:00:00Z</datestamp></header>"
            "<metadata><oai_dc:dc xmlns:oai_dc='http://www.openarchives.org/OAI/2.0/oai_dc/' "
            "xmlns:dc='http://purl.org/dc/elements/1.1/'>" + "".join(dc) + "</oai_dc:dc></metadata></record>")


def test_oai_coverage_that_is_a_period_is_a_date_not_a_place():
    """Dublin Core's coverage is a place or a period: "1900-1910" was stored as the place."""
    page = ("<OAI-PMH xmlns='http://www.openarchives.org/OAI/2.0/'><ListRecords>"
            + _oai_record("oai:t:10", "<dc:title>Gara</dc:title>", "<dc:coverage>1900-1910</dc:coverage>",
                          "<dc:coverage>Ungheni</dc:coverage>")
            + _oai_record("oai:t:11", "<dc:title>Piața</dc:title>", "<dc:date>1935</dc:date>",
                          "<dc:coverage>ca. 1930-1940</dc:coverage>", "<dc:coverage>Bălți</dc:coverage>")
            + _oai_record("oai:t:12", "<dc:title>Strada</dc:title>",
                          "<dc:coverage>Strada 31 August 1989, Chișinău</dc:coverage>")
            + "</ListRecords></OAI-PMH>").encode()
    first, second, third = oai.parse_oai(page, OAI_URL).records
    assert (first.place, first.date_text) == ("Ungheni", "1900-1910")
    assert (second.place, second.date_text) == ("Bălți", "1935")  # dc:date first; the period is not the place
    assert (third.place, third.date_text) == ("Strada 31 August 1989, Chișinău", None)  # a street named for a date


@pytest.mark.parametrize("name", ["oai_billion_laughs.xml", "oai_xxe.xml"])
def test_unsafe_xml_refused(name):
    with pytest.raises(UnsafeXML):
        oai.parse_oai((FIX / "awkward" / name).read_bytes(), OAI_URL)
    with pytest.raises(UnsafeXML):
        parse_xml((FIX / "awkward" / name).read_bytes())


def test_list_records_url():
    assert oai.list_records_url(f"{BASA}/oai/request", set_spec="cartipost", from_date="2030-01-01") == (
        f"{BASA}/oai/request?verb=ListRecords&metadataPrefix=oai_dc&set=cartipost&from=2030-01-01")


# -- IIIF ----------------------------------------------------------------------------------------

def test_iiif_v2_manifest():
    v = iiif.parse_manifest(doc("iiif/v2_manifest_1201.json"), f"{OMEKA}/iiif/2/1201/manifest")
    assert v.title == "Strada Alexandru cel Bun, vedere spre Catedrală"
    assert v.date_text == "circa 1930" and v.author == "Fotograf necunoscut" and v.place == "Chișinău"
    assert v.licences_raw == ["http://creativecommons.org/licenses/by/4.0/"]
    assert v.attribution == "Muzeul «Memoria Chișinăului» — Fototeca"
    assert v.source_url == f"{OMEKA}/s/fototeca/item/1201"
    assert v.image_url == f"{OMEKA}/iiif/2/5012/full/full/0/default.jpg"


def test_iiif_v3_manifest():
    v = iiif.parse_manifest(doc("iiif/v3_manifest_cp-0457.json"), f"{BASA}/iiif/3/cp-0457/manifest")
    assert v.title == "Chișinău. Grădina Publică, aleea centrală"
    assert v.date_text == "anii 1920" and v.identifier == "CP-0457"
    assert v.licences_raw == ["http://creativecommons.org/publicdomain/mark/1.0/"]
    assert v.attribution == "Biblioteca Digitală «Basarabica»"
    assert v.source_url == f"{BASA}/item/cp-0457"
    assert v.image_url == f"{BASA}/iiif/image/3/cp-0457-r/full/max/0/default.jpg"


def test_a_manifest_without_a_label_takes_its_metadata_title():
    base = doc("iiif/v3_manifest_cp-0457.json")
    meta = [{"label": {"en": ["Title"]}, "value": {"en": ["Bender fortress"], "ro": ["Cetatea Tighina"]}}]
    for label in ({}, None, {"none": [""]}):
        m = {**base, "metadata": meta, "label": label}
        if label is None:
            del m["label"]
        v = iiif.parse_manifest(m, f"{BASA}/iiif/3/cp-0457/manifest")
        assert (v.title, v.alt_titles) == ("Cetatea Tighina", ["Bender fortress"]), label


def test_plain_text_between_angle_brackets_is_text_and_tags_are_not():
    from crawlers.archive.text import clean

    for plain in ("a < b and c > d", "Height<5cm, width>3cm", "Portret <necunoscut>", "Tom & Jerry <3 fans >_"):
        assert clean(plain) == plain
    assert clean('<p>Vedere <b>generală</b><br/>1930 <a href="/x">Gara</a><!-- nota --></p>') == \
        "Vedere generală 1930 Gara"
    assert clean("<P CLASS=x>Mare</P> &lt;Lenin&gt;") == "Mare <Lenin>"
    assert clean('<!DOCTYPE html><?xml version="1.0"?><section><p>Gara<o:p></o:p> '
                 '<st1:place w:st="on">Bălți</st1:place></p></section>') == "Gara Bălți"
    m = {**doc("iiif/v3_manifest_cp-0457.json"), "summary": {"ro": ["Înălțime<5 cm, lățime>3 cm"]}}
    assert iiif.parse_manifest(m, f"{BASA}/iiif/3/cp-0457/manifest").description == "Înălțime<5 cm, lățime>3 cm"


def test_iiif_collections():
    top = iiif.parse_collection(doc("iiif/v3_collection_cartipost.json"))
    assert top.collections == [f"{BASA}/iiif/3/collection/cartipost-chisinau"]
    assert top.manifests == [f"{BASA}/iiif/3/cp-0457/manifest", f"{BASA}/iiif/3/cp-0458/manifest"]
    sub = iiif.parse_collection(doc("iiif/v3_collection_cartipost-chisinau.json"))
    assert sub.manifests == [f"{BASA}/iiif/3/cp-0457/manifest"]
    embedded = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "x", "type": "Collection",
                "items": [{"id": "c1", "type": "Collection", "items": [{"id": "m1", "type": "Manifest"}]}]}
    assert iiif.parse_collection(embedded).manifests == ["m1"]
    assert iiif.parse_collection(embedded).collections == []  # embedded: not fetched


# -- HTML pages ----------------------------------------------------------------------------------

def test_omeka_item_page_three_layers():
    r = page("omeka_s/item_1201.html", f"{OMEKA}/s/fototeca/item/1201")
    (v,) = r.views
    assert v.title == "Strada Alexandru cel Bun, vedere spre Catedrală"
    assert v.alt_titles == ["Улица Александра Доброго, вид на Кафедральный собор"]
    assert v.date_text == "circa 1930" and v.author == "Fotograf necunoscut"
    assert (v.lat, v.lon) == (47.0245, 28.8322)
    assert pick_licences(v.licences_raw) == ["http://creativecommons.org/licenses/by/4.0/"]  # http + https: one
    assert v.image_url == f"{OMEKA}/files/original/3f9c1e7a0b2d4c6e8f1a2b3c4d5e6f708192a3b4.jpg"
    assert v.source_url == f"{OMEKA}/s/fototeca/item/1201"
    assert f"{OMEKA}/api/items/1201" in v.aliases
    assert r.iiif_links == [f"{OMEKA}/iiif/2/1201/manifest"]


def test_omeka_russian_title_and_no_date():
    (v,) = page("omeka_s/item_1176.html", f"{OMEKA}/s/fototeca/item/1176").views
    assert v.title == "Орхей. Базарная площадь" and v.alt_titles == ["Orhei. Piața din centru"]
    assert pick_licences(v.licences_raw) == ["http://rightsstatements.org/vocab/NoC-NC/1.0/"]
    (v,) = page("omeka_s/item_1163.html", f"{OMEKA}/s/fototeca/item/1163").views
    assert v.date_text is None


def test_omeka_browse_pages():
    p1 = page("omeka_s/browse_page1.html", f"{OMEKA}/s/fototeca/item")
    assert p1.is_listing and not p1.views
    assert p1.item_links == [f"{OMEKA}/s/fototeca/item/{i}" for i in (1201, 1187, 1176)]
    assert p1.next_pages == [f"{OMEKA}/s/fototeca/item?page=2"]
    p2 = page("omeka_s/browse_page2.html", f"{OMEKA}/s/fototeca/item?page=2")
    assert p2.item_links == [f"{OMEKA}/s/fototeca/item/{i}" for i in (1176, 1163)] and p2.next_pages == []


def test_omeka_api_and_media():
    items = doc("omeka_s/api_items_page1.json")
    v = omeka.parse_item(items[0], f"{OMEKA}/api/items?page=1")
    assert v.kind == "omeka-api" and v.source_url is None and v.aliases == [f"{OMEKA}/api/items/1201"]
    assert v.follow == [f"{OMEKA}/api/media/5012"] and v.date_text == "circa 1930"
    m = omeka.parse_media(doc("omeka_s/api_media_5012.json"), f"{OMEKA}/api/media/5012")
    assert m.aliases == [f"{OMEKA}/api/items/1201"]
    assert m.image_url == f"{OMEKA}/files/original/3f9c1e7a0b2d4c6e8f1a2b3c4d5e6f708192a3b4.jpg"
    link = (FIX / "omeka_s/api_items_page1.json.headers").read_text().split("Link:", 1)[1].splitlines()[0]
    assert omeka.link_header_next(link) == f"{OMEKA}/api/items?site_id=1&per_page=3&page=2"


def test_wordpress_figures_one_record_each():
    r = page("wordpress/sarbatori_de_iarna.html",
             "https://arhiva-nationala.example/sarbatori-de-iarna-in-fotografii-de-arhiva/")
    assert [(v.title, v.date_text, v.author) for v in r.views] == [
        ("Colindători în satul Ciutulești, raionul Florești", "Anul 1972", "V. Guzun"),
        ("Pomul de iarnă în Piața Victoriei, Chișinău", "Anii ’60", None),
        ("Serbare de Anul Nou la grădinița nr. 5 din Bălți", "iarna 1958–1959", None)]
    assert r.views[0].image_url.endswith("/colindatori-ciutulesti-1972.jpg")  # widest srcset, not -1024x683
    assert r.views[0].attribution == "Agenția Națională a Arhivelor"
    assert all(v.licences_raw == [] for v in r.views)  # "Toate drepturile rezervate" is not a licence
    assert len({v.key for v in r.views}) == 3


def test_caption_rules():
    assert parse_caption("Familia Stan din satul Mândrești. Anul 1987. Foto: Mihai Potârniche. Sursa: ANA") == {
        "title": "Familia Stan din satul Mândrești", "date_text": "Anul 1987", "author": "Mihai Potârniche",
        "attribution": "ANA"}
    assert parse_caption("Strada Armenească, 1965")["date_text"] == "1965"
    assert parse_caption("Fără nicio dată aici")["date_text"] is None


def test_commons_page_and_api_agree():
    url = "https://commons.wikimedia.org/wiki/File:Soroca,_cetatea_v%C4%83zut%C4%83_de_pe_Nistru,_1936.jpg"
    (v,) = page("commons/File_Soroca_cetatea_1936.html", url).views
    (a,) = commons.parse_api(doc("commons/api_imageinfo_Soroca_cetatea_1936.json"), "api")
    for x in (v, a):
        assert x.title == "Soroca, cetatea văzută de pe Nistru, 1936"
        assert x.date_text == "1936" and x.author == "Unknown author"
        assert x.licences_raw == ["Public domain"]  # not the page text's CC BY-SA
        assert x.source_url == url
        assert x.image_url == ("https://upload.wikimedia.org/wikipedia/commons/c/c7/"
                               "Soroca,_cetatea_v%C4%83zut%C4%83_de_pe_Nistru,_1936.jpg")
    assert (v.lat, v.lon) == (48.1583, 28.2986)
    assert v.description.startswith("Cetatea Soroca")


# -- merging, licences, URLs, sniffing -----------------------------------------------------------

def test_merge_oai_and_manifest():
    p = oai.parse_oai((FIX / "oai/listrecords_cartipost_page1.xml").read_bytes(), OAI_URL)
    man = iiif.parse_manifest(doc("iiif/v3_manifest_cp-0457.json"), f"{BASA}/iiif/3/cp-0457/manifest")
    g = Grouper()
    for v in p.records + [man]:
        g.add(v)
    merged = {m.key: m for m in (merge(views) for views in g.groups())}
    m = merged[f"{BASA}/item/cp-0457"]
    assert len(merged) == 3
    assert m.record.licence == "http://creativecommons.org/publicdomain/mark/1.0/"  # URI beats "Domeniu public"
    assert (m.record.year_lo, m.record.year_hi) == (1920, 1929)
    assert m.image_url == f"{BASA}/iiif/image/3/cp-0457-r/full/max/0/default.jpg"
    assert m.record.extra["oai_identifier"] == "oai:basarabica.example:cp-0457"
    get_record = f"{BASA}/oai/request?verb=GetRecord&metadataPrefix=oai_dc&identifier=oai%3Abasarabica.example%3Acp-0457"
    assert set(m.record.raw) == {f"oai:{get_record}", f"iiif:{BASA}/iiif/3/cp-0457/manifest"}


def test_merge_prefers_the_original_file_and_infers_title_years_only_without_date():
    u = "https://a.example/"
    a = Found(kind="iiif", fetched_url=u + "m", source_url=u + "p", title="T", image_url=u + "iiif.jpg", image_rank=30)
    b = Found(kind="page", fetched_url=u + "p", source_url=u + "p", title="Strada, 1965", image_url=u + "orig.jpg",
              image_rank=40)
    m = merge([a, b])
    assert m.image_url == u + "orig.jpg" and m.record.title == "Strada, 1965"
    assert (m.record.year_lo, m.record.extra["date"]["inferred_from_title"]) == (1965, True)
    c = Found(kind="page", fetched_url="p", source_url="p", title="Strada, 1965", date_text="fără dată")
    assert merge([c]).record.year_lo is None  # a date field that says "no date" wins over the title


@pytest.mark.parametrize("raw,canon", [
    ("https://creativecommons.org/licenses/by-sa/4.0/deed.ro", "http://creativecommons.org/licenses/by-sa/4.0/"),
    ("CC BY 4.0", "http://creativecommons.org/licenses/by/4.0/"),
    ("Attribution-NonCommercial 4.0 International", "http://creativecommons.org/licenses/by-nc/4.0/"),
    ("CC0 1.0", "http://creativecommons.org/publicdomain/zero/1.0/"),
    ("https://creativecommons.org/publicdomain/mark/1.0/", "http://creativecommons.org/publicdomain/mark/1.0/"),
    ("https://rightsstatements.org/page/InC/1.0/?language=ro", "http://rightsstatements.org/vocab/InC/1.0/"),
    ("https://www.gnu.org/licenses/fdl-1.3.html", "https://www.gnu.org/licenses/fdl-1.3.html"),
    ("Domeniu public", "Domeniu public"),
    ("© 2022 Agenția Națională a Arhivelor. Toate drepturile rezervate.", None),
    ("", None),
])
def test_licence_normalisation(raw, canon):
    assert normalise_licence(raw) == canon


def test_canonical_urls_and_languages():
    assert canonical_url("HTTPS://Commons.Wikimedia.org:443/wiki/File:Soroca,_cetatea_văzută.jpg#x") == (
        "https://commons.wikimedia.org/wiki/File:Soroca,_cetatea_v%C4%83zut%C4%83.jpg")
    assert canonical_url("//host.example/a", None) == "https://host.example/a"
    assert canonical_url("javascript:alert(1)") is None
    assert pick_lang([("ru", "Б"), (None, "U"), ("ro-MD", "R")]) == ("R", ["Б", "U"])


def test_sniff_by_content_not_site():
    assert sniff(b"text/xml", (FIX / "oai/listrecords_cartipost_page1.xml").read_bytes()) == "oai"
    assert sniff(b"text/plain", b'{"@context": "x"}') == "json"
    assert sniff(None, b"<!DOCTYPE html><html></html>") == "html"
    assert sniff(b"image/jpeg", b"\xff\xd8\xff") == "image"
    assert sniff(b"application/xml", b"<?xml version='1.0'?><feed/>") == "xml"


def test_views_read_twice_are_one_and_refused_urls_are_said_without_their_password():
    u = "https://arhiva.example/"
    g = Grouper()
    first = Found(kind="oai", fetched_url=u + "oai?p=1", source_url=u + "item/1", title="Gara", aliases=[u + "m/1"])
    other = Found(kind="iiif", fetched_url=u + "m/2", source_url=u + "item/2", title="Gara", aliases=[u + "m/2"])
    again = Found(kind="oai", fetched_url=u + "oai?p=1", source_url=u + "item/1", title="Gara (again)",
                  aliases=[u + "m/1"])
    g.add(first)
    g.add(other)
    g.add(again)  # the same document read again: one view, the later read
    bridge = Found(kind="page", fetched_url=u + "item/1", source_url=u + "item/1", aliases=[u + "m/1", u + "m/2"])
    g.add(bridge)  # unites both groups: still one view of the OAI document
    (views,) = g.groups()
    assert sorted((v.kind, v.ref) for v in views) == sorted({(v.kind, v.ref) for v in views})
    assert [v.title for v in views if v.kind == "oai"] == ["Gara (again)"]
    m = merge([Found(kind="page", fetched_url=u + "item/9", source_url=u + "item/9", title="X",
                     image_url="https://ana:hunter2@arhiva.example/f/9.jpg")])
    assert m.image_url is None
    assert [url for url, _ in m.refused] == ["https://arhiva.example/f/9.jpg"] and "hunter2" not in str(m.refused)
