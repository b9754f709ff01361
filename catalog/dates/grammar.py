"""The date grammar: tokens → one interval (``Val``) or nothing.

A backtracking recursive-descent parser over ``tokens.Tok``; each production
returns its readings in order of preference and the first reading that uses
every token wins. The grammar, informally::

    text     := list
    list     := range ((',' | ';' | '&' | '|' | AND | OR) range)* [(',' | ';') PRINTED …]
    range    := BETWEEN point AND point | [FROM] point (- | – | / | .. | TO) end | point
    end      := point | abbreviated year (1941–44, 1976-7) | decade (1910-20s)
    point    := prefix* core suffix*                          prefix: CIRCA UNSURE c ~ ?
    core     := century | scoped | decade | date | year
    century  := [part] (ordinal CENT | CENT roman | roman [CENT] | 19XX | 1XXX | 1800s) [Qn]
    scoped   := [part] NN[-е] [- NN] [годы|гг.] century        (50-е годы XIX века)
    decade   := [part] (1920s | 1920-е | anii 1920 | anii '20 | '30s | 192X | 192-)
    date     := Y-M-D | Y/M/D | D.M.Y | M/D/Y | M-Y | Y M D | D MONTH Y | MONTH D, Y | MONTH Y
              | SEASON Y | FEAST Y | 平成15年 | 2003年2月16日 | Y-21…41 (EDTF season)
    year     := YYYY [AD | BC] [г.] | N BP

Validation is part of the grammar: a month outside 1–12, a day the month does
not have, or trailing digits no production explains leave no reading, so the
text gets no date. Numeric dates are written without spaces (``Tok.sp``).
Calendar dates (the ``date`` and ``year`` rules) are in ``days``.
"""
from __future__ import annotations

from catalog.dates.days import DayProductions
from catalog.dates.tokens import Tok
from catalog.dates.values import Val, memo, valid_day, with_flags

__all__ = ["Val", "Parser"]

PARTS = {  # offsets inside a decade (of 10) and a century (of 100)
    "EARLY": ((0, 3), (0, 32)), "MID": ((3, 6), (33, 66)), "LATE": ((6, 9), (67, 99)),
    "HALFI": (None, (0, 49)), "HALFII": (None, (50, 99)),
    "THIRDI": (None, (0, 32)), "THIRDII": (None, (33, 65)), "THIRDIII": (None, (66, 99)),
    "QUARTI": (None, (0, 24)), "QUARTII": (None, (25, 49)), "QUARTIII": (None, (50, 74)), "QUARTIV": (None, (75, 99)),
}
RANGE_SEPS = ("-", "–", "/", "..", "...")
LIST_SEPS = (",", ";", "&", "|")
ABBREVIATION_SPAN = 10  # 1941-44: a hyphenated two-digit end reaches at most this far
LIST_GAP = 10           # 1935, 1937: a list is one interval only when its items are this close


