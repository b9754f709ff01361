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
    r = run.invoke(app, ["train-files", str(photos), "--out", str(tmp_path / "run"), "--crop-size", "32",
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
