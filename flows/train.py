"""The ``train`` flow: learn from the colour photos a collection already holds.

Selects the colour originals (colour statistics from the catalogue; the
watermark strip left out through each link's crop box) that no earlier model
version used, splits them by content hash, trains — or fine-tunes the latest
version — with the engine's photo augmentation, and registers a new model
version with its metrics, configuration, parent and the exact training and
validation assets (lineage).

Then the new version is judged on the fixed held-out photos (those the current
version was judged on; the first version's own validation photos start the
set), next to the current version: it becomes current only when it beats it
(``catalog.model_versions.promotion_decision``). The metrics and the decision are kept on
the version (``evaluation``, ``decision``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from colorization.config import DEFAULTS

CHECKPOINT_MEDIA_TYPE = "application/vnd.arhiva.colorizer+safetensors"


class VersionRef(NamedTuple):
    """What training needs of a model version once its session is closed."""

    id: int
    name: str
    checkpoint: Path  # the checkpoint, in the local cache
    config: dict[str, Any]  # the training configuration it was made with
    evaluation: dict[str, Any]  # how it was judged on the held-out photos

    @classmethod
    def of(cls, mv, store) -> VersionRef:
        return cls(mv.id, mv.name, store.local_path(mv.checkpoint_sha256), dict(mv.config or {}),
                   dict(mv.evaluation or {}))


@task(name="train-model", cache_policy=NO_CACHE)
def train_model(config, train_paths, val_paths, out_dir, train_boxes, val_boxes, init_checkpoint):
    from colorization.train import train

    log = get_run_logger()

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "epoch":
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in event.items()
                     if k in ("stage", "epoch", "step", "psnr", "ssim", "ciede2000", "l1", "train_seconds")}
            log.info("epoch done: %s", shown)

    return train(config, train_paths, val_paths, out_dir, train_boxes=train_boxes, val_boxes=val_boxes,
                 init_checkpoint=init_checkpoint, progress=progress)


@task(name="evaluate-held-out", cache_policy=NO_CACHE)
def evaluate_heldout(candidate, current, paths, boxes, render_size: int, device: str) -> dict[str, Any]:
    """The candidate (and the current version, when given) on the held-out photos, next to greyscale."""
    from colorization.metrics import evaluate

    rep = evaluate(candidate, paths, reference=current, crop_boxes=boxes, render_size=render_size, device=device)
    per = [{"image": r["image"], **{k: r[k] for k in rep["systems"]}} for r in rep["per_image"]]
    return _json_safe({"candidate": rep["model"], "current": rep.get("reference"), "greyscale": rep["greyscale"],
                       "gap_closed": rep["gap_closed_by"], "per_photo": per})


def _json_safe(value):
    """NaN and infinities (e.g. the hue error of a photo with no strong colour) as null: JSONB has no NaN."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def heldout_photos(current, val_refs) -> list[dict[str, Any]]:
    """The fixed held-out set: the one the current version was judged on, else these validation photos."""
    recorded = (current.evaluation or {}).get("heldout") if current is not None else None
    if recorded:
        return recorded
    return [{"sha256": r.sha256, "crop_box": r.crop_box} for r in val_refs]


def _fingerprint(photos: list[dict[str, Any]], render_size: int, vivid: float) -> str:
    import hashlib
    import json

    key = json.dumps([sorted(p["sha256"] for p in photos), render_size, vivid])
    return hashlib.sha256(key.encode()).hexdigest()


