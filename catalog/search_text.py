"""What the text of a search asks for: words, "exact phrases", alternatives and exclusions.

The syntax of web search engines (and of PostgreSQL's ``websearch_to_tsquery``), read the same
by the CLI (``--text``, ``arhiva search``), the JSON API and the web page (``q``):

- ``strada catedrala``: every word (any inflection, with or without diacritics);
- ``"strada veche"``: the words next to each other, in this order (an unclosed quote runs to
  the end);
- ``gara OR vokzal`` (or ``gara | vokzal``): either; ``OR`` binds its two neighbours, so
  ``strada gara OR podul`` is *strada* and (*gara* or *podul*);
- ``-biserica``, ``-"strada veche"``: records without it (a hyphen counts so only at the start
  of a term, after a space: in ``Alba-Iulia`` it separates words, and inside a phrase it is read
  as the index read it).

Anything else (punctuation, a ``*``) separates words. There are no prefix searches: words are
stemmed (``podul`` finds *podului*, ``крепость`` *крепости*), and the index holds stems, not
words, so a prefix would miss words whose stem is shorter than it (*liceul*'s is *lic*). Stop
words (the Russian stemmer's *на*, *в*, *и* …) are not in the index: a query leaves them out,
and a phrase keeps their place (``"вид на город"`` finds *вид* two words before *город*). A
query whose required words are all stop words, or that excludes only stop words, is refused
with that reason (``check_words``), and so is text with no word at all (``!!!``, an emoji, ``OR``:
searching for nothing would list everything). At most ``MAX_WORDS`` words. No database here but the SQL
expressions and that one check.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache, reduce

from sqlalchemy import and_, func, literal_column, not_, select

MAX_WORDS = 24  # words of one query, a phrase's each counted (a phrase is tested on every record holding its words)
MAX_WORD_BYTES = 2047  # PostgreSQL leaves longer words out of the index
CONFIG = literal_column("'arhiva'::regconfig")  # the text search configuration of migration 0001

# A term: an optional "-" at its start (after a space or at the beginning: "Alba-Iulia" is two
# words, '"strada"-veche' asks for veche), then a quoted phrase or a word; or "|" as an operator.
_TERM = re.compile(r'(?P<neg>(?<!\S)-)?(?:"(?P<phrase>[^"]*)"?|(?P<word>\w+))|(?P<bar>\|)')
_WORD = re.compile(r"\w+")


class TextQueryError(ValueError):
    """The text of a search cannot be read (the message says why)."""


@dataclass(frozen=True)
class Term:
    kind: str  # "word" or "phrase"
    text: str  # the word, or the phrase as typed (PostgreSQL reads "Alba-Iulia" in it as it indexed it)

    @property
    def words(self) -> list[str]:
        return _WORD.findall(self.text)


@dataclass(frozen=True)
class TextQuery:
    """A record matches when it has, for each clause of ``all_of``, one of its terms, and none
    of the terms of ``none_of``."""

    all_of: tuple[tuple[Term, ...], ...] = ()
    none_of: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.all_of or self.none_of)

    def required_words(self) -> list[str]:
        """Words every match has (of words and phrases that are not one of alternatives)."""
        return [w for clause in self.all_of if len(clause) == 1 for w in clause[0].words]


@lru_cache(maxsize=256)
def parse_text(text: str | None) -> TextQuery:
    """Read the text of a search (see the module docstring); raises TextQueryError. Cached: one
    search reads its text several times (checks, conditions, the word × place tokens). Letters
    typed as a base and a combining mark (as some systems paste "ș") are composed first."""
    items: list[tuple[bool, Term] | None] = []  # None: an OR
    for m in _TERM.finditer(unicodedata.normalize("NFC", text or "")):
        if m["bar"] or (m["word"] == "OR" and not m["neg"]):
            items.append(None)
            continue
        if m["phrase"] is not None:
            words = _WORD.findall(m["phrase"])
            if not words:
                continue
            term = Term("phrase", " ".join(m["phrase"].split())) if len(words) > 1 else Term("word", words[0])
        else:
            term = Term("word", m["word"])
        items.append((bool(m["neg"]), term))
    words = [w for it in items if it is not None for w in it[1].words]
    if len(words) > MAX_WORDS:
        raise TextQueryError(f"text: at most {MAX_WORDS} words (a phrase's words count each), got {len(words)}")
    for w in words:
        if len(w.encode("utf-8", "surrogatepass")) > MAX_WORD_BYTES:
            raise TextQueryError(f"text: the word {w[:30] + '…'!r} is longer than a word the index holds "
                                 f"({MAX_WORD_BYTES:,} bytes)")
    all_of: list[tuple[Term, ...]] = []
    none_of: list[Term] = []
    joined = False  # an OR follows a positive term: the next positive term joins its clause
    for it in items:
        if it is None:
            joined = bool(all_of) and joined is not None
            continue
        negated, term = it
        if negated:
            none_of.append(term)
            joined = None  # an OR right after an exclusion joins nothing
            continue
        if joined:
            all_of[-1] += (term,)
        else:
            all_of.append((term,))
        joined = False
    if not all_of and not none_of and (text or "").strip():  # "!!!", an emoji, "OR": no filter is not what was asked
        shown = " ".join(text.split())
        raise TextQueryError(f"text: {shown[:40] + ('…' if len(shown) > 40 else '')!r} has no words to search for "
                             "(letters or digits)")
    return TextQuery(tuple(dict.fromkeys(all_of)), tuple(dict.fromkeys(none_of)))


def _tsquery(term: Term):
    folded = func.arhiva_fold(term.text)
    return (func.plainto_tsquery if term.kind == "word" else func.phraseto_tsquery)(CONFIG, folded)


def asked(query: TextQuery):
    """The tsquery of what ``query`` requires (the AND of its clauses, each the OR of its terms,
    without exclusions), or None."""
    if not query.all_of:
        return None
    return reduce(func.tsquery_and, (reduce(func.tsquery_or, map(_tsquery, clause)) for clause in query.all_of))


def text_match(vector, query: TextQuery, unindexed: bool = False):
    """The condition on ``vector`` (the records' search vector) for ``query``, or None when it
    asks nothing. Everything asked is one tsquery (a stop word's part is empty, and an empty
    part of AND, OR or NOT drops out), so the search index answers it in one scan.
    ``unindexed``: tested on the rows only (``ts_match_vq`` is ``@@`` as a function, which the
    planner does not give the search index), where another index already brings few records.
    Exclusions alone are tested on the rows (the index cannot find what lacks a word)."""
    if not query:
        return None
    wanted = asked(query)
    if wanted is None:
        return and_(*(not_(func.coalesce(func.ts_match_vq(vector, _tsquery(t)), False)) for t in query.none_of))
    for t in query.none_of:
        wanted = func.tsquery_and(wanted, func.tsquery_not(_tsquery(t)))
    return func.ts_match_vq(vector, wanted) if unindexed else vector.op("@@")(wanted)


def check_words(session, text: str) -> None:
    """Raise TextQueryError when the words ``text`` requires, or one of those it excludes, are all
    stop words (not indexed: the search would find nothing, or exclude nothing). One short query
    to PostgreSQL, whose dictionaries decide."""
    query = parse_text(text)
    parts = [asked(query), *(_tsquery(t) for t in query.none_of)]
    if not any(p is not None for p in parts):
        return
    sizes = session.execute(select(*(func.numnode(p) for p in parts if p is not None))).one()
    said = f"text: {text.strip()!r}"
    if query.all_of and sizes[0] == 0:
        raise TextQueryError(f"{said}: every word it requires is a stop word (such as на, в, и), which the "
                             "index leaves out: search for other words")
    for term, size in zip(query.none_of, sizes[1 if query.all_of else 0:]):
        if size == 0:
            raise TextQueryError(f"{said}: -{term.text} excludes only stop words (such as на, в, и), which the "
                                 "index leaves out")


__all__ = ["MAX_WORDS", "Term", "TextQuery", "TextQueryError", "asked", "check_words", "parse_text", "text_match"]
