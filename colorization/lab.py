"""sRGB <-> CIE L*a*b* (D65, 2 degree observer) in torch, on any device.

The constants are scikit-image's (``skimage.color.rgb2lab`` / ``lab2rgb``), so the results
agree with it to well under 0.5 in L, a and b. Tensors are channel-first: ``(..., 3, H, W)``.
The arithmetic always runs in float32, also inside an autocast region.

Network scaling (the pix2pix colorization convention): ``L/50 - 1`` and ``ab/110``.
"""

from __future__ import annotations

import torch

__all__ = [
    "rgb_to_lab",
    "lab_to_rgb",
    "rgb_to_l",
    "uint8_to_l",
    "normalize_l",
    "normalize_ab",
    "denormalize_l",
    "denormalize_ab",
    "L_SCALE",
    "AB_SCALE",
]

L_SCALE = 50.0
AB_SCALE = 110.0

_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPS = 0.008856
_KAPPA = 7.787
_F16 = 16.0 / 116.0


def _matrix(device: torch.device) -> torch.Tensor:
    return torch.tensor(_XYZ_FROM_RGB, dtype=torch.float32, device=device)


def _apply(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multiply the channel axis (-3) of ``x`` by the 3x3 matrix ``m``."""
    return torch.einsum("ij,...jhw->...ihw", m, x)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)


def linear_to_srgb(lin: torch.Tensor) -> torch.Tensor:
    lin = lin.clamp_min(0.0)
    return torch.where(lin > 0.0031308, 1.055 * lin.pow(1.0 / 2.4) - 0.055, 12.92 * lin)


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPS, t.clamp_min(_EPS).pow(1.0 / 3.0), _KAPPA * t + _F16)


def _f_inv(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0.2068966, t.pow(3.0), (t - _F16) / _KAPPA)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (..., 3, H, W) -> L*a*b* (L in [0, 100])."""
    with torch.autocast(rgb.device.type, enabled=False):
        rgb = rgb.float()
        xyz = _apply(_matrix(rgb.device), srgb_to_linear(rgb))
        white = torch.tensor(_WHITE_D65, device=rgb.device).view(3, 1, 1)
        fx, fy, fz = _f(xyz / white).unbind(-3)
        return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """L*a*b*, shape (..., 3, H, W) -> sRGB in [0, 1] (out-of-gamut values clipped)."""
    with torch.autocast(lab.device.type, enabled=False):
        lab = lab.float()
        L, a, b = lab.unbind(-3)
        fy = (L + 16.0) / 116.0
        fx = a / 500.0 + fy
        fz = (fy - b / 200.0).clamp_min(0.0)
        white = torch.tensor(_WHITE_D65, device=lab.device).view(3, 1, 1)
        xyz = _f_inv(torch.stack((fx, fy, fz), dim=-3)) * white
        rgb_from_xyz = torch.linalg.inv(_matrix(torch.device("cpu")).double()).float()
        lin = _apply(rgb_from_xyz.to(lab.device), xyz)
        return linear_to_srgb(lin).clamp(0.0, 1.0)


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (..., 3, H, W) -> L (..., 1, H, W); cheaper than the full Lab."""
    with torch.autocast(rgb.device.type, enabled=False):
        lin = srgb_to_linear(rgb.float())
        w = torch.tensor(_XYZ_FROM_RGB[1], device=rgb.device).view(3, 1, 1)
        y = (lin * w).sum(dim=-3, keepdim=True)
        return 116.0 * _f(y) - 16.0


_L_LUT: dict[torch.device, torch.Tensor] = {}


def uint8_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (..., 3, H, W) or grey (..., 1, H, W) -> L (..., 1, H, W) via lookup tables.

    For grey input L is a 256-entry table; for RGB the linearisation is a table, then Y.
    """
    dev = rgb.device
    lut = _L_LUT.get(dev)
    if lut is None:
        levels = torch.arange(256, dtype=torch.float32) / 255.0
        lin = srgb_to_linear(levels)
        lut = torch.stack((lin, 116.0 * _f(lin) - 16.0)).to(dev)  # (2, 256)
        _L_LUT[dev] = lut
    idx = rgb.long()
    if rgb.shape[-3] == 1:
        return lut[1][idx]
    lin = lut[0][idx]
    w = torch.tensor(_XYZ_FROM_RGB[1], device=dev).view(3, 1, 1)
    y = (lin * w).sum(dim=-3, keepdim=True)
    return 116.0 * _f(y) - 16.0


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    return L / L_SCALE - 1.0


def denormalize_l(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalize_ab(x: torch.Tensor) -> torch.Tensor:
    return x * AB_SCALE


def uint8_batch_to_lab_normalized(rgb_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 batch (N, 3, H, W) -> (L in [-1, 1] (N, 1, H, W), ab/110 (N, 2, H, W))."""
    lab = rgb_to_lab(rgb_u8.float() / 255.0)
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])


def lab_normalized_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Network-scale L (N, 1, H, W) and ab (N, 2, H, W) -> sRGB in [0, 1]."""
    return lab_to_rgb(torch.cat((denormalize_l(L.float()), denormalize_ab(ab.float())), dim=1))


_RGB_FROM_XYZ_WHITE: list[list[float]] | None = None


def lab_to_rgb_uint8(L: torch.Tensor, ab: torch.Tensor, chunk: int = 32768) -> torch.Tensor:
    """L (H, W) and ab (2, H, W) in Lab units -> uint8 sRGB (3, H, W), rounded.

    On the CPU it works through cache-sized chunks with in-place arithmetic (several times
    faster than :func:`lab_to_rgb` on large photos); elsewhere it uses :func:`lab_to_rgb`.
    """
    global _RGB_FROM_XYZ_WHITE
    if L.device.type != "cpu":
        rgb = lab_to_rgb(torch.cat((L[None].float(), ab.float())))
        return (rgb * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8)
    if _RGB_FROM_XYZ_WHITE is None:
        m = torch.linalg.inv(torch.tensor(_XYZ_FROM_RGB, dtype=torch.float64))
        _RGB_FROM_XYZ_WHITE = (m * torch.tensor(_WHITE_D65, dtype=torch.float64)).tolist()
    h, w = L.shape
    Lf, af, bf = L.reshape(-1).float(), ab[0].reshape(-1).float(), ab[1].reshape(-1).float()
    out = torch.empty(3, h * w, dtype=torch.uint8)
    for s in range(0, h * w, chunk):
        e = min(h * w, s + chunk)
        fy = (Lf[s:e] + 16.0) / 116.0
        fx = af[s:e] / 500.0 + fy
        fz = (fy - bf[s:e] / 200.0).clamp_(min=0.0)
        xyz = [_f_inv(t) for t in (fx, fy, fz)]
        for c, m in enumerate(_RGB_FROM_XYZ_WHITE):
            lin = xyz[0] * m[0]
            lin.add_(xyz[1], alpha=m[1]).add_(xyz[2], alpha=m[2]).clamp_(min=0.0)
            g = torch.where(lin > 0.0031308, lin.pow(1.0 / 2.4).mul_(1.055).sub_(0.055), lin * 12.92)
            out[c, s:e] = g.mul_(255.0).add_(0.5).clamp_(0.0, 255.0)
    return out.view(3, h, w)
