"""CPU benchmarks: seconds per 2048x1536 photo (render size 256 and 512, decode included,
encode not) and training images/s of a stage-2 step (engine vs reference, same batch).

    python bench/colorize_cpu.py [--threads 2] [--repeats 5] [--train-batch 4]

Weights do not change the timings, so the networks are freshly initialised.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from colorization.infer import Colorizer  # noqa: E402
from colorization.networks import UNetGenerator  # noqa: E402
from colorization.reference import ReferenceUNet  # noqa: E402


def test_photo(folder: Path) -> dict[str, Path]:
    """A photo-like 2048x1536 JPEG (a wallpaper if installed, else smooth noise), grey and RGB."""
    src = next(iter(sorted(Path("/usr/share/backgrounds").glob("*.jpg"))), None)
    if src is not None:
        img = Image.open(src).convert("RGB").resize((2048, 1536), Image.Resampling.BILINEAR)
    else:
        rng = np.random.default_rng(0)
        small = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((2048, 1536), Image.Resampling.BICUBIC)
    out = {"grey": folder / "grey.jpg", "rgb": folder / "rgb.jpg"}
    img.convert("L").save(out["grey"], quality=92)
    img.save(out["rgb"], quality=92)
    return out


def time_colorize(col: Colorizer, path: Path, repeats: int) -> tuple[float, float]:
    """(best, median) seconds: on a shared machine the best run is the cost of the work."""
    col.colorize([path])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        col.colorize([path])
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def train_rate(recipe: str, batch: int, size: int, steps: int) -> float:
    from colorization import lab
    from colorization.train import TrainConfig, _lab_batch, _Trainer, build_models

    cfg = TrainConfig(recipe=recipe, crop_size=size, batch_size=batch, device="cpu", head="regression")  # the GAN step
    gen, disc = build_models(cfg)
    tr = _Trainer(cfg, Path(tempfile.gettempdir()), torch.device("cpu"), gen, disc)
    rgb = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    data = rgb if tr.engine else lab.uint8_batch_to_lab_normalized(rgb)

    def step():
        L, ab = _lab_batch(data, torch.device("cpu"), tr.engine, tr.channels_last)
        tr.step(L, ab, 2)

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-batch", type=int, default=4)
    ap.add_argument("--train-size", type=int, default=256)
    ap.add_argument("--train-steps", type=int, default=2)
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU, {args.threads} threads, torch {torch.__version__}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = test_photo(Path(tmp))
        nets = [("engine", UNetGenerator())] + ([] if args.skip_reference else [("reference", ReferenceUNet())])
        for name, net in nets:
            for rs in (256, 512):
                col = Colorizer(generator=net, device="cpu", render_size=rs)
                for kind, path in photos.items():
                    if name == "reference" and kind == "rgb":
                        continue
                    best, med = time_colorize(col, path, args.repeats)
                    rows.append((name, rs, kind, best, med))
                    print(f"{name} render {rs} {kind}: best {best:.3f} s, median {med:.3f} s", flush=True)
    train_rows = []
    for recipe in ("engine", "reference"):
        r = train_rate(recipe, args.train_batch, args.train_size, args.train_steps)
        train_rows.append((recipe, r))
        print(f"train {recipe}: {r:.2f} img/s", flush=True)

    print(f"\nCPU ({args.threads} threads), torch {torch.__version__}\n")
    print("| inference, 2048×1536 JPEG (decode included) | render size | input | s/photo (best) | s/photo (median) |")
    print("|---|---:|---|---:|---:|")
    for name, rs, kind, best, med in rows:
        print(f"| {name} | {rs} | {kind} | {best:.3f} | {med:.3f} |")
    print(f"\n| stage-2 training, batch {args.train_batch}, {args.train_size}² crops | images/s |")
    print("|---|---:|")
    for recipe, r in train_rows:
        print(f"| {recipe} | {r:.2f} |")


if __name__ == "__main__":
    main()
