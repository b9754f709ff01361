"""Full-resolution colorization of any photo.

The network runs at a working size (shorter side = ``render_size``, padded to a multiple of
32); its predicted chroma (a*b*) is upsampled to the photo's full size and put on the photo's
own full-resolution L, so the output has the original's size and detail. An optional crop box
(left, top, right, bottom) limits colorization to that region (e.g. to leave out PastVu's
watermark strip); pixels outside it are passed through unchanged.

``vivid`` (0..1) is how much colour the user wants: for a chroma-classification generator it sets
the annealed mean's temperature (0: the plain mean, near grey wherever the model is unsure; 1:
close to the most likely colour), for a regression generator a chroma gain (x1 .. x2). See :mod:`colorization.chroma`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import DEFAULT_VIVID, lab
from .chroma import check_vivid, chroma_gain
from .imageio import Box, ImageSource, LoadedImage, clamp_box, load_image
from .runtime import amp_dtype, autocast, resolve_device

__all__ = ["Colorizer", "working_shape"]


MAX_ASPECT = 8  # the working long side is at most this many render sizes


def working_shape(h: int, w: int, render_size: int, multiple: int = 32) -> tuple[int, int, int, int]:
    """(h_r, w_r, h_pad, w_pad): the resized shape (shorter side = render_size, the longer at most
    MAX_ASPECT × render_size: a strip of 1 × 5,000 pixels would otherwise be worked on at
    256 × 1,280,000, tens of GB) and its padding."""
    s = min(render_size / min(h, w), MAX_ASPECT * render_size / max(h, w))
    hr, wr = max(1, round(h * s)), max(1, round(w * s))
    return hr, wr, -(-hr // multiple) * multiple, -(-wr // multiple) * multiple


class Colorizer:
    """Batched colorization with a trained generator.

    ``Colorizer(checkpoint_path, device="auto", render_size=256, batch_size=8, vivid=0)``, or
    ``Colorizer(generator=module)``; then ``colorize(images, crop_boxes=None)`` takes paths or
    PIL images of any mode (grey, RGB, RGBA, palette, 16-bit, EXIF-rotated) and returns PIL
    images of the same size (RGB, or RGBA when the input had transparency).
    """

    def __init__(
        self,
        checkpoint_path: str | Path | None = None,
        *,
        generator: torch.nn.Module | None = None,
        device: str | torch.device = "auto",
        render_size: int = 256,
        batch_size: int = 8,
        amp: str = "auto",
        channels_last: bool = True,
        vivid: float = DEFAULT_VIVID,
    ):
        self.device = resolve_device(device)
        if generator is None:
            if checkpoint_path is None:
                raise ValueError("give a checkpoint path or a generator")
            from .checkpoint import load_checkpoint

            generator, self.metadata = load_checkpoint(checkpoint_path, self.device)
        else:
            self.metadata = {"arch": getattr(generator, "arch", None)}
        if render_size < 32:
            raise ValueError("render_size must be at least 32")
        self.render_size = int(render_size)
        self.vivid = check_vivid(vivid)
        self.batch_size = max(1, int(batch_size))
        self.dtype = amp_dtype(self.device, amp)
        self.channels_last = channels_last and self.device.type != "mps"
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.generator = generator.to(self.device, memory_format=fmt).eval()

    def _full_res_l(self, img: LoadedImage, box: Box) -> torch.Tensor:
        left, top, right, bottom = box
        px = torch.from_numpy(img.pixels[top:bottom, left:right]).permute(2, 0, 1).to(self.device)
        if px.dtype == torch.uint8:
            return lab.uint8_to_l(px)[0]
        if px.shape[0] == 1:
            px = px.expand(3, -1, -1)
        return lab.rgb_to_l(px)[0]

    @torch.inference_mode()
    def _predict(self, Ls: list[torch.Tensor]) -> list[torch.Tensor]:
        """Full-res L tensors (H, W) -> ab (2, H, W) in Lab units, batched by working shape."""
        shapes = [working_shape(*L.shape, self.render_size) for L in Ls]
        out: list[torch.Tensor | None] = [None] * len(Ls)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(shapes):
            groups.setdefault(s[2:], []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                part = idx[start : start + self.batch_size]
                small = []
                for i in part:
                    hr, wr, hp, wp = shapes[i]
                    x = F.interpolate(Ls[i][None, None], size=(hr, wr), mode="bilinear", antialias=True, align_corners=False)
                    small.append(F.pad(x, (0, wp - wr, 0, hp - hr), mode="replicate"))
                x = lab.normalize_l(torch.cat(small))
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(self.device, self.dtype):
                    if getattr(self.generator, "head_kind", None) == "classes":
                        ab = self.generator(x, vivid=self.vivid).float()
                    else:
                        ab = self.generator(x).float()
                        if chroma_gain(self.vivid) != 1.0:
                            ab = (ab * chroma_gain(self.vivid)).clamp_(-1.0, 1.0)
                for k, i in enumerate(part):
                    hr, wr, _, _ = shapes[i]
                    a = ab[k : k + 1, :, :hr, :wr]
                    a = F.interpolate(a, size=Ls[i].shape, mode="bilinear", align_corners=False)
                    out[i] = lab.denormalize_ab(a[0]).clamp_(-128.0, 127.0)
        return out  # type: ignore[return-value]

    def colorize(self, images: Sequence[ImageSource], crop_boxes: Sequence[Box | None] | None = None) -> list[Image.Image]:
        """Colorize photos; output i has the size of input i (after EXIF orientation)."""
        images = list(images)
        boxes = list(crop_boxes) if crop_boxes is not None else [None] * len(images)
        if len(boxes) != len(images):
            raise ValueError("crop_boxes must have one entry per image")
        results: list[Image.Image] = []
        for start in range(0, len(images), self.batch_size):
            loaded = [load_image(src) for src in images[start : start + self.batch_size]]
            bx = [clamp_box(b, im.size) for b, im in zip(boxes[start : start + self.batch_size], loaded)]
            Ls = [self._full_res_l(im, b) for im, b in zip(loaded, bx)]
            abs_ = self._predict(Ls)
            for im, b, L, ab in zip(loaded, bx, Ls, abs_):
                results.append(self._compose(im, b, L, ab))
        return results

    def _compose(self, img: LoadedImage, box: Box, L: torch.Tensor, ab: torch.Tensor) -> Image.Image:
        rgb = lab.lab_to_rgb_uint8(L, ab).permute(1, 2, 0).cpu().numpy()
        left, top, right, bottom = box
        if (left, top, right, bottom) == (0, 0, *img.size):
            out = rgb
        else:
            out = img.rgb_uint8().copy()
            out[top:bottom, left:right] = rgb
        res = Image.fromarray(np.ascontiguousarray(out), "RGB")
        if img.alpha is not None:
            res.putalpha(Image.fromarray(img.alpha, "L"))
        return res
