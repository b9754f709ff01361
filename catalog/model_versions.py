"""Model versions in the catalogue: what training may use, registration with its lineage, the current one.

Training takes colour originals no version has used yet (``training_candidates``), split by
content hash (``stable_split``); ``register_model_version`` records the version with the assets
that trained and validated it (``training_examples``: the model's lineage). One version is
current (``set_current``), chosen by ``promotion_decision``; colorization uses it by default.
Plain SQL over the catalogue (no torch here).
"""
from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import exists, func, not_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.claims import PhotoRef, collection_id_of, mark_shown, original_photos, photo_refs
from catalog.models import Asset, ModelVersion, TrainingExample


def training_candidates(session: Session, collection: str, *, min_side: int = 64) -> list[PhotoRef]:
    """Colour originals of a collection that no model version has trained or validated on yet."""
    cid = collection_id_of(session, collection)
    used = exists().where(TrainingExample.asset_sha256 == Asset.sha256)
    stmt = original_photos(session, cid).where(Asset.is_colour.is_(True), not_(used),
                                          Asset.width >= min_side, Asset.height >= min_side)
    return sorted(photo_refs(session.execute(stmt.order_by(Asset.sha256)).all()), key=lambda r: r.sha256)


def stable_split(refs: list[PhotoRef], val_fraction: float = 0.1) -> tuple[list[PhotoRef], list[PhotoRef]]:
    """Train/validation split by content hash: the same photo always lands on the same side."""
    if not refs:
        return [], []
    cut = int(val_fraction * 2**32)
    val = [r for r in refs if int(hashlib.sha256(("val:" + r.sha256).encode()).hexdigest()[:8], 16) < cut]
    train = [r for r in refs if r not in val]
    if not val and len(train) > 1:
        val = [train.pop()]
    return train, val


def latest_model(session: Session, name: str | None = None) -> ModelVersion | None:
    stmt = select(ModelVersion)
    stmt = stmt.where(ModelVersion.name == name) if name else stmt.order_by(ModelVersion.id.desc()).limit(1)
    return session.execute(stmt).scalar()


def current_model(session: Session) -> ModelVersion | None:
    """The current model version (scheduled and default colorization use it)."""
    return session.execute(select(ModelVersion).where(ModelVersion.is_current)).scalar()


def model_for_colorization(session: Session, name: str | None = None) -> ModelVersion | None:
    """The version asked for by name, else the current one (else, in a catalogue that has none, the newest)."""
    if name:
        return latest_model(session, name)
    return current_model(session) or latest_model(session)


def register_model_version(session: Session, *, name: str, checkpoint_sha256: str, architecture: str,
                           config: dict[str, Any], metrics: dict[str, Any], training_run_id: int | None,
                           parent_id: int | None, train: list[PhotoRef], val: list[PhotoRef]) -> ModelVersion:
    mv = ModelVersion(name=name, checkpoint_sha256=checkpoint_sha256, architecture=architecture, config=config,
                      metrics=metrics, training_run_id=training_run_id, parent_id=parent_id)
    session.add(mv)
    session.flush()
    rows = [{"model_version_id": mv.id, "asset_sha256": r.sha256, "record_id": r.record_ids[0], "split": split}
            for split, refs in (("train", train), ("val", val)) for r in refs]
    if rows:
        session.execute(pg_insert(TrainingExample).values(rows).on_conflict_do_nothing())
    return mv


def set_current(session: Session, mv: ModelVersion, decision: str) -> int:
    """Make ``mv`` the current version, say why, and show its results where it has made some.

    Returns how many records now show one of its results (older results stay as history).
    """
    session.execute(text("UPDATE model_versions SET is_current = false WHERE is_current AND id <> :id"), {"id": mv.id})
    session.flush()
    mv.is_current = True
    mv.promoted_at = func.now()
    mv.decision = decision
    session.flush()
    rows = session.execute(text(
        "SELECT DISTINCT ON (ra.record_id) ra.record_id, ra.id FROM record_assets ra "
        "JOIN colorizations c ON c.result_sha256 = ra.asset_sha256 AND c.model_version_id = :mv AND c.status = 'done' "
        "WHERE ra.role = 'colorized' ORDER BY ra.record_id, c.id DESC"), {"mv": mv.id}).all()
    mark_shown(session, {rid: lid for rid, lid in rows}, replace=True)
    return len(rows)


# A candidate must lower the mean CIEDE2000 on the held-out photos and may not paint more false
# colour than the current version (beyond this tolerance, a share of the pixels).
FALSE_COLOUR_TOLERANCE = 0.002


def promotion_decision(candidate: dict[str, float], current: dict[str, float] | None,
                       current_name: str | None) -> tuple[bool, str]:
    """Whether a new version (held-out metrics ``candidate``) should replace the current one, and why."""
    if current is None:
        return True, "current: the first model version with held-out metrics" if current_name is None else (
            f"current: {current_name} has no metrics on these held-out photos")

    def nums(m):
        return f"CIEDE2000 {m['ciede2000']:.2f}, false colour {100 * m['false_colour']:.2f}%"

    if current.get("ciede2000") is None or current.get("false_colour") is None:
        return True, f"current: {current_name} has no metrics on these held-out photos"
    better = candidate["ciede2000"] < current["ciede2000"]
    clean = candidate["false_colour"] <= current["false_colour"] + FALSE_COLOUR_TOLERANCE
    versus = f"({nums(candidate)}) vs {current_name} ({nums(current)}) on the held-out photos"
    if better and clean:
        return True, f"current: beats {current_name} {versus}"
    why = "no lower CIEDE2000" if not better else "more false colour"
    return False, f"not promoted: {why} {versus}"
