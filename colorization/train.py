"""Two-stage pix2pix colorization training: L1 pretraining, then adversarial + lambda * L1.

``train(config, train_images, val_images, out_dir)`` writes, in ``out_dir``:
``model.safetensors`` (generator + metadata, every epoch), ``train_state.pt`` (everything
needed to resume exactly), ``log.jsonl`` (losses per logged step, validation per epoch),
``curves.png`` and ``samples/epoch_NNN.png`` (greyscale | prediction | truth).

``recipe="engine"``: lean U-Net, colour conversion on the device, bf16 autocast on CUDA,
channels-last, photo augmentation (zoom, flips, old-print tone), and by default the chroma
classification head (``head="classes"``): stage 1 and stage 2 minimise the cross-entropy against
soft-encoded a*b* bins; stage 2 adds the adversarial term only when ``class_gan_weight > 0``.
``head="regression"`` is pix2pix's L1 then GAN + 100 L1. ``recipe="reference"``: the plain recipe
it is compared with (fastai-style U-Net, skimage colour conversion in the CPU loader, fp32,
plain crops and flips, L1 then GAN + 100 L1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler

from . import lab
from .chroma import rebalancing_weights, soft_encode
from .config import TrainConfig
from .data import CropDataset, data_fingerprint
from .metrics import colourfulness_torch
from .networks import PatchDiscriminator, UNetGenerator
from .runtime import amp_dtype, autocast, resolve_device

__all__ = ["TrainConfig", "TrainResult", "train", "build_models"]


@dataclass
class TrainResult:
    checkpoint: Path
    train_state: Path
    epochs: int
    steps: int
    images_seen: int
    train_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


class _EpochSampler(Sampler):
    """Yields (epoch, index) so that persistent loader workers see the current epoch."""

    def __init__(self, n: int):
        self.n, self.epoch = n, 0

    def __iter__(self):
        return iter([(self.epoch, i) for i in range(self.n)])

    def __len__(self) -> int:
        return self.n


class _EpochDataset(torch.utils.data.Dataset):
    def __init__(self, ds: CropDataset):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, key):
        epoch, i = key
        self.ds.set_epoch(epoch)
        return self.ds[i]


def build_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(config.seed)
    if config.recipe == "engine":
        gen: nn.Module = UNetGenerator(config.width, tuple(config.blocks), pretrained=config.pretrained,
                                       head=config.head, bin_step=config.bin_step)
    elif config.recipe == "reference":
        from .reference import ReferenceUNet

        gen = ReferenceUNet(config.width, pretrained=config.pretrained)
    else:
        raise ValueError(f"unknown recipe {config.recipe!r}: use engine or reference")
    return gen, PatchDiscriminator(3, config.ndf)


def _lab_batch(batch, device, engine: bool, channels_last: bool):
    if engine:
        rgb = batch.to(device, non_blocking=True)
        L, ab = lab.uint8_batch_to_lab_normalized(rgb)
    else:
        L, ab = (t.to(device, non_blocking=True) for t in batch)
    if channels_last:
        L, ab = L.contiguous(memory_format=torch.channels_last), ab.contiguous(memory_format=torch.channels_last)
    return L, ab


class _Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: Path, device: torch.device, gen: nn.Module, disc: nn.Module):
        self.cfg, self.out, self.device = cfg, out_dir, device
        self.engine = cfg.recipe == "engine"
        self.classes = getattr(gen, "head_kind", None) == "classes"
        self.class_weights: torch.Tensor | None = None
        self.dtype = amp_dtype(device, cfg.amp) if self.engine else None
        self.channels_last = bool(cfg.channels_last and self.engine)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.gen = gen.to(device, memory_format=fmt)
        self.disc = disc.to(device, memory_format=fmt)
        # The engine uses the fused (single-kernel) Adam on CUDA; the reference keeps the default.
        fused = {"fused": True} if self.engine and device.type == "cuda" else {}
        self.opt1 = torch.optim.Adam(self.gen.parameters(), lr=cfg.lr_stage1, **fused)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=cfg.lr_g, betas=tuple(cfg.betas), **fused)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas), **fused)
        self.g_fwd = torch.compile(self.gen) if cfg.compile else self.gen
        self.d_fwd = torch.compile(self.disc) if cfg.compile else self.disc

    def class_step(self, L: torch.Tensor, ab: torch.Tensor, stage: int) -> dict[str, torch.Tensor]:
        """Cross-entropy against soft-encoded a*b* bins at a quarter of the size (+ GAN if asked)."""
        with autocast(self.device, self.dtype):
            logits = self.gen.logits(L)
        target = soft_encode(F.avg_pool2d(lab.denormalize_ab(ab.float()), 4), self.gen.ab_centres)
        ce = -(target * F.log_softmax(logits.float(), dim=1)).sum(1)
        if self.class_weights is not None:  # rare colours weigh more (by the truth's likeliest bin)
            ce = ce * self.class_weights[target.argmax(1)]
        ce = ce.mean()
        gan = stage == 2 and self.cfg.class_gan_weight > 0
        fake = self.gen.decode(logits if gan else logits.detach(), L.shape[-2:])
        out = {"ce": ce.detach(), "l1": F.l1_loss(fake.detach(), ab)}
        loss = ce
        if gan:
            g_gan, loss_d = self._adversarial(L, ab, fake)
            loss = ce + self.cfg.class_gan_weight * g_gan
            out |= {"g_gan": g_gan.detach(), "d": loss_d.detach()}
        opt = self.opt1 if stage == 1 else self.opt_g
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return out

    def _adversarial(self, L: torch.Tensor, ab: torch.Tensor, fake: torch.Tensor):
        """Update the discriminator; return the generator's adversarial loss and D's loss."""
        bce = F.binary_cross_entropy_with_logits
        self.disc.requires_grad_(True)
        with autocast(self.device, self.dtype):
            d_fake = self.d_fwd(torch.cat((L, fake.detach().to(L.dtype)), 1)).float()
            d_real = self.d_fwd(torch.cat((L, ab), 1)).float()
        loss_d = 0.5 * (bce(d_fake, torch.zeros_like(d_fake)) + bce(d_real, torch.ones_like(d_real)))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.disc.requires_grad_(False)
        with autocast(self.device, self.dtype):
            d_fake = self.d_fwd(torch.cat((L, fake.to(L.dtype)), 1)).float()
        return bce(d_fake, torch.ones_like(d_fake)), loss_d

    def step(self, L: torch.Tensor, ab: torch.Tensor, stage: int) -> dict[str, torch.Tensor]:
        if self.classes:
            return self.class_step(L, ab, stage)
        with autocast(self.device, self.dtype):
            fake = self.g_fwd(L)
        if stage == 1:
            loss = F.l1_loss(fake.float(), ab)
            self.opt1.zero_grad(set_to_none=True)
            loss.backward()
            self.opt1.step()
            return {"l1": loss.detach()}
        g_gan, loss_d = self._adversarial(L, ab, fake)
        l1 = F.l1_loss(fake.float(), ab)
        loss_g = g_gan + self.cfg.lambda_l1 * l1
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {"l1": l1.detach(), "g_gan": g_gan.detach(), "d": loss_d.detach()}

    @torch.no_grad()
    def validate(self, loader) -> tuple[dict[str, float], list]:
        self.gen.eval()
        tot = {"val_l1": 0.0, "val_psnr": 0.0, "val_colourfulness": 0.0, "val_colourfulness_truth": 0.0}
        n, samples = 0, []
        for batch in loader:
            L, ab = _lab_batch(batch, self.device, self.engine, self.channels_last)
            with autocast(self.device, self.dtype):
                fake = self.g_fwd(L).float()
            pred = lab.lab_normalized_to_rgb(L, fake)
            truth = lab.lab_normalized_to_rgb(L, ab)
            mse = ((pred - truth) ** 2).flatten(1).mean(1).clamp_min(1e-10)
            k = L.shape[0]
            tot["val_l1"] += F.l1_loss(fake, ab, reduction="none").flatten(1).mean(1).sum().item()
            tot["val_psnr"] += (-10.0 * torch.log10(mse)).sum().item()
            tot["val_colourfulness"] += colourfulness_torch(pred).sum().item()
            tot["val_colourfulness_truth"] += colourfulness_torch(truth).sum().item()
            n += k
            if len(samples) < self.cfg.grid_images:
                grey = lab.lab_normalized_to_rgb(L, torch.zeros_like(ab))
                for g, p, t in zip(grey, pred, truth):
                    samples.append([_to_u8(x) for x in (g, p, t)])
        self.gen.train()
        return {k: v / max(n, 1) for k, v in tot.items()}, samples[: self.cfg.grid_images]


def _class_weights(ds: CropDataset, centres: torch.Tensor, lam: float, max_photos: int = 256) -> torch.Tensor:
    """Rebalancing weights from the a*b* of (up to ``max_photos``) training photos at 64 px."""
    step = max(1, len(ds.paths) // max_photos)
    samples = []
    for i in range(0, len(ds.paths), step):
        img = ds._load(i)
        img.thumbnail((64, 64))
        rgb = torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)[None]
        samples.append(lab.denormalize_ab(lab.uint8_batch_to_lab_normalized(rgb)[1]).flatten(2)[0].t())
    return rebalancing_weights(torch.cat(samples), centres.cpu(), lam)


def _to_u8(x: torch.Tensor):
    return (x.float() * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    st = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def train(
    config: TrainConfig,
    train_images: Sequence[str | Path],
    val_images: Sequence[str | Path],
    out_dir: str | Path,
    *,
    train_boxes: Sequence | None = None,
    val_boxes: Sequence | None = None,
    resume: bool = False,
    init_checkpoint: str | Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train (or resume, or fine-tune from ``init_checkpoint``) and return where things went.

    ``progress`` receives events ``{"event": "start"|"step"|"epoch"|"done", ...}``.
    """
    from .checkpoint import load_checkpoint, load_train_state, save_checkpoint, save_train_state
    from .config import config_problem
    from .plots import image_grid, plot_curves

    cfg = config
    if config_problem(cfg):
        raise ValueError(config_problem(cfg))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    emit = progress or (lambda event: None)
    gen, disc = build_models(cfg)
    if init_checkpoint is not None:
        loaded = load_checkpoint(init_checkpoint)
        if loaded.metadata["arch"] != gen.arch:
            raise ValueError(f"init checkpoint architecture {loaded.metadata['arch']} != {gen.arch}")
        gen.load_state_dict(loaded.generator.state_dict())
    tr = _Trainer(cfg, out, device, gen, disc)
    ds = CropDataset(train_images, cfg.crop_size, boxes=train_boxes, samples_per_epoch=cfg.samples_per_epoch,
                     seed=cfg.seed, lab_on_cpu=not tr.engine, cache=cfg.cache_images,
                     augment=cfg.augment and tr.engine)
    if tr.classes and cfg.rebalance > 0:
        tr.class_weights = _class_weights(ds, tr.gen.ab_centres, cfg.rebalance).to(device)
    val_list = list(val_images)[: cfg.max_val_images]
    vds = CropDataset(val_list, cfg.crop_size, boxes=(val_boxes[: len(val_list)] if val_boxes else None),
                      train=False, lab_on_cpu=not tr.engine, cache=cfg.cache_images) if val_list else None
    sampler = _EpochSampler(len(ds))
    pin = device.type == "cuda"
    loader = DataLoader(_EpochDataset(ds), batch_size=cfg.batch_size, sampler=sampler, drop_last=len(ds) >= cfg.batch_size,
                        num_workers=cfg.num_workers, pin_memory=pin, persistent_workers=cfg.num_workers > 0,
                        prefetch_factor=4 if cfg.num_workers > 0 else None)
    vloader = DataLoader(vds, batch_size=cfg.batch_size, num_workers=0) if vds is not None else None
    fingerprint = data_fingerprint(train_images, train_boxes)

    epoch, step, seen = 0, 0, 0
    stage_time = [0.0, 0.0]
    stage_epochs = [0, 0]
    history: list[dict[str, Any]] = []
    state_path, ckpt_path, log_path = out / "train_state.pt", out / "model.safetensors", out / "log.jsonl"
    if resume and state_path.exists():
        st = load_train_state(state_path)
        before = json.loads(st.get("config") or "{}")
        changed = [f"{k} {before[k]!r} (now {getattr(cfg, k)!r})" for k in ("recipe", "head", "width", "blocks", "bin_step",
                                                                           "ndf")
                   if k in before and before[k] != (list(getattr(cfg, k)) if isinstance(getattr(cfg, k), tuple)
                                                    else getattr(cfg, k))]
        if changed:
            raise ValueError(f"--resume: the run in {out} was trained with {', '.join(changed)}; resume it with "
                             "those settings, or train into another --out")
        tr.gen.load_state_dict(st["generator"])
        tr.disc.load_state_dict(st["discriminator"])
        tr.opt1.load_state_dict(st["opt_stage1"])
        tr.opt_g.load_state_dict(st["opt_g"])
        tr.opt_d.load_state_dict(st["opt_d"])
        epoch, step, seen = int(st["epoch"]), int(st["step"]), int(st["images_seen"])
        stage_time, stage_epochs = list(st["stage_time"]), list(st["stage_epochs"])
        history = json.loads(st["history"])
        torch.set_rng_state(st["rng"]["cpu"])
        if "cuda" in st["rng"] and device.type == "cuda":
            torch.cuda.set_rng_state(st["rng"]["cuda"], device)
    with open(log_path, "w") as f:  # the log always matches the state resumed from
        f.writelines(json.dumps(r) + "\n" for r in history)

    limits_e = [cfg.stage1_epochs, cfg.stage2_epochs]
    limits_t = [cfg.stage1_seconds, cfg.stage2_seconds]

    def stage_done(s: int) -> bool:
        by_epochs = limits_e[s] is not None and stage_epochs[s] >= limits_e[s]
        by_time = limits_t[s] is not None and stage_time[s] >= limits_t[s]
        unlimited = limits_e[s] is None and limits_t[s] is None
        return by_epochs or by_time or unlimited

    emit({"event": "start", "device": str(device), "train_images": len(ds.paths), "val_images": len(val_list),
          "steps_per_epoch": len(loader), "resumed_epoch": epoch})
    metrics: dict[str, float] = {}
    tr.gen.train()
    tr.disc.train()
    for s in (0, 1):
        while not stage_done(s):
            stage = s + 1
            sampler.epoch = epoch
            t_epoch = time.perf_counter()
            acc: dict[str, torch.Tensor] = {}
            n_acc = 0
            for batch in loader:
                L, ab = _lab_batch(batch, device, tr.engine, tr.channels_last)
                losses = tr.step(L, ab, stage)
                step += 1
                seen += L.shape[0]
                for k, v in losses.items():
                    acc[k] = acc.get(k, 0) + v
                n_acc += 1
                if n_acc == cfg.log_every:
                    rec = {"kind": "train", "stage": stage, "epoch": epoch, "step": step,
                           **{k: float(v) / n_acc for k, v in acc.items()}}
                    history.append(rec)
                    with open(log_path, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                    acc, n_acc = {}, 0
                    emit({"event": "step", **rec})
                if limits_t[s] is not None and stage_time[s] + time.perf_counter() - t_epoch >= limits_t[s]:
                    break
            if n_acc:
                rec = {"kind": "train", "stage": stage, "epoch": epoch, "step": step,
                       **{k: float(v) / n_acc for k, v in acc.items()}}
                history.append(rec)
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t_epoch
            stage_time[s] += dt
            stage_epochs[s] += 1
            val_rec = {"kind": "val", "stage": stage, "epoch": epoch, "step": step, "images_seen": seen,
                       "epoch_seconds": dt, "train_seconds": sum(stage_time)}
            if vloader is not None:
                metrics, samples = tr.validate(vloader)
                val_rec.update(metrics)
                if samples:
                    image_grid(samples, ["greyscale", "prediction", "truth"], out / "samples" / f"epoch_{epoch:03d}.png")
            history.append(val_rec)
            with open(log_path, "a") as f:
                f.write(json.dumps(val_rec) + "\n")
            plot_curves(history, out / "curves.png")
            epoch += 1
            meta = {"recipe": cfg.recipe, "config": asdict(cfg), "epoch": epoch, "step": step, "images_seen": seen,
                    "train_seconds": sum(stage_time), "metrics": metrics,
                    "data": {"fingerprint": fingerprint, "train_images": len(ds.paths), "val_images": len(val_list)},
                    "parent": str(init_checkpoint) if init_checkpoint else None,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            save_checkpoint(ckpt_path, tr.gen, meta)
            save_train_state(state_path, {
                "format": "arhiva-colorizer-train-state", "generator": tr.gen.state_dict(),
                "discriminator": tr.disc.state_dict(), "opt_stage1": tr.opt1.state_dict(),
                "opt_g": tr.opt_g.state_dict(), "opt_d": tr.opt_d.state_dict(), "epoch": epoch, "step": step,
                "images_seen": seen, "stage_time": stage_time, "stage_epochs": stage_epochs,
                "history": json.dumps(history), "rng": _rng_state(device), "config": json.dumps(asdict(cfg))})
            emit({"event": "epoch", **val_rec})
    if tr.classes and cfg.calibrate and list(val_images) and ckpt_path.exists():
        from .calibrate import calibrate
        from .checkpoint import read_metadata

        cal = calibrate(tr.gen, list(val_images)[:64], render_size=cfg.calibration_size,
                        min_gap=cfg.calibration_gap, device=device)
        tr.gen.calibration = {k: cal[k] for k in ("temperature", "shrinkage", "gain")}
        save_checkpoint(ckpt_path, tr.gen, {**read_metadata(ckpt_path), "decode": cal})
        emit({"event": "calibrated", **cal})
    result = TrainResult(ckpt_path, state_path, epoch, step, seen, sum(stage_time), metrics, history)
    emit({"event": "done", "checkpoint": str(ckpt_path), "epochs": epoch, "steps": step})
    return result
