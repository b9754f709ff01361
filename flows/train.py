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

import logging
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
    checkpoint: Path | None  # the checkpoint, in the local cache (None: not fetched, not needed)
    config: dict[str, Any]  # the training configuration it was made with
    evaluation: dict[str, Any]  # how it was judged on the held-out photos

    @classmethod
    def of(cls, mv, store, *, fetch: bool = True) -> VersionRef:
        return cls(mv.id, mv.name, checkpoint_path(store, mv) if fetch else None, dict(mv.config or {}),
                   dict(mv.evaluation or {}))


def checkpoint_path(store, mv) -> Path:
    """The local file of model version ``mv``'s checkpoint (a remote store's is fetched once); a
    checkpoint missing from the store is a ``LookupError`` naming the version."""
    from catalog.blobs import BlobMissing

    try:
        path = Path(store.local_path(mv.checkpoint_sha256))
    except (BlobMissing, FileNotFoundError):
        path = None
    if path is None or not path.is_file():
        raise LookupError(f"the checkpoint of model version {mv.name} ({mv.checkpoint_sha256[:12]}…) is missing "
                          f"from the blob store {store.url} (arhiva blobs verify lists missing files)")
    return path


def check_train_settings(*, crop_size: int, batch_size: int, width: int, stage1_epochs: int | None,
                         stage2_epochs: int | None, samples_per_epoch: int | None, device: str) -> None:
    """Refuse, before any run is stored, settings ``arhiva train`` would refuse: a schedule or a
    work pool's flow run takes the flow's parameters without the command line."""
    from colorization.config import TrainConfig, config_problem, device_problem

    problem = device_problem(device) or config_problem(TrainConfig(
        crop_size=crop_size, batch_size=batch_size, width=width, stage1_epochs=stage1_epochs,
        stage2_epochs=stage2_epochs, samples_per_epoch=samples_per_epoch))
    if problem:
        raise ValueError(problem)


class TrainingProgress:
    """The ``progress`` a training run stores on its row as it goes (``arhiva train`` shows it from
    there): the phase, the stage, epochs and steps done of how many; written at most every
    ``every`` seconds, and at each epoch's end and each new phase."""

    QUIET_AFTER_FAILURE_S = 60.0

    def __init__(self, run, config, *, validating: bool = True, every: float = 1.0):
        self.run, self.every, self.saved, self.quiet_until = run, every, 0.0, 0.0
        self.epochs = (config.stage1_epochs or 0) + (config.stage2_epochs or 0)
        # after the last epoch, the classes head's decoding is fitted on the validation photos
        self.calibrates = validating and config.recipe == "engine" and config.head == "classes" and config.calibrate
        self.state: dict[str, Any] = {"phase": "reading the photos", "stage": 1, "epoch": 0, "epochs": self.epochs,
                                      "step": 0, "steps": None}
        self.save(force=True)

    def phase(self, phase: str) -> None:
        self.state["phase"] = phase
        self.save(force=True)

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            self._take(event)
        except Exception as exc:  # progress is for the eye: an event it cannot read never stops a training
            logging.getLogger("arhiva").debug("could not read a training event %r: %s", event, exc)

    def _take(self, event: dict[str, Any]) -> None:
        kind, st = event.get("event"), self.state
        if kind == "start":
            st |= {"phase": "training", "epoch": event.get("resumed_epoch", 0),
                   "steps": self.epochs * event["steps_per_epoch"] if self.epochs else None,
                   "steps_per_epoch": event["steps_per_epoch"], "train_photos": event.get("train_images")}
        elif kind in ("step", "epoch"):
            st |= {"stage": event["stage"], "step": event["step"],
                   "epoch": event["epoch"] + (kind == "epoch")}  # epochs done (the event's epoch counts from 0)
            if kind == "epoch" and self.calibrates and st["epoch"] >= self.epochs:
                st["phase"] = "calibrating its colours on the validation photos"
        self.save(force=kind != "step")

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if now < self.quiet_until or (not force and now - self.saved < self.every):
            return
        self.saved = now
        self.run.stats = {"progress": dict(self.state)}
        try:
            self.run.save_stats()
        except Exception as exc:  # progress is for the eye: the training goes on without it, and a
            # catalogue that does not answer is not asked again for a while (each try may wait)
            self.quiet_until = time.monotonic() + self.QUIET_AFTER_FAILURE_S
            logging.getLogger("arhiva").debug("could not store the training progress: %s", exc)


@task(name="train-model", cache_policy=NO_CACHE)
def train_model(config, train_paths, val_paths, out_dir, train_boxes, val_boxes, init_checkpoint, report=None):
    """Train ``config`` on the photos; ``report`` (a ``TrainingProgress``) receives the training's events."""
    from colorization.train import train

    log = get_run_logger()

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "epoch":
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in event.items()
                     if k in ("stage", "epoch", "step", "psnr", "ssim", "ciede2000", "l1", "train_seconds")}
            log.info("epoch done: %s", shown)
        if report is not None:
            report(event)

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
        fp = _fingerprint(heldout, render_size, DEFAULT_VIVID)
        # the current version's checkpoint is read only when its numbers on these photos are not kept
        kept = cur is not None and (cur.evaluation or {}).get("fingerprint") == fp and (cur.evaluation or {}).get("metrics")
        cur_info = VersionRef.of(cur, store, fetch=bool(heldout) and not kept) if cur else None
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

    check_train_settings(crop_size=crop_size, batch_size=batch_size, width=width, stage1_epochs=stage1_epochs,
                         stage2_epochs=stage2_epochs, samples_per_epoch=samples_per_epoch, device=device)
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
        if not train_refs:  # a photo or two, all on the validation side of the split: one trains
            train_refs, val_refs = val_refs[-1:], val_refs[:-1]
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
        if len(refs) < max(1, min_photos):  # no photo at all is nothing to do, whatever min_photos says
            reason = (f"{len(refs)} new colour photo(s) in {collection!r}, fewer than {min_photos}" if min_photos > 0
                      else f"no new colour photos in {collection!r} (none that an earlier model version has not used)")
            run.end("skipped", reason)
            return nothing_to_do(reason, summary)
        version_name = name or f"{collection}-v{count + 1}"
        config = TrainConfig(**cfg_kwargs)
        out_dir = get_settings().models_dir / "runs" / f"training-{run_id}"
        log.info("training %s on %d photo(s), validating on %d%s", version_name, len(train_refs), len(val_refs),
                 f", fine-tuning {parent_info.name}" if parent_info else " from scratch")
        report = TrainingProgress(run, config, validating=bool(val_refs))
        # remote photos are fetched once into the local cache: training reads them every epoch
        result = train_model(config, [store.local_path(r.sha256) for r in train_refs],
                             [store.local_path(r.sha256) for r in val_refs], out_dir,
                             [r.crop_box for r in train_refs], [r.crop_box for r in val_refs],
                             parent_info.checkpoint if parent_info else None, report)
        report.phase("registering the model version")
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
        report.phase(f"judging it on {len(heldout)} held-out photo(s)")
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
