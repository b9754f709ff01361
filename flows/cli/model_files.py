"""Model commands on files: train-files, colorize-files, evaluate, export-model.

They work on folders of photos and checkpoint files and need no catalogue. torch is imported
inside the commands only, so that ``arhiva --help`` stays fast; the training defaults are
``colorization.config.TrainConfig``'s.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from colorization import DEFAULT_VIVID  # the package itself imports no torch
from colorization.config import DEFAULTS
from flows.cli.ui import Table, console, err, escape, fail, progress

app = typer.Typer()

DEVICE_HELP = "auto, cpu, cuda or mps."
VIVID_HELP = "0 = conservative (near grey where the model is unsure) .. 1 = vivid."


class Head(str, Enum):
    classes = "classes"
    regression = "regression"


class ImageFormat(str, Enum):
    png = "png"
    jpg = "jpg"
    jpeg = "jpeg"


def _use_pixel_limit() -> None:
    """Photos are opened under ARHIVA_MAX_IMAGE_PIXELS, as everywhere in arhiva."""
    from catalog.imaging import use_pixel_limit
    from catalog.settings import get_settings

    use_pixel_limit(get_settings().max_image_pixels)


def _progress() -> Progress:
    """The progress of a command on files (the ``info`` field is markup: escape what goes in)."""
    return progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(), transient=False)


def _parse_box(text: Optional[str]):
    if not text:
        return None
    try:
        box = tuple(int(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4:
        fail(f"--crop-box wants LEFT,TOP,RIGHT,BOTTOM in pixels, got {text!r}")
    return box


def _boxes(images, crop_box, exclude_bottom: int):
    if not crop_box and not exclude_bottom:
        return None
    from colorization.imageio import open_image

    out = []
    for p in images:
        if crop_box:
            out.append(crop_box)
            continue
        with open_image(p) as img:  # the pixel limit told as arhiva tells it (not Pillow's warning)
            w, h = img.size
        if exclude_bottom >= h:
            raise ValueError(f"--exclude-bottom {exclude_bottom}: the photo is only {h} pixels high")
        out.append((0, 0, w, h - exclude_bottom))
    return out


@app.command("train-files")
def train_files(
    dirs: list[Path] = typer.Argument(..., help="Folders (or files) of colour photos."),
    out: Path = typer.Option(Path("runs/colorizer"), "--out", "-o", help="Run folder: model, log, curves, samples."),
    val_dir: Optional[Path] = typer.Option(None, "--val-dir", help="Validation photos (default: a split of DIRS)."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of DIRS held out when no --val-dir."),
    stage1_epochs: int = typer.Option(DEFAULTS.stage1_epochs, "--stage1-epochs", help="Epochs of stage 1 (pretraining, no discriminator)."),
    stage2_epochs: int = typer.Option(DEFAULTS.stage2_epochs, "--stage2-epochs", help="Epochs of stage 2 (regression head: adversarial + 100 x L1; classes head: cross-entropy, adversarial only with class_gan_weight)."),
    stage1_minutes: Optional[float] = typer.Option(None, "--stage1-minutes", help="Time limit of stage 1."),
    stage2_minutes: Optional[float] = typer.Option(None, "--stage2-minutes", help="Time limit of stage 2."),
    samples_per_epoch: Optional[int] = typer.Option(None, "--samples-per-epoch", help="Random crops per epoch."),
    batch_size: int = typer.Option(DEFAULTS.batch_size, "--batch-size"),
    crop_size: int = typer.Option(DEFAULTS.crop_size, "--crop-size", help="Training crop (multiple of 32)."),
    width: int = typer.Option(DEFAULTS.width, "--width", help="Encoder width, a multiple of 8 (64 = ResNet-18)."),
    head: Head = typer.Option(DEFAULTS.head, "--head", help="classes (chroma bins, annealed mean) or regression (pix2pix L1)."),
    pretrained: bool = typer.Option(DEFAULTS.pretrained, "--pretrained", help="Start from torchvision's ImageNet ResNet-18."),
    init_checkpoint: Optional[Path] = typer.Option(None, "--init", help="Fine-tune from this checkpoint."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
    exclude_bottom: int = typer.Option(0, "--exclude-bottom", help="Leave out a strip of N pixels at the bottom."),
    device: str = typer.Option(DEFAULTS.device, "--device", help=DEVICE_HELP),
    workers: int = typer.Option(DEFAULTS.num_workers, "--workers", help="Data loader processes."),
    seed: int = typer.Option(DEFAULTS.seed, "--seed"),
) -> None:
    """Train a colorizer on folders of colour photos (two stages; the head decides the losses, see --head)."""
    _use_pixel_limit()
    from colorization.config import TrainConfig, config_problem  # no torch: a bad setting is said at once

    cfg = TrainConfig(
        crop_size=crop_size, batch_size=batch_size, stage1_epochs=stage1_epochs, stage2_epochs=stage2_epochs,
        stage1_seconds=stage1_minutes * 60 if stage1_minutes else None,
        stage2_seconds=stage2_minutes * 60 if stage2_minutes else None, samples_per_epoch=samples_per_epoch,
        width=width, ndf=min(64, max(8, width)), head=head.value,
        pretrained=pretrained, device=device, num_workers=workers, seed=seed,
    )
    if config_problem(cfg):
        fail(config_problem(cfg))
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file; name a folder for the run")
    from colorization.data import split_paths
    from colorization.imageio import list_images
    from colorization.train import train

    try:
        images = list_images(*dirs)
        val_given = list_images(val_dir) if val_dir is not None else None
    except FileNotFoundError as exc:
        fail(str(exc))
    images, skipped = _readable(images)
    if val_given is not None:
        val_given, skipped_val = _readable(val_given)
        skipped += skipped_val
    if val_given is not None:
        train_imgs, val_imgs = images, val_given
    else:
        train_imgs, val_imgs = split_paths(images, val_fraction, seed)
    if not train_imgs:
        fail("no training photos found")
    console.print(escape(f"{len(train_imgs)} training photos, {len(val_imgs)} validation photos -> {out}"))
    from colorization.networks import PretrainedWeightsUnavailable

    with _progress() as prog:
        task = prog.add_task("training", total=None, info="")

        def on_event(ev: dict) -> None:
            if ev["event"] == "start":
                prog.update(task, total=(stage1_epochs + stage2_epochs) * ev["steps_per_epoch"],
                            completed=ev["resumed_epoch"] * ev["steps_per_epoch"], info=ev["device"])
            elif ev["event"] == "step":
                prog.update(task, completed=ev["step"], info=f"stage {ev['stage']} epoch {ev['epoch']} L1 {ev['l1']:.4f}")
            elif ev["event"] == "epoch":
                prog.update(task, completed=ev["step"])  # the steps since the last logged one too
            if ev["event"] == "epoch" and "val_psnr" in ev:
                prog.console.print(f"epoch {ev['epoch']}: val L1 {ev['val_l1']:.4f}, PSNR {ev['val_psnr']:.2f} dB, "
                                   f"colourfulness {ev['val_colourfulness']:.1f} (truth {ev['val_colourfulness_truth']:.1f})")

        try:
            boxes = _boxes(train_imgs, None, exclude_bottom)
            vboxes = _boxes(val_imgs, None, exclude_bottom)
            result = train(cfg, train_imgs, val_imgs, out, train_boxes=boxes, val_boxes=vboxes, resume=resume,
                           init_checkpoint=init_checkpoint, progress=on_event)
        except (PretrainedWeightsUnavailable, RuntimeError, ValueError) as exc:
            fail(str(exc))
    console.print(escape(f"model: {result.checkpoint} ({result.epochs} epochs, {result.steps} steps, "
                         f"{result.train_seconds:.0f} s of training)"
                         + (f"; {skipped} photo(s) could not be read (named above)" if skipped else "")))
    if skipped:
        raise typer.Exit(1)


def _readable(paths: list[Path]) -> tuple[list[Path], int]:
    """The photos that decode (each read whole once, with a progress bar), and how many did not:
    those are named and left out, so one broken file does not stop a training or an evaluation."""
    from colorization.imageio import load_image, photo_errors

    ok, errors = [], photo_errors()
    with _progress() as prog:
        task = prog.add_task("reading", total=len(paths), info="")
        for p in paths:
            try:
                load_image(p)
                ok.append(p)
            except errors as exc:
                err.print(f"[yellow]skipped[/yellow] {escape(f'{p}: {type(exc).__name__}: ' + ' '.join(str(exc).split()))}")
            prog.update(task, advance=1)
    return ok, len(paths) - len(ok)


@app.command("colorize-files")
def colorize_files(
    inputs: list[Path] = typer.Argument(..., help="Photos or folders of photos."),
    model: Path = typer.Option(..., "--model", "-m", help="Checkpoint (.safetensors)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    render_size: int = typer.Option(256, "--render-size", help="Working size of the network (shorter side)."),
    batch_size: int = typer.Option(8, "--batch-size"),
    crop_box: Optional[str] = typer.Option(None, "--crop-box", help="LEFT,TOP,RIGHT,BOTTOM: colorize only this region."),
    exclude_bottom: int = typer.Option(0, "--exclude-bottom", help="Leave a bottom strip of N pixels (e.g. a watermark) as it is."),
    fmt: ImageFormat = typer.Option(ImageFormat.png, "--format", "-f", case_sensitive=False, help="png or jpg."),
    vivid: float = typer.Option(DEFAULT_VIVID, "--vivid", help=VIVID_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Colorize photos at full resolution (the output has each input's size).

    Each copy keeps its path below the folder it was found in; a photo that cannot be read is
    named and skipped (exit 1 at the end), the others go on."""
    _use_pixel_limit()
    from colorization.checkpoint import CheckpointError
    from colorization.imageio import list_images, output_paths, photo_errors, save_atomically
    from colorization.infer import Colorizer

    box = _parse_box(crop_box)
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file; name a folder for the colorized copies")
    suffix = ".png" if fmt is ImageFormat.png else ".jpg"
    try:
        images = list_images(*inputs)
        targets = output_paths(images, inputs, out, suffix)
        col = Colorizer(model, device=device, render_size=render_size, batch_size=batch_size, vivid=vivid)
    except (CheckpointError, FileNotFoundError, RuntimeError, ValueError) as exc:
        fail(str(exc))
    unreadable = photo_errors()
    failed: list[str] = []
    with _progress() as prog:
        task = prog.add_task("colorizing", total=len(images), info="")
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            try:
                done = list(zip(chunk, col.colorize(chunk, crop_boxes=_boxes(chunk, box, exclude_bottom))))
            except unreadable:  # one photo spoils its batch: the others, one by one
                done = []
                for src in chunk:
                    try:
                        done += zip([src], col.colorize([src], crop_boxes=_boxes([src], box, exclude_bottom)))
                    except unreadable as exc:
                        failed.append(f"{src}: {type(exc).__name__}: {' '.join(str(exc).split())}")
                        err.print(f"[yellow]skipped[/yellow] {escape(failed[-1])}")
            for src, img in done:
                if suffix == ".jpg" and img.mode != "RGB":
                    img = img.convert("RGB")
                save_atomically(img, targets[src], **({"quality": 92} if suffix == ".jpg" else {}))
            prog.update(task, advance=len(chunk), info=escape(chunk[-1].name))
    console.print(escape(f"{len(images) - len(failed)} photos -> {out}"
                         + (f"; {len(failed)} could not be read (named above)" if failed else "")))
    if failed:
        raise typer.Exit(1)


