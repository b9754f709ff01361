"""Gather the photos of Debian's wallpaper packages into a small train / held-out dataset.

Packages (apt): mate-backgrounds, plasma-workspace-wallpapers, lomiri-wallpapers-16.04,
lomiri-wallpapers-20.04. Usage:

    python bench/prepare_photos.py --out .gpudata/photos [--short 384] [--tiles 4]

Writes ``train/`` (each photo at shorter side ``--short`` plus ``--tiles`` random zoomed-in
crops of it) and ``heldout/`` (whole photos at ``--short``), JPEG quality 92. The split is by a
hash of the file name, so it is the same on every machine. Flat abstract renders (few distinct
colours, little texture) are skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

ROOTS = ["/usr/share/backgrounds", "/usr/share/wallpapers"]
SUFFIXES = {".jpg", ".jpeg", ".png"}


def candidates() -> list[Path]:
    """One file per picture: the largest size of each plasma wallpaper, every other file."""
    best: dict[str, Path] = {}
    for root in ROOTS:
        for p in Path(root).rglob("*"):
            if p.suffix.lower() not in SUFFIXES or not p.is_file() or "images_dark" in p.parts:
                continue
            if "contents" in p.parts:  # plasma: <Name>/contents/images/<WxH>.png
                key = p.parts[p.parts.index("contents") - 1]
            else:
                key = p.stem.split("_")[0].lower()
            if key not in best or p.stat().st_size > best[key].stat().st_size:
                best[key] = p
    return sorted(best.values())


def is_photo_like(img: Image.Image) -> tuple[bool, dict]:
    small = np.asarray(img.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR)).astype(np.float32)
    grey = small.mean(2)
    texture = float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())
    colours = len(np.unique((small // 16).astype(np.int32).reshape(-1, 3), axis=0))
    stats = {"texture": round(texture, 2), "colours": colours}
    return texture > 3.0 and colours > 60, stats


def held_out(name: str, fraction: float) -> bool:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") / 2**32 < fraction


def shrink(img: Image.Image, short: int) -> Image.Image:
    s = short / min(img.size)
    return img.resize((round(img.width * s), round(img.height * s)), Image.Resampling.LANCZOS) if s < 1 else img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(".gpudata/photos"))
    ap.add_argument("--short", type=int, default=384)
    ap.add_argument("--tiles", type=int, default=4)
    ap.add_argument("--heldout", type=float, default=0.2)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    (args.out / "train").mkdir(parents=True, exist_ok=True)
    (args.out / "heldout").mkdir(parents=True, exist_ok=True)
    manifest = []
    for p in candidates():
        img = Image.open(p)
        img.draft("RGB", (args.short * 4, args.short * 4))
        img = img.convert("RGB")
        ok, stats = is_photo_like(img)
        name = p.stem.replace(" ", "_")[:60] + "_" + hashlib.sha1(str(p).encode()).hexdigest()[:6]
        entry = {"source": str(p), "name": name, "size": img.size, **stats, "used": ok}
        if not ok:
            manifest.append(entry)
            continue
        split = "heldout" if held_out(name, args.heldout) else "train"
        entry["split"] = split
        shrink(img, args.short).save(args.out / split / f"{name}.jpg", quality=92)
        if split == "train":
            w, h = img.size
            for t in range(args.tiles):
                side = int(min(w, h) * rng.uniform(0.35, 0.6))
                x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
                tile = img.crop((x, y, x + int(side * 1.33) if x + int(side * 1.33) <= w else x + side, y + side))
                shrink(tile, args.short).save(args.out / "train" / f"{name}_t{t}.jpg", quality=92)
        manifest.append(entry)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    used = [m for m in manifest if m["used"]]
    print(f"{len(manifest)} pictures, {len(used)} photo-like: "
          f"{sum(m.get('split') == 'train' for m in used)} train (+{args.tiles} tiles each), "
          f"{sum(m.get('split') == 'heldout' for m in used)} held out -> {args.out}")


if __name__ == "__main__":
    main()