class Parser(DayProductions):
    """Lists, ranges, qualified points, centuries and decades (calendar dates: ``days``)."""

    def parse(self) -> Val | None:
        for v, j in self.p_list(0):
            if j == self.n:
                return v
        return None

    # --- lists and ranges -------------------------------------------------------
    @memo
    def p_list(self, i):
        for first, j in self.p_range(i):
            yield from self._more(first, j, first)

    def _more(self, acc: Val, j: int, last: Val):
        yield acc, j
        seps = []  # (next index, only a full date may follow)
        if self.s(j, ",", ";") and self.w(j + 1, "PRINTED"):
            yield acc, self.n  # "1863, printed 1870": the clause is a later state of the object
            return
        if self.s(j, *LIST_SEPS) or self.w(j, "AND", "OR"):
            seps.append((j + 1, False))
            if self.s(j, ",") and self.w(j + 1, "AND", "OR"):
                seps.append((j + 2, False))
        elif j < self.n and last.kind == "date":
            seps.append((j, True))  # "1916-09-26 1916-09-28"
        for k, need_date in seps:
            for nxt, k2 in self.p_range(k):
                if need_date and nxt.kind != "date":
                    continue
                joined = _union(acc, nxt)
                if joined is not None:
                    yield from self._more(joined, k2, nxt)

    @memo
    def p_range(self, i):
        if self.w(i, "BETWEEN"):
            for a, j in self.p_point(i + 1):
                if self.w(j, "AND") or self.s(j, "-", "–"):
                    for b, k in self.p_end(j + 1, a):
                        yield from self._span(a, b, k)
        start = i + 1 if self.w(i, "FROM") else i
        lefts = list(self.p_point(start, True, True)) + list(self._compact_range(start)) + \
            list(self._borrowed_decade(start))
        for a, j in lefts:
            if self.s(j, *RANGE_SEPS) or self.w(j, "TO"):
                for b, k in self.p_end(j + 1, a, self.t[j]):
                    yield from self._span(a, b, k)
        if start == i:
            for a, j in self.p_point(i):
                if a.kind not in ("partial", "yy"):
                    yield a, j
            yield from self._compact_range(i)

    def _span(self, a: Val, b: Val, k: int):
        for v in _span(a, b):
            yield self._postfix(v, k)

    @memo
    def _compact_range(self, i, after_range=False):
        """1955/56, 1989-90?: a year and its abbreviated end, written as one word."""
        for a, j in self.p_year4(i):
            if self.s(j, "/", "-", tight=True) and a > 0:
                left = Val(a, a, "year", bare=True)
                for b, k in self._abbreviated(j + 1, left, self.t[j], after_range):
                    if b.kind == "year":
                        yield self._postfix(Val(a, b.hi, "range"), k)

    def _borrowed_decade(self, i):
        """конец 1920 - начало 1930-х: the left end borrows "-х" (a decade) from the right."""
        if i < self.n and self.t[i].kind == "w" and self.t[i].text in PARTS and PARTS[self.t[i].text][0]:
            y = self.num(i + 1, 4)
            if y is not None and y % 10 == 0:
                off = PARTS[self.t[i].text][0]
                yield Val(y + off[0], y + off[1], "decade", loose="decade"), i + 2

    def p_end(self, i, left: Val, sep: Tok | None = None):
        """The right side of a range; abbreviated ends borrow from ``left``."""
        if left.kind == "range":  # 1955/56 to 1971/72, 1999/00 - 2010/11
            yield from self._compact_range(i, True)
        for b, k in self.p_point(i, False, left.kind == "century"):
            if b.kind != "yy":
                yield b, k
        yield from self._compact_range(i)
        if left.kind == "partial":  # December 1st - 7th 2022
            yield from self.p_dayyear(i, left)
        if left.bare:
            yield from self._abbreviated(i, left, sep)

    def _abbreviated(self, i, left: Val, sep: Tok | None, after_range: bool = False):
        n = self.num(i, 1, 2)
        if n is None:
            return
        digits = len(self.t[i].text)
        compact = sep is not None and sep.text in ("-", "/") and not sep.sp and not self.t[i].sp
        if self.w(i + 1, "DECS") and digits == 2 and n % 10 == 0:  # 1910-20s
            lo = left.lo // 100 * 100 + n
            if lo > left.lo:
                yield Val(lo, lo + 9, "decade"), i + 2
            return
        if compact and (1 <= n <= 12 and digits == 2 and not after_range or digits == 1):
            return  # 1941-05, 1989/11: ISO year and month (p_date); 1991-5: month or 1995?
        base = 10 if digits == 1 else 100
        hi = left.lo // base * base + n
        wrapped = hi <= left.lo
        if wrapped:
            hi += base
        if (compact or wrapped) and hi - left.lo > ABBREVIATION_SPAN:
            return  # 2001-21 is an EDTF season (p_date); 1984-13 and 1941–05 explain nothing
        yield Val(hi, hi, "year"), i + 1

    def p_dayyear(self, i, left: Val):
        """``27 2011`` / ``7th 2022`` after a partial date that named the month."""
        d = self.num(i, 1, 2)
        if d is None or left.m is None:
            return
        j = i + 2 if self.w(i + 1, "ORD") else i + 1
        j = j + 1 if self.s(j, ",") else j
        for y, k in self.p_year4(j):
            if valid_day(y, left.m, d) and (left.d is None or left.d <= d):
                yield Val(y, y, "date", left.m, d), k

    # --- points -----------------------------------------------------------------
    @memo
    def p_point(self, i, allow_partial=False, bare_century=False):
        approx = unsure = False
        while True:
            if self.w(i, "CIRCA") or self.w(i, "c") or self.s(i, "~"):
                approx, i = True, i + 1
            elif self.w(i, "UNSURE") or self.s(i, "?", "%"):
                unsure, i = True, i + 1
            elif self.w(i, "FILL", "YEARW", "INV"):
                i += 1
            elif self.w(i, "WEEKDAY") and not self._weekday_alone():
                i = i + 2 if self.s(i + 1, ",") else i + 1
            else:
                break
        cores = list(self.p_core(i, bare_century))
        if allow_partial:
            cores += list(self.p_partial(i))
        for v, j in cores:
            yield self._postfix(with_flags(v, approx, unsure), j)

    def _postfix(self, v: Val, j: int) -> tuple[Val, int]:
        """Qualifiers and words after a date: ``1930?``, ``1953c``, ``1860 approx``, ``1935 г.``, ``, вторник``."""
        a = u = False
        while True:
            if self.w(j, "CIRCA") or (self.w(j, "c") and v.kind != "partial"):
                a, j = True, j + 1
            elif self.w(j, "UNSURE") or self.s(j, "?", "~", "%", tight=True):
                a, u = a or self.s(j, "~"), u or not self.s(j, "~")
                j += 1
            elif self.w(j, "YEARW", "FILL", "INV") and v.kind in ("year", "date", "decade", "range"):
                j += 1
            elif self.s(j, ",") and self.w(j + 1, "WEEKDAY") and j + 2 == self.n and v.kind == "date":
                j += 2
            else:
                break
        return with_flags(v, a, u), j

    def _weekday_alone(self) -> bool:
        """A weekday goes only with a full date ("Wed Nov 01 1989", not "Monday 2023")."""
        return not any(t.kind == "w" and t.text == "MONTH" for t in self.t) and \
            not any(t.kind == "num" and len(t.text) <= 2 for t in self.t)

    @memo
    def p_core(self, i, bare_century=False):
        yield from self.p_century(i, bare_century)
        yield from self.p_scoped(i)
        yield from self.p_decade(i)
        yield from self.p_date(i)

    # --- centuries ----------------------------------------------------------------
    @memo
    def p_century(self, i, bare=False):
        part = None
        if i < self.n and self.t[i].kind == "w" and self.t[i].text in PARTS:
            part, i = self.t[i].text, i + 1
            while self.w(i, "FILL"):  # second half of the 19th century
                i += 1
        for lo, hi, loose, j in self._century_span(i, bare):
            if j < self.n and self.t[j].kind == "w" and self.t[j].text.startswith("QUART") and part is None \
                    and hi - lo == 99:
                part, j = self.t[j].text, j + 1
            if part is not None:
                if hi - lo != 99:
                    continue
                off = PARTS[part][1]
                lo, hi = lo + off[0], lo + off[1]
            yield Val(lo, hi, "century", loose=loose), j

    def _century_span(self, i, bare):
        """(lo, hi, loose, next) of 19th century, XIX век, sec. XIX, XIX, 19XX, 1XXX, 1800s."""
        t = self.t[i] if i < self.n else None
        if t is None:
            return
        if t.kind == "mask" and t.text.endswith("xx"):
            digits = t.text.rstrip("x")
            span = 10 ** (4 - len(digits))
            yield int(digits) * span, int(digits) * span + span - 1, "", i + 1
        elif t.kind == "num" and len(t.text) == 4 and t.val % 100 == 0 and self.w(i + 1, "DECS") \
                and not self.t[i + 1].sp and not self.num(i + 2, 1, tight=True):
            yield t.val, t.val + 99, "", i + 2  # 1800s: the century (the decade 1800–09 lies inside it)
        elif t.kind == "num" and len(t.text) <= 2 and 1 <= t.val <= 21:
            j = i + 1
            if self.w(j, "ORD") or self.s(j, ".", tight=True):
                j += 1
            if self.s(j, "-", tight=True) and self.w(j + 1, "CENT"):
                j += 1
            lo = (t.val - 1) * 100
            if self.w(j, "CENT", "INV") or (self.w(j, "c") and (self.tight(j) or self.w(j - 1, "ORD"))):
                yield lo, lo + 99, "", j + 1
            elif self.w(j, "QUARTI", "QUARTII", "QUARTIII", "QUARTIV"):
                yield lo, lo + 99, "", j
            elif bare:
                yield lo, lo + 99, "century", j
        elif t.kind == "w" and t.text == "CENT":
            j = i + 2 if self.w(i + 1, "al") else i + 1
            r = self.t[j] if j < self.n else None
            if r is not None and r.kind == "w" and r.val and r.text.islower():
                yield (r.val - 1) * 100, (r.val - 1) * 100 + 99, "", j + 1
            elif r is not None and self.num(j, 1, 2) and 1 <= r.val <= 21:
                yield (r.val - 1) * 100, (r.val - 1) * 100 + 99, "", j + 1
        elif t.kind == "w" and t.val and t.text.islower():  # a Roman numeral
            lo = (t.val - 1) * 100
            j = i + 2 if self.s(i + 1, ".", tight=True) else i + 1
            yield lo, lo + 99, "", j + 1 if self.w(j, "CENT", "INV") else j

    # --- decades and years inside a century (Russian) ------------------------------
    @memo
    def p_scoped(self, i):
        part = self.t[i].text if i < self.n and self.t[i].kind == "w" and self.t[i].text in PARTS else None
        j = i + 1 if part else i
        a = self.num(j, 2)
        if a is None:
            return
        j += 1
        decade = self.w(j, "DECS")
        j = j + 1 if decade else j
        b = None
        if self.s(j, "-", "–") and self.num(j + 1, 2) is not None:
            b, j = self.t[j + 1].val, j + 2
            if self.w(j, "DECS"):
                decade, j = True, j + 1
        if self.w(j, "YEARW"):
            j += 1
            decade = decade or (b is None and a % 10 == 0)
        elif not decade:
            return
        for c, k in self.p_century(j, True):
            if c.kind != "century" or c.hi - c.lo != 99:
                continue
            base = c.lo
            if decade and a % 10 == 0:
                lo, hi = base + a, base + (b if b is not None else a) + 9
                if part and PARTS[part][0] and b is None:
                    lo, hi = base + a + PARTS[part][0][0], base + a + PARTS[part][0][1]
            elif not part:
                lo, hi = base + a, base + (b if b is not None else a)
            else:
                continue
            if lo <= hi:
                yield Val(lo, hi, "decade" if decade else "range"), k

    # --- decades -------------------------------------------------------------------
    @memo
    def p_decade(self, i):
        part = self.t[i].text if i < self.n and self.t[i].kind == "w" and self.t[i].text in PARTS else None
        j = i + 1 if part else i
        while part and self.w(j, "FILL"):  # late in the 1920s
            j += 1
        for start, k in self._decade_start(j):
            lo, hi = start, start + 9
            if part:
                off = PARTS[part][0]
                if off is None:
                    continue
                lo, hi = start + off[0], start + off[1]
            yield Val(lo, hi, "decade"), k

    def _decade_start(self, i):
        t = self.t[i] if i < self.n else None
        if t is None:
            return
        if t.kind == "mask" and len(t.text.rstrip("x")) == 3:
            yield int(t.text[:3]) * 10, i + 1
        elif t.kind == "num" and len(t.text) == 4 and t.val % 10 == 0:
            if self.w(i + 1, "DECS") and not self.t[i + 1].sp and not self.num(i + 2, 1, tight=True):
                yield t.val, i + 2
        elif t.kind == "w" and t.text == "DECW":
            j = i + 1
            if self.s(j, "'"):
                j += 1
            if self.num(j, 4) is not None and self.t[j].val % 10 == 0:
                yield self.t[j].val, j + 1
            elif self.num(j, 2) is not None and self.t[j].val % 10 == 0:
                yield 1900 + self.t[j].val, j + 1
        elif t.kind == "sym" and t.text == "'" and self.num(i + 1, 2, tight=True) is not None:
            n = self.t[i + 1].val
            if n % 10 == 0 and self.w(i + 2, "DECS"):
                yield 1900 + n, i + 3
        elif t.kind == "num" and len(t.text) == 2 and t.val % 10 == 0 and self.w(i + 1, "DECS"):
            yield 1900 + t.val, i + 2


