"""colorization.chroma and the classification head: bins, soft targets, decoding by vividness; the new
metrics (false colour, hue error); photo augmentation; the safetensors format without the package."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import lab2rgb

from colorization.chroma import ab_bins, annealed_mean, chroma_gain, decode_ab, soft_encode, temperature
from colorization.data import CropDataset, print_tone
from colorization.infer import Colorizer
from colorization.metrics import _lab, evaluate, false_colour_area, hue_error, image_metrics, worst_images
from colorization.networks import UNetGenerator

torch.set_num_threads(2)


def test_bins_cover_the_srgb_gamut_and_are_fixed():
    c = ab_bins(20)
    assert c.shape[1] == 2 and 40 < c.shape[0] < 120
    assert [0.0, 0.0] in c.tolist()
    assert torch.equal(c, ab_bins(20))  # deterministic: checkpoints keep the same class order
    assert c[:, 0].min() < -60 and c[:, 0].max() > 60 and c[:, 1].min() < -80 and c[:, 1].max() > 80


def test_soft_encoding_and_annealed_mean():
    c = ab_bins(20)
    ab = torch.stack([torch.tensor([40.0, 0.0]), torch.tensor([60.0, 0.0])]).view(1, 2, 2, 1)
    t = soft_encode(ab, c)
    assert torch.allclose(t.sum(1), torch.ones(1, 2, 1))
    nearest = ((c - torch.tensor([40.0, 60.0])) ** 2).sum(1).argmin()
    assert t[0, :, 0, 0].argmax() == nearest
    logits = torch.full((1, c.shape[0], 1, 1), -20.0)
    logits[0, nearest] = 20.0
    assert torch.allclose(annealed_mean(logits, c, 1.0)[0, :, 0, 0], c[nearest], atol=1e-3)


def test_vivid_goes_from_grey_where_unsure_to_the_likeliest_colour():
    c = ab_bins(20)
    orange = int(((c - torch.tensor([40.0, 60.0])) ** 2).sum(1).argmin())
    unsure = torch.zeros(1, c.shape[0], 1, 1)  # every colour alike
    leaning = unsure.clone()
    leaning[0, orange] = 3.0  # some belief in orange, much spread
    sure = torch.full_like(unsure, -10.0)
    sure[0, orange] = 10.0
    chroma = lambda lg, v: float(decode_ab(lg, c, v).norm(dim=1))  # noqa: E731
    assert chroma(unsure, 0.0) < 2.0  # no idea: grey, not the gamut's average colour
    assert chroma(leaning, 0.0) < chroma(leaning, 0.5) < chroma(leaning, 1.0)
    assert chroma(sure, 0.0) == pytest.approx(float(c[orange].norm()), rel=0.02)  # sure: its colour at any level
    assert temperature(0) == 1.0 and temperature(1) == pytest.approx(0.2) and chroma_gain(0) == 1.0
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="vivid must be between 0"):
            temperature(bad)


def test_classes_generator_through_the_colorizer():
    torch.manual_seed(0)
    g = UNetGenerator(width=8, blocks=(1, 1, 1, 1), head="classes", bin_step=20)
    assert g.arch["head"] == "classes" and g.logits(torch.zeros(1, 1, 64, 64)).shape[1:] == (g.ab_centres.shape[0], 16, 16)
    with torch.no_grad():
        g.classifier.weight.zero_()
        g.classifier.bias.zero_()
        g.classifier.bias[int(((g.ab_centres - torch.tensor([40.0, 60.0])) ** 2).sum(1).argmin())] = 3.0
    rgb = np.random.default_rng(0).integers(60, 200, (40, 56, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    out = {v: np.asarray(Colorizer(generator=g, device="cpu", render_size=64, vivid=v).colorize([img])[0])
           for v in (0.0, 0.5, 1.0)}
    chroma = {v: float(np.hypot(*_lab(o)[..., 1:].transpose(2, 0, 1)).mean()) for v, o in out.items()}
    assert chroma[0.0] < chroma[0.5] < chroma[1.0]
    assert out[0.0].shape == rgb.shape
    with pytest.raises(ValueError, match="vivid"):
        Colorizer(generator=g, device="cpu", vivid=2)


def _lab_image(L, a, b, shape=(8, 8)):
    lab = np.zeros((*shape, 3))
    lab[..., 0], lab[..., 1], lab[..., 2] = L, a, b
    return lab


def test_false_colour_is_colour_painted_on_grey():
    grey = _lab_image(50, 2, -3)
    painted = grey.copy()
    painted[:2, :] = [50, 30, -30]  # a magenta blotch on a quarter of the picture
    assert false_colour_area(grey, painted) == pytest.approx(0.25)
    assert false_colour_area(grey, grey) == 0.0
    blue = _lab_image(50, 0, -40)
    assert false_colour_area(blue, painted) == 0.0  # colour where the truth has colour is not false colour


def test_hue_error_on_strong_colours_and_grey_counts_ninety():
    truth = _lab_image(50, 40, 0)  # red, strongly coloured
    assert hue_error(truth, _lab_image(50, 20, 0)) == pytest.approx(0.0)  # right hue, paler
    assert hue_error(truth, _lab_image(50, 0, 30)) == pytest.approx(90.0)
    assert hue_error(truth, _lab_image(50, -30, 0)) == pytest.approx(180.0)
    assert hue_error(truth, _lab_image(50, 0, 0)) == 90.0  # left grey: no hue
    assert np.isnan(hue_error(_lab_image(50, 3, 3), _lab_image(50, 40, 0)))  # nothing strong to judge
    rgb = (lab2rgb(truth) * 255).round().astype(np.uint8)
    m = image_metrics(rgb, rgb)
    assert m["false_colour"] == 0.0 and m["hue_error"] < 1.0


def test_evaluate_with_a_reference_and_the_worst(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        img = np.clip(rng.normal(120, 40, (32, 48, 3)) + [i * 40, 0, -i * 20], 0, 255).astype(np.uint8)
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(img).save(paths[-1])
    torch.manual_seed(0)
    g = UNetGenerator(width=8, blocks=(1, 1, 1, 1), head="classes", bin_step=20)
    ref = UNetGenerator(width=8, blocks=(1, 1, 1, 1))
    rep = evaluate(Colorizer(generator=g, device="cpu", render_size=32), paths,
                   reference=Colorizer(generator=ref, device="cpu", render_size=32), keep_outputs=3)
    assert rep["systems"] == ["model", "reference", "greyscale"]
    assert rep["greyscale"]["false_colour"] == 0.0 and rep["greyscale"]["hue_error"] == pytest.approx(90.0)
    assert [r["image"] for r in rep["per_image"]] == ["p0", "p1", "p2"]
    assert set(rep["outputs"][0]) == {"image", "greyscale", "model", "reference", "truth"}
    worst = worst_images(rep, n=2)
    vals = [r["model"]["ciede2000"] for r in rep["per_image"]]
    assert vals[worst[0]] == max(vals) and len(worst) == 2


def test_old_print_tone_keeps_hues_and_is_seeded(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    toned = print_tone(rgb, np.random.default_rng(1))
    assert toned.shape == rgb.shape and toned.dtype == np.uint8 and not np.array_equal(toned, rgb)
    lab, lab_t = _lab(rgb), _lab(toned)
    strong = np.hypot(lab[..., 1], lab[..., 2]) > 30
    dh = np.angle(np.exp(1j * (np.arctan2(lab[..., 2], lab[..., 1]) - np.arctan2(lab_t[..., 2], lab_t[..., 1]))))
    assert np.degrees(np.abs(dh[strong])).mean() < 10  # the same hues, toned like an old print
    Image.fromarray(rgb).save(tmp_path / "p.png")
    a = CropDataset([tmp_path / "p.png"], 32, samples_per_epoch=4, augment=True, seed=5, cache=False)
    b = CropDataset([tmp_path / "p.png"], 32, samples_per_epoch=4, augment=True, seed=5, cache=False)
    assert all(torch.equal(a[i], b[i]) for i in range(4))
    assert a.scale_range[1] > CropDataset([tmp_path / "p.png"], 32, cache=False).scale_range[1]


def test_safetensors_format_without_the_package(tmp_path):
    from safetensors.torch import load_file, save_file

    from colorization import safetensors_lite as lite

    t = {"w": torch.randn(3, 4), "n": torch.tensor(7), "h": torch.randn(5).to(torch.bfloat16),
         "e": torch.zeros(0)}
    lite.save_file(t, str(tmp_path / "a.safetensors"), {"format": "x"})
    back = load_file(str(tmp_path / "a.safetensors"))
    assert all(torch.equal(back[k], t[k]) for k in t)
    save_file(t, str(tmp_path / "b.safetensors"), metadata={"format": "y"})
    back = lite.load_file(str(tmp_path / "b.safetensors"))
    assert all(torch.equal(back[k], t[k]) for k in t)
    assert lite.read_header_metadata(str(tmp_path / "b.safetensors")) == {"format": "y"}


def test_rebalancing_lifts_rare_colours(tmp_path):
    from colorization.chroma import rebalancing_weights
    from colorization.train import TrainConfig, train

    c = ab_bins(20)
    samples = torch.cat([torch.zeros(900, 2), torch.tensor([[40.0, 60.0]]).repeat(100, 1)])  # mostly grey
    w = rebalancing_weights(samples, c, lam=0.5)
    grey = int((c ** 2).sum(1).argmin())
    orange = int(((c - torch.tensor([40.0, 60.0])) ** 2).sum(1).argmin())
    assert w[orange] > w[grey] and w.min() > 0
    # used in training: one tiny epoch runs and logs the cross-entropy
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    cfg = TrainConfig(crop_size=64, batch_size=2, stage1_epochs=1, stage2_epochs=0, width=8, blocks=(1, 1, 1, 1),
                      bin_step=20, rebalance=0.5, num_workers=0, samples_per_epoch=2, device="cpu", log_every=1)
    res = train(cfg, [tmp_path / "p.png"], [], tmp_path / "run")
    assert [r for r in res.history if r["kind"] == "train"][0]["ce"] > 0
