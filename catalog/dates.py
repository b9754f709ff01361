"""Uncertain dates of photographs: text as written → (year_lo, year_hi).

``parse_date`` reads the date phrases archives write (Romanian, Russian,
English, AACR2 brackets, EDTF) and returns a ``DateRange`` or ``None``.
It is strict on purpose: the whole phrase must be understood, otherwise
there is no date (no date is better than a wrong date). Callers decide
which field describes the photograph; web-page, upload and record
timestamps must never be passed here as the photo's date.

Rules (the README's table lists examples):

* a year, a full date (``12.05.1936``, ``1936-05-12``, ``12 mai 1936``) or a
  month and year → that year, qualifier ``year``;
* ``circa``/``cca.``/``ca.``/``c.``/``около``/``~1930``/EDTF ``1930~`` → that
  year, ``approx`` (the range is *not* widened: widen at query time);
* a trailing or bracketed ``?`` (``1930?``, ``[1930?]``, EDTF ``1930?``/``%``)
  → that year, qualifier ``uncertain``, ``approx``;
* decades: ``1920s``, ``anii 1920``, ``anii '20`` (20th century), ``1920-е
  годы``, EDTF ``192X``, AACR2 ``[192-]`` (``[192-?]`` is approx) → 1920–1929;
  ``early``/``începutul``/``начало`` → x0–x3, ``mid``/``mijlocul``/``середина``
  → x3–x6, ``late``/``sfârșitul``/``конец`` → x6–x9;
* ranges: ``1941-1944``, ``1941–44``, ``1941/1944`` (EDTF), ``1941 - 1944``,
  ``between 1941 and 1944``, ``1935 or 1936`` (approx), ``iarna 1958–1959``;
  ``1941-05`` with a hyphen is ISO year-month, not a range;
* centuries: ``sec. XIX``, ``secolul al XX-lea``, ``XIX век``, ``19th century``,
  EDTF ``19XX``, AACR2 ``[19--]`` → 1800–1899 (halves and early/late too);
* open intervals (``after 1930``, ``1930/..``), text without a year, two
  unrelated years, and years outside ``PHOTO_MIN_YEAR``..this year → ``None``;
  a range partly before ``PHOTO_MIN_YEAR`` is clipped to it.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date

__all__ = ["DateRange", "parse_date", "year_from_title", "looks_like_timestamp", "PHOTO_MIN_YEAR"]

PHOTO_MIN_YEAR = 1826  # the oldest surviving photograph (Niépce)


@dataclass(frozen=True)
class DateRange:
    year_lo: int
    year_hi: int
    qualifier: str = "year"  # year | circa | uncertain | decade | range | century | inferred
    approx: bool = False

    def as_dict(self) -> dict:
        return {"year_lo": self.year_lo, "year_hi": self.year_hi, "qualifier": self.qualifier,
                "approx": self.approx}


# --- vocabulary -------------------------------------------------------------

_MONTHS = (
    # English
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|"
    # Romanian
    "ianuarie|februarie|martie|aprilie|mai|iunie|iulie|septembrie|octombrie|noiembrie|decembrie|"
    "ian|iun|iul|noi|"
    # Russian (nominative and genitive)
    "январь|января|февраль|февраля|март|марта|апрель|апреля|май|мая|июнь|июня|июль|июля|август|августа|"
    "сентябрь|сентября|октябрь|октября|ноябрь|ноября|декабрь|декабря|янв|фев|мар|апр|авг|сен|сент|окт|ноя|дек"
)
_SEASONS = (r"iarna|vara|primăvara|primavara|toamna|iarnă|vară|primăvară|toamnă|winter|summer|spring|autumn|fall|"
            r"зима|лето|весна|осень|зимой|летом|весной|осенью")
_CIRCA = (r"circa|cca\.?|ca\.?|c\.|approx\.?|approximately|aprox\.?|aproximativ|около|ок\.|примерно|"
          r"приблизительно|~")
_UNCERTAIN_WORDS = r"probabil|probably|possibly|perhaps|posibil|вероятно|возможно|предположительно"
# words that may surround a date without changing it
_FILLER = (r"anul|an|the|year|years|in|în|on|din|dated|data|date|г\.?|гг\.?|год|года|году|годы|годов|"
           r"годах|photo|foto|fotografie|фото")
_EARLY = r"early|începutul|inceputul|начало|начала|начале|first years of"
_MID = r"mid|middle of|mijlocul|середина|середины|середине"
_LATE = r"late|sfârșitul|sfarsitul|sfîrșitul|finele|конец|конца|конце"
_FIRST_HALF = r"first half of|prima jumătate a|prima jumatate a|первая половина|первой половины|первой половине"
_SECOND_HALF = (r"second half of|a doua jumătate a|a doua jumatate a|вторая половина|второй половины|"
                r"второй половине")
_ROMAN = {"xix": 19, "xx": 20, "xxi": 21, "xviii": 18}

_DASHES = str.maketrans({"–": "–", "—": "–", "‒": "–", "−": "–", "‐": "-", "‑": "-",
                         "’": "'", "‘": "'", "ʼ": "'", "´": "'", "`": "'", "′": "'",
                         "\u00a0": " ", "\u202f": " ", "\u2009": " "})
_TAG = re.compile(r"<[^>]*>")


def _normalise(text: str) -> str:
    s = html.unescape(_TAG.sub(" ", text)).translate(_DASHES).casefold()
    s = s.replace("ş", "ș").replace("ţ", "ț")
    return re.sub(r"\s+", " ", s).strip()


def _year_ok(y: int) -> bool:
    return PHOTO_MIN_YEAR <= y <= date.today().year


def _clip(lo: int, hi: int, qualifier: str, approx: bool) -> DateRange | None:
    """A range inside the photographic era, clipped at its start; None when outside."""
    this_year = date.today().year
    if lo > hi or hi < PHOTO_MIN_YEAR or lo > this_year:
        return None
    return DateRange(max(lo, PHOTO_MIN_YEAR), min(hi, this_year), qualifier, approx)


# --- the core grammar: one date expression, qualifiers already removed -------

_Y = r"(1[89]\d\d|20\d\d)"
_MM = r"(?:0?[1-9]|1[0-2])"
_DD = r"(?:0?[1-9]|[12]\d|3[01])"
_FULL_DATE = [
    re.compile(rf"^{_Y}-{_MM}(-{_DD})?(t[\d:.]+(z|[+-]\d\d:?\d\d)?)?$"),  # ISO date, year-month, timestamp
    re.compile(rf"^{_Y}[./]{_MM}[./]{_DD}$"),
    re.compile(rf"^{_DD}[./-]{_MM}[./-]{_Y}$"),
    re.compile(rf"^{_MM}[./]{_Y}$"),  # 05.1936
    re.compile(rf"^({_DD}\.? )?({_MONTHS})\.?,? {_Y}$"),
    re.compile(rf"^({_MONTHS})\.? {_DD},? {_Y}$"),
]


def _single(core: str) -> tuple[int, int, str] | None:
    """A year, a full date, a decade or a century → (lo, hi, qualifier)."""
    core = core.strip(" .,;:")
    m = re.fullmatch(_Y, core)
    if m:
        y = int(m.group(1))
        return y, y, "year"
    for rx in _FULL_DATE:
        m = rx.match(core)
        if m:
            y = int(re.search(_Y, core).group(1))
            return y, y, "year"
    dec = _decade(core)
    if dec is not None:
        return dec
    return _century(core)


def _decade(core: str) -> tuple[int, int, str] | None:
    part = None
    m = re.fullmatch(rf"(?:({_EARLY}|{_MID}|{_LATE})[ -](?:of )?(?:the )?)?(.+?)", core)
    if m and m.group(1):
        part, core = m.group(1), m.group(2)
    patterns = (
        r"(1[89]\d|20\d)0 ?'?s",  # 1920s, 1920's
        r"(1[89]\d|20\d)0-?(?:е|х|ые|ых|ies)",  # 1920-е, 1920-х
        r"(1[89]\d|20\d)[x?u]",  # EDTF 192X, MARC 192u
        r"\[?(1[89]\d|20\d)-\??\]?",  # AACR2 [192-] [192-?]
        r"(?:anii|anilor) (1[89]\d|20\d)0",  # anii 1920
        r"(?:anii|anilor) '?(\d)0",  # anii '20, anii 20 (20th century)
        r"'(\d)0 ?'?s",  # '30s
        r"(\d)0-?(?:е|х|ые|ых)",  # 30-е (годы)
    )
    for p in patterns:
        mm = re.fullmatch(p, core)
        if mm:
            g = mm.group(1)
            start = int(g) * 10 if len(g) == 3 else 1900 + int(g) * 10
            lo, hi = start, start + 9
            if part:
                if re.fullmatch(_EARLY, part):
                    hi = start + 3
                elif re.fullmatch(_MID, part):
                    lo, hi = start + 3, start + 6
                else:
                    lo = start + 6
            return lo, hi, "decade"
    return None


def _century(core: str) -> tuple[int, int, str] | None:
    part = None
    m = re.fullmatch(rf"(?:({_EARLY}|{_MID}|{_LATE}|{_FIRST_HALF}|{_SECOND_HALF}) (?:the )?)?(.+?)", core)
    if m and m.group(1):
        part, core = m.group(1), m.group(2)
    n = None
    if mm := (re.fullmatch(r"(?:sec\.?|secolul|secolului)(?: al)? ?([xvi]+)(?:-lea)?", core)
              or re.fullmatch(r"([xvi]+)(?:-lea)? ?(?:век|века|веке|в\.?|c\.?|century|sec\.?)", core)):
        n = _ROMAN.get(mm.group(1))
    elif mm := re.fullmatch(r"(18|19|20|21)(?:th|st)? ?(?:century|cent\.?|c\.?)", core):
        n = int(mm.group(1))
    elif mm := re.fullmatch(r"(1[89]|20)(?:xx|uu|--)", core):  # EDTF 19XX, MARC 19uu, AACR2 [19--]
        n = int(mm.group(1)) + 1
    if n is None:
        return None
    start = (n - 1) * 100
    lo, hi = start, start + 99
    if part:
        if re.fullmatch(_EARLY, part):
            hi = start + 32
        elif re.fullmatch(_MID, part):
            lo, hi = start + 33, start + 66
        elif re.fullmatch(_LATE, part):
            lo = start + 67
        elif re.fullmatch(_FIRST_HALF, part):
            hi = start + 49
        else:
            lo = start + 50
    return lo, hi, "century"


_RANGE_SEP = re.compile(r"\s*(?:–|\s-\s|/|\.\.|(?<=[\ds])-(?=\d{2,4}(?!\d)))\s*")


def _range(core: str) -> tuple[int, int, str, bool] | None:
    """Two expressions → (lo, hi, qualifier, approx)."""
    m = re.fullmatch(r"(?:between|între|intre|de la|from|с|от) (.+?) (?:and|și|si|to|până la|pana la|по|до) (.+)",
                     core)
    if m:
        return _pair(m.group(1), m.group(2), False)
    m = re.fullmatch(r"(.+?) (?:or|sau|или) (.+)", core)
    if m:
        return _pair(m.group(1), m.group(2), True)
    for sep in _RANGE_SEP.finditer(core):
        found = _pair(core[:sep.start()], core[sep.end():], False)
        if found:
            return found
    return None


def _pair(a: str, b: str, approx: bool) -> tuple[int, int, str, bool] | None:
    left = _single(a.strip())
    if left is None:
        return None
    b = b.strip()
    right = _single(b)
    if right is None and re.fullmatch(r"\d{2}", b):  # 1941–44
        hi = left[0] // 100 * 100 + int(b)
        if hi < left[0]:
            hi += 100
        right = (hi, hi, "year")
    if right is None or left[0] > right[1]:
        return None
    return left[0], right[1], "range", approx


_CIRCA_RX = re.compile(rf"(^|(?<=[\s\[(]))({_CIRCA})(?=\s*[\[(]?\s*(\d|'|anii|anilor|the|early|late|mid|sec))")
_OPEN_RX = re.compile(r"\b(after|before|după|dupa|înainte de|inainte de|până în|pana in|până la|pana la|"
                      r"после|не ранее|не позднее)\b|(^|/)\.\.($|/)|^до\s")


def parse_date(text: str | None) -> DateRange | None:
    """The photo's date range from the text as written, or None; see the module docstring."""
    if text is None:
        return None
    s = _normalise(str(text))
    if not s or not re.search(r"\d|\b[xvi]+\b", s):
        return None
    if _OPEN_RX.search(s) and not re.match(r"(between|între|intre|de la|from|с|от)\s", s):
        return None  # open intervals: no honest range
    uncertain = bool(re.search(r"[?%]", s))
    if re.search(rf"\b({_UNCERTAIN_WORDS})\b", s):
        uncertain = True
        s = re.sub(rf"\b({_UNCERTAIN_WORDS})\b", " ", s)
    approx = bool(_CIRCA_RX.search(s) or re.search(r"\d\s*[~%]", s))
    s = _CIRCA_RX.sub(" ", s)
    s = re.sub(r"[~%]", " ", s).strip()
    aacr2 = re.fullmatch(r"\[?\s*(1[89]\d|20\d)-\s*\??\s*\]?", s)  # [196-] and [196-?] before '?' goes
    if aacr2:
        start = int(aacr2.group(1)) * 10
        return _clip(start, start + 9, "decade", approx or uncertain)
    s = re.sub(r"[?\[\](){}]", " ", s)
    s = re.sub(rf"(^|\s)({_SEASONS})(?=\s|$)", " ", s)
    s = re.sub(rf"(^|\s)({_FILLER})(?=[\s.,:]|$)", " ", s)
    s = re.sub(r"(^|\s)(в|во)\s+(?=\d)", " ", s)
    s = re.sub(r"\s+", " ", s).strip(" .,;:")
    if not s:
        return None
    single = _single(s)
    if single is not None:
        lo, hi, qualifier = single
        if qualifier == "year":
            if not _year_ok(lo):
                return None
            qualifier = "circa" if approx else "uncertain" if uncertain else "year"
        return _clip(lo, hi, qualifier, approx or uncertain)
    rng = _range(s)
    if rng is not None:
        lo, hi, qualifier, or_approx = rng
        return _clip(lo, hi, qualifier, approx or uncertain or or_approx)
    # a short list of years "1935, 1937" → their span (the photo is one of them)
    parts = [p.strip() for p in re.split(r"\s*[,;]\s*|\s+(?:și|si|and|и)\s+", s) if p.strip()]
    if len(parts) > 1 and all(re.fullmatch(_Y, p) for p in parts):
        years = sorted(int(p) for p in parts)
        if all(_year_ok(y) for y in years) and years[-1] - years[0] <= 10:
            return DateRange(years[0], years[-1], "range", True)
    return None


_TITLE_YEAR = re.compile(rf"(?:,\s*|\s\(\s*){_Y}\s*\)?\s*\.?$")


def year_from_title(title: str | None) -> DateRange | None:
    """A year at the end of a title ("…, 1965", "… (1965)"); only for records with no date field."""
    if not title:
        return None
    m = _TITLE_YEAR.search(title.strip())
    if not m:
        return None
    y = int(m.group(1))
    return DateRange(y, y, "inferred", False) if _year_ok(y) else None


_TIMESTAMP = re.compile(r"^\s*\d{4}-\d\d-\d\d[t ]\d\d:\d\d(:\d\d(\.\d+)?)?\s*(z|[+-]\d\d:?\d\d)?\s*$", re.I)


def looks_like_timestamp(text: str | None) -> bool:
    """A full machine timestamp (``2019-05-03T10:22:11Z``): a record's time, not a photo's date."""
    return bool(text and _TIMESTAMP.match(text))
