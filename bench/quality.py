"""Equal-time quality comparison on real photographs: this engine vs the plain reference recipe.

The photos: ``bench/photos.py`` builds them from Debian and PyPI packages (17 held-out
photographs of people, streets and buildings, landscapes and interiors, never trained on; the 291
other real colour photos of those packages, of which ``--val-fraction`` (5%, a stable hash split)
is held back from both recipes for validation and for the engine's decoding
calibration, the rest for training; licences in its manifest). This script
builds the set into ``--data`` when it is missing (``--offline``: from the package files in
``.gpudata/pkgs`` only), so the whole benchmark can be redone offline:

    python bench/photos.py --out .gpudata/photos                    # once, with package access
    python bench/quality.py --data .gpudata/photos --seconds 600 --crop 96 --width 16 --device cpu

Both recipes train for the same training time (the time of their steps, measured the same way)
on the same photos. The reference recipe is pix2pix as usually taught (fastai-style U-Net, L1
pretraining for ``--stage1-share`` of the time, then GAN + 100 L1, plain crops and flips). The
engine is the lean U-Net with the chroma classification head (cross-entropy on a*b* bins),
photo augmentation, and the annealed-mean decoding chosen by ``vivid`` (vivid 0 calibrated on the
held-back validation photos, ``colorization.calibrate``). With ``--keep best`` (the default) the
engine is calibrated after each of its slices and the slice end with the least calibrated
validation CIEDE2000 is the one judged (model selection on validation photos, within the same
training time; ``--keep last``: the last). With ``--slice S``
the two take turns every S seconds of training (each resumes exactly where it stopped), so a busy
shared machine slows both alike. Then ``colorization.metrics.evaluate`` scores both on the
held-out photos next to the greyscale baseline, the engine at each ``--vivid`` level.

``--evaluate-only`` judges the runs already in ``--runs`` again without training (after a change
of decoding or of the default vividness). Prints the tables (averages; the goals; each photo) and writes ``quality.md``, ``quality.json``,
``grid.png`` (two photos per category: greyscale | reference | engine | truth), ``worst5.png``
(the engine's five worst by CIEDE2000) and each recipe's loss curves into ``--out``.
Needs only torch, torchvision, numpy, Pillow and scikit-image.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.photos import ensure  # noqa: E402
from colorization import DEFAULT_VIVID  # noqa: E402
from colorization.checkpoint import read_metadata  # noqa: E402
from colorization.data import split_paths  # noqa: E402
from colorization.imageio import list_images  # noqa: E402
from colorization.infer import Colorizer  # noqa: E402
from colorization.metrics import evaluate, metric_cells, worst_images  # noqa: E402
from colorization.plots import image_grid  # noqa: E402
from colorization.train import TrainConfig, train  # noqa: E402

CATEGORIES = ("people", "street", "landscape", "interior")


def _config(recipe: str, args, seconds_done: float, device: torch.device) -> TrainConfig:
    """The recipe's configuration with its stage limits cut at ``seconds_done`` of training (the
    engine calibrates its decoding on the validation photos once, after its last slice)."""
    share = args.engine_stage1_share if recipe == "engine" else args.stage1_share
    s1 = args.seconds * share
    return TrainConfig(
        recipe=recipe, crop_size=args.crop, batch_size=args.batch_size, stage1_epochs=None, stage2_epochs=None,
        stage1_seconds=min(s1, seconds_done), stage2_seconds=max(0.0, seconds_done - s1),
        samples_per_epoch=args.samples_per_epoch, width=args.width, ndf=min(64, args.width),
        bin_step=args.bin_step, device=str(device), num_workers=args.workers, log_every=20, max_val_images=4,
        lr_stage1=args.lr_stage1 if recipe == "engine" else TrainConfig.lr_stage1,
        calibrate=recipe == "engine" and (args.keep == "best" or seconds_done >= args.seconds - 1e-6),
        calibration_gap=args.calibration_gap,
    )


def train_interleaved(recipes: list[str], args, train_imgs, val_imgs, runs: Path, device) -> dict:
    """Train each recipe for ``args.seconds``, taking turns every ``args.slice`` seconds (A B B A ...)."""
    step = args.slice if args.slice > 0 else args.seconds
    done = {r: 0.0 for r in recipes}
    results: dict = {}
    best: tuple | None = None
    rounds = 0
    while any(done[r] < args.seconds - 1e-6 for r in recipes):
        order = recipes if rounds % 2 == 0 else recipes[::-1]
        for recipe in order:
            if done[recipe] >= args.seconds - 1e-6:
                continue
            target = min(args.seconds, done[recipe] + step)
            res = train(_config(recipe, args, target, device), train_imgs, val_imgs, runs / recipe,
                        resume=done[recipe] > 0)
            done[recipe] = target
            results[recipe] = res
            if recipe == "engine" and args.keep == "best":
                best = _keep_best(runs / recipe, best)
            print(f"[{recipe}] {res.train_seconds:.0f} s trained, {res.images_seen} crops, {res.steps} steps",
                  flush=True)
        rounds += 1
    if args.keep == "best" and "engine" in results:
        e = results["engine"]
        results["engine"] = SimpleNamespace(checkpoint=runs / "engine" / "best.safetensors",
                                            images_seen=e.images_seen, train_seconds=e.train_seconds)
    return results


def _keep_best(folder: Path, best: tuple | None) -> tuple:
    """Copy the engine's checkpoint to ``best.safetensors`` when its calibrated validation
    CIEDE2000 (restoring the asked colourfulness) is the best of the slice ends so far."""
    dec = read_metadata(folder / "model.safetensors").get("decode") or {}
    score = (not dec.get("feasible", False), dec.get("val_ciede2000", float("inf")))
    if best is None or score < best:
        shutil.copy(folder / "model.safetensors", folder / "best.safetensors")
        return score
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(".gpudata/photos"), help="folder with train/ and heldout/")
    ap.add_argument("--offline", action="store_true", help="build --data from .gpudata/pkgs only")
    ap.add_argument("--seconds", type=float, default=120.0, help="training time per recipe")
    ap.add_argument("--slice", type=float, default=0.0, help="take turns every S seconds of training (0: one after the other)")
    ap.add_argument("--stage1-share", type=float, default=0.4, help="reference: share of time in L1 pretraining")
    ap.add_argument("--engine-stage1-share", type=float, default=0.5, help="engine: share in stage 1")
    ap.add_argument("--lr-stage1", type=float, default=3e-4, help="engine: stage-1 learning rate")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--bin-step", type=int, default=10)
    ap.add_argument("--samples-per-epoch", type=int, default=8192)
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--vivid", default="0,0.5,1", help="engine vividness levels to report (the default level is always included)")
    ap.add_argument("--val-fraction", type=float, default=0.05,
                    help="share of the training photos held back (stable hash split): validation and the engine's "
                         "decoding calibration; neither recipe trains on them")
    ap.add_argument("--calibration-gap", type=float, default=TrainConfig.calibration_gap,
                    help="engine: vivid 0 is the least validation CIEDE2000 that restores this share of colourfulness")
    ap.add_argument("--keep", choices=("best", "last"), default="best",
                    help="engine: judge the slice end with the best calibrated validation CIEDE2000 (best) or the last")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default); 1 on a busy shared CPU")
    ap.add_argument("--runs", type=Path, default=None, help="where the runs go (default: OUT/runs)")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="judge the runs already in --runs again (e.g. after a change of decoding); no training")
    ap.add_argument("--out", type=Path, default=Path("bench/out/quality"))
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    ensure(args.data, Path(".gpudata/pkgs"), offline=args.offline)
    manifest = {p["name"]: p for p in json.loads((args.data / "manifest.json").read_text())}
    train_imgs, val_imgs = split_paths(list_images(args.data / "train"), args.val_fraction)
    held = list_images(args.data / "heldout")
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.runs or args.out / "runs"
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.backends.cudnn.benchmark = True
    if args.evaluate_only:
        res, wall = {r: _saved_run(runs / r) for r in ("engine", "reference")}, None
    else:
        if runs.exists():
            shutil.rmtree(runs)
        t0 = time.perf_counter()
        # validation and calibration: training photos held back from both recipes (the held-out ones stay unseen)
        res = train_interleaved(["engine", "reference"], args, train_imgs, val_imgs, runs, device)
        wall = time.perf_counter() - t0
    for recipe in res:
        shutil.copy(runs / recipe / "curves.png", args.out / f"curves_{recipe}.png")

    levels = [float(v) for v in args.vivid.split(",")]
    kw = {"device": str(device), "render_size": args.render_size, "amp": "off"}
    ref = Colorizer(res["reference"].checkpoint, **kw)
    reports = {}
    for v in sorted(set(levels) | {DEFAULT_VIVID}, key=lambda x: x != DEFAULT_VIVID):
        reports[v] = evaluate(Colorizer(res["engine"].checkpoint, vivid=v, **kw), held,
                              reference=ref if v == DEFAULT_VIVID else None, keep_outputs=len(held) if v == DEFAULT_VIVID else 0)
    main_rep = reports[DEFAULT_VIVID]
    text = tables(args, device, res, reports, main_rep, manifest, (len(train_imgs), len(val_imgs)), wall)
    print(text)
    (args.out / "quality.md").write_text(text + "\n")
    slim = {str(v): {k: r[k] for k in r if k != "outputs"} for v, r in reports.items()}
    (args.out / "quality.json").write_text(json.dumps(slim, indent=1))
    outs = main_rep["outputs"]
    labels = ["greyscale", "reference", "model", "truth"]
    heads = ["greyscale", "reference", "engine", "truth"]
    picks = [i for c in CATEGORIES for i in [k for k, o in enumerate(outs) if o["image"].startswith(c)][:2]]
    image_grid([[outs[i][k] for k in labels] for i in picks], heads, args.out / "grid.png", cell=192)
    image_grid([[outs[i][k] for k in labels] for i in worst_images(main_rep)], heads, args.out / "worst5.png", cell=192)


def _saved_run(folder: Path) -> SimpleNamespace:
    """What a finished run says about itself (its checkpoint's metadata)."""
    meta = read_metadata(folder / "model.safetensors")
    kept = folder / "best.safetensors"
    return SimpleNamespace(checkpoint=kept if kept.exists() else folder / "model.safetensors",
                           images_seen=meta["images_seen"], train_seconds=meta["train_seconds"])


def _decode_line(checkpoint: Path) -> str:
    meta = read_metadata(checkpoint)
    dec = meta.get("decode")
    kept = (f"The engine judged is its checkpoint after {meta['train_seconds']:.0f} s, {meta['images_seen']} crops "
            "(the best calibrated validation CIEDE2000 of its slice ends). " if checkpoint.name == "best.safetensors" else "")
    if not dec:
        return kept + "The engine's vivid 0 is the uncalibrated decoding (T 1, k 1, gain 1)."
    return kept + (f"The engine's vivid 0, calibrated on the {dec['photos']} validation photos: T {dec['temperature']:g}, "
            f"k {dec['shrinkage']:g}, gain {dec['gain']:g} (there: CIEDE2000 {dec['val_ciede2000']:.2f} vs greyscale "
            f"{dec['val_ciede2000_grey']:.2f}, {100 * dec['val_gap_closed']:.0f}% of the colourfulness gap closed; "
            f"asked for at least {100 * dec['min_gap']:.0f}%).")


def tables(args, device, res, reports, main_rep, manifest, n_photos: tuple[int, int], wall: float | None) -> str:
    gpu = f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""
    lines = [
        f"Held-out: {main_rep['n']} real photographs (people, streets and buildings, landscapes, interiors; shorter "
        f"side 384, render size {args.render_size}). Training: {n_photos[0]} other real colour photos ({n_photos[1]} more "
        f"held back for validation and calibration), {args.seconds:.0f} s "
        f"per recipe{f', taking turns every {args.slice:.0f} s' if args.slice else ''}, crops {args.crop}, "
        f"batch {args.batch_size}, width {args.width}, device {device}{gpu}; "
        + (f"{wall:.0f} s wall for both." if wall is not None else "runs trained earlier, judged again (--evaluate-only).")
        + (f" {args.threads} torch thread(s)." if args.threads else "") + " " + _decode_line(res["engine"].checkpoint), "",
        "| | PSNR (dB) ↑ | SSIM ↑ | CIEDE2000 ↓ | false colour ↓ | hue error (°) ↓ | colourfulness | gap closed "
        "| crops trained | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    e, r = res["engine"], res["reference"]
    for v, rep in reports.items():
        tag = "engine" + (f" (vivid {v:g}, the default)" if v == DEFAULT_VIVID else f" (vivid {v:g})")
        lines.append(f"| {tag} | {metric_cells(rep['model'], rep['gap_closed_by']['model'])} {e.images_seen} | "
                     f"{e.train_seconds:.0f} |")
    lines.append(f"| reference recipe | {metric_cells(main_rep['reference'], main_rep['gap_closed_by']['reference'])} "
                 f"{r.images_seen} | {r.train_seconds:.0f} |")
    lines.append(f"| greyscale (a\\*b\\* = 0) | {metric_cells(main_rep['greyscale'], 0.0)} | |")
    m, rf, g = main_rep["model"], main_rep["reference"], main_rep["greyscale"]
    goals = [
        ("engine CIEDE2000 below greyscale's", m["ciede2000"] < g["ciede2000"], f"{m['ciede2000']:.2f} vs {g['ciede2000']:.2f}"),
        ("false-colour area at most half the reference's", m["false_colour"] <= 0.5 * rf["false_colour"],
         f"{100 * m['false_colour']:.2f}% vs {100 * rf['false_colour']:.2f}%"),
        ("closes at least half of the colourfulness gap", main_rep["gap_closed"] >= 0.5, f"{100 * main_rep['gap_closed']:.0f}%"),
        ("beats the reference on PSNR", m["psnr"] > rf["psnr"], f"{m['psnr']:.2f} vs {rf['psnr']:.2f}"),
        ("beats the reference on SSIM", m["ssim"] > rf["ssim"], f"{m['ssim']:.4f} vs {rf['ssim']:.4f}"),
        ("beats the reference on CIEDE2000", m["ciede2000"] < rf["ciede2000"], f"{m['ciede2000']:.2f} vs {rf['ciede2000']:.2f}"),
    ]
    lines += ["", f"| goal (engine at the default vivid {DEFAULT_VIVID:g}) | met | numbers |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if ok else '**no**'} | {nums} |" for name, ok, nums in goals]
    lines += ["", "| photo | CIEDE2000 grey / ref / engine | false colour ref / engine | hue error ref / engine | "
              "colourfulness truth / engine |", "|---|---:|---:|---:|---:|"]
    for row in main_rep["per_image"]:
        lines.append(
            f"| {row['image']} | {row['greyscale']['ciede2000']:.2f} / {row['reference']['ciede2000']:.2f} / "
            f"{row['model']['ciede2000']:.2f} | {100 * row['reference']['false_colour']:.1f}% / "
            f"{100 * row['model']['false_colour']:.1f}% | {row['reference']['hue_error']:.0f} / "
            f"{row['model']['hue_error']:.0f} | {row['truth_colourfulness']:.1f} / {row['model']['colourfulness']:.1f} |")
    lines.append(f"\nGround-truth mean colourfulness {main_rep['truth_colourfulness']:.1f}. False colour: share of "
                 "pixels with predicted C*ab > 20 where the truth's < 8; hue error over the truth's pixels with "
                 "C*ab >= 20 (a pixel left grey counts 90°). Photo licences: bench/photos_manifest.json.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
