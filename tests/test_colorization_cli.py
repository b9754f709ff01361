"""flows.cli.model_files: the four model commands on files, end to end on tiny photos."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from flows.cli import model_files

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"


@pytest.fixture(scope="module")
def app():
    return model_files.app


def _photos(folder, n=6):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = (rng.random((40 + i, 56, 3)) * rng.random(3) * 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"p{i}.png")
    return folder


def test_model_files_module_does_not_import_torch():
    code = "import sys, flows.cli.model_files; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_train_colorize_evaluate_export(app, tmp_path):
    photos = _photos(tmp_path / "photos")
    run = CliRunner()
    r = run.invoke(app, ["train-files", str(photos), "--out", str(tmp_path / "run"), "--crop-size", "64",
                         "--width", "8", "--batch-size", "2", "--stage1-epochs", "1", "--stage2-epochs", "1",
                         "--workers", "0", "--device", "cpu", "--val-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    model = tmp_path / "run" / "model.safetensors"
    assert model.is_file() and "model:" in r.output

    r = run.invoke(app, ["colorize-files", str(photos / "p1.png"), str(photos / "p3.png"), "--model", str(model),
                         "--out", str(tmp_path / "out"), "--render-size", "32", "--exclude-bottom", "8", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    out = Image.open(tmp_path / "out" / "p3.png")
    assert out.size == Image.open(photos / "p3.png").size

    r = run.invoke(app, ["evaluate", "--model", str(model), "--images", str(photos), "--render-size", "32",
                         "--device", "cpu", "--json", str(tmp_path / "eval.json")])
    assert r.exit_code == 0, r.output
    assert "greyscale" in r.output and "PSNR" in r.output
    rep = json.loads((tmp_path / "eval.json").read_text())
    assert rep["n"] == 6 and "psnr" in rep["model"] and "false_colour" in rep["model"]

    r = run.invoke(app, ["evaluate", "--model", str(model), "--reference", str(model), "--images", str(photos),
                         "--render-size", "32", "--device", "cpu", "--vivid", "0", "--per-photo",
                         "--worst", str(tmp_path / "worst.png")])
    assert r.exit_code == 0, r.output
    assert "reference" in r.output and "false colour" in r.output and "p5" in r.output
    assert Image.open(tmp_path / "worst.png").size[1] > 5 * 100  # five rows

    r = run.invoke(app, ["colorize-files", str(photos / "p1.png"), "--model", str(model), "--out",
                         str(tmp_path / "vivid"), "--vivid", "1.5", "--device", "cpu"])
    assert r.exit_code == 2 and "vivid must be between 0" in r.output

    r = run.invoke(app, ["export-model", "--model", str(model), "--onnx", str(tmp_path / "g.onnx")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g.onnx").is_file() and "max |onnxruntime - torch|" in r.output


def test_bad_model_is_a_clear_error(app, tmp_path):
    photos = _photos(tmp_path / "photos", 1)
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a model at all")
    r = CliRunner().invoke(app, ["colorize-files", str(photos), "--model", str(bogus), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "is not an arhiva checkpoint" in r.output
    r = CliRunner().invoke(app, ["colorize-files", str(photos), "--model", str(bogus), "--out", str(tmp_path / "o"),
                                 "--crop-box", "1,2,3"])
    assert r.exit_code == 2 and "LEFT,TOP,RIGHT,BOTTOM" in r.output


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    from colorization.checkpoint import save_checkpoint
    from colorization.networks import UNetGenerator

    return save_checkpoint(tmp_path_factory.mktemp("model") / "m.safetensors", UNetGenerator(8, (1, 1, 1, 1)), {})


def _colorize_files(app, *args):
    return CliRunner().invoke(app, ["colorize-files", *map(str, args), "--render-size", "32", "--device", "cpu"])


def test_colorize_files_never_overwrites_a_photo_or_another_copy(app, untrained, tmp_path):
    """Copies keep their paths below the folder (a/x.jpg and b/x.jpg were both out/x.png, one lost);
    x.jpg beside x.png keep their extensions; --out being the photos' own folder is refused (the
    colorized PNG replaced the scan)."""
    src = tmp_path / "scans"
    for rel in ("a/x.jpg", "b/x.jpg", "a/y.png", "a/y.jpg"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((24, 30, 3), 90, np.uint8)).save(src / rel)
    r = _colorize_files(app, src, "--model", untrained, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    made = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert made == ["a/x.png", "a/y.jpg.png", "a/y.png.png", "b/x.png"]
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    r = _colorize_files(app, src / "b", src / "a" / "y.png", "--model", untrained, "--out", src / "a")
    assert r.exit_code == 2 and f"would replace the photo {src / 'a' / 'y.png'}" in r.output
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    (tmp_path / "afile").write_text("x")
    r = _colorize_files(app, src, "--model", untrained, "--out", tmp_path / "afile")
    assert r.exit_code == 2 and "is a file" in r.output  # was FileExistsError and a traceback


def test_colorize_files_names_an_unreadable_photo_and_does_the_rest(app, untrained, tmp_path):
    src = tmp_path / "mixed"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 28, 3), 60 * i, np.uint8)).save(src / f"ok{i}.png")
    (src / "page.jpg").write_bytes(b"<html>not a photo</html>")
    (src / "empty.jpg").write_bytes(b"")
    r = _colorize_files(app, src, "--model", untrained, "--out", tmp_path / "out", "--batch-size", "8")
    assert r.exit_code == 1, r.output  # it stopped at the first one, with a traceback
    assert "page.jpg" in r.output and "empty.jpg" in r.output and "3 photos" in r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ok0.png", "ok1.png", "ok2.png"]
    r = _colorize_files(app, src / "ok0.png", "--model", untrained, "--out", tmp_path / "o2", "--exclude-bottom", "50")
    assert r.exit_code == 1 and "--exclude-bottom 50: the photo is only 20 pixels high" in r.output


def test_an_interrupted_save_leaves_the_earlier_copy_whole(tmp_path):
    from colorization.imageio import save_atomically

    earlier = tmp_path / "p.png"
    Image.new("RGB", (8, 8), "red").save(earlier)
    kept = earlier.read_bytes()

    class Interrupted(Image.Image):
        def save(self, fp, *args, **kw):
            fp.write(b"\x89PNG half")
            raise KeyboardInterrupt  # Ctrl-C while the file is being written

    img = Image.new("RGB", (8, 8), "blue")
    img.__class__ = Interrupted
    with pytest.raises(KeyboardInterrupt):
        save_atomically(img, earlier)
    assert earlier.read_bytes() == kept and [p.name for p in tmp_path.iterdir()] == ["p.png"]
    save_atomically(Image.new("RGB", (8, 8), "blue"), earlier)
    assert Image.open(earlier).getpixel((0, 0)) == (0, 0, 255)


@pytest.mark.parametrize("option, value, message", [
    ("--width", "12", "--width 12: must be a multiple of 8"),  # crashed the process (oneDNN, several threads)
    ("--samples-per-epoch", "0", "--samples-per-epoch 0: must be from 1 to 1,000,000"),  # crashed it too
    ("--crop-size", "0", "--crop-size 0: must be a multiple of 32 from 64 to 4096"),  # ZeroDivisionError
    # a batch of one 32-pixel crop (1 x 1 at the bottleneck) stopped the training midway, after writing the run
    ("--crop-size", "32", "--crop-size 32: must be a multiple of 32 from 64 to 4096"),
    ("--stage1-epochs", "-1", "--stage1-epochs -1: must be from 0 to 1,000,000"),  # wrote a model of 0 steps
    ("--batch-size", "99999999999", "--batch-size 99999999999: must be from 1 to 1024"),
    ("--width", "100000", "--width 100000: must be a multiple of 8 from 8 to 512"),
])
def test_train_files_refuses_settings_that_cannot_train(app, tmp_path, option, value, message):
    photos = _photos(tmp_path / "photos", n=3)
    r = CliRunner().invoke(app, ["train-files", str(photos), "--out", str(tmp_path / "run"), "--device", "cpu",
                                 "--workers", "0", option, value])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("photos_n, batch", [(1, 1), (3, 2)])
def test_the_smallest_crop_trains_on_a_batch_of_one(app, tmp_path, photos_n, batch):
    """At the smallest crop a batch of one image still trains (a 32-pixel crop stopped with batch norm's
    "Expected more than 1 value per channel when training")."""
    photos = _photos(tmp_path / "photos", n=photos_n)
    r = CliRunner().invoke(app, ["train-files", str(photos), "--out", str(tmp_path / "run"), "--crop-size", "64",
                                 "--width", "8", "--batch-size", str(batch), "--stage1-epochs", "1",
                                 "--stage2-epochs", "1", "--samples-per-epoch", "3", "--workers", "0",
                                 "--device", "cpu", "--val-fraction", "0"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_train_and_evaluate_leave_out_a_photo_that_cannot_be_read(app, untrained, tmp_path):
    photos = _photos(tmp_path / "photos", n=5)
    (photos / "page.jpg").write_bytes(b"<html>")  # stopped train-files and evaluate with a traceback
    good = Image.open(photos / "p0.png")
    good.save(photos / "cut.png")
    (photos / "cut.png").write_bytes((photos / "cut.png").read_bytes()[:300])  # truncated
    r = CliRunner().invoke(app, ["train-files", str(photos), "--out", str(tmp_path / "run"), "--crop-size", "64",
                                 "--width", "8", "--batch-size", "2", "--stage1-epochs", "1", "--stage2-epochs", "0",
                                 "--workers", "0", "--device", "cpu"])
    assert r.exit_code == 1, r.output
    assert "page.jpg" in r.output and "cut.png" in r.output and "2 photo(s) could not be read" in r.output
    assert (tmp_path / "run" / "model.safetensors").is_file()
    r = CliRunner().invoke(app, ["evaluate", "--model", str(untrained), "--images", str(photos), "--render-size", "32",
                                 "--device", "cpu", "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 1 and "PSNR" in r.output and "2 photo(s) could not be read" in r.output
    rep = json.loads((tmp_path / "e.json").read_text())
    assert rep["n"] == 5 and rep["skipped"] == 2


def test_evaluate_on_photos_without_colour_says_why_the_numbers_are_nan(app, untrained, tmp_path):
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(2):
        Image.fromarray(np.full((24, 32), 40 * (i + 1), np.uint8)).save(grey / f"g{i}.png")
    r = CliRunner().invoke(app, ["evaluate", "--model", str(untrained), "--images", str(grey), "--render-size", "32",
                                 "--device", "cpu"])
    assert r.exit_code == 0 and "these photos have (almost) no colour" in r.output, r.output
