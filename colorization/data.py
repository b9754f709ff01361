"""Training data: random crops and flips of photos, as uint8 RGB (colour conversion on the device).

``augment=True`` (the engine's default) adds what suits photographs: a wider zoom range
(``AUG_SCALE_RANGE``) and, on most crops, the exposure and tone of an old print (gamma,
lowered contrast, lifted blacks and dulled whites, a brightness shift), applied to R, G and B
alike so the hues stay true; the target colours are those of the toned crop.

Every random choice is drawn from a generator seeded by (seed, epoch, index), so an epoch is
the same whatever the number of loader workers and whether training was resumed.
``lab_on_cpu=True`` is the plain reference recipe: skimage L*a*b* in the loader, float32.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.color import rgb2lab  # imported before loader workers fork
from torch.utils.data import Dataset

from .imageio import Box, open_image

__all__ = ["CropDataset", "data_fingerprint", "split_paths", "prepare_photo", "print_tone"]

SCALE_RANGE = (1.0, 1.5)  # shorter side = crop * U(1, 1.5) before the random crop
AUG_SCALE_RANGE = (1.0, 2.0)
TONE_P = 0.8  # share of crops given an old print's tone


def print_tone(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure and tone changes like an old print's, the same on every channel (uint8 in, out)."""
    x = arr.astype(np.float32) / 255.0
    x = np.power(x, np.exp(rng.uniform(np.log(0.8), np.log(1.25))))  # exposure (gamma)
    x = (x - 0.5) * rng.uniform(0.75, 1.1) + 0.5  # contrast
    lo, hi = rng.uniform(0.0, 0.08), rng.uniform(0.92, 1.0)  # faded blacks, dull whites
    x = lo + x * (hi - lo) + rng.uniform(-0.05, 0.05)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def prepare_photo(path: str | Path, box: Box | None, max_short: int) -> Image.Image:
    """Open a photo as RGB, cut its crop box, shrink so the shorter side <= ``max_short``."""
    img = open_image(path)
    if img.format == "JPEG" and box is None:
        img.draft("RGB", (max_short, max_short))
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB") if "transparency" in img.info else img.convert("RGB")
    if box is not None:
        img = img.crop(box)
    w, h = img.size
    if min(w, h) > max_short:
        s = max_short / min(w, h)
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return img


class CropDataset(Dataset):
    """``samples_per_epoch`` random crops (train) or one centre crop per photo (``train=False``).

    Items are uint8 tensors (3, crop, crop), or ``(L, ab)`` float tensors scaled like the
    network's input and target when ``lab_on_cpu`` (reference recipe).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        crop_size: int,
        *,
        boxes: Sequence[Box | None] | None = None,
        train: bool = True,
        samples_per_epoch: int | None = None,
        seed: int = 0,
        lab_on_cpu: bool = False,
        cache: bool = True,
        augment: bool = False,
    ):
        if not paths:
            raise ValueError("no images given")
        self.paths = [str(p) for p in paths]
        self.boxes = list(boxes) if boxes is not None else [None] * len(self.paths)
        if len(self.boxes) != len(self.paths):
            raise ValueError("boxes must have one entry per image")
        self.crop = int(crop_size)
        self.train = train
        self.n = (samples_per_epoch or len(self.paths)) if train else len(self.paths)
        self.seed = int(seed)
        self.epoch = 0
        self.lab_on_cpu = lab_on_cpu
        self.augment = augment
        self.scale_range = AUG_SCALE_RANGE if augment else SCALE_RANGE
        self.max_short = int(np.ceil(self.crop * self.scale_range[1]))
        self._cache: list[np.ndarray] | None = None
        if cache:
            self._cache = [np.asarray(self._load(i)) for i in range(len(self.paths))]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def _load(self, i: int) -> Image.Image:
        if self._cache is not None:
            return Image.fromarray(self._cache[i])
        return prepare_photo(self.paths[i], self.boxes[i], self.max_short)

    def _order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        reps = -(-self.n // len(self.paths))
        return np.concatenate([rng.permutation(len(self.paths)) for _ in range(reps)])[: self.n]

    def __getitem__(self, index: int):
        if self.train:
            img_idx = int(self._order()[index])
            rng = np.random.default_rng([self.seed, self.epoch, 2, index])
            short = self.crop * rng.uniform(*self.scale_range)
        else:
            img_idx, rng, short = index, None, self.crop
        img = self._load(img_idx)
        w, h = img.size
        s = short / min(w, h)
        nw, nh = max(self.crop, round(w * s)), max(self.crop, round(h * s))
        if (nw, nh) != (w, h):
            img = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
        if rng is not None:
            x0 = int(rng.integers(0, nw - self.crop + 1))
            y0 = int(rng.integers(0, nh - self.crop + 1))
        else:
            x0, y0 = (nw - self.crop) // 2, (nh - self.crop) // 2
        arr = np.asarray(img)[y0 : y0 + self.crop, x0 : x0 + self.crop]
        if rng is not None and rng.random() < 0.5:
            arr = arr[:, ::-1]
        arr = np.array(arr, copy=True)  # contiguous and writable
        if rng is not None and self.augment and rng.random() < TONE_P:
            arr = print_tone(arr, rng)
        if self.lab_on_cpu:
            lab = rgb2lab(arr).astype(np.float32).transpose(2, 0, 1)
            return torch.from_numpy(lab[:1] / 50.0 - 1.0), torch.from_numpy(lab[1:] / 110.0)
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def data_fingerprint(paths: Sequence[str | Path], boxes: Sequence[Box | None] | None = None) -> str:
    """sha256 over the sorted (file sha256, crop box) pairs: identifies a training set."""
    boxes = list(boxes) if boxes is not None else [None] * len(paths)
    items = []
    for p, b in zip(paths, boxes):
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        items.append(f"{h.hexdigest()}:{b}")
    return hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()


def split_paths(paths: Sequence[str | Path], val_fraction: float, seed: int = 0):
    """Deterministic train/validation split by a hash of each file name (stable as files are added)."""
    train, val = [], []
    for p in paths:
        key = hashlib.sha256(f"{seed}:{os.path.basename(str(p))}".encode()).digest()
        (val if int.from_bytes(key[:4], "big") / 2**32 < val_fraction else train).append(p)
    if val_fraction > 0 and not val and len(train) > 1:
        val.append(train.pop())
    return train, val
