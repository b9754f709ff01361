"""Licence strings → canonical URIs (Creative Commons, RightsStatements.org).

``normalise_licence`` maps a URI in any of its spellings (https, ``deed.ro``,
``legalcode``, no trailing slash, protocol-relative) or a text form of a CC
licence ("CC BY 4.0", "Attribution-NonCommercial 4.0 International") to
``http://creativecommons.org/licenses/{code}/{version}/`` (CC0 and the Public
Domain Mark under ``…/publicdomain/``) or ``http://rightsstatements.org/vocab/
{ID}/1.0/``. Other URIs and other text stay as given ("Public domain",
"Domeniu public"). A copyright notice ("© … Toate drepturile rezervate") is
not a licence: ``normalise_licence`` returns None for it.

``pick_licences`` chooses what may be a record's licence among what a source
wrote, in order of trust: recognised licence URIs (Creative Commons,
RightsStatements.org), then other web addresses (a terms-of-use page), then a
public-domain statement; the source's order is kept within each. Free text
("Copyright the University; contact…"), access statements (``openAccess``,
``info:eu-repo/semantics/openAccess``) and copyright notices are rights, not
licences: the caller keeps them as rights text.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["normalise_licence", "pick_licences", "is_copyright_notice", "is_licence_uri", "is_public_domain"]

CC_BASE = "http://creativecommons.org/"
RS_BASE = "http://rightsstatements.org/vocab/"

_CC_CODES = ("by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd")
_RS_IDS = ("InC", "InC-OW-EU", "InC-EDU", "InC-NC", "InC-RUU", "NoC-CR", "NoC-NC", "NoC-OKLR", "NoC-US",
           "CNE", "UND", "NKC")
_RS_LABELS = {
    "in copyright": "InC", "in copyright - eu orphan work": "InC-OW-EU",
    "in copyright - educational use permitted": "InC-EDU", "in copyright - non-commercial use permitted": "InC-NC",
    "in copyright - rights-holder(s) unlocatable or unidentifiable": "InC-RUU",
    "no copyright - contractual restrictions": "NoC-CR", "no copyright - non-commercial use only": "NoC-NC",
    "no copyright - other known legal restrictions": "NoC-OKLR", "no copyright - united states": "NoC-US",
    "copyright not evaluated": "CNE", "copyright undetermined": "UND", "no known copyright": "NKC",
}
_WORDS = {"attribution": "by", "sharealike": "sa", "share alike": "sa", "noncommercial": "nc",
          "non commercial": "nc", "noderivatives": "nd", "noderivs": "nd", "no derivatives": "nd",
          "no derivative works": "nd"}

_CC_URL = re.compile(r"^(?:https?:)?//(?:www\.)?creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)"
                     r"(?:/([a-z]{2})(?=/|$|\?|#))?",
                     re.I)
_CC_PD_URL = re.compile(r"^(?:https?:)?//(?:www\.)?creativecommons\.org/publicdomain/(zero|mark)/(\d\.\d)", re.I)
_RS_URL = re.compile(r"^(?:https?:)?//(?:www\.)?rightsstatements\.org/(?:vocab|page|data)/([A-Za-z-]+)/(\d\.\d)",
                     re.I)
_PUBLIC_DOMAIN = re.compile(
    r"^(?:(?:this (?:work|image|item|photograph) is (?:in the )?)?public domain(?: (?:worldwide|in the united states|"
    r"mark))?|domeniu(?:l)? public|domaine public|dominio p[uú]blico|pubblico dominio|gemeinfrei|"
    r"общественное достояние|суспільне надбання|no known copyright restrictions|no copyright)\.?$", re.I)
_NOTICE = re.compile(r"^\s*(©|\(c\)|copyright\s+©?\s*\d)|toate drepturile rezervate|all rights reserved|"
                     r"все права защищены", re.I)


def is_copyright_notice(text: str | None) -> bool:
    return bool(text and _NOTICE.search(text))


def is_licence_uri(value: str | None) -> bool:
    return bool(value) and value.startswith((CC_BASE, RS_BASE))


def _cc(code: str, version: str, jurisdiction: str | None = None) -> str | None:
    code = code.lower().strip("-")
    if code == "cc0" or code == "zero":
        return f"{CC_BASE}publicdomain/zero/1.0/"
    if code not in _CC_CODES:
        return None
    tail = f"{jurisdiction.lower()}/" if jurisdiction else ""
    return f"{CC_BASE}licenses/{code}/{version}/{tail}"


def _from_text(text: str) -> str | None:
    t = re.sub(r"\s+", " ", text.strip()).strip(" .;")
    low = t.lower()
    if low in _RS_LABELS:
        return f"{RS_BASE}{_RS_LABELS[low]}/1.0/"
    if re.fullmatch(r"(cc0|cc zero|cc-zero)( 1\.0)?( universal)?( \(cc0 1\.0\))?( public domain dedication)?", low):
        return f"{CC_BASE}publicdomain/zero/1.0/"
    if re.fullmatch(r"(creative commons )?public domain mark( 1\.0)?", low):
        return f"{CC_BASE}publicdomain/mark/1.0/"
    m = re.fullmatch(r"(?:creative commons )?cc[ -]((?:by)(?:[ -](?:nc|sa|nd))*)[ -](\d\.\d)(?: ([a-z]{2}))?"
                     r"(?: (?:international|unported|generic))?(?: license| licence)?", low)
    if m:
        parts = re.split(r"[ -]", m.group(1))
        return _cc(_order(parts), m.group(2), m.group(3))
    m = re.fullmatch(r"(?:creative commons )?(attribution(?:[- ](?:noncommercial|non commercial|sharealike|share alike|"
                     r"noderivatives|noderivs|no derivatives|no derivative works))*) (\d\.\d)"
                     r"(?: (?:international|unported|generic))?(?: license| licence)?(?: \(cc [a-z -]+ \d\.\d\))?", low)
    if m:
        words = re.findall(r"attribution|noncommercial|non commercial|sharealike|share alike|noderivatives|noderivs|"
                           r"no derivatives|no derivative works", m.group(1))
        return _cc(_order([_WORDS[w] for w in words]), m.group(2))
    return None


def _order(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    flags = [p for p in ("nc", "sa", "nd") if p in parts]
    if "sa" in flags and "nd" in flags:
        return "invalid"
    return "-".join(["by", *flags])


def normalise_licence(value: str | None) -> str | None:
    """Canonical URI for a recognisable licence, the stripped text otherwise, None for nothing or a notice."""
    if value is None:
        return None
    v = re.sub(r"\s+", " ", str(value)).strip()
    if not v or is_copyright_notice(v):
        return None
    m = _CC_PD_URL.match(v)
    if m:
        return f"{CC_BASE}publicdomain/{m.group(1).lower()}/{m.group(2)}/"
    m = _CC_URL.match(v)
    if m:
        return _cc(m.group(1), m.group(2), m.group(3)) or v
    m = _RS_URL.match(v)
    if m:
        ident = next((i for i in _RS_IDS if i.lower() == m.group(1).lower()), None)
        return f"{RS_BASE}{ident}/1.0/" if ident else v
    return _from_text(v) or v


def is_public_domain(text: str | None) -> bool:
    """A public-domain statement in words ("Public domain", "Domeniu public", "No known copyright restrictions")."""
    return bool(text and _PUBLIC_DOMAIN.match(re.sub(r"\s+", " ", text.strip())))


def pick_licences(values: Iterable[str | None]) -> list[str]:
    """What may be a licence, normalised and de-duplicated: recognised licence URIs, then other web
    addresses, then public-domain statements, each in the order given (see the module docstring)."""
    ranked: list[tuple[int, int, str]] = []
    for i, value in enumerate(values):
        n = normalise_licence(value)
        if not n or any(n == r[2] for r in ranked):
            continue
        if is_licence_uri(n):
            ranked.append((0, i, n))
        elif re.match(r"^https?://", n, re.I):
            ranked.append((1, i, n))
        elif is_public_domain(n):
            ranked.append((2, i, n))
    return [n for _, _, n in sorted(ranked)]
