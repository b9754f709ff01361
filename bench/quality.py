"""Equal-time quality comparison: this engine vs the plain reference recipe.

Both train for the same training wall time on the same photos (stage 1 L1, then GAN + L1),
then ``colorization.metrics.evaluate`` scores them on held-out photos next to the greyscale
baseline. Prints a markdown table; writes ``quality.md``, ``quality.json``, a before/after grid
(greyscale | reference | engine | truth) and each run's loss curves into ``--out``.

    python bench/quality.py --data .gpudata/photos --seconds 120 --device cuda --out bench/out/quality

Needs only torch, torchvision, numpy, Pillow and scikit-image (plus safetensors for the
checkpoints, which every arhiva install has).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from colorization.imageio import list_images  # noqa: E402
from colorization.infer import Colorizer  # noqa: E402
from colorization.metrics import evaluate  # noqa: E402
from colorization.plots import image_grid  # noqa: E402
from colorization.train import TrainConfig, train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(".gpudata/photos"), help="folder with train/ and heldout/")
    ap.add_argument("--seconds", type=float, default=120.0, help="training time per recipe")
    ap.add_argument("--stage1-share", type=float, default=0.4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--samples-per-epoch", type=int, default=8192)
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--recipes", default="engine,reference")
    ap.add_argument("--runs", type=Path, default=None, help="where the runs go (default: OUT/runs)")
    ap.add_argument("--out", type=Path, default=Path("bench/out/quality"))
    args = ap.parse_args()

    train_imgs = list_images(args.data / "train")
    held = list_images(args.data / "heldout")
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.runs or args.out / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.backends.cudnn.benchmark = True
    results, grids = {}, {}
    for recipe in args.recipes.split(","):
        cfg = TrainConfig(
            recipe=recipe, crop_size=args.crop, batch_size=args.batch_size, stage1_epochs=None, stage2_epochs=None,
            stage1_seconds=args.seconds * args.stage1_share, stage2_seconds=args.seconds * (1 - args.stage1_share),
            samples_per_epoch=args.samples_per_epoch, width=args.width, ndf=min(64, args.width),
            device=str(device), num_workers=args.workers, log_every=20, max_val_images=8,
        )
        t0 = time.perf_counter()
        res = train(cfg, train_imgs, held, runs / recipe,
                    progress=lambda ev, r=recipe: ev["event"] == "epoch" and print(
                        f"[{r}] epoch {ev['epoch']} stage {ev['stage']}: {ev['images_seen']} crops, "
                        f"{ev['train_seconds']:.0f} s, val L1 {ev.get('val_l1', float('nan')):.4f}", flush=True))
        wall = time.perf_counter() - t0
        col = Colorizer(res.checkpoint, device=str(device), render_size=args.render_size, amp="off")
        rep = evaluate(col, held, keep_outputs=len(held))
        grids[recipe] = rep.pop("outputs")
        rep.pop("per_image")
        rep.update(train_seconds=res.train_seconds, images_seen=res.images_seen, wall_seconds=wall,
                   train_images_per_s=res.images_seen / max(res.train_seconds, 1e-9), epochs=res.epochs, steps=res.steps)
        results[recipe] = rep
        shutil.copy(runs / recipe / "curves.png", args.out / f"curves_{recipe}.png")
        print(f"[{recipe}] done: {res.images_seen} crops in {res.train_seconds:.0f} s "
              f"({rep['train_images_per_s']:.0f} crops/s)", flush=True)

    from PIL import Image

    sizes = sorted(Image.open(p).size for p in held)
    lines = [f"Held-out photos: {len(held)} (full size, e.g. {sizes[len(sizes) // 2][0]}x{sizes[len(sizes) // 2][1]}; "
             f"render size {args.render_size}); "
             f"training: {len(train_imgs)} photos and tiles, {args.seconds:.0f} s per recipe "
             f"({100 * args.stage1_share:.0f}% stage 1), batch {args.batch_size}, crops {args.crop}, device {device}"
             f"{' (' + torch.cuda.get_device_name() + ')' if device.type == 'cuda' else ''}.", "",
             "| | PSNR (dB) ↑ | SSIM ↑ | CIEDE2000 ↓ | colourfulness | gap to truth | gap closed | crops trained | crops/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    first = next(iter(results.values()))
    for recipe, rep in results.items():
        s = rep["model"]
        lines.append(f"| {recipe} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['ciede2000']:.2f} | {s['colourfulness']:.1f} | "
                     f"{rep['colourfulness_gap']['model']:+.1f} | {100 * rep['gap_closed']:.0f}% | {rep['images_seen']} | "
                     f"{rep['train_images_per_s']:.0f} |")
    g = first["greyscale"]
    lines.append(f"| greyscale (a*b* = 0) | {g['psnr']:.2f} | {g['ssim']:.4f} | {g['ciede2000']:.2f} | "
                 f"{g['colourfulness']:.1f} | {first['colourfulness_gap']['greyscale']:+.1f} | 0% | | |")
    lines.append(f"\nGround-truth mean colourfulness: {first['truth_colourfulness']:.1f}.")
    table = "\n".join(lines)
    print(table)
    (args.out / "quality.md").write_text(table + "\n")
    (args.out / "quality.json").write_text(json.dumps(results, indent=1))
    if set(grids) >= {"engine", "reference"}:
        rows = [[grey, ref, eng, truth] for (grey, ref, truth), (_, eng, _) in zip(grids["reference"], grids["engine"])]
        image_grid(rows[:8], ["greyscale", "reference", "engine", "truth"], args.out / "grid.png", cell=192)


if __name__ == "__main__":
    main()
