"""What the text of a search asks for: words, "exact phrases", alternatives and exclusions.

The syntax of web search engines (and of PostgreSQL's ``websearch_to_tsquery``), read the same
by the CLI (``--text``, ``arhiva search``), the JSON API and the web page (``q``):

- ``strada catedrala``: every word (any inflection, with or without diacritics);
- ``"strada veche"``: the words next to each other, in this order (an unclosed quote runs to
  the end);
- ``gara OR vokzal`` (or ``gara | vokzal``): either; ``OR`` binds its two neighbours, so
  ``strada gara OR podul`` is *strada* and (*gara* or *podul*);
- ``-biserica``, ``-"strada veche"``: records without it (a hyphen inside a word, as in
  ``Alba-Iulia``, only separates words).

Anything else (punctuation, a ``*``) separates words. There are no prefix searches: words are
stemmed (``podul`` finds *podului*, ``крепость`` *крепости*), and the index holds stems, not
words, so a prefix would miss words whose stem is shorter than it (*liceul*'s is *lic*). Stop
words (the Russian stemmer's *на*, *в*, *и* …) are not in the index: a query leaves them out,
and a phrase keeps their place (``"вид на город"`` finds *вид* two words before *город*). A
query of stop words only is refused with that reason (``check_words``). No database here but
the SQL expressions and that one check.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import and_, func, literal_column, not_, select

MAX_TERMS = 24  # words and phrases of one query, all together
CONFIG = literal_column("'arhiva'::regconfig")  # the text search configuration of migration 0001

# A term: an optional leading "-" (not after a letter: "Alba-Iulia" is two words), then a quoted
# phrase or a word; or "|" as an operator.
_TERM = re.compile(r'(?P<neg>(?<!\w)-)?(?:"(?P<phrase>[^"]*)"?|(?P<word>\w+))|(?P<bar>\|)')


class TextQueryError(ValueError):
    """The text of a search cannot be read (the message says why)."""


@dataclass(frozen=True)
class Term:
    kind: str  # "word" or "phrase"
    text: str  # the word, or the phrase's words separated by spaces

    @property
    def words(self) -> list[str]:
        return self.text.split(" ")


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
    search reads its text several times (checks, conditions, the word × place tokens)."""
    items: list[tuple[bool, Term] | None] = []  # None: an OR
    for m in _TERM.finditer(text or ""):
        if m["bar"] or (m["word"] == "OR" and not m["neg"]):
            items.append(None)
            continue
        if m["phrase"] is not None:
            words = re.findall(r"\w+", m["phrase"])
            if not words:
                continue
            term = Term("phrase", " ".join(words)) if len(words) > 1 else Term("word", words[0])
        else:
            term = Term("word", m["word"])
        items.append((bool(m["neg"]), term))
    terms = [it for it in items if it is not None]
    if len(terms) > MAX_TERMS:
        raise TextQueryError(f"text: at most {MAX_TERMS} words and phrases, got {len(terms)}")
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
    return TextQuery(tuple(dict.fromkeys(all_of)), tuple(dict.fromkeys(none_of)))


def _tsquery(term: Term):
    folded = func.arhiva_fold(term.text)
    return (func.plainto_tsquery if term.kind == "word" else func.phraseto_tsquery)(CONFIG, folded)


def _any(terms: tuple[Term, ...]):
    out = _tsquery(terms[0])
    for t in terms[1:]:
        out = func.tsquery_or(out, _tsquery(t))
    return out


def asked(query: TextQuery):
    """The tsquery of what ``query`` requires (its clauses, without exclusions), or None."""
    if not query.all_of:
        return None
    out = _any(query.all_of[0])
    for clause in query.all_of[1:]:
        out = func.tsquery_and(out, _any(clause))
    return out


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


def check_words(session, query: TextQuery) -> None:
    """Raise TextQueryError when every word ``query`` requires is a stop word (it would find
    nothing: stop words are not indexed). One short query to PostgreSQL, whose dictionaries
    decide."""
    wanted = asked(query)
    if wanted is not None and session.scalar(select(func.numnode(wanted))) == 0:
        said = " ".join(t.text for clause in query.all_of for t in clause)
        raise TextQueryError(f"text: {said!r} holds only stop words (such as на, в, и), which are not "
                             "indexed: search for other words")


__all__ = ["MAX_TERMS", "Term", "TextQuery", "TextQueryError", "asked", "check_words", "parse_text", "text_match"]
