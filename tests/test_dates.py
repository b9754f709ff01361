"""catalog.dates: real-world date strings → (year_lo, year_hi, qualifier, approx) or no date."""
from __future__ import annotations

from datetime import date

import pytest

from catalog.dates import DateRange, looks_like_timestamp, parse_date, year_from_title

NEXT_YEAR = date.today().year + 1

CASES = [
    # single years and full dates
    ("1935", 1935, 1935, "year", False),
    ("anul 1935", 1935, 1935, "year", False),
    ("Anul 1935.", 1935, 1935, "year", False),
    ("1935 г.", 1935, 1935, "year", False),
    ("1935 год", 1935, 1935, "year", False),
    ("в 1936 году", 1936, 1936, "year", False),
    ("12.05.1936", 1936, 1936, "year", False),
    ("1936-05-12", 1936, 1936, "year", False),
    ("1936-05", 1936, 1936, "year", False),
    ("12 mai 1936", 1936, 1936, "year", False),
    ("12 мая 1936 г.", 1936, 1936, "year", False),
    ("May 12, 1936", 1936, 1936, "year", False),
    ("septembrie 1944", 1944, 1944, "year", False),
    ("05.1936", 1936, 1936, "year", False),
    ("1930-01-01T00:00:00Z", 1930, 1930, "year", False),  # IIIF navDate
    ("<time class=\"dtstart\" datetime=\"1936\">1936</time>", 1936, 1936, "year", False),
    ("[1935]", 1935, 1935, "year", False),
    ("vara 1936", 1936, 1936, "year", False),
    # circa and uncertain
    ("circa 1930", 1930, 1930, "circa", True),
    ("c. 1930", 1930, 1930, "circa", True),
    ("ca. 1930", 1930, 1930, "circa", True),
    ("cca. 1910", 1910, 1910, "circa", True),
    ("около 1930 г.", 1930, 1930, "circa", True),
    ("ок. 1930", 1930, 1930, "circa", True),
    ("~1930", 1930, 1930, "circa", True),
    ("1930~", 1930, 1930, "circa", True),
    ("<span>cca. 1927</span>", 1927, 1927, "circa", True),
    ("1930?", 1930, 1930, "uncertain", True),
    ("[1930?]", 1930, 1930, "uncertain", True),
    ("probabil 1940", 1940, 1940, "uncertain", True),
    # decades
    ("1920s", 1920, 1929, "decade", False),
    ("the 1920's", 1920, 1929, "decade", False),
    ("anii 1920", 1920, 1929, "decade", False),
    ("[anii 1920]", 1920, 1929, "decade", False),
    ("anii '30", 1930, 1939, "decade", False),
    ("Anii ’60", 1960, 1969, "decade", False),
    ("Anii &#8217;60", 1960, 1969, "decade", False),
    ("1960-е годы", 1960, 1969, "decade", False),
    ("1960-х годов", 1960, 1969, "decade", False),
    ("30-е годы", 1930, 1939, "decade", False),
    ("193X", 1930, 1939, "decade", False),
    ("[192-]", 1920, 1929, "decade", False),
    ("[196-?]", 1960, 1969, "decade", True),
    ("late 1920s", 1926, 1929, "decade", False),
    ("începutul anilor 1930", 1930, 1933, "decade", False),
    ("sfârșitul anilor '40", 1946, 1949, "decade", False),
    ("начало 1950-х", 1950, 1953, "decade", False),
    # ranges
    ("1941-1944", 1941, 1944, "range", False),
    ("1941–1944", 1941, 1944, "range", False),
    ("1941—1944", 1941, 1944, "range", False),
    ("1941 - 1944", 1941, 1944, "range", False),
    ("1941–44", 1941, 1944, "range", False),
    ("1941/1944", 1941, 1944, "range", False),
    ("1930/1935", 1930, 1935, "range", False),
    ("1936/37", 1936, 1937, "range", False),
    ("iarna 1958–1959", 1958, 1959, "range", False),
    ("1941-1944 гг.", 1941, 1944, "range", False),
    ("between 1941 and 1944", 1941, 1944, "range", False),
    ("între 1941 și 1944", 1941, 1944, "range", False),
    ("1935 or 1936", 1935, 1936, "range", True),
    ("1920s-1930s", 1920, 1939, "range", False),
    ("[1930..1935]", 1930, 1935, "range", False),
    # centuries (clipped at the start of photography)
    ("sec. XIX", 1826, 1899, "century", False),
    ("XIX век", 1826, 1899, "century", False),
    ("începutul secolului XX", 1900, 1932, "century", False),
    ("prima jumătate a secolului XX", 1900, 1949, "century", False),
    ("late 19th century", 1867, 1899, "century", False),
    ("19XX", 1900, 1999, "century", False),
    ("[19--]", 1900, 1999, "century", False),
    # real-world forms other projects test (issue 14)
    ("circa June 1946", 1946, 1946, "circa", True),
    ("ca. June 1946", 1946, 1946, "circa", True),
    ("c1959", 1959, 1959, "circa", True),
    ("c 1946", 1946, 1946, "circa", True),
    ("about 1860", 1860, 1860, "circa", True),
    ("1953c", 1953, 1953, "circa", True),
    ("1951 to 1955", 1951, 1955, "range", False),
    ("1950s to 1970s", 1950, 1979, "range", False),
    ("c.1887-c.1918", 1887, 1918, "range", True),
    ("1910-20s", 1910, 1929, "range", False),
    ("1930s & 1940s", 1930, 1949, "range", True),
    ("19??", 1900, 1999, "century", False),
    ("1989-XX", 1989, 1989, "year", False),
    ("1985-10-xx", 1985, 1985, "year", False),
    ("XX.11.1989", 1989, 1989, "year", False),
    ("XIX-XX", 1826, 1999, "range", False),
    ("2 пол. ХIХ в.", 1850, 1899, "century", False),   # Cyrillic Х in the Roman numeral
    ("50-е годы XIX века", 1850, 1859, "decade", False),
    ("конец XIX - начало XX вв.", 1867, 1932, "range", False),
    ("нач.XX в.", 1900, 1932, "century", False),
    ("2000г.", 2000, 2000, "year", False),
    ("22 Decembrie 2014 la 02:38", 2014, 2014, "year", False),
    ("2015:07:15 14:29:17", 2015, 2015, "year", False),  # EXIF
    ("12-Iun-2013", 2013, 2013, "year", False),
    ("11-1978", 1978, 1978, "year", False),
    ("12.VI.1936", 1936, 1936, "year", False),
    ("24 Décembre 1870", 1870, 1870, "year", False),
    ("Wed Nov 01 01:00:00 CEST 1989", 1989, 1989, "year", False),
    ("1989-11-01T23:59:59-04", 1989, 1989, "year", False),
    ("1949-01-01:T00:00:00Z", 1949, 1949, "year", False),  # a navDate as some IIIF servers write it
    ("1989/11", 1989, 1989, "year", False),               # year/month, not 1989–2011
    ("1935/06", 1935, 1935, "year", False),
    ("2001-21", 2001, 2001, "year", False),               # EDTF season (spring 2001)
    ("2004?-06-~11", 2004, 2004, "uncertain", True),      # EDTF level 2 qualifiers
    ("1950S2", 1950, 1950, "circa", True),                # EDTF significant digits
    ("{1960, 1961-12}", 1960, 1961, "range", True),       # EDTF set
    ("1799-1850", 1826, 1850, "range", False),            # clipped to the photographic era
    ("1603-1868", 1826, 1868, "range", False),
    ("name=The Great Depression; start=1929; end=1939;", 1929, 1939, "range", False),  # DCMI Period
    ("1955/56 to 1971/72", 1955, 1972, "range", False),
    ("19 век (1800-1860)", 1826, 1860, "range", False),  # the bracket narrows the century
    ("1863, printed 1870", 1863, 1863, "year", False),  # the print is later than the photograph
    ("Easter 1942", 1942, 1942, "year", False),
    ("平成15年2月16日", 2003, 2003, "year", False),
]

