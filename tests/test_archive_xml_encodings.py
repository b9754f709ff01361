"""How archive XML is decoded: the document's own declaration first, the server's charset when the
document is not well-formed that way; encodings expat cannot read are decoded by Python."""
from __future__ import annotations

import pytest

from crawlers.archive.xmlsafe import BadXML, charset_of, parse_xml

DOC = "<r><t>Кишинёв 北京</t></r>"


@pytest.mark.parametrize("enc", ["gb2312", "shift_jis", "big5"])
def test_a_multi_byte_declared_encoding_is_read(enc):
    body = f'<?xml version="1.0" encoding="{enc}"?>{DOC}'.encode(enc)
    assert parse_xml(body).find("t").text == "Кишинёв 北京"  # expat alone: ValueError, a crash


def test_the_servers_charset_reads_a_document_misdeclared_as_utf8():
    body = '<?xml version="1.0" encoding="UTF-8"?><r><t>Кишинёв</t></r>'.encode("cp1251")
    with pytest.raises(BadXML):
        parse_xml(body)
    assert parse_xml(body, charset_of("text/xml; charset=windows-1251")).find("t").text == "Кишинёв"
    nodecl = "<r><t>Кишинёв</t></r>".encode("koi8_r")
    assert parse_xml(nodecl, charset_of(b'application/xml;charset="KOI8-R"')).find("t").text == "Кишинёв"


def test_a_wrong_server_charset_does_not_spoil_good_utf8():
    body = '<?xml version="1.0" encoding="UTF-8"?><r><t>Chișinău</t></r>'.encode()
    assert parse_xml(body, "iso8859-1").find("t").text == "Chișinău"  # Apache's AddDefaultCharset


def test_unknown_encodings_and_broken_documents_are_bad_xml():
    with pytest.raises(BadXML, match="unknown encoding: nonsense"):
        parse_xml(b'<?xml version="1.0" encoding="nonsense"?><r/>')
    with pytest.raises(BadXML, match="mismatched tag"):
        parse_xml("<r><t>Кишинёв</r>".encode("cp1251"), "cp1251")
    assert charset_of("text/xml; charset=no-such-charset") is None and charset_of(None) is None


def test_entities_are_refused_in_any_encoding():
    from crawlers.archive.xmlsafe import UnsafeXML

    bomb = '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE r [<!ENTITY a "Кишинёв">]><r>&a;</r>'
    with pytest.raises(UnsafeXML):
        parse_xml(bomb.encode("cp1251"), "windows-1251")  # read again in the server's charset: still refused


def test_utf8_with_a_stray_bad_byte_is_not_reread_as_latin1():
    body = '<?xml version="1.0" encoding="UTF-8"?><r><t>Chișinău Кишинёв</t><u>x\udcff</u></r>'.encode(
        "utf-8", "surrogateescape")  # one byte 0xFF among good UTF-8
    with pytest.raises(BadXML):  # garbled into 'ChiÈ\x99inÄ\x83u …' records otherwise
        parse_xml(body, charset_of("text/xml; charset=ISO-8859-1"))
