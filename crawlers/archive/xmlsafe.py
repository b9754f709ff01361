"""XML parsing that refuses entity tricks and never touches the network."""
from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = ["UnsafeXML", "BadXML", "parse_xml"]


class UnsafeXML(ValueError):
    """The document declares entities or external references (billion laughs, XXE): refused."""


class BadXML(ValueError):
    """The document is not well-formed XML."""


def parse_xml(body: bytes) -> Element:
    try:
        return fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeXML(f"XML refused: {type(exc).__name__} ({exc})") from None
    except ParseError as exc:
        raise BadXML(f"XML is not well-formed: {exc}") from None
