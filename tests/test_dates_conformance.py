"""catalog.dates against date strings from eight other projects' tests (../shared/conformance/dates).

The corpus is read where it lives (never copied here). Each peer's interval is clipped to the
photographic era (1826..this year) as arhiva documents; a case whose interval lies in the era is
*exact* when we give the same years (an "about" date the peer widens by ``peer_widen`` years is
compared widened, since arhiva widens at query time), *convention* when we differ on purpose
(``CONVENTIONS`` below, also in the README), *wider* when our interval contains the peer's
(an invented range), *wrong* otherwise, or *no date*. A case with no interval in the era (the
peer says none, an open interval, or years before 1826) must get no date, unless a convention
says otherwise. The floors only go up.
"""
from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest

from catalog.dates import PHOTO_MIN_YEAR, parse_date

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = [p / "shared" / "conformance" / "dates" / "dates_corpus.tsv" for p in (ROOT.parent, ROOT.parent.parent)]
CORPUS = next((p for p in CANDIDATES if p.exists()), None)
pytestmark = pytest.mark.skipif(
    CORPUS is None, reason="../shared/conformance/dates/dates_corpus.tsv is not beside this checkout")

EXACT_FLOOR = 0.90  # share of the photo-era cases we answer exactly as the peer does (reached: 90.8%)

# Where we differ from a peer on purpose: the string → our answer (None = no date), by reason.
CONVENTIONS: dict[str, dict[str, tuple[int, int] | None]] = {
    "early/mid/late are thirds (decade x0–x3, x3–x6, x6–x9; century 00–32, 33–66, 67–99), halves "
    "00–49 / 50–99, quarters of 25 years; peers cut elsewhere or ignore the part": {
        "1920s - early 1930s": (1920, 1933), "mid 1920s - early 1930s": (1923, 1933),
        "late 1920s - early 1930s": (1926, 1933), "early 1920s - mid 1930s": (1920, 1936),
        "mid 1920s - mid 1930s": (1923, 1936), "late 1920s - mid 1930s": (1926, 1936),
        "early 1920s": (1920, 1923), "mid 1920s": (1923, 1926), "mid-1940s": (1943, 1946),
        "1920s -early 1930s": (1920, 1933), "1857-mid 1860s": (1857, 1866),
        "early 18th century - early 19th century": (1826, 1832), "mid 18th century - mid 19th Century": (1826, 1866),
        "early 19th Century": (1826, 1832), "ca. mid 19th century": (1833, 1866), "20 Q2": (1925, 1949),
        "начало XIX века": (1826, 1832), "начало ХIХ века": (1826, 1832), "нач.XX в.": (1900, 1932),
        "Первая треть XIX века": (1826, 1832), "Первая половина XIX века": (1826, 1849),
        "конец XIX - начало XX вв.": (1867, 1932), "конец XIX — начало XX вв.": (1867, 1932),
        "конец XIX – начало XX вв.": (1867, 1932), "конец XIX − начало XX вв.": (1867, 1932),
        "к. XIX в.-н. XX в.": (1867, 1932), "кон. XIX — II-я пол. XX в.": (1867, 1999),
        "конец 1920 - начало 1930-х": (1926, 1933), "конец 1920 - начало 1930 - х гг.": (1926, 1933),
        "конец 1920-х": (1926, 1929), "середина 1920 - х": (1923, 1926), "начало  1920-х": (1920, 1923),
        "конец 50-х г. XX в.": (1956, 1959), "сер. 40х г. XIX века": (1843, 1846),
        "начало 30-х гг. XX в.": (1930, 1933),
    },
    "alternatives and lists give the span of their items when these lie within ten years of each "
    "other; the peer keeps only the first": {
        "1863 or 1864": (1863, 1864), "1864 or 1866": (1864, 1866),
        "7 апреля 1917 г., 1918 - 1919 гг.": (1917, 1919), "2021-08-05, 2022-08-05": (2021, 2022),
        "05.08.2021...05.08.2022": (2021, 2022), "сер. XIX в., 1870-е гг., 1882-1895 гг": (1833, 1895),
        "1791 г., XIX в., начало ХХ в.": (1826, 1932),
    },
    "1800s is the 19th century (the decade 1800–1809 lies inside it); the peer reads a decade": {
        "c1900s": (1900, 1999), "c1800s?": (1826, 1899), "year in about the 1800s": (1826, 1899),
        "1800s": (1826, 1899),
    },
    "unspecified digits: 198-, 198?, [ca. 193-] are the decade, 19?? the century (AACR2, EDTF 198X); "
    "the peer calls them ambiguous or reads 199? as the year 199": {
        "192?": (1920, 1929), "192?-1958": (1920, 1958), "[ca. 193-]": (1930, 1939), "187-?]": (1870, 1879),
        "198?": (1980, 1989), "198-": (1980, 1989), "198-?": (1980, 1989), "199?": (1990, 1999),
        "1871 - 191-": (1871, 1919), "1897-19??": (1897, 1999),
    },
    "a trailing ca./c. qualifies the date before it": {"1924 ca.": (1924, 1924), "1942-1943 c.": (1942, 1943)},
    "a hyphenated end between 21 and 41 that lies more than ten years on is EDTF's season code "
    "(2001-21 is spring 2001); write 1910–30 or 1910-1930 for the range": {
        "1910-30": (1910, 1910), "active 1910-30": (1910, 1910),
    },
    "a season is the year written (winter 2010 is not stretched into 2011)": {"Winter 2010": (2010, 2010)},
    "1840-е is the 1840s": {"1839-1840-е гг.": (1839, 1849)},
    "a day range before a full date: 15/21-8-1918 is 15–21 August 1918": {"15/21-8-1918": (1918, 1918)},
}
OURS = {s: v for group in CONVENTIONS.values() for s, v in group.items()}

