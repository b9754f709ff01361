"""colorization.networks and .reference: shapes, sizes, the 70x70 PatchGAN, pretrained weights."""

import pytest
import torch

from colorization.networks import (
    PatchDiscriminator,
    PretrainedWeightsUnavailable,
    UNetGenerator,
    build_generator,
    count_parameters,
)
from colorization.reference import ReferenceUNet

torch.set_num_threads(2)


@pytest.mark.parametrize("shape", [(2, 1, 64, 96), (1, 1, 32, 32)])
def test_generator_shapes_and_range(shape):
    g = UNetGenerator(width=8, blocks=(1, 1, 1, 1)).eval()
    with torch.no_grad():
        out = g(torch.rand(shape) * 2 - 1)
    assert out.shape == (shape[0], 2, shape[2], shape[3])
    assert out.abs().max() <= 1.0


def test_reference_shapes():
    g = ReferenceUNet(width=8).eval()
    with torch.no_grad():
        assert g(torch.randn(2, 1, 64, 64)).shape == (2, 2, 64, 64)


def test_full_size_models_are_lean_vs_reference():
    lean, ref = count_parameters(UNetGenerator()), count_parameters(ReferenceUNet())
    assert 10e6 < lean < 16e6
    assert 30e6 < ref < 32e6  # the 31M fastai U-Net


def test_build_generator_from_arch():
    g = UNetGenerator(width=8, blocks=(1, 1, 1, 1))
    h = build_generator(g.arch)
    assert isinstance(h, UNetGenerator) and h.arch == g.arch
    assert isinstance(build_generator({"name": "fastai-unet-resnet18", "width": 8}), ReferenceUNet)
    with pytest.raises(ValueError):
        build_generator({"name": "nope"})


def test_patchgan_has_70_pixel_receptive_field():
    d = PatchDiscriminator(3, ndf=8).eval()
    assert d(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    x = torch.randn(1, 3, 140, 140, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero()
    assert int(rows.max() - rows.min()) + 1 == 70
    assert int(cols.max() - cols.min()) + 1 == 70


def test_pretrained_weights_unavailable_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        UNetGenerator(pretrained=True)
    msg = str(info.value)
    assert "could not be had" in msg and "TORCH_HOME" in msg
    assert "resnet18-f37072fd.pth" in msg and str(tmp_path) in msg


def test_pretrained_uses_cached_weights(tmp_path, monkeypatch):
    """Weights placed in the hub cache are used, with conv1 summed over RGB."""
    from torchvision.models import resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    src = resnet18(weights=None)
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(src.state_dict(), ckpt / "resnet18-f37072fd.pth")  # a cached file is used as it is (no hash check)

    def offline(*args, **kwargs):
        raise AssertionError("the cached weights must be used, not downloaded")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    g = UNetGenerator(pretrained=True)
    assert torch.allclose(g.stem[0].weight, src.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(g.layer4[1].conv2.weight, src.layer4[1].conv2.weight)