NO_DATE = [
    None, "", "   ", "n.d.", "s.d.", "fără dată", "nedatat", "необъявлено", "unknown", "?", "necunoscut",
    "без даты",
    "1066",            # before photography
    str(NEXT_YEAR),    # in the future
    "1935 1948",       # two unrelated years
    "după 1930",       # open intervals
    "before 1917",
    "1930/..",
    "Nr. inv. 1935/12",
    "Carte poștală ilustrată, circulată în 1905",  # free text that mentions a year
    "1944-1941",       # backwards
    "3 mai",           # no year
    # impossible months and days, unexplained digits: never a range into the next century (issue 14)
    "1989/13", "1984-13", "1984-00", "1984-01-00", "2016-02-39", "2016-13-08", "1776-11-31",
    "19UU-XX-99", "1941-05-32",
    "1897-19", "1989-11-01T23:59:59-0400x",
    "1990-", "1907/?", "?/1907", "../1989", "1989/..", "AFTER 1970", "pre-1600", "later than 1928",
    "от 2000 до", "до 2000",
    "1991-5",          # May 1991 or 1991–1995: ambiguous
    "Monday 2023",     # a weekday needs a full date
    "July 4 1776 - July 4 7776",
    "10-24-02",        # a two-digit year: the century would be a guess
    "1939; 1954; 1955; 1978",  # items too far apart to be one date
]


@pytest.mark.parametrize("text,lo,hi,qualifier,approx", CASES, ids=[c[0] for c in CASES])
def test_parses(text, lo, hi, qualifier, approx):
    assert parse_date(text) == DateRange(lo, hi, qualifier, approx)


@pytest.mark.parametrize("text", NO_DATE, ids=[repr(t) for t in NO_DATE])
def test_no_date_is_better_than_a_wrong_date(text):
    assert parse_date(text) is None


def test_enough_real_world_strings():
    assert len(CASES) + len(NO_DATE) >= 40


def test_year_from_title_only_at_the_end():
    assert year_from_title("Soroca, cetatea văzută de pe Nistru, 1936") == DateRange(1936, 1936, "inferred")
    assert year_from_title("Piața centrală (1965)") == DateRange(1965, 1965, "inferred")
    assert year_from_title("Școala nr. 1935 din Bălți") is None
    assert year_from_title(None) is None


def test_timestamps_are_recognised():
    assert looks_like_timestamp("2019-05-03T10:22:11Z")
    assert looks_like_timestamp("2025-03-11 08:40:19")
    assert not looks_like_timestamp("1936-05-12")
    assert not looks_like_timestamp("circa 1930")
