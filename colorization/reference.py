"""The plain reference recipe's generator, used only for comparison benchmarks.

A re-implementation of fastai's ``DynamicUnet`` over a ResNet-18 body with a 1-channel stem
(``create_body(resnet18, n_in=1, cut=-2)``, ``DynamicUnet(body, 2, (256, 256))``, as in the
widely copied pix2pix-colorization tutorial): PixelShuffle (ICNR) upsampling, decoder blocks
that keep their width, no normalisation in the decoder, and a full-resolution ResBlock of 97
channels (about 39% of the compute). ~31M parameters at width 64. The rest of that recipe
(fp32, skimage colour conversion in the CPU data loader) is selected by ``recipe="reference"``
in :mod:`colorization.train`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .networks import _SmallResNet, load_resnet18_1ch

__all__ = ["ReferenceUNet"]


def _conv(cin: int, cout: int, k: int = 3, act: bool = True) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=True)
    nn.init.kaiming_normal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.ReLU(inplace=True)) if act else nn.Sequential(conv)


def _icnr_(w: torch.Tensor, scale: int = 2) -> None:
    ni, nf, h, ww = w.shape
    k = torch.empty(ni // scale**2, nf, h, ww)
    nn.init.kaiming_normal_(k)
    k = k.transpose(0, 1).contiguous().view(nf, ni // scale**2, -1).repeat(1, 1, scale**2)
    with torch.no_grad():
        w.copy_(k.contiguous().view(nf, ni, h, ww).transpose(0, 1))


class _PixelShuffleICNR(nn.Module):
    def __init__(self, cin: int, cout: int | None = None, scale: int = 2):
        super().__init__()
        cout = cin if cout is None else cout
        self.conv = _conv(cin, cout * scale**2, 1)
        _icnr_(self.conv[0].weight, scale)
        self.shuf = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuf(self.conv(x))


class _UnetBlock(nn.Module):
    def __init__(self, up_in: int, x_in: int, final_div: bool = True):
        super().__init__()
        self.shuf = _PixelShuffleICNR(up_in, up_in // 2)
        self.bn = nn.BatchNorm2d(x_in)
        ni = up_in // 2 + x_in
        nf = ni if final_div else ni // 2
        self.conv1 = _conv(ni, nf)
        self.conv2 = _conv(nf, nf)
        self.out_channels = nf

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(up_in)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        x = F.relu(torch.cat((up, self.bn(skip)), dim=1))
        return self.conv2(self.conv1(x))


class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.convs = nn.Sequential(_conv(ch, ch), _conv(ch, ch, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.convs(x) + x)


class ReferenceUNet(nn.Module):
    """fastai-style DynamicUnet on ResNet-18 (1 channel in, 2 out, no output activation)."""

    def __init__(self, width: int = 64, pretrained: bool = False):
        super().__init__()
        self.arch = {"name": "fastai-unet-resnet18", "width": int(width)}
        if width == 64:
            enc = load_resnet18_1ch(pretrained)
        else:
            enc = _SmallResNet(width, (2, 2, 2, 2))
        self.stem = nn.Sequential(enc.conv1, enc.bn1, enc.relu)
        self.pool = enc.maxpool
        self.layer1, self.layer2 = enc.layer1, enc.layer2
        self.layer3, self.layer4 = enc.layer3, enc.layer4
        w = width
        ni = 8 * w
        self.middle = nn.Sequential(
            nn.BatchNorm2d(ni), nn.ReLU(inplace=True), _conv(ni, 2 * ni), _conv(2 * ni, ni)
        )
        skips = [4 * w, 2 * w, w, w]  # layer3, layer2, layer1, stem (after relu)
        blocks, up = [], ni
        for i, x_in in enumerate(skips):
            blk = _UnetBlock(up, x_in, final_div=i != len(skips) - 1)
            blocks.append(blk)
            up = blk.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.final_shuf = _PixelShuffleICNR(up)
        self.res = _ResBlock(up + 1)
        self.out = _conv(up + 1, 2, 1, act=False)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        s1 = self.stem(L)
        s2 = self.layer1(self.pool(s1))
        s3 = self.layer2(s2)
        s4 = self.layer3(s3)
        x = self.middle(self.layer4(s4))
        for blk, skip in zip(self.blocks, (s4, s3, s2, s1)):
            x = blk(x, skip)
        x = self.final_shuf(x)
        if x.shape[-2:] != L.shape[-2:]:
            x = F.interpolate(x, L.shape[-2:], mode="nearest")
        x = self.res(torch.cat((x, L.to(x.dtype)), dim=1))
        return self.out(x)
