"""The generator (ResNet-18 U-Net with a lean decoder) and the 70x70 PatchGAN discriminator.

The generator sees L (N, 1, H, W) scaled to [-1, 1] and predicts ab/110 (N, 2, H, W) in
[-1, 1]; H and W must be multiples of 32. Its head is either a regression (tanh a*b*, the
pix2pix way) or a chroma classifier (``head="classes"``: a distribution over a*b* bins at a
quarter of the size, decoded by an annealed mean; see :mod:`colorization.chroma`). ``build_generator(arch)`` rebuilds any generator
from the architecture dictionary stored in a checkpoint (``generator.arch``).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18
from torchvision.models.resnet import BasicBlock

from . import lab

__all__ = [
    "UNetGenerator",
    "PatchDiscriminator",
    "build_generator",
    "PretrainedWeightsUnavailable",
    "load_resnet18_1ch",
    "count_parameters",
]


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but could not be downloaded or found in the cache."""


def _hub_dir() -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def load_resnet18_1ch(pretrained: bool) -> nn.Module:
    """torchvision's ResNet-18 with a 1-channel stem (RGB conv1 weights summed when pretrained)."""
    if not pretrained:
        net = resnet18(weights=None)
    else:
        from torchvision.models import ResNet18_Weights

        weights = ResNet18_Weights.IMAGENET1K_V1
        try:
            net = resnet18(weights=weights)
        except Exception as exc:  # no network, proxy, corrupt file...
            fname = os.path.basename(weights.url)
            raise PretrainedWeightsUnavailable(
                f"ImageNet weights for ResNet-18 could not be had ({type(exc).__name__}: {exc}). "
                f"Download {weights.url} and place it at {os.path.join(_hub_dir(), fname)} "
                "(the torch hub cache; set TORCH_HOME to move it), or train from scratch "
                "without --pretrained."
            ) from exc
    w = net.conv1.weight.detach().sum(dim=1, keepdim=True)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    with torch.no_grad():
        net.conv1.weight.copy_(w)
    return net


