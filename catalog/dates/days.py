"""Dates on the calendar: years, numeric dates in every order, month names, Japanese markers.

Productions of the date grammar (``catalog.dates.grammar.Parser`` inherits them): ``p_date``
reads ``1936-05-12``, ``12.05.1936``, ``5/12/1936``, ``12.VI.1936``, ``11-1978``, ``1989 11 01``,
``01 November 1989``, ``November 1, 1989``, ``12-Iun-2013``, ``Easter 1942``, ``平成15年2月`` and
EDTF's unspecified digits and qualifiers (``198X-11-XX``, ``2004?-06-~11``, ``2001-21``);
``p_partial`` the left end of ``August 20 – 27 2011``. A month or day the calendar lacks reads
as nothing.
"""
from __future__ import annotations

from catalog.dates.values import THIS_YEAR, TokenReader, Val, memo, valid_day

__all__ = ["DayProductions"]


class DayProductions(TokenReader):
    def p_year4(self, i):
        y = self.num(i, 4)
        if y is None or y > THIS_YEAR:
            return
        j = i + 1
        if self.w(j, "AD"):
            j += 1
        elif self.w(j, "BC"):
            y, j = -y, j + 1
        yield y, j

    def _ycomp(self, i):
        """A year slot of a numeric date: 1989, 198X, 19XX → (lo, hi, kind, next)."""
        t = self.t[i] if i < self.n else None
        if t is None:
            return None
        if t.kind == "num" and len(t.text) == 4:
            return (t.val, t.val, "date", i + 1) if t.val <= THIS_YEAR else None
        if t.kind == "mask":
            digits = t.text.rstrip("x")
            span = 10 ** (4 - len(digits))
            lo = int(digits) * span
            return lo, lo + span - 1, "decade" if span == 10 else "century", i + 1
        return None

    def _mdcomp(self, i, tight=True):
        """A month or day slot: (value or None when unspecified, approx, unsure, next) or None."""
        a = u = False
        j = i
        while self.s(j, "?", "~", "%", tight=True):
            a, u = a or self.t[j].text == "~", u or self.t[j].text != "~"
            j += 1
        if j >= self.n or (tight and self.t[j].sp):
            return None
        t = self.t[j]
        if t.kind == "num" and len(t.text) <= 2:
            val = t.val
        elif t.kind == "ph" or (t.kind == "w" and t.text in ("xx", "uu")):
            val = None
        else:
            return None
        j += 1
        while self.s(j, "?", "~", "%", tight=True) and not (self.s(j, "?") and self.s(j + 1, "?", tight=True)):
            a, u = a or self.t[j].text == "~", u or self.t[j].text != "~"
            j += 1
        return val, a, u, j

    @memo
    def p_date(self, i):
        yield from self._iso(i)
        yield from self._dmy(i)
        yield from self._spaced(i)
        yield from self._worded(i)
        yield from self._eastern(i)
        for y, j in self.p_year4(i):
            if self.w(j, "DECS") and self.num(j + 1, 1, tight=True) is not None:  # EDTF 1950S2
                yield Val(y, y, "year", approx=True), j + 2
                continue
            yield Val(y, y, "year", bare=True), j
        n = self.num(i, 1, 2, 3, 4, 5)
        if n is not None and self.w(i + 1, "BP"):
            yield Val(1950 - n, 1950 - n, "year"), i + 2
        if self.w(i, "SEASON", "FEAST"):
            j = i + 2 if self.w(i + 1, "FILL") else i + 1
            for y, k in self.p_year4(j):
                yield Val(y, y, "date"), k

    def _iso(self, i):
        """Y-M-D, Y/M/D, Y.M.D (and Y-M, Y-season), years and slots may be unspecified or qualified."""
        a = u = False
        while self.s(i, "?", "~", "%") and not self.s(i + 1, "?", tight=True):
            a, u, i = a or self.t[i].text == "~", u or self.t[i].text != "~", i + 1
        yc = self._ycomp(i)
        if yc is None:
            return
        lo, hi, kind, j = yc
        while self.s(j, "?", "~", "%", tight=True):
            a, u, j = a or self.t[j].text == "~", u or self.t[j].text != "~", j + 1
        if not self.s(j, "-", "/", ".", tight=True):
            return
        sep = self.t[j].text
        mc = self._mdcomp(j + 1)
        if mc is None:
            return
        m, a2, u2, k = mc
        if self.s(k, sep, tight=True):
            dc = self._mdcomp(k + 1)
            if dc is None:
                return
            d, a3, u3, k2 = dc
            if valid_day(lo if lo == hi else None, m, d):
                yield Val(lo, hi, kind, m, d, a or a2 or a3, u or u2 or u3), k2
            return
        if (m is None or 1 <= m <= 12) and (m is None or len(self.t[j + 1].text) == 2 or self.t[j + 1].kind != "num"):
            yield Val(lo, hi, kind, m, None, a or a2, u or u2), k
        elif sep == "-" and 21 <= m <= 41 and kind == "date" and self.t[j + 1].kind == "num":
            yield Val(lo, hi, kind, None, None, a or a2, u or u2), k  # EDTF season / quarter / semester

    def _month_word(self, i: int) -> bool:
        """A month name or a Roman month (12.VI.1936)."""
        return i < self.n and self.t[i].kind == "w" and (
            self.t[i].text == "MONTH" or (self.t[i].text.islower() and self.t[i].val is not None and self.t[i].val <= 12))

    def _dmy(self, i):
        """D.M.Y, D/M/Y, M/D/Y, D-MONTH-Y, 12.VI.1936, M-Y, VI.1936, M/D/YY (two-digit year: century from elsewhere)."""
        if self._month_word(i) and self.t[i].text != "MONTH" and self.s(i + 1, ".", "-", "/", tight=True):
            yc = self._ycomp(i + 2) if self.tight(i + 2) else None
            if yc is not None:
                yield Val(yc[0], yc[1], yc[2], self.t[i].val), yc[3]
            return
        first = self._mdcomp(i, tight=False)
        if first is None:
            return
        a, a1, u1, j = first
        if not self.s(j, "-", "/", ".", ",", tight=True):
            return
        sep = self.t[j].text
        if self._month_word(j + 1) and self.tight(j + 1) and self.s(j + 2, sep, tight=True):
            m = self.t[j + 1].val
            yc = self._ycomp(j + 3) if self.tight(j + 3) else None
            if yc and valid_day(yc[0] if yc[0] == yc[1] else None, m, a):
                yield Val(yc[0], yc[1], yc[2], m, a), yc[3]
            return
        if sep == ",":
            return
        yc = self._ycomp(j + 1) if self.tight(j + 1) else None
        if yc is not None and (a is None or 1 <= a <= 12) and not a1 and not u1:
            yield Val(yc[0], yc[1], yc[2], a, None), yc[3]  # M-Y: 11-1978, 09.1972, XX/1989
            return
        second = self._mdcomp(j + 1)
        if second is None:
            return
        b, a2, u2, k = second
        if not self.s(k, sep, tight=True) or a1 or u1 or a2 or u2:
            return
        yc = self._ycomp(k + 1) if self.tight(k + 1) else None
        if yc is not None:
            y = yc[0] if yc[0] == yc[1] else None
            if valid_day(y, b, a) or valid_day(y, a, b):
                m = b if valid_day(y, b, a) else a
                yield Val(yc[0], yc[1], yc[2], m, a if m == b else b), yc[3]
            return
        yy = self.num(k + 1, 2, tight=True)
        if yy is not None and sep in ("/", "-") and (valid_day(2000, a, b) or valid_day(2000, b, a)):
            yield Val(yy, yy, "yy", a, b), k + 2

    def _spaced(self, i):
        """1989 11 01, 01 11 1989: three numbers with spaces."""
        if i + 2 >= self.n or not all(self.t[k].kind == "num" for k in (i, i + 1, i + 2)):
            return
        x, y, z = self.t[i], self.t[i + 1], self.t[i + 2]
        if not (y.sp and z.sp):
            return
        if len(x.text) == 4 and len(y.text) <= 2 and len(z.text) <= 2 and valid_day(x.val, y.val, z.val):
            yield Val(x.val, x.val, "date", y.val, z.val), i + 3
        elif len(z.text) == 4 and len(x.text) <= 2 and len(y.text) <= 2 and \
                (valid_day(z.val, y.val, x.val) or valid_day(z.val, x.val, y.val)):
            yield Val(z.val, z.val, "date", y.val, x.val), i + 3

    def _worded(self, i):
        """01 November 1989, November 01, 1989, Nov. 1989, 11. März 1870, 1776 September 31."""
        for m, d, j in self._month_day(i):
            for y, k in self.p_year4(j):
                if valid_day(y, m, d):
                    yield Val(y, y, "date", m, d), k
        for y, j in self.p_year4(i):
            if self.w(j, "MONTH"):
                m, k = self.t[j].val, j + 1
                d = self.num(k, 1, 2)
                if d is not None:
                    if valid_day(y, m, d):
                        yield Val(y, y, "date", m, d), k + 1
                else:
                    yield Val(y, y, "date", m), k

    def _month_day(self, i):
        """(month, day or None, next) for 'D MONTH', 'MONTH D', 'MONTH' with optional separators."""
        def sep(k):
            k = k + 1 if self.s(k, ".", ",", "-", "/") else k
            return k + 1 if self.w(k, "INV", "FILL") else k

        d = self.num(i, 1, 2)
        if d is not None:
            j = i + 1
            if self.w(j, "ORD"):
                j += 1
            j = sep(j)
            if self.w(j, "MONTH"):
                yield self.t[j].val, d, sep(j + 1)
            return
        if self.w(i, "MONTH"):
            m, j = self.t[i].val, sep(i + 1)
            d = self.num(j, 1, 2)
            if d is not None:
                k = j + 1
                if self.w(k, "ORD"):
                    k += 1
                yield m, d, sep(k)
            yield m, None, j

    def _eastern(self, i):
        """2003年2月16日, 平成15年2月 (Japanese: year, month, day markers; imperial eras)."""
        if self.w(i, "JPERA") and self.num(i + 1, 1, 2) is not None:
            y, j = self.t[i].val + self.t[i + 1].val - 1, i + 2
        elif self.num(i, 4) is not None and self.w(i + 1, "YEARW") and self.t[i + 1].sp is False:
            y, j = self.t[i].val, i + 1
        else:
            return
        if self.w(j, "YEARW"):
            j += 1
        m = d = None
        if self.num(j, 1, 2) is not None and self.w(j + 1, "JPM"):
            m, j = self.t[j].val, j + 2
            if self.num(j, 1, 2) is not None and self.w(j + 1, "JPD"):
                d, j = self.t[j].val, j + 2
        if valid_day(y, m, d):
            yield Val(y, y, "date", m, d), j

    @memo
    def p_partial(self, i):
        """A date without its year, on the left of a range: 'March', 'August 20', '20', '1st'."""
        for m, d, j in self._month_day(i):
            if self.s(j - 1, ".", ",", "-", "/") and j - 1 > i:
                j -= 1  # the separator belongs to the range
            if valid_day(None, m, d):
                yield Val(0, 0, "partial", m, d), j
        d = self.num(i, 1, 2)
        if d is not None and 1 <= d <= 31 and not self.w(i + 1, "MONTH"):
            j = i + 2 if self.w(i + 1, "ORD") else i + 1
            yield Val(0, 0, "partial", None, d), j
        for v, j in self._dmy(i):
            if v.kind == "yy":
                yield v, j
