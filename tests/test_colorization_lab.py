"""colorization.lab: agreement with scikit-image, round trips, the fast uint8 paths."""

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from colorization import lab

torch.set_num_threads(2)


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rgb_to_lab_agrees_with_skimage(seed):
    rgb = np.random.default_rng(seed).random((41, 57, 3))
    rgb[0, :3] = [[0, 0, 0], [1, 1, 1], [1, 0, 0]]  # extremes
    ours = lab.rgb_to_lab(_chw(rgb)).permute(1, 2, 0).numpy()
    err = np.abs(ours - rgb2lab(rgb)).max(axis=(0, 1))
    assert err.max() < 0.5, err
    assert err.max() < 1e-2  # in fact float32 rounding only


def test_lab_to_rgb_agrees_with_skimage_and_round_trips():
    rng = np.random.default_rng(3)
    rgb = rng.random((33, 47, 3))
    ref_lab = rgb2lab(rgb)
    back = lab.lab_to_rgb(_chw(ref_lab)).permute(1, 2, 0).numpy()
    assert np.abs(back - lab2rgb(ref_lab)).max() < 1e-3
    assert np.abs(back - rgb).max() < 1e-3
    # out-of-gamut Lab is clipped into [0, 1] like skimage
    wild = np.stack([rng.uniform(0, 100, (20, 20)), rng.uniform(-110, 110, (20, 20)), rng.uniform(-110, 110, (20, 20))], -1)
    ours = lab.lab_to_rgb(_chw(wild)).permute(1, 2, 0).numpy()
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = lab2rgb(wild)
    assert ours.min() >= 0 and ours.max() <= 1
    assert np.abs(ours - theirs).max() < 1e-3


def test_batched_and_under_autocast():
    rgb = torch.rand(4, 3, 16, 24)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = lab.rgb_to_lab(rgb)
    assert out.dtype == torch.float32 and out.shape == (4, 3, 16, 24)
    single = lab.rgb_to_lab(rgb[2])
    assert torch.allclose(out[2], single, atol=1e-4)


def test_uint8_lightness_tables_match_full_conversion():
    u8 = torch.randint(0, 256, (3, 29, 31), dtype=torch.uint8)
    full = lab.rgb_to_lab(u8.float() / 255)[:1]
    assert torch.allclose(lab.uint8_to_l(u8), full, atol=1e-3)
    grey = u8[:1]
    assert torch.allclose(lab.uint8_to_l(grey), lab.rgb_to_lab(grey.expand(3, -1, -1).float() / 255)[:1], atol=1e-3)
    assert torch.allclose(lab.rgb_to_l(u8.float() / 255), full, atol=1e-3)


def test_lab_to_rgb_uint8_matches_reference_across_chunks():
    lab_img = lab.rgb_to_lab(torch.rand(3, 37, 53))
    lab_img[1:] += torch.randn(2, 37, 53) * 20  # push some pixels out of gamut
    ref = (lab.lab_to_rgb(lab_img) * 255 + 0.5).to(torch.uint8)
    fast = lab.lab_to_rgb_uint8(lab_img[0], lab_img[1:], chunk=100)
    assert fast.shape == (3, 37, 53) and fast.dtype == torch.uint8
    assert (fast.int() - ref.int()).abs().max() <= 1


def test_network_scaling():
    L = torch.tensor([0.0, 50.0, 100.0])
    assert torch.allclose(lab.normalize_l(L), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(lab.denormalize_ab(lab.normalize_ab(torch.tensor([-110.0, 55.0]))), torch.tensor([-110.0, 55.0]))