COLUMNS = ("exact", "convention", "wrong-wider", "wrong", "no date")
OUTSIDE = ("refused", "convention", "dated")


def _rows() -> list[dict[str, str]]:
    with CORPUS.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _classify(row: dict[str, str]) -> tuple[str, str, tuple[int, int] | None]:
    """(in_era | outside, category, our years) for one corpus row."""
    this_year = date.today().year
    got = parse_date(row["string"])
    ours = (got.year_lo, got.year_hi) if got else None
    text = row["string"]
    in_era = False
    if row["kind"] == "closed":
        lo, hi = max(int(row["expected_lo"]), PHOTO_MIN_YEAR), min(int(row["expected_hi"]), this_year)
        in_era = lo <= hi
    if not in_era:
        if ours is None:
            return "outside", "refused", ours
        return "outside", "convention" if text in OURS and OURS[text] == ours else "dated", ours
    if ours is None:
        return "era", "convention" if text in OURS and OURS[text] is None else "no date", ours
    widen = int(row["peer_widen"] or 0) if got.approx else 0
    widened = (max(ours[0] - widen, PHOTO_MIN_YEAR), min(ours[1] + widen, this_year))
    if widened == (lo, hi):
        return "era", "exact", ours
    if text in OURS and OURS[text] == ours:
        return "era", "convention", ours
    if ours[0] <= lo and hi <= ours[1]:
        return "era", "wrong-wider", ours
    return "era", "wrong", ours


def _table(results: dict[str, Counter]) -> str:
    head = f"{'peer':<44}{'cases':>6}" + "".join(f"{c:>12}" for c in COLUMNS) + " |" + \
        "".join(f"{c:>11}" for c in ("outside", *OUTSIDE))
    lines = [head, "-" * len(head)]
    total: Counter = Counter()
    for peer in sorted(results):
        c = results[peer]
        total.update(c)
        lines.append(_line(peer, c))
    lines.append("-" * len(head))
    lines.append(_line("all", total))
    era = sum(total[("era", k)] for k in COLUMNS)
    lines.append(f"photo-era exact: {total[('era', 'exact')]}/{era} = {total[('era', 'exact')] / era:.1%}; "
                 f"exact or documented convention: "
                 f"{total[('era', 'exact')] + total[('era', 'convention')]}/{era}")
    return "\n".join(lines)


def _line(peer: str, c: Counter) -> str:
    era = sum(c[("era", k)] for k in COLUMNS)
    outside = sum(c[("outside", k)] for k in OUTSIDE)
    return f"{peer:<44}{era:>6}" + "".join(f"{c[('era', k)]:>12}" for k in COLUMNS) + " |" + \
        f"{outside:>11}" + "".join(f"{c[('outside', k)]:>11}" for k in OUTSIDE)


def test_corpus_conformance(capsys):
    results: dict[str, Counter] = defaultdict(Counter)
    bad: dict[str, list[str]] = defaultdict(list)
    for row in _rows():
        where, category, ours = _classify(row)
        peer = row["source"].split("@")[0]
        results[peer][(where, category)] += 1
        if category in ("wrong-wider", "wrong", "dated"):
            bad[category].append(f"{row['string']!r} → {ours} (peer {row['expected_lo']}–{row['expected_hi']})")
    table = _table(results)
    with capsys.disabled():
        print("\n" + table)
    total: Counter = sum(results.values(), Counter())
    era = sum(total[("era", k)] for k in COLUMNS)
    assert not bad["wrong-wider"], "invented (wider) ranges:\n" + "\n".join(bad["wrong-wider"])
    assert not bad["dated"], "dated although the peer's interval is outside the era or open:\n" + \
        "\n".join(bad["dated"])
    assert not bad["wrong"], "wrong years:\n" + "\n".join(bad["wrong"])
    assert total[("era", "exact")] / era >= EXACT_FLOOR, table


def test_conventions_are_still_ours():
    """Every recorded convention is a string of the corpus and still gets the recorded answer."""
    strings = {row["string"] for row in _rows()}
    for text, expected in OURS.items():
        assert text in strings, f"{text!r} is not in the corpus"
        got = parse_date(text)
        assert ((got.year_lo, got.year_hi) if got else None) == expected, text


def test_no_string_crashes_the_parser():
    """The corpus strings, and pieces and splices of them, never raise."""
    strings = [row["string"] for row in _rows()]
    rng = random.Random(14)
    for _ in range(3000):
        a, b = rng.choice(strings), rng.choice(strings)
        cut_a, cut_b = rng.randint(0, len(a)), rng.randint(0, len(b))
        noise = rng.choice(["", "-", "/", "?", "(", "]", " ", "..", "~", "ca. ", "XX", "0", "\x00", "\u0301"])
        strings.append(a[:cut_a] + noise + b[cut_b:])
    for text in strings:
        parse_date(text)  # must not raise
