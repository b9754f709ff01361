"""Uncertain dates of photographs: text as written → (year_lo, year_hi).

``parse_date`` reads the date phrases archives write and returns a
``DateRange`` or ``None``: English, Romanian, Russian, French, German and
Italian words (circa/ca./c/about/около, decades, centuries in words, ordinals
and Roman numerals, halves, thirds and quarters, early/mid/late, seasons),
numeric dates in every order archives use (``1936-05-12``, ``12.05.1936``,
``5/12/1936``, ``11-1978``, EXIF ``2015:07:15 14:29:17``), month names and
abbreviations (``12-Iun-2013``, ``22 Decembrie 2014 la 02:38``), clock times,
eras (AD/BC, ``n. Chr.``, BP), Japanese year markers, DCMI periods
(``start=1929; end=1939``) and EDTF levels 0–2 (``1984?``, ``2004-06~``,
``19XX``, ``1985-04-XX``, ``2001-21``, ``1950S2``, ``{1960, 1961-12}``,
``1984/2004``). The grammar is in ``grammar``, the words in ``lexicon``.

It never invents: the whole text must be understood, a month or day the
calendar does not have or trailing digits no rule explains give no date
(``1989/11`` is November 1989, ``1984-13`` is nothing). Open intervals
(``after 1930``, ``1930/..``) give no date. Intervals are clipped to the
photographic era: a range starting before ``PHOTO_MIN_YEAR`` starts there, a
range reaching past this year ends here, one wholly outside is no date.
Circa dates are not widened (the qualifier says they are approximate; widen
at query time). Callers decide which field describes the photograph: web-page,
upload and record timestamps must never be passed here as the photo's date.
The README's table lists the conventions (``early 1920s`` = 1920–1923 …).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from catalog.dates.grammar import Parser, Val
from catalog.dates.tokens import Tok, tokenise

__all__ = ["DateRange", "parse_date", "year_range", "year_from_title", "looks_like_timestamp", "PHOTO_MIN_YEAR"]

PHOTO_MIN_YEAR = 1826  # the oldest surviving photograph (Niépce)
MAX_TEXT = 200         # longer text is a description, not a date


@dataclass(frozen=True)
class DateRange:
    year_lo: int
    year_hi: int
    qualifier: str = "year"  # year | circa | uncertain | decade | range | century | inferred
    approx: bool = False

    def as_dict(self) -> dict:
        return {"year_lo": self.year_lo, "year_hi": self.year_hi, "qualifier": self.qualifier,
                "approx": self.approx}


def _clip(lo: int, hi: int, qualifier: str, approx: bool) -> DateRange | None:
    """A range inside the photographic era, clipped at both ends; None when wholly outside."""
    this_year = date.today().year
    if lo > hi or hi < PHOTO_MIN_YEAR or lo > this_year:
        return None
    return DateRange(max(lo, PHOTO_MIN_YEAR), min(hi, this_year), qualifier, approx)


def year_range(lo: int | None, hi: int | None = None) -> DateRange | None:
    """Two years a source gives as numbers (PastVu ``year``/``year2``) → the same interval rules."""
    if lo is None:
        return None
    hi = lo if hi is None else hi
    lo, hi = min(lo, hi), max(lo, hi)
    return _clip(lo, hi, "year" if lo == hi else "range", False)


def parse_date(text: str | None) -> DateRange | None:
    """The photo's date range from the text as written, or None; see the module docstring."""
    if text is None:
        return None
    text = str(text)
    if not text.strip() or len(text) > MAX_TEXT:
        return None
    return _parse(text)


@lru_cache(maxsize=8192)
def _parse(text: str) -> DateRange | None:
    if _DCMI_KEY.search(text):
        return _dcmi_period(text)
    v = _value(tokenise(text))
    if v is None:
        return None
    if v.kind in ("year", "date") or (v.kind == "range" and v.lo == v.hi):
        qualifier = "circa" if v.approx and not v.unsure else "uncertain" if v.unsure else "year"
    else:
        qualifier = {"decade": "decade", "century": "century"}.get(v.kind, "range")
    return _clip(v.lo, v.hi, qualifier, v.approx or v.unsure)


