"""The words archives write around dates, mapped to the grammar's terminals.

Everything here is data: ``PHRASES`` rewrites multi-word and abbreviated forms
(``first half of``, ``нач.``, ``ap. J.-C.``) to one upper-case terminal before
tokenising (input is case-folded, so upper case cannot clash with the text);
``WORDS`` maps single words (diacritics removed, see ``key``) to terminals.
Terminals: ``M1``…``M12`` months, ``CIRCA``, ``UNSURE``, ``EARLY``/``MID``/``LATE``,
``HALFI``/``HALFII``, ``THIRDI``…``THIRDIII``, ``QUARTI``…``QUARTIV``, ``CENT`` (century
word), ``DECW`` (``anii``), ``YEARW`` (``г.``, ``год``, ``年``), ``FROM``, ``BETWEEN``,
``TO``, ``AND``, ``OR``, ``OPEN`` (before/after: no honest interval), ``AD``, ``BC``,
``BP``, ``SEASON``, ``FEAST``, ``WEEKDAY``, ``PRINTED`` (a later state of the
object: the clause after it is not the photo's date), ``FILL`` (dropped).
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["PHRASES", "WORDS", "JP_ERAS", "key", "roman"]


def key(word: str) -> str:
    """A word as looked up: case-folded, diacritics removed (``décembre`` → ``decembre``)."""
    decomposed = unicodedata.normalize("NFD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c) or c == "\u0306")  # keep й


_MONTHS = {
    1: "january jan ianuarie ian январь января январе янв janvier janv januar janner jänner gennaio gen enero ene "
       "ιανουαριος ιανουαριου ιαν",
    2: "february feb februarie февраль февраля феврале фев февр fevrier fevr februar febbraio febrero "
       "φεβρουαριος φεβρουαριου φεβ",
    3: "march mar martie март марта марте mars marz maerz marzo μαρτιος μαρτιου μαρ",
    4: "april apr aprilie апрель апреля апреле апр avril avr aprile abril απριλιος απριλιου απρ",
    5: "may mai май мая мае maggio mayo μαιος μαιου μαι",
    6: "june jun iunie iun июнь июня июне июн juin juni giugno junio ιουνιος ιουνιου ιουν",
    7: "july jul iulie iul июль июля июле июл juillet juil juli luglio julio ιουλιος ιουλιου ιουλ",
    8: "august aug august авг август августа августе aout agosto αυγουστος αυγουστου αυγ",
    9: "september sep sept septembrie сентябрь сентября сентябре сен сент septembre settembre septiembre "
       "σεπτεμβριος σεπτεμβριου σεπ",
    10: "october oct octombrie октябрь октября октябре окт octobre oktober ottobre octubre οκτωβριος οκτωβριου οκτ",
    11: "november nov noiembrie noi ноябрь ноября ноябре ноя нояб ное novembre noviembre νοεμβριος νοεμβριου νοε",
    12: "december dec decembrie декабрь декабря декабре дек decembre dezember dicembre diciembre "
        "δεκεμβριος δεκεμβριου δεκ",
}

_GROUPS = {
    "CIRCA": "circa ca cca approx approximately about around aprox aproximativ около ок примерно приблизительно "
             "vers environ um etwa ungefahr",
    "UNSURE": "probably possibly perhaps maybe guess uncertain probabil posibil вероятно возможно "
              "предположительно peut-etre vermutlich",
    "EARLY": "early beginning inceputul inceput начало начала начале нач debut anfang",
    "MID": "mid middle mijlocul середина середины середине сер milieu mitte",
    "LATE": "late end sfarsitul sfirsitul finele конец конца конце кон fin ende",
    "CENT": "century centuries cent век века веке веков вв sec secolul secolului secolele siecle siecles jahrhundert "
            "jahrhunderts jh jhdt secolo",
    "DECW": "anii anilor decade decennio",
    "YEARW": "год года году годы годов годах гг г year years anul anno 年",
    "FROM": "from von du dal desde от с",
    "BETWEEN": "between intre entre zwischen между",
    "TO": "to till until through thru bis au pana по до",
    "AND": "and si и und et",
    "OR": "or sau или ou oder",
    "OPEN": "before after pre post dupa inainte после ранее позднее avant apres vor nach ante",
    "AD": "ad ce",
    "BC": "bc bce",
    "BP": "bp",
    "SEASON": "spring summer autumn fall winter primavara vara toamna iarna весна лето осень зима весной летом "
              "осенью зимой printemps ete automne hiver fruhling sommer herbst",
    "FEAST": "easter epiphany pentecost christmas whitsun craciun pasti рождество пасха noel ostern weihnachten",
    "WEEKDAY": "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun "
               "luni marti miercuri joi vineri sambata duminica понедельник вторник среда четверг пятница суббота "
               "воскресенье пн вт ср чт пт сб вс пнд втр срд чтв птн сбт вск δευ τρι τετ πεμ παρ σαβ κυρ",
    "PRINTED": "printed print cast reprinted published tiparit",
    "FILL": "the of in on a an dated date data photo foto fotografie фото active during somewhere sometime "
            "day month birthday din în la des du de del della der",
    "INV": "в во",
}

WORDS: dict[str, str] = {}
for _month, _words in _MONTHS.items():
    for _w in _words.split():
        WORDS[key(_w)] = f"M{_month}"
for _term, _words in _GROUPS.items():
    for _w in _words.split():
        WORDS.setdefault(key(_w), _term)
WORDS["în"] = "FILL"

# Japanese imperial eras: first Gregorian year.
JP_ERAS = {"明治": 1868, "大正": 1912, "昭和": 1926, "平成": 1989, "令和": 2019}

_L = r"(?<![^\W\d_])"  # not after a letter
_R = r"(?![^\W\d_])"   # not before a letter


def _p(pattern: str, term: str) -> tuple[re.Pattern[str], str]:
    return re.compile(_L + "(?:" + pattern + ")" + _R), f" {term} "


# Multi-word and dotted forms, applied in order to the case-folded text.
PHRASES: list[tuple[re.Pattern[str], str]] = [
    # eras written with dots and spaces (AD / BC)
    _p(r"a\.\s?d\.|c\.\s?e\.|n\.\s?chr\.?|сл\.\s?хр\.?|po\.?\s?kr\.?|n\.\s?l\.|e\.\s?kr\.?|pkr\.?|jkr\.?|"
       r"ap\.\s?j\.?-c\.?|μ\.\s?χ\.?|i\.\s?sz\.?|d\.\s?c\.|m\.\s?ē\.?|n\.\s?e\.|d\.\s?hr\.?|н\.\s?э\.|wk", "AD"),
    _p(r"b\.\s?c\.(?:\s?e\.)?|v\.\s?chr\.?|π\.\s?χ\.?|до\s+н\.\s?э\.|î\.\s?hr\.?|a\.\s?c\.|av\.\s?j\.?-c\.?", "BC"),
    # halves, thirds, quarters
    _p(r"(?:first|1st)\s+half(?:\s+of)?|prima\s+jum[aă]tate(?:\s+a)?|premi[eè]re\s+moiti[eé](?:\s+du)?|"
       r"erste\s+h[aä]lfte(?:\s+des)?|(?:1|i)(?:-?я)?\s*пол\.?|перв(?:ая|ой)\s+половин[аыеу]|1\s*половин[аыеу]",
       "HALFI"),
    _p(r"(?:second|2nd|latter)\s+half(?:\s+of)?|a\s+doua\s+jum[aă]tate(?:\s+a)?|(?:seconde|deuxi[eè]me)\s+"
       r"moiti[eé](?:\s+du)?|zweite\s+h[aä]lfte(?:\s+des)?|(?:2|ii)(?:-?я)?\s*пол\.?|втор(?:ая|ой)?\.?\s+пол\.?|"
       r"втор(?:ая|ой)\s+половин[аыеу]|2\s*половин[аыеу]", "HALFII"),
    _p(r"(?:first|1st)\s+third(?:\s+of)?|перв(?:ая|ой)\s+трет[ьи]|(?:1|i)(?:-?я)?\s*трет[ьи]", "THIRDI"),
    _p(r"(?:second|2nd)\s+third(?:\s+of)?|втор(?:ая|ой)\s+трет[ьи]|(?:2|ii)(?:-?я)?\s*трет[ьи]", "THIRDII"),
    _p(r"(?:last|third|3rd)\s+third(?:\s+of)?|(?:последн|трет)(?:яя|ей)\s+трет[ьи]|(?:3|iii)(?:-?я)?\s*трет[ьи]",
       "THIRDIII"),
    _p(r"(?:first|1st)\s+quarter(?:\s+of)?|перв(?:ая|ой)\s+четверт[ьи]|q1", "QUARTI"),
    _p(r"(?:second|2nd)\s+quarter(?:\s+of)?|втор(?:ая|ой)\s+четверт[ьи]|q2", "QUARTII"),
    _p(r"(?:third|3rd)\s+quarter(?:\s+of)?|треть(?:я|ей)\s+четверт[ьи]|q3", "QUARTIII"),
    _p(r"(?:last|fourth|4th)\s+quarter(?:\s+of)?|(?:последн|четверт)(?:яя|ей)\s+четверт[ьи]|q4", "QUARTIV"),
    # early / mid / late with their glue words
    _p(r"(?:the\s+)?(?:beginning|start)\s+of(?:\s+the)?|[iî]nceputul|"
       r"early(?:\s+(?:in|part\s+of))?(?:\s+the)?|нач\.|н\.", "EARLY"),
    _p(r"(?:the\s+)?middle\s+of(?:\s+the)?|mid-|mid(?:\s+the)?|mijlocul|сер\.", "MID"),
    _p(r"(?:the\s+)?end\s+of(?:\s+the)?|sf[aâî]r[sș]itul|finele|"
       r"late(?:\s+in)?(?:\s+the)?|кон\.|к\.", "LATE"),
    # ranges and open ends
    _p(r"later\s+than|earlier\s+than|not\s+(?:before|after)|no\s+(?:earlier|later)\s+than|не\s+ранее|"
       r"не\s+позднее|[iî]nainte\s+de|p[aâ]n[aă]\s+[iî]n|after|before|pre-|post-", "OPEN"),
    _p(r"de\s+la|din\s+anul", "FROM"),
    _p(r"p[aâ]n[aă]\s+la|fino\s+a|jusqu'?\s?[aà]|up\s+to", "TO"),
    # circa / uncertain with dots
    _p(r"ca\.|cca\.|approx\.|aprox\.|ок\.|env\.", "CIRCA"),
    _p(r"\(uncertain\)|uncertain:|\[\?\]|\(\?\)", "UNSURE"),
    # century and year words with dots, ordinals, suffixes
    _p(r"в\.|вв\.|sec\.|jh\.|(?:s|c)\.(?=\s*[ivxl]+\b)", "CENT"),
    _p(r"гг\.|г\.|год\.", "YEARW"),
    _p(r"(?:a|the|one|some)\s+(?:day|month|year|decade)\s+(?:somewhere\s+)?(?:in|during)(?:\s+the)?|"
       r"(?:day|month|year|decade|birthday)\s+(?:somewhere\s+)?(?:in|during)(?:\s+the)?", "FILL"),
    _p(r"ash\s+wednesday|whit\s+monday|good\s+friday|palm\s+sunday", "FEAST"),
]


_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}


def roman(word: str) -> int | None:
    """The value of a Roman numeral of a century (I…XXI), else None."""
    if not word or len(word) > 6 or any(c not in "ivxl" for c in word):
        return None
    total = 0
    for i, c in enumerate(word):
        v = _ROMAN_VALUES[c]
        total += -v if i + 1 < len(word) and _ROMAN_VALUES[word[i + 1]] > v else v
    return total if 0 < total <= 21 and _to_roman(total) == word else None


def _to_roman(n: int) -> str:
    out = ""
    for v, s in ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= v:
            out, n = out + s, n - v
    return out
