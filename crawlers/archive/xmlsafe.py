"""XML parsing that refuses entity tricks and never touches the network.

The encoding: what the document says (its BOM or ``<?xml … encoding=…?>``, UTF-8 without either)
is read first (a multi-byte encoding that expat cannot read itself, GB2312 or Shift_JIS, is
decoded by Python); only a document that is not well-formed that way is read again in the charset its
server named (``Content-Type: text/xml; charset=windows-1251``), unless it is mostly good UTF-8
with a few broken bytes (then re-reading it in a code page would garble every letter: it stays
bad XML). So a server that names a wrong default charset for UTF-8 (Apache's ``AddDefaultCharset
ISO-8859-1``) changes nothing, and a feed written in a code page but declared (or taken by
default) as UTF-8 is still read.
"""
from __future__ import annotations

import codecs
import re
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = ["UnsafeXML", "BadXML", "parse_xml", "charset_of"]

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?\?>", re.S)
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.S)
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.I)


class UnsafeXML(ValueError):
    """The document declares entities or external references (billion laughs, XXE): refused."""


class BadXML(ValueError):
    """The document is not well-formed XML."""


def _known(name: str | None) -> str | None:
    try:
        return codecs.lookup(name).name if name else None
    except LookupError:
        return None


def charset_of(content_type: str | bytes | None) -> str | None:
    """The ``charset`` of a Content-Type header, if it names one Python knows."""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    m = _CHARSET.search(content_type or "")
    return _known(m.group(1)) if m else None


def _fromstring(body: bytes) -> Element:
    try:
        return fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeXML(f"XML refused: {type(exc).__name__} ({exc})") from None


def _mostly_utf8(body: bytes) -> bool:
    """More well-formed multi-byte UTF-8 characters than bytes that are not UTF-8: text written in
    UTF-8 with a few broken bytes, not text in a code page (whose letters are rarely valid UTF-8)."""
    text = body.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    return sum(1 for c in text if c > "\x7f") - bad > bad


def _in_utf8(body: bytes, charset: str) -> bytes | None:
    """The document decoded in ``charset`` and written as UTF-8 without its declaration, or None."""
    try:
        text = body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return None
    raw = _DECLARATION.sub(b"", text.lstrip("\ufeff").encode("utf-8"), count=1)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + raw


def parse_xml(body: bytes, charset: str | None = None) -> Element:
    """Parse ``body`` safely; ``charset`` is the server's (see the module docstring)."""
    try:
        return _fromstring(body)
    except UnsafeXML:  # a ValueError too: refused whatever its encoding
        raise
    except (ParseError, ValueError, LookupError) as exc:  # multi-byte (GB2312…) or unknown encodings
        first = exc
    declared = _DECLARED.match(body[:512])
    problem = str(first)
    if charset and _mostly_utf8(body) and (declared is None or _known(declared.group(1).decode()) == "utf-8"):
        charset = None  # UTF-8 with a stray bad byte, served as latin-1 by default: re-reading it so garbles it all
    for name in dict.fromkeys(filter(None, (_known(declared.group(1).decode()) if declared else None, charset))):
        again = _in_utf8(body, name)
        if again is not None:
            try:
                return _fromstring(again)
            except UnsafeXML:
                raise
            except (ParseError, ValueError, LookupError) as exc:  # it reads in that charset, and is broken
                problem = f"{exc} (read as {name})"
    raise BadXML(f"XML is not well-formed: {problem}") from None
