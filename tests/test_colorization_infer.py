"""colorization.infer: output size for every mode and odd sizes, full-res L, crop boxes."""


import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab

from colorization.imageio import load_image
from colorization.infer import Colorizer, working_shape
from colorization.networks import UNetGenerator

torch.set_num_threads(2)


class ConstantAB(torch.nn.Module):
    """A stand-in generator that predicts the same chroma everywhere."""

    arch = {"name": "constant"}

    def __init__(self, a=0.15, b=-0.1):
        super().__init__()
        self.register_buffer("ab", torch.tensor([a, b]).view(1, 2, 1, 1))

    def forward(self, L):
        return self.ab.expand(L.shape[0], 2, L.shape[2], L.shape[3])


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Colorizer(generator=UNetGenerator(width=8, blocks=(1, 1, 1, 1)), device="cpu", render_size=64, batch_size=4)


def _make(mode: str, size=(37, 23)) -> Image.Image:
    rng = np.random.default_rng(0)
    w, h = size
    rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    if mode == "P+transparency":
        img = rgb.convert("P")
        img.info["transparency"] = 0
        return img
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(0, 65536, (h, w)).astype(np.int32), "I")
    if mode == "F":
        return Image.fromarray(rng.random((h, w)).astype(np.float32), "F")
    return rgb.convert(mode)


MODES = ["1", "L", "LA", "P", "P+transparency", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I;16", "I", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_keeps_its_size(tiny, mode):
    img = _make(mode)
    out = tiny.colorize([img])[0]
    assert out.size == img.size
    has_alpha = mode in ("LA", "PA", "RGBA", "P+transparency")
    assert out.mode == ("RGBA" if has_alpha else "RGB")


@pytest.mark.parametrize("size", [(33, 65), (101, 47), (17, 9), (300, 31)])
def test_odd_sizes_in_one_batch(tiny, size):
    imgs = [_make("L", size), _make("RGB", (size[1], size[0])), _make("L", (64, 64))]
    outs = tiny.colorize(imgs)
    assert [o.size for o in outs] == [i.size for i in imgs]


def test_exif_orientation_is_applied(tiny, tmp_path):
    img = _make("RGB", (40, 24))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    assert tiny.colorize([path])[0].size == (24, 40)


def test_full_resolution_lightness_is_kept():
    """The output carries the input's own full-resolution L (detail), not the render's."""
    rng = np.random.default_rng(1)
    grey = rng.integers(40, 216, (97, 131), dtype=np.uint8)  # fine noise a 64 px render cannot hold
    col = Colorizer(generator=ConstantAB(), device="cpu", render_size=64)
    out = np.asarray(col.colorize([Image.fromarray(grey, "L")])[0])
    L_out = rgb2lab(out)[..., 0]
    L_in = rgb2lab(np.repeat(grey[..., None], 3, 2))[..., 0]
    assert np.abs(L_out - L_in).mean() < 0.5
    lab_out = rgb2lab(out)
    assert abs(lab_out[..., 1].mean() - 16.5) < 2 and abs(lab_out[..., 2].mean() + 11) < 2


def test_sixteen_bit_uses_full_range():
    col = Colorizer(generator=ConstantAB(0, 0), device="cpu", render_size=32)
    img16 = Image.fromarray(np.full((40, 40), 32896, dtype=np.uint16))  # 32896 / 65535 = 128 / 255
    out = np.asarray(col.colorize([img16])[0])
    assert np.abs(out.astype(int) - 128).max() <= 1


def test_crop_box_passes_the_strip_through():
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (60, 50), dtype=np.uint8)
    col = Colorizer(generator=ConstantAB(0.3, 0.3), device="cpu", render_size=32)
    out = np.asarray(col.colorize([Image.fromarray(grey, "L")], crop_boxes=[(0, 0, 50, 48)])[0])
    assert out.shape == (60, 50, 3)
    strip = out[48:]
    assert (strip == grey[48:, :, None]).all()  # the watermark strip is untouched
    inside = out[:48].astype(int)
    assert (np.abs(inside[..., 0] - inside[..., 2]) > 5).mean() > 0.5  # the rest is coloured


def test_batched_equals_one_by_one(tiny):
    imgs = [_make("L", (50, 40)), _make("RGB", (50, 40)), _make("L", (40, 50))]
    together = tiny.colorize(imgs)
    alone = [tiny.colorize([i])[0] for i in imgs]
    for a, b in zip(together, alone):
        assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 1


def test_paths_and_reloading(tiny, tmp_path):
    p = tmp_path / "x.png"
    _make("RGB", (45, 35)).save(p)
    assert tiny.colorize([p])[0].size == (45, 35)
    assert load_image(p).size == (45, 35)


def test_working_shape():
    assert working_shape(1536, 2048, 256) == (256, 341, 256, 352)
    assert working_shape(10, 10, 64) == (64, 64, 64, 64)
    assert working_shape(256, 8 * 256, 256) == (256, 2048, 256, 2048)  # a panorama of 1:8 keeps its size
    # a strip of 1 × 5,000 pixels: the long side is capped (it was 256 × 1,280,000, tens of GB)
    assert working_shape(5000, 1, 256) == (2048, 1, 2048, 32)


def test_a_thin_strip_is_colorized_in_bounded_memory(tiny):
    import tracemalloc

    strip = Image.new("L", (1, 5000), 128)
    tracemalloc.start()
    (out,) = tiny.colorize([strip])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.size == (1, 5000) and peak < 200 * 2**20


def test_bad_inputs(tiny):
    with pytest.raises(ValueError, match="crop_boxes"):
        tiny.colorize([_make("L")], crop_boxes=[None, None])
    with pytest.raises(ValueError, match="crop box"):
        tiny.colorize([_make("L")], crop_boxes=[(0, 0, 3, 3)])