def _value(toks: list[Tok]) -> Val | None:
    """Brackets first: dropped when they hold only words, transparent around dates
    (``23.02.[18--]``), a refinement or an alternative at the end (``19 век (1800-1860)``,
    ``1939 [1942?]``); the rest goes to the grammar."""
    toks = _drop_wordy_groups(toks)
    while toks and toks[-1].kind == "sym" and toks[-1].text in ".,;:":
        toks = toks[:-1]  # "Anul 1935."
    while len(toks) > 2 and _closing(toks[0], toks[-1]) and _match(toks, 0) == len(toks) - 1:
        toks = toks[1:-1]
    if toks and toks[-1].kind == "sym" and toks[-1].text in ")]":
        start = _opening(toks, len(toks) - 1)
        if start is not None and start > 0 and toks[start].sp:
            outer, inner = _value(toks[:start]), _value(toks[start + 1:-1])
            if outer is None or inner is None:
                return None
            if outer.lo <= inner.lo and inner.hi <= outer.hi:
                return inner  # the group narrows the date
            if max(outer.lo, inner.lo) - min(outer.hi, inner.hi) <= 10:
                return Val(min(outer.lo, inner.lo), max(outer.hi, inner.hi), "range", approx=True,
                           unsure=outer.unsure or inner.unsure)
            return None
    toks = [t for t in toks if not (t.kind == "sym" and t.text in "[]{}")]
    return Parser(toks).parse() if toks else None


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _closing(a: Tok, b: Tok) -> bool:
    return a.kind == "sym" and b.kind == "sym" and _PAIRS.get(a.text) == b.text


def _match(toks: list[Tok], i: int) -> int | None:
    depth = 0
    for k in range(i, len(toks)):
        t = toks[k]
        if t.kind == "sym" and t.text in _PAIRS:
            depth += 1
        elif t.kind == "sym" and t.text in _PAIRS.values():
            depth -= 1
            if depth == 0:
                return k
    return None


def _opening(toks: list[Tok], end: int) -> int | None:
    for k in range(end - 1, -1, -1):
        if toks[k].kind == "sym" and toks[k].text in _PAIRS and _match(toks, k) == end:
            return k
    return None


def _drop_wordy_groups(toks: list[Tok]) -> list[Tok]:
    """``(text in parentheses)``, ``(later print)`` go; ``(?)``/``(uncertain)`` become UNSURE."""
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        end = _match(toks, i) if t.kind == "sym" and t.text in _PAIRS else None
        if end is not None and (i > 0 or end < len(toks) - 1):
            inner = toks[i + 1:end]
            if inner and all(x.kind == "sym" and x.text == "?" for x in inner):
                out.append(Tok("w", "UNSURE", t.sp))
                i = end + 1
                continue
            if inner and all(x.kind == "w" and x.text in ("UNSURE", "CIRCA") for x in inner):
                out.extend(inner)  # "2012 (probably)"
                i = end + 1
                continue
            if not any(_datey(x) for x in inner):
                i = end + 1
                continue
        out.append(t)
        i += 1
    return out


_DATE_WORDS = {"CENT", "MONTH", "SEASON", "FEAST", "DECW", "DECS", "JPERA"}


def _datey(t: Tok) -> bool:
    return t.kind in ("num", "mask", "ph") or (t.kind == "w" and (t.text in _DATE_WORDS or bool(t.val)))


_DCMI_KEY = re.compile(r"(?:^|;)\s*(?:start|end)\s*=", re.I)
_DCMI = re.compile(r"(?:^|;)\s*(name|start|end|scheme)\s*=\s*([^;]*)", re.I)


def _dcmi_period(text: str) -> DateRange | None:
    """A DCMI Period (``name=…; start=1929; end=1939; scheme=W3C-DTF``): both ends, else nothing."""
    parts = {k.lower(): v.strip() for k, v in _DCMI.findall(text)}
    if not parts.get("start") or not parts.get("end"):
        return None
    a, b = parse_date(parts["start"]), parse_date(parts["end"])
    if a is None or b is None or a.year_lo > b.year_hi:
        return None
    return DateRange(a.year_lo, b.year_hi, "year" if a.year_lo == b.year_hi else "range", a.approx or b.approx)


_TITLE_YEAR = re.compile(r"(?:,\s*|\s\(\s*)(1[89]\d\d|20\d\d)\s*\)?\s*\.?$")


def year_from_title(title: str | None) -> DateRange | None:
    """A year at the end of a title ("…, 1965", "… (1965)"); only for records with no date field."""
    if not title:
        return None
    m = _TITLE_YEAR.search(title.strip())
    if not m:
        return None
    y = int(m.group(1))
    return DateRange(y, y, "inferred", False) if PHOTO_MIN_YEAR <= y <= date.today().year else None


_TIMESTAMP = re.compile(r"^\s*\d{4}-\d\d-\d\d[t ]\d\d:\d\d(:\d\d(\.\d+)?)?\s*(z|[+-]\d\d:?\d\d)?\s*$", re.I)


def looks_like_timestamp(text: str | None) -> bool:
    """A full machine timestamp (``2019-05-03T10:22:11Z``): a record's time, not a photo's date."""
    return bool(text and _TIMESTAMP.match(text))