def judge(engine, store, mv_id: int, ckpt, heldout: list[dict[str, Any]], render_size: int,
          device: str) -> dict[str, Any]:
    """Evaluate model version ``mv_id`` against the current one on ``heldout``; promote it if it wins."""
    from sqlalchemy import select

    from catalog.db import session_scope
    from catalog.model_versions import current_model, promotion_decision, set_current
    from catalog.models import Asset, ModelVersion
    from colorization.chroma import DEFAULT_VIVID

    log = get_run_logger()
    with session_scope(engine) as s:
        have = set(s.execute(select(Asset.sha256).where(Asset.sha256.in_([p["sha256"] for p in heldout]))).scalars())
        heldout = [p for p in heldout if p["sha256"] in have]
        cur = current_model(s)
        cur_info = VersionRef.of(cur, store) if cur else None
    fp = _fingerprint(heldout, render_size, DEFAULT_VIVID)
    evaluation: dict[str, Any] = {"heldout": heldout, "fingerprint": fp, "render_size": render_size,
                                  "vivid": DEFAULT_VIVID}
    cur_metrics = None
    if heldout:
        reuse = cur_info is not None and cur_info.evaluation.get("fingerprint") == fp and cur_info.evaluation.get("metrics")
        paths = [store.local_path(p["sha256"]) for p in heldout]
        boxes = [p.get("crop_box") for p in heldout]
        rep = evaluate_heldout(ckpt, None if (cur_info is None or reuse) else cur_info.checkpoint, paths, boxes,
                               render_size, device)
        cur_metrics = cur_info.evaluation["metrics"] if reuse else rep["current"]
        evaluation |= {"metrics": rep["candidate"], "greyscale": rep["greyscale"], "per_photo": rep["per_photo"]}
        if cur_info is not None:
            evaluation["compared_with"] = {"name": cur_info.name, "metrics": cur_metrics}
        promote, why = promotion_decision(rep["candidate"], cur_metrics, cur_info.name if cur_info else None)
    elif cur_info is None:
        promote, why = True, "current: the first model version (no held-out photos to judge it on)"
    else:
        promote, why = False, f"not promoted: no held-out photos to compare it with {cur_info.name} on"
    with session_scope(engine) as s:
        mv = s.get(ModelVersion, mv_id)
        mv.evaluation = evaluation
        if cur_info is not None and cur_metrics is not None and not cur_info.evaluation.get("metrics"):
            old = s.get(ModelVersion, cur_info.id)  # judged for the first time: keep its numbers too
            old.evaluation = {k: v for k, v in evaluation.items() if k not in ("metrics", "per_photo", "compared_with")} | {
                "metrics": cur_metrics}
        if promote:
            set_current(s, mv, why)
        else:
            mv.decision = why
    log.info("%s: %s", "promoted" if promote else "kept the current version", why)
    return {"promoted": promote, "decision": why, "heldout_photos": len(heldout),
            **({f"heldout_{k}": round(v, 4) for k, v in evaluation.get("metrics", {}).items() if v is not None})}


