"""Collection names: what may name a collection, and the one spelling a name is kept under.

A name is kept and looked up in Unicode's composed form (NFC). The same letters reach arhiva
spelt two ways: macOS gives folder names decomposed (NFD: "ş" as "s" and a combining cedilla),
keyboards composed; without one spelling, ``--collection`` pasted from a folder's name made a
second collection beside the one typed, and a search by the typed name missed it.
Only canonical equivalence: "ş" (s with cedilla, U+015F) and "ș" (s with comma below, U+0219)
are different letters and stay different names. Names an earlier arhiva stored decomposed are
not rewritten (no migration: two forms of one name may both be there, as two collections, which
only their owner can merge); README's *Collection names* gives the one statement that renames them.
"""
from __future__ import annotations

import unicodedata

NAME_MAX = 200  # characters of a collection's name (the collections table's column), in NFC
# code points a name may be sent as, before it is made NFC: decomposed (NFD), one character is at most
# four ("ᾂ": α and three marks), so a name within NAME_MAX as stored fits; a bound against abuse only,
# the stored form is what collection_name_problem measures
SENT_MAX = 4 * NAME_MAX


def collection_name(name: str) -> str:
    """``name`` as collections are stored and looked up: NFC."""
    return unicodedata.normalize("NFC", name)


def source_slug(slug: str) -> str:
    """A source's slug as stored and looked up: NFC too (a folder's source is named after the
    folder, which macOS spells decomposed)."""
    return unicodedata.normalize("NFC", slug)


def collection_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a collection (None when it can): empty, only spaces or invisible
    characters (a zero-width space), spaces around it (``"gara "`` beside ``"gara"``), or too long
    as stored (a few characters grow in NFC: U+FB2C, a Hebrew letter, becomes three)."""
    def blank(c: str) -> bool:
        return c.isspace() or unicodedata.category(c) in ("Cf", "Cc", "Zs")

    if not name or all(blank(c) for c in name):
        return "a collection name needs a visible character"
    if blank(name[0]) or blank(name[-1]):  # "gara\u200b" beside "gara": an invisible twin
        return "a collection name must not begin or end with a space or an invisible character"
    if len(stored := collection_name(name)) > NAME_MAX:
        return f"a collection name has at most {NAME_MAX} characters (this one has {len(stored):,} in NFC)"
    return None
