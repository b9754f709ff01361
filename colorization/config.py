"""``TrainConfig``: every training setting and its default, in one place (no torch import).

The training code (``colorization.train``), the train flow (``flows.train``) and the command line
(``arhiva train``, ``arhiva train-files``) all take their defaults from here, so a default is
changed once. ``DEFAULTS`` is a ``TrainConfig()`` to read them from.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULTS", "MAX_BATCH_SIZE", "MAX_CROP_SIZE", "MAX_EPOCHS", "MAX_SAMPLES_PER_EPOCH", "MAX_WIDTH",
           "MIN_CROP_SIZE", "TrainConfig", "config_problem", "device_problem"]

# The smallest training crop: the encoder halves it five times, and a 32-pixel crop leaves a 1 x 1
# bottleneck whose batch norm cannot train on a batch of one image (one value per channel).
MIN_CROP_SIZE = 64
# The largest settings taken (far beyond what a machine trains with: a typo, not a choice)
MAX_CROP_SIZE = 4096
MAX_BATCH_SIZE = 1024
MAX_WIDTH = 512
MAX_EPOCHS = 1_000_000
MAX_SAMPLES_PER_EPOCH = 1_000_000


@dataclass
class TrainConfig:
    recipe: str = "engine"  # "engine" or "reference"
    crop_size: int = 256
    batch_size: int = 16
    stage1_epochs: int | None = 2  # None: no limit (use stage1_seconds)
    stage2_epochs: int | None = 10
    stage1_seconds: float | None = None  # training-time limit per stage (None: no limit)
    stage2_seconds: float | None = None
    samples_per_epoch: int | None = None  # crops per epoch (default: one per photo)
    lr_stage1: float = 1e-4
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_l1: float = 100.0
    width: int = 64
    blocks: tuple[int, int, int, int] = (2, 2, 2, 2)
    head: str = "classes"  # engine only: "classes" (chroma bins, annealed mean) or "regression"
    bin_step: int = 10  # a*b* bin size of the classes head (Lab units)
    class_gan_weight: float = 0.0  # classes head, stage 2: weight of the adversarial term
    rebalance: float = 0.0  # classes head: lambda of the class rebalancing (0 = off, Zhang et al.: 0.5)
    calibrate: bool = True  # classes head: fit vivid 0's decoding on the validation photos at the end
    calibration_gap: float = 0.7  # ... the least CIEDE2000 that restores this share of the colourfulness
    calibration_size: int = 128  # ... at this render size (shorter side)
    augment: bool = True  # engine only: zoom, flips and old-print tone (see colorization.data)
    ndf: int = 64
    pretrained: bool = False
    device: str = "auto"
    amp: str = "auto"  # auto: bf16 on CUDA (engine only), off elsewhere
    channels_last: bool = True  # engine only
    compile: bool = False
    num_workers: int = 2
    cache_images: bool = True
    seed: int = 0
    log_every: int = 10
    max_val_images: int = 64
    grid_images: int = 8


DEFAULTS = TrainConfig()


def device_problem(name: str | None) -> str | None:
    """What is wrong with a ``--device`` name (``colorization.runtime.resolve_device`` takes it),
    or None; told before any run starts, without importing torch."""
    import re

    if re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", (name or "auto").lower()):
        return None
    return f"--device {name!r}: unknown device; use auto, cpu, cuda (or cuda:N) or mps"


def config_problem(cfg: TrainConfig) -> str | None:
    """What is wrong with ``cfg`` (with the command-line option that sets it), or None.

    The width must be a multiple of 8: with other widths (6, 10, 12…) PyTorch's CPU convolutions
    (oneDNN, several threads) corrupted memory in the backward pass and killed the process. The
    crop must be at least ``MIN_CROP_SIZE`` (a batch of one 32-pixel crop stopped training midway)."""
    if cfg.width < 8 or cfg.width % 8 or cfg.width > MAX_WIDTH:
        return f"--width {cfg.width}: must be a multiple of 8 from 8 to {MAX_WIDTH} (64 = ResNet-18)"
    if cfg.crop_size < MIN_CROP_SIZE or cfg.crop_size % 32 or cfg.crop_size > MAX_CROP_SIZE:
        return f"--crop-size {cfg.crop_size}: must be a multiple of 32 from {MIN_CROP_SIZE} to {MAX_CROP_SIZE}"
    if not 1 <= cfg.batch_size <= MAX_BATCH_SIZE:
        return f"--batch-size {cfg.batch_size}: must be from 1 to {MAX_BATCH_SIZE}"
    if cfg.samples_per_epoch is not None and not 1 <= cfg.samples_per_epoch <= MAX_SAMPLES_PER_EPOCH:
        return f"--samples-per-epoch {cfg.samples_per_epoch}: must be from 1 to {MAX_SAMPLES_PER_EPOCH:,}"
    for option, epochs in (("--stage1-epochs", cfg.stage1_epochs), ("--stage2-epochs", cfg.stage2_epochs)):
        if epochs is not None and not 0 <= epochs <= MAX_EPOCHS:
            return f"{option} {epochs}: must be from 0 to {MAX_EPOCHS:,}"
    return None