@flow(name="train", log_prints=True)
def train_flow(collection: str, name: str | None = None, base: str | None = "latest",
               stage1_epochs: int = DEFAULTS.stage1_epochs, stage2_epochs: int = DEFAULTS.stage2_epochs,
               crop_size: int = DEFAULTS.crop_size, batch_size: int = DEFAULTS.batch_size,
               width: int = DEFAULTS.width, device: str = DEFAULTS.device, val_fraction: float = 0.1,
               min_photos: int = 4, samples_per_epoch: int | None = DEFAULTS.samples_per_epoch,
               num_workers: int = DEFAULTS.num_workers, eval_render_size: int = 256) -> dict[str, Any]:
    """Train a new model version on the collection's unused colour photos; promote it to current
    if it beats the current version on the held-out photos (judged at ``eval_render_size``).

    ``base``: ``latest`` fine-tunes the newest model version (its architecture is kept),
    ``none`` trains from scratch, any other value names the version to start from. The training
    settings default to ``colorization.config.TrainConfig``'s.
    """
    from dataclasses import asdict

    from sqlalchemy import func, select

    from catalog.assets import get_store, register_file
    from catalog.claims import collection_id_of
    from catalog.db import open_catalog, session_scope
    from catalog.imaging import use_pixel_limit
    from catalog.model_versions import (
        current_model,
        latest_model,
        register_model_version,
        stable_split,
        training_candidates,
    )
    from catalog.models import ModelVersion
    from catalog.names import collection_name
    from catalog.runs import activity
    from catalog.settings import get_settings
    from colorization.config import TrainConfig
    from flows.artifacts import image_artifact, summary_table
    from flows.outcome import nothing_to_do

    log = get_run_logger()
    # as stored (NFC): the run's parameters and the default version name spell it as the catalogue does
    collection = collection_name(collection)
    use_pixel_limit(get_settings().max_image_pixels)  # photos open under the one pixel limit
    engine = open_catalog()
    store = get_store()
    with session_scope(engine) as s:
        cid = collection_id_of(s, collection)  # LookupError naming it when there is none
        refs = training_candidates(s, collection, min_side=crop_size // 2)
        train_refs, val_refs = stable_split(refs, val_fraction)
        parent = None if base in (None, "none") else latest_model(s, None if base == "latest" else base)
        if base not in (None, "none", "latest") and parent is None:
            raise LookupError(f"no model version named {base!r}")
        parent_info = VersionRef.of(parent, store) if parent else None
        heldout = heldout_photos(current_model(s), val_refs)
        count = s.execute(select(func.count()).select_from(ModelVersion)).scalar_one()
    cfg_kwargs = dict(crop_size=crop_size, batch_size=batch_size, width=width, stage1_epochs=stage1_epochs,
                      stage2_epochs=stage2_epochs, device=device, samples_per_epoch=samples_per_epoch,
                      num_workers=num_workers)
    if parent_info:  # fine-tuning keeps the parent's architecture
        pc = parent_info.config.get("config", parent_info.config)
        cfg_kwargs.update({k: pc[k] for k in ("width", "blocks", "recipe", "head", "bin_step") if k in pc})
        cfg_kwargs.setdefault("head", "regression")  # versions from before the classes head
        if "blocks" in cfg_kwargs:
            cfg_kwargs["blocks"] = tuple(cfg_kwargs["blocks"])
    parameters = {"collection": collection, "base": base, "parent": parent_info.name if parent_info else None,
                  "train_photos": len(train_refs), "val_photos": len(val_refs)} | cfg_kwargs
    summary: dict[str, Any] = {"photos": len(refs)}
    started = time.perf_counter()
    with activity("training", "prefect:train", parameters, engine=engine,
                  stats=lambda: summary | {"seconds": round(time.perf_counter() - started, 2)},
                  collection_id=cid) as run:
        run_id = summary["run_id"] = run.id
        if len(refs) < min_photos:
            reason = f"{len(refs)} new colour photo(s) in {collection!r}, fewer than {min_photos}"
            run.end("skipped", reason)
            return nothing_to_do(reason, summary)
        version_name = name or f"{collection}-v{count + 1}"
        config = TrainConfig(**cfg_kwargs)
        out_dir = get_settings().models_dir / "runs" / f"training-{run_id}"
        log.info("training %s on %d photo(s), validating on %d%s", version_name, len(train_refs), len(val_refs),
                 f", fine-tuning {parent_info.name}" if parent_info else " from scratch")
        # remote photos are fetched once into the local cache: training reads them every epoch
        result = train_model(config, [store.local_path(r.sha256) for r in train_refs],
                             [store.local_path(r.sha256) for r in val_refs], out_dir,
                             [r.crop_box for r in train_refs], [r.crop_box for r in val_refs],
                             parent_info.checkpoint if parent_info else None)
        data = result.checkpoint.read_bytes()
        with session_scope(engine) as s:  # the checkpoint is a blob: another machine gets the model by its hash
            asset = register_file(s, store, data, CHECKPOINT_MEDIA_TYPE,
                                  {"model_version": version_name, "training_run_id": run_id})
            mv = register_model_version(
                s, name=version_name, checkpoint_sha256=asset.sha256, architecture=_arch_name(result),
                config=asdict(config) | _decode(result), metrics=result.metrics, training_run_id=run_id,
                parent_id=parent_info.id if parent_info else None, train=train_refs, val=val_refs)
            summary.update({"status": "succeeded", "model_version": mv.name, "model_version_id": mv.id,
                            "parent": parent_info.name if parent_info else None, "train_photos": len(train_refs),
                            "val_photos": len(val_refs), "epochs": result.epochs, "steps": result.steps,
                            "seconds": round(time.perf_counter() - started, 2), "checkpoint_sha256": asset.sha256,
                            **{k: round(v, 4) for k, v in result.metrics.items()}})
        summary |= judge(engine, store, summary["model_version_id"], result.checkpoint, heldout, eval_render_size,
                         device)
    summary_table(f"train-{run_id}", summary, f"Training run {run_id}: {version_name}")
    grids = sorted((out_dir / "samples").glob("epoch_*.png"))
    if grids:
        summary["grid_sha256"] = store.put_file(grids[-1])
        image_artifact(f"train-grid-{run_id}", grids[-1], f"Validation: greyscale / prediction / truth ({version_name})",
                       blob=summary["grid_sha256"])
        summary["grid"] = str(grids[-1])
    if (out_dir / "curves.png").exists():
        summary["curves_sha256"] = store.put_file(out_dir / "curves.png")
        image_artifact(f"train-curves-{run_id}", out_dir / "curves.png", f"Training curves ({version_name})",
                       blob=summary["curves_sha256"])
    return summary


def _decode(result) -> dict[str, Any]:
    """The decoding calibrated on the validation photos (``{"decode": ...}``), kept with the version."""
    from colorization.checkpoint import read_metadata

    dec = read_metadata(result.checkpoint).get("decode")
    return {"decode": dec} if dec else {}


def _arch_name(result) -> str:
    from colorization.checkpoint import read_metadata

    arch = read_metadata(result.checkpoint).get("arch", {})
    return str(arch.get("name", "unet")) + (f"-w{arch['width']}" if "width" in arch else "")