@app.command("evaluate")
def evaluate_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Checkpoint (.safetensors)."),
    images: Path = typer.Option(..., "--images", help="Folder of colour photos held out from training."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="A second checkpoint to report beside it."),
    render_size: int = typer.Option(256, "--render-size"),
    vivid: float = typer.Option(DEFAULT_VIVID, "--vivid", help=VIVID_HELP),
    batch_size: int = typer.Option(8, "--batch-size"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Use at most N photos."),
    per_photo: bool = typer.Option(False, "--per-photo", help="Also print each photo's metrics."),
    worst: Optional[Path] = typer.Option(None, "--worst", help="Write a PNG grid of the five worst photos (CIEDE2000)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """PSNR, SSIM, CIEDE2000, false colour, hue error and colourfulness, next to greyscale."""
    _use_pixel_limit()
    from colorization.checkpoint import CheckpointError
    from colorization.imageio import list_images
    from colorization.infer import Colorizer
    from colorization.metrics import evaluate, worst_images

    try:
        photos = list_images(images)[:limit] if limit else list_images(images)
        col = Colorizer(model, device=device, render_size=render_size, batch_size=batch_size, vivid=vivid)
        ref = Colorizer(reference, device=device, render_size=render_size, batch_size=batch_size,
                        vivid=vivid) if reference else None
    except (CheckpointError, FileNotFoundError, RuntimeError, ValueError) as exc:
        fail(str(exc))
    photos, skipped = _readable(photos)
    if not photos:
        fail(f"no photos in {images}" + (f" that can be read ({skipped} could not)" if skipped else ""))
    with _progress() as prog:
        task = prog.add_task("evaluating", total=len(photos), info="")
        report = evaluate(col, photos, reference=ref, batch_size=batch_size, keep_outputs=len(photos) if worst else 0,
                          progress=lambda d, n: prog.update(task, completed=d))
    cols = ("PSNR dB", "SSIM", "CIEDE2000", "false colour", "hue error", "colourful", "gap closed")
    table = Table(title=f"{report['n']} photos, render size {render_size}, vivid {vivid}",
                  caption="greyscale: a*b* = 0. Lower is better for CIEDE2000, false colour and hue error.")
    table.add_column("", no_wrap=True)
    for col_name in cols:
        table.add_column(col_name, justify="right")
    for key in report["systems"]:
        table.add_row(key, *_cells(report[key]), f"{100 * report['gap_closed_by'][key]:.0f}%")
    console.print(table)
    if per_photo:
        pt = Table(title="per photo (CIEDE2000 / false colour / hue error)")
        pt.add_column("photo")
        for key in report["systems"]:
            pt.add_column(key, justify="right")
        for row in report["per_image"]:
            pt.add_row(row["image"], *(f"{row[k]['ciede2000']:.2f} / {100 * row[k]['false_colour']:.1f}% / "
                                       f"{row[k]['hue_error']:.0f}°" for k in report["systems"]))
        console.print(pt)
    if report["truth_colourfulness"] < 3:  # hue error and the gap closed are undefined (nan) without colour
        err.print("[yellow]warning:[/yellow] these photos have (almost) no colour: evaluate compares a model's "
                  "colours with the photos' own, so give it colour photos held out from training")
    console.print(f"ground-truth colourfulness {report['truth_colourfulness']:.1f}; false colour = share of pixels "
                  "painted (C*ab > 20) where the truth is grey (C*ab < 8); hue error on the truth's strongly "
                  "coloured pixels (no hue = 90°)")
    if worst:
        from colorization.plots import image_grid

        rows = [report["outputs"][i] for i in worst_images(report)]
        labels = ["greyscale", *(["reference"] if ref else []), "model", "truth"]
        image_grid([[r[k] for k in labels] for r in rows], labels, worst)
        console.print(escape(f"five worst photos: {worst}"))
    if json_out:
        slim = {k: v for k, v in report.items() if k != "outputs"}
        json_out.write_text(json.dumps(slim | {"skipped": skipped}, indent=2))
    if skipped:
        err.print(escape(f"{skipped} photo(s) could not be read and were left out (named above)"))
        raise typer.Exit(1)


def _cells(s: dict) -> list[str]:
    return [f"{s['psnr']:.2f}", f"{s['ssim']:.4f}", f"{s['ciede2000']:.2f}", f"{100 * s['false_colour']:.2f}%",
            f"{s['hue_error']:.1f}°", f"{s['colourfulness']:.1f}"]


@app.command("export-model")
def export_model(
    model: Path = typer.Option(..., "--model", "-m", help="Checkpoint (.safetensors)."),
    onnx: Path = typer.Option(..., "--onnx", help="Where to write the ONNX generator."),
    opset: int = typer.Option(17, "--opset"),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare onnxruntime with torch."),
) -> None:
    """Export the generator to ONNX (input L/50-1, output ab/110; dynamic batch and size)."""
    from colorization.checkpoint import CheckpointError, load_checkpoint
    from colorization.onnx_export import export_onnx

    try:
        gen, meta = load_checkpoint(model)
    except CheckpointError as exc:
        fail(str(exc))
    info = export_onnx(gen, onnx, opset=opset, check=check, metadata={"arch": json.dumps(meta["arch"])})
    diff = info["max_abs_diff"]
    console.print(escape(f"wrote {onnx} (opset {opset})"
                         + (f"; max |onnxruntime - torch| = {diff:.2e}" if diff is not None else "")))

