"""What the date grammar's productions return, and how they read tokens (``catalog.dates.grammar``)."""
from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date
from functools import wraps

from catalog.dates.tokens import Tok

__all__ = ["Val", "TokenReader", "memo", "valid_day", "with_flags", "THIS_YEAR"]

THIS_YEAR = date.today().year  # a year after this one is not a photo's (and not a date we can trust)


@dataclass(frozen=True)
class Val:
    lo: int
    hi: int
    kind: str                  # year | date | decade | century | range | partial | yy
    m: int | None = None       # month (dates, partial dates)
    d: int | None = None       # day
    approx: bool = False
    unsure: bool = False
    bare: bool = False         # a bare four-digit year (an abbreviated end may follow)
    loose: str = ""            # only before this kind: "century" (17-19th centuries), "decade" (конец 1920 - …)


def memo(fn):
    @wraps(fn)
    def wrapper(self, i, *args):
        k = (fn.__name__, i, args)
        if k not in self.memo:
            self.memo[k] = list(fn(self, i, *args))
        return self.memo[k]
    return wrapper


def valid_day(y: int | None, m: int | None, d: int | None) -> bool:
    if m is not None and not 1 <= m <= 12:
        return False
    if d is None:
        return True
    if not 1 <= d <= 31:
        return False
    if m is None:
        return True
    leap_year = y if y is not None and y > 0 else 2000
    return d <= calendar.monthrange(leap_year, m)[1]


def with_flags(v: Val, approx: bool, unsure: bool) -> Val:
    if not approx and not unsure:
        return v
    return replace(v, approx=v.approx or approx, unsure=v.unsure or unsure)


class TokenReader:
    """Tests on the token list; the productions are methods of subclasses."""

    def __init__(self, toks: list[Tok]):
        self.t = toks
        self.n = len(toks)
        self.memo: dict = {}

    def w(self, i: int, *terms: str) -> bool:
        return i < self.n and self.t[i].kind == "w" and self.t[i].text in terms

    def s(self, i: int, *syms: str, tight: bool = False) -> bool:
        return i < self.n and self.t[i].kind == "sym" and self.t[i].text in syms and not (tight and self.t[i].sp)

    def num(self, i: int, *lengths: int, tight: bool = False) -> int | None:
        if i < self.n and self.t[i].kind == "num" and len(self.t[i].text) in lengths and not (tight and self.t[i].sp):
            return self.t[i].val
        return None

    def tight(self, i: int) -> bool:
        return i < self.n and not self.t[i].sp
