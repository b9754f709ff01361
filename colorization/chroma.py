"""Colour you can trust: chroma as a distribution over a*b* bins, decoded by an annealed mean.

The classification head predicts, per pixel (at a quarter of the input size), a distribution
over the in-gamut a*b* bins (a grid of ``step`` Lab units, as in Zhang et al. 2016). Decoding
takes the *annealed mean* of that distribution at temperature ``T``: at ``T = 1`` it is the plain
mean, which stays near grey wherever the model is unsure (a pixel that could be red or green
averages to grey instead of guessing one loudly); lower temperatures sharpen the distribution
towards its mode, i.e. more vivid colour where the model has one.

On top of that, ``decode_ab`` shrinks the chroma where the model's belief is spread out, like a
Wiener filter: ``ab = mu * |mu|^2 / (|mu|^2 + k * var)``, where ``mu`` is the annealed mean and
``var`` the spread of the (plain) distribution around its mean. A confident pixel (small spread)
keeps its colour; a pixel whose belief covers many hues goes to grey instead of to the average
colour of the whole gamut.

``vivid`` (0..1, what the user picks; default ``DEFAULT_VIVID`` = 0, conservative) sets both: the
temperature goes 1.0 -> 0.2 (geometric; 0.5 -> 0.45) and the shrinkage ``k = (1 - vivid)^2`` goes
1 -> 0 (0.5 -> 0.25). For generators with a plain regression head, which say nothing about their
uncertainty, ``chroma_gain(vivid)`` scales the predicted chroma instead (0 -> as trained, 1 -> x2).

**Calibration.** Those are the defaults of the conservative end. A trained model's own
conservative end is fitted on its validation photos (``colorization.calibrate``): the temperature
``T0``, the shrinkage ``k0`` and a chroma gain ``g0`` (``ab = g * wiener(mu)``) that give the
least mean CIEDE2000 while still restoring a set share of the photos' colourfulness. They are
stored in the checkpoint's metadata (``"decode"``) and ``decode_ab(..., calibration=...)`` uses
them: ``T = T0^(1-v) * 0.2^v``, ``k = k0 * (1-v)^2``, ``g = g0^(1-v)``, so vivid 1 is the same
vivid end for every model and vivid 0 is the fitted point.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from . import DEFAULT_VIVID, lab

__all__ = ["ab_bins", "soft_encode", "annealed_mean", "decode_ab", "wiener_decode", "rebalancing_weights", "temperature", "shrinkage", "chroma_gain",
           "check_vivid", "decode_params", "DEFAULT_VIVID", "UNCALIBRATED"]

T_CONSERVATIVE, T_VIVID = 1.0, 0.2
# The conservative end of a model with no fitted calibration (the pre-calibration decoding).
UNCALIBRATED = {"temperature": T_CONSERVATIVE, "shrinkage": 1.0, "gain": 1.0}


def check_vivid(vivid: float) -> float:
    v = float(vivid)
    if not 0.0 <= v <= 1.0 or math.isnan(v):
        raise ValueError(f"vivid must be between 0 (conservative) and 1 (vivid), got {vivid!r}")
    return v


def temperature(vivid: float) -> float:
    v = check_vivid(vivid)
    return T_CONSERVATIVE ** (1.0 - v) * T_VIVID**v


def chroma_gain(vivid: float) -> float:
    return 1.0 + check_vivid(vivid)


@functools.lru_cache(maxsize=8)
def _bins(step: int) -> tuple[tuple[float, float], ...]:
    # real numbers on the CPU, whatever the default device (a model built on "meta" to check shapes)
    levels = torch.arange(0, 256, 5, dtype=torch.float32, device="cpu") / 255.0
    r, g, b = torch.meshgrid(levels, levels, levels, indexing="ij")
    rgb = torch.stack((r.flatten(), g.flatten(), b.flatten()))[:, :, None]  # (3, N, 1)
    ab = lab.rgb_to_lab(rgb)[1:, :, 0]  # (2, N)
    q = torch.unique(torch.round(ab / step).to(torch.int64), dim=1)
    return tuple((float(a) * step, float(b) * step) for a, b in q.t().tolist())


def ab_bins(step: int = 10) -> torch.Tensor:
    """(Q, 2) centres of the a*b* bins that sRGB colours reach, in Lab units (sorted, fixed)."""
    return torch.tensor(_bins(int(step)), dtype=torch.float32)


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, sigma: float = 5.0, k: int = 5) -> torch.Tensor:
    """(N, 2, H, W) a*b* in Lab units -> (N, Q, H, W) targets: a Gaussian over the ``k`` nearest bins."""
    n, _, h, w = ab.shape
    pts = ab.permute(0, 2, 3, 1).reshape(-1, 2).float()
    d2 = torch.cdist(pts, centres.to(pts.device)).pow(2)  # (P, Q)
    near, idx = d2.topk(k, dim=1, largest=False)
    wts = torch.exp(-near / (2 * sigma**2))
    wts = wts / wts.sum(1, keepdim=True)
    out = torch.zeros_like(d2).scatter_(1, idx, wts)
    return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def rebalancing_weights(ab_samples: torch.Tensor, centres: torch.Tensor, lam: float = 0.5,
                        sigma: float = 5.0) -> torch.Tensor:
    """Per-bin loss weights that lift rare (saturated) colours, as in Zhang et al. 2016.

    ``ab_samples`` (P, 2) are a*b* values of training pixels; the empirical bin distribution is
    smoothed with a Gaussian (``sigma`` Lab units), mixed with the uniform one (``lam``), inverted,
    and normalised so that the expected weight over the data is 1.
    """
    d2 = torch.cdist(ab_samples.float(), centres).pow(2)
    counts = torch.bincount(d2.argmin(1), minlength=centres.shape[0]).float()
    p = counts / counts.sum()
    k = torch.exp(-torch.cdist(centres, centres).pow(2) / (2 * sigma**2))
    p = k @ p
    p = p / p.sum()
    w = 1.0 / ((1 - lam) * p + lam / centres.shape[0])
    return w / (w * p).sum()


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, T: float) -> torch.Tensor:
    """(N, Q, H, W) logits -> (N, 2, H, W) a*b* in Lab units: the mean of softmax(logits / T)."""
    p = F.softmax(logits.float() / T, dim=1)
    return torch.einsum("nqhw,qc->nchw", p, centres.to(p.device))


def shrinkage(vivid: float) -> float:
    return (1.0 - check_vivid(vivid)) ** 2


def decode_params(vivid: float, calibration: dict | None = None) -> tuple[float, float, float]:
    """(temperature, shrinkage k, chroma gain) at ``vivid``, from the conservative end
    ``calibration`` (``UNCALIBRATED`` when None) to the fixed vivid end (T 0.2, k 0, gain 1)."""
    v = check_vivid(vivid)
    c = {**UNCALIBRATED, **(calibration or {})}
    t0, k0, g0 = float(c["temperature"]), float(c["shrinkage"]), float(c["gain"])
    if not (t0 > 0 and k0 >= 0 and g0 > 0):
        raise ValueError(f"bad decoding calibration {calibration!r}")
    return t0 ** (1.0 - v) * T_VIVID**v, k0 * (1.0 - v) ** 2, g0 ** (1.0 - v)


def decode_ab(logits: torch.Tensor, centres: torch.Tensor, vivid: float = DEFAULT_VIVID,
              calibration: dict | None = None) -> torch.Tensor:
    """(N, Q, H, W) logits -> (N, 2, H, W) a*b* (Lab units): annealed mean, shrunk where unsure,
    times the gain (see ``decode_params``)."""
    centres = centres.to(logits.device)
    t, k, gain = decode_params(vivid, calibration)
    return wiener_decode(logits, centres, t, k, gain)


def wiener_decode(logits: torch.Tensor, centres: torch.Tensor, t: float, k: float, gain: float = 1.0) -> torch.Tensor:
    """The decoding at explicit parameters: ``gain * mu * |mu|^2 / (|mu|^2 + k * var)``."""
    p = F.softmax(logits.float() / t, dim=1)
    mu = torch.einsum("nqhw,qc->nchw", p, centres)
    if k == 0.0:
        return mu * gain if gain != 1.0 else mu
    var = (torch.einsum("nqhw,q->nhw", p, (centres**2).sum(1)) - (mu**2).sum(1)).clamp_min(0.0)
    power = (mu**2).sum(1)
    return mu * (gain * power / (power + k * var + 1e-6))[:, None]
