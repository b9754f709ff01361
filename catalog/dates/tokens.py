"""Date text → tokens for the grammar (``catalog.dates.grammar``).

``tokenise`` normalises the text (HTML stripped, NFKC, case-folded, dashes and
quotes unified, Cyrillic look-alike Roman numerals such as ``ХIХ`` read as
Latin, EXIF ``2015:07:15`` read as ``2015-07-15``), removes clock times and the
words that introduce them (``at 10:55pm``, ``в 07:54``, ``la 02:38``, ISO
``T23:59:59-04``), rewrites the phrases of ``lexicon.PHRASES`` to terminals, and
splits the rest into tokens. A token knows whether whitespace came before it
(``sp``): numeric dates (``1936-05-12``) are written without spaces, ranges
(``1941 - 1944``) may have them.
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from catalog.dates.lexicon import JP_ERAS, PHRASES, WORDS, key, roman

__all__ = ["Tok", "tokenise", "normalise"]


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str    # num | mask | ph | w | sym
    text: str    # digits, mask (19xx), terminal or word, symbol
    sp: bool     # whitespace before it
    val: int | None = None  # number, month, Roman numeral, era start


_DASHES = str.maketrans({"‐": "-", "‑": "-", "–": "–", "—": "–", "‒": "–", "−": "–", "―": "–",
                         "’": "'", "‘": "'", "ʼ": "'", "´": "'", "`": "'", "′": "'", "…": "...",
                         "\u00a0": " ", "\u202f": " ", "\u2009": " ", "ş": "ș", "ţ": "ț"})
_TAG = re.compile(r"<[^>]*>")
_CYR_ROMAN = re.compile(r"(?<![^\W\d_])[хxiіvl]{2,6}(?![^\W\d_])")
_EXIF = re.compile(r"(?<![\d:])(\d{4}):(\d\d):(\d\d)(?![\d:])")
_ZONE = r"(?:\s*(?:z|utc|gmt|cest|cet|eest|eet|msk|bst|est|edt|cst|cdt|pst|pdt))?(?:[+-]\d{1,2}(?::?\d\d)?)?"
_TIME = re.compile(
    r"(?:\s*(?:at|@|в|la|um|à|alle|,))?\s*(?::?t)?"
    r"(?<![\d:])(?:\d{1,2}:\d{1,2}(?::\d{1,2}(?:[.,]\d+)?)?(?:\s*[ap]\.?m\.?(?![^\W\d_]))?|\d{1,2}\s*[ap]\.?m\.?(?![^\W\d_]))"
    + _ZONE + r"(?![\d:])")
_ISO_T = re.compile(r"(?<=\d)t(?:\d{1,2})?(?=\s|$)")
_SPACED_DECADE = re.compile(r"(\d)\s*-\s*(е|х|ые|ых|ие|их)(?![^\W\d_])")

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<mask>(?:\d{2}\.\.(?![\d.])|\d{2}--(?![\d-])|\d{3}-(?![\dxu\-])|(?:\d{3}[xu?]|\d{2}[xu?]{2}|\d[xu?]{3})(?![\dxu])))
  | (?P<ph>(?<=[-./])(?:\?\?|--|[01][xu](?![\w]))|(?:\?\?|--)(?=[-./]))
  | (?P<num>\d+)
  | (?P<suf>(?<=\d)(?:'s|s|-?е|-?х|-?ые|-?ых|-?ие|-?их)(?![^\W\d_]))
  | (?P<ord>(?<=\d)(?:st|nd|rd|th|er|ème|eme|e|-?lea|-?я|-?й|-?го)(?![^\W\d_]))
  | (?P<yearsuf>(?<=\d)-?(?:м|ом|ый|ого)(?![^\W\d_]))
  | (?P<word>[^\W\d_]+)
  | (?P<sym>\.\.\.|\.\.|\S)
""", re.X)
_LETTER = re.compile(r"[^\W\d_]")
# every phrase in one pattern (earlier phrases win where two could match at one place)
_PHRASE = re.compile("|".join(f"(?P<p{i}>{rx.pattern})" for i, (rx, _) in enumerate(PHRASES)))
_TERMS = {f"p{i}": term for i, (_, term) in enumerate(PHRASES)}
_ROMAN_ORD = re.compile(r"(?<![^\W\d_])([ivxl]+)(?:-?lea|-?я|-?й|-?го|e|er|ème)(?![^\W\d_])")


def normalise(text: str) -> str:
    s = html.unescape(_TAG.sub(" ", text))
    s = unicodedata.normalize("NFKC", s).casefold().translate(_DASHES)
    s = _CYR_ROMAN.sub(lambda m: m.group(0).replace("х", "x").replace("і", "i"), s)
    s = _EXIF.sub(r"\1-\2-\3", s)
    s = _TIME.sub(" ", s)
    s = _ISO_T.sub("", s)
    s = _SPACED_DECADE.sub(r"\1-\2", s)
    if _LETTER.search(s):  # numbers and signs only (most dates): no words to rewrite
        s = _ROMAN_ORD.sub(r"\1", s)
        s = _PHRASE.sub(lambda m: _TERMS[m.lastgroup], s)
    return re.sub(r"\s+", " ", s).strip()


def tokenise(text: str) -> list[Tok]:
    s = normalise(text)
    out: list[Tok] = []
    sp = False
    for m in _TOKEN.finditer(s):
        kind, t = m.lastgroup, m.group()
        if kind == "ws":
            sp = True
            continue
        if kind == "mask":
            out.append(Tok("mask", _mask(t), sp))
        elif kind == "ph":
            out.append(Tok("ph", t, sp))
        elif kind == "num":
            out.append(Tok("num", t, sp, int(t)))
        elif kind == "suf":
            out.append(Tok("w", "DECS", sp))
        elif kind == "ord":
            out.append(Tok("w", "ORD", sp))
        elif kind == "yearsuf":
            out.append(Tok("w", "YEARW", sp))
        elif kind == "word":
            out.append(_word(t, sp))
        elif t == "." and out and out[-1].kind == "w" and not sp and out[-1].text not in ("xx", "uu") \
                and out[-1].val is None:
            pass  # an abbreviation's dot (янв., ca., xix.)
        else:
            out.append(Tok("sym", t, sp))
        sp = False
    return out


def _mask(t: str) -> str:
    """``18..`` / ``19--`` / ``192-`` / ``19??`` / ``192u`` → ``18xx`` / ``19xx`` / ``192x`` / ``19xx`` / ``192x``."""
    t = t.replace("..", "xx")
    digits = re.match(r"\d+", t).group()
    return digits + "x" * (4 - len(digits))


def _word(t: str, sp: bool) -> Tok:
    if t.isupper():  # a terminal written by PHRASES (the text itself is case-folded)
        return Tok("w", t, sp)
    if t in JP_ERAS:
        return Tok("w", "JPERA", sp, JP_ERAS[t])
    if t in ("月", "日"):
        return Tok("w", "JPM" if t == "月" else "JPD", sp)
    r = roman(t)
    term = WORDS.get(key(t))
    if term and term.startswith("M") and term[1:].isdigit():
        return Tok("w", "MONTH", sp, int(term[1:]))
    if term:
        return Tok("w", term, sp, r)
    return Tok("w", t, sp, r)