class _SmallResNet(nn.Module):
    """ResNet-18 layout with torchvision's BasicBlock at a reduced width (tests, tiny models)."""

    def __init__(self, width: int, blocks: tuple[int, int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = width
        self.layer1 = self._layer(width, blocks[0], 1)
        self.layer2 = self._layer(width * 2, blocks[1], 2)
        self.layer3 = self._layer(width * 4, blocks[2], 2)
        self.layer4 = self._layer(width * 8, blocks[3], 2)

    def _layer(self, planes: int, n: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(n - 1)]
        return nn.Sequential(*layers)


def _cbr(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    """1x1 reduce at low resolution, 2x nearest upsample, concat skip, 3x3 convs."""

    def __init__(self, cin: int, cskip: int, cout: int, n_convs: int = 2):
        super().__init__()
        self.reduce = _cbr(cin, cout, 1)
        convs = [_cbr(cout + cskip, cout)] + [_cbr(cout, cout) for _ in range(n_convs - 1)]
        self.convs = nn.Sequential(*convs)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")
        return self.convs(torch.cat((x, skip), dim=1))


class UNetGenerator(nn.Module):
    """U-Net: ResNet-18 encoder (1-channel stem), lean decoder, small full-resolution head.

    Decoder widths are 4w, 2w, w, w/2 (w = encoder width, 64 for the real ResNet-18): no heavy
    block at full resolution; the head upsamples 8 channels, adds L and predicts ab with tanh.
    """

    def __init__(
        self,
        width: int = 64,
        blocks: tuple[int, int, int, int] = (2, 2, 2, 2),
        pretrained: bool = False,
        head: str = "regression",
        bin_step: int = 10,
    ):
        super().__init__()
        if head not in ("regression", "classes"):
            raise ValueError(f"unknown head {head!r}: use regression or classes")
        self.arch = {
            "name": "unet-resnet18-lean",
            "width": int(width),
            "blocks": [int(b) for b in blocks],
        }
        if head == "classes":
            self.arch |= {"head": "classes", "bin_step": int(bin_step)}
        self.head_kind = head
        # the fitted conservative end of the decoding (colorization.calibrate), from the checkpoint
        self.calibration: dict | None = None
        if width == 64 and tuple(blocks) == (2, 2, 2, 2):
            enc = load_resnet18_1ch(pretrained)
        else:
            if pretrained:
                raise ValueError("pretrained weights exist only for width=64, blocks=(2,2,2,2)")
            enc = _SmallResNet(width, tuple(blocks))
        self.stem = nn.Sequential(enc.conv1, enc.bn1, enc.relu)  # H/2, w
        self.pool = enc.maxpool
        self.layer1, self.layer2 = enc.layer1, enc.layer2  # H/4 w, H/8 2w
        self.layer3, self.layer4 = enc.layer3, enc.layer4  # H/16 4w, H/32 8w
        w = width
        self.up4 = _Up(8 * w, 4 * w, 4 * w)
        self.up3 = _Up(4 * w, 2 * w, 2 * w)
        self.up2 = _Up(2 * w, w, w)
        if head == "classes":
            from .chroma import ab_bins

            self.register_buffer("ab_centres", ab_bins(bin_step))
            self.classifier = nn.Conv2d(w, self.ab_centres.shape[0], 1)
            return
        self.up1 = _Up(w, w, max(w // 2, 4), n_convs=1)
        hc = max(w // 8, 4)
        self.head_reduce = nn.Conv2d(max(w // 2, 4), hc, 1)
        self.head = nn.Sequential(
            nn.Conv2d(hc + 1, 2 * hc, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * hc, 2, 1),
            nn.Tanh(),
        )

    def _quarter(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s1 = self.stem(L)
        s2 = self.layer1(self.pool(s1))
        s3 = self.layer2(s2)
        s4 = self.layer3(s3)
        x = self.layer4(s4)
        x = self.up4(x, s4)
        x = self.up3(x, s3)
        return self.up2(x, s2), s1

    def logits(self, L: torch.Tensor) -> torch.Tensor:
        """Chroma-class logits (N, Q, H/4, W/4) of a ``head="classes"`` generator."""
        return self.classifier(self._quarter(L)[0])

    def decode(self, logits: torch.Tensor, size, vivid: float | None = None) -> torch.Tensor:
        """Logits -> ab/110 (N, 2, *size): annealed mean shrunk where unsure (``vivid``; the
        conservative end as calibrated when ``self.calibration`` is set), upsampled."""
        from .chroma import DEFAULT_VIVID, decode_ab

        ab = decode_ab(logits, self.ab_centres, DEFAULT_VIVID if vivid is None else vivid, self.calibration)
        ab = F.interpolate(ab, size=tuple(size), mode="bilinear", align_corners=False)
        return lab.normalize_ab(ab).clamp(-1.0, 1.0)

    def forward(self, L: torch.Tensor, vivid: float | None = None) -> torch.Tensor:
        if self.head_kind == "classes":
            return self.decode(self.logits(L), L.shape[-2:], vivid)
        x, s1 = self._quarter(L)
        x = self.up1(x, s1)
        x = F.interpolate(self.head_reduce(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.head(torch.cat((x, L.to(x.dtype)), dim=1))


class PatchDiscriminator(nn.Module):
    """pix2pix NLayerDiscriminator (n_layers=3): 70x70 receptive field, one logit per patch."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_generator(arch: dict[str, Any], pretrained: bool = False) -> nn.Module:
    """Rebuild a generator from its ``arch`` dictionary (as stored in checkpoints)."""
    name = arch.get("name")
    if name == "unet-resnet18-lean":
        return UNetGenerator(int(arch["width"]), tuple(arch["blocks"]), pretrained=pretrained,
                             head=arch.get("head", "regression"), bin_step=int(arch.get("bin_step", 10)))
    if name == "fastai-unet-resnet18":
        from .reference import ReferenceUNet

        return ReferenceUNet(int(arch.get("width", 64)), pretrained=pretrained)
    raise ValueError(f"unknown generator architecture {name!r}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