def _span(a: Val, b: Val):
    """The range from ``a`` to ``b``; a partial or two-digit-year ``a`` takes its year from ``b``."""
    approx, unsure = a.approx or b.approx, a.unsure or b.unsure
    if a.kind == "partial" or a.kind == "yy":
        if b.kind not in ("date", "year") or (a.kind == "partial" and a.m is None and b.m is None):
            return
        if a.kind == "yy":
            lo = b.lo // 100 * 100 + a.lo
        else:
            later = a.m is not None and b.m is not None and (a.m, a.d or 0) > (b.m, b.d or 0)
            lo = b.lo - 1 if later else b.lo
        if lo <= b.lo:
            yield Val(lo, b.hi, "range", approx=approx, unsure=unsure)
        return
    if a.loose and b.kind != a.loose:
        return
    if a.lo > b.lo or a.hi > b.hi:
        return
    yield Val(a.lo, b.hi, "range", approx=approx, unsure=unsure)


def _union(a: Val, b: Val) -> Val | None:
    """Items of a list ("1935, 1937", "1930s & 1940s"): their span, when they lie close together."""
    if b.kind in ("partial", "yy"):
        return None
    first, second = (a, b) if a.lo <= b.lo else (b, a)
    if second.lo - first.hi > LIST_GAP:
        return None
    return Val(min(a.lo, b.lo), max(a.hi, b.hi), "range", approx=True, unsure=a.unsure or b.unsure)
