"""Small catalogue helpers for incremental harvesting, on top of ``catalog.ingest``.

A harvester asks what the catalogue already holds for the keys it sees
(``known_records``), moves "last seen" for what is unchanged at the source
(``touch_records``), finds a record again by its OAI identifier when its item page moved
(``keys_of_oai_identifiers``) and finds the records it should have seen in an area
(``active_in_bbox``) to withdraw those gone from the source.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, literal_column, select, text, update
from sqlalchemy.orm import Session

from catalog.assets import PreparedImage, prepare_image, register_prepared  # re-exported for the crawlers
from catalog.models import Record, RecordAsset


@dataclass
class KnownRecord:
    id: int
    status: str
    payload_hash: str
    markers: dict[str, Any] = field(default_factory=dict)   # parts of the stored raw payload, by name
    asset_urls: set[str] = field(default_factory=set)   # source URLs of its linked assets (given role)


def known_records(session: Session, source_id: int, keys: Iterable[str], *,
                  markers: Mapping[str, Sequence[str]] | None = None,
                  role: str = "original") -> dict[str, KnownRecord]:
    """What the catalogue holds for these keys: id, status, hash, asset URLs, and
    ``markers`` — named paths into the stored raw payload (e.g. ``{"listing": ["listing"]}``)."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    names = list(markers or {})
    cols = [Record.source_key, Record.id, Record.status, Record.payload_hash]
    cols += [Record.raw[tuple(markers[n])].label(f"m{i}") for i, n in enumerate(names)]
    out: dict[str, KnownRecord] = {}
    for start in range(0, len(keys), 5000):
        chunk = keys[start:start + 5000]
        for row in session.execute(select(*cols).where(Record.source_id == source_id,
                                                       Record.source_key.in_(chunk))):
            out[row.source_key] = KnownRecord(row.id, row.status, row.payload_hash,
                                              {n: row[4 + i] for i, n in enumerate(names)})
    if out:
        by_id = {k.id: k for k in out.values()}
        rows = session.execute(select(RecordAsset.record_id, RecordAsset.source_url).where(
            RecordAsset.record_id.in_(list(by_id)), RecordAsset.role == role))
        for rid, url in rows:
            if url:
                by_id[rid].asset_urls.add(url)
    return out


def keys_of_oai_identifiers(session: Session, source_id: int, identifiers: Iterable[str]) -> dict[str, list[str]]:
    """The keys of this source's records that carry these OAI identifiers, oldest record first
    (a repository that moved its item pages still names each record by its identifier)."""
    ids = sorted(set(identifiers))
    # literal SQL, not bound values: the statement must name the index's expression and predicate
    # as they are, also once psycopg prepares it (a generic plan cannot match a bound parameter)
    oai = literal_column("records.extra ->> 'oai_identifier'")
    out: dict[str, list[str]] = {}
    for start in range(0, len(ids), 5000):
        rows = session.execute(select(oai, Record.source_key).where(
            Record.source_id == source_id, text("records.extra ? 'oai_identifier'"),
            oai.in_(ids[start:start + 5000])).order_by(Record.id))
        for ident, key in rows:
            out.setdefault(ident, []).append(key)
    return out


def touch_records(session: Session, record_ids: Iterable[int], *, run_id: int | None,
                  asset_urls: Iterable[str] = (), role: str = "original") -> int:
    """Records seen unchanged in this run: last seen moves, withdrawn ones come back.

    Their asset links whose source URL is in ``asset_urls`` are marked seen too.
    """
    ids = sorted(set(record_ids))
    if not ids:
        return 0
    n = session.execute(
        update(Record).where(Record.id.in_(ids))
        .values(last_seen_at=func.now(), last_seen_run_id=run_id, status="active", withdrawn_at=None)
        .execution_options(synchronize_session=False)).rowcount or 0
    urls = sorted(set(asset_urls))
    if urls and run_id is not None:
        session.execute(
            update(RecordAsset).where(and_(RecordAsset.record_id.in_(ids), RecordAsset.role == role,
                                           RecordAsset.source_url.in_(urls)))
            .values(last_seen_run_id=run_id).execution_options(synchronize_session=False))
    return n


def record_ids(session: Session, source_id: int, keys: Iterable[str]) -> dict[str, int]:
    keys = sorted(set(keys))
    if not keys:
        return {}
    return dict(session.execute(select(Record.source_key, Record.id).where(
        Record.source_id == source_id, Record.source_key.in_(keys))).all())


def active_in_bbox(session: Session, source_id: int, west: float, south: float, east: float, north: float,
                   *, year_from: int | None = None, year_to: int | None = None) -> dict[str, tuple[float, float]]:
    """Active records of a source whose point lies in the box (and whose ``year_lo`` is in range)."""
    q = select(Record.source_key, Record.lat, Record.lon).where(
        Record.source_id == source_id, Record.status == "active",
        Record.lat.between(south, north), Record.lon.between(west, east))
    if year_from is not None:
        q = q.where(Record.year_lo >= year_from)
    if year_to is not None:
        q = q.where(Record.year_lo <= year_to)
    return {k: (lat, lon) for k, lat, lon in session.execute(q)}


__all__ = ["KnownRecord", "known_records", "touch_records", "record_ids", "active_in_bbox",
           "PreparedImage", "prepare_image", "register_prepared"]
