"""Checkpoints: generator weights in safetensors with JSON metadata in its header; training
state (optimisers, discriminator, RNG) in a tensors-only file read with ``weights_only=True``.

The ``safetensors`` package is used when installed; otherwise the same format is read and
written by :mod:`colorization.safetensors_lite`. Nothing here unpickles arbitrary objects. A file that is not an arhiva checkpoint raises
:class:`CheckpointError` with the reason.
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "LoadedCheckpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_metadata",
    "save_train_state",
    "load_train_state",
    "library_versions",
    "FORMAT",
]

FORMAT = "arhiva-colorizer"
FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """The file is missing, corrupt, or not an arhiva colorization checkpoint."""


class LoadedCheckpoint(NamedTuple):
    generator: nn.Module
    metadata: dict[str, Any]


def library_versions() -> dict[str, str]:
    import numpy
    import PIL
    import skimage
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "scikit-image": skimage.__version__,
    }


def _st():
    """(save_file, load_file, read_metadata) from ``safetensors``, or the plain-torch fallback."""
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file, save_file
    except ImportError:
        from .safetensors_lite import load_file, read_header_metadata, save_file

        return save_file, load_file, read_header_metadata

    def read(path: str) -> dict[str, str]:
        with safe_open(path, framework="pt") as f:
            return f.metadata() or {}

    return save_file, load_file, read


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp))
    os.replace(tmp, path)


def save_checkpoint(path: str | Path, generator: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write the generator's weights and ``metadata`` (JSON-able; ``arch`` is added)."""
    save_file = _st()[0]

    path = Path(path)
    gen = getattr(generator, "_orig_mod", generator)  # unwrap torch.compile
    state = {k: v.detach().to("cpu").contiguous() for k, v in gen.state_dict().items()}
    meta = dict(metadata)
    meta["arch"] = gen.arch
    if getattr(gen, "calibration", None) and "decode" not in meta:
        meta["decode"] = dict(gen.calibration)
    meta.setdefault("versions", library_versions())
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "arhiva": json.dumps(meta)}
    _atomic(path, lambda p: save_file(state, p, metadata=header))
    return path


def _not_ckpt(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} is not an arhiva checkpoint: {why}")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without loading its weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file")
    try:
        header = _st()[2](str(path))
    except Exception as exc:
        raise _not_ckpt(path, f"not a readable safetensors file ({exc})") from exc
    if header.get("format") != FORMAT:
        raise _not_ckpt(path, "the safetensors header has no arhiva-colorizer marker")
    if header.get("format_version") != FORMAT_VERSION:
        raise _not_ckpt(path, f"unsupported format version {header.get('format_version')!r}")
    try:
        meta = json.loads(header["arhiva"])
    except (KeyError, ValueError) as exc:
        raise _not_ckpt(path, "its metadata is not valid JSON") from exc
    if not isinstance(meta, dict) or "arch" not in meta:
        raise _not_ckpt(path, "its metadata lacks the architecture")
    return meta


# The largest generator a checkpoint may ask for (the lean U-Net at width 64 has 13.7M
# parameters, the fastai-style reference 31.1M): a header asking for more is refused before
# anything is allocated.
MAX_PARAMETERS = 500_000_000


def _check_shapes(path: Path, arch: Any) -> None:
    """The architecture built on the meta device (no memory) against the tensors the file's
    header declares: same names, same shapes, a sane size. Nothing is allocated before this."""
    from .networks import build_generator

    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build_generator(arch).state_dict().items()}
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise _not_ckpt(path, f"unknown architecture {arch!r}") from exc
    total = sum(math.prod(shape) for shape in shapes.values())
    if total > MAX_PARAMETERS:
        raise _not_ckpt(path, f"its architecture has {total:,} parameters, over the limit of {MAX_PARAMETERS:,}")
    try:
        stored = _header_shapes(path)
    except Exception as exc:
        raise _not_ckpt(path, f"not a readable safetensors file ({exc})") from exc
    if stored != shapes:
        odd = sorted(set(stored) ^ set(shapes)) or [k for k in shapes if stored[k] != shapes[k]]
        raise _not_ckpt(path, f"its weights do not fit the architecture (first mismatch: {odd[0]})")


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape from a safetensors header (8-byte length, JSON), reading nothing else."""
    import struct

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 100_000_000:
            raise ValueError("header too large")
        header = json.loads(f.read(n))
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the generator (eval mode) and return ``(generator, metadata)``. The header's
    architecture and tensor shapes are checked before any weight is allocated."""
    from .networks import build_generator

    load_file = _st()[1]

    path = Path(path)
    meta = read_metadata(path)
    _check_shapes(path, meta["arch"])
    try:
        gen = build_generator(meta["arch"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _not_ckpt(path, f"unknown architecture {meta.get('arch')!r}") from exc
    try:
        state = load_file(str(path), device="cpu")
        gen.load_state_dict(state, strict=True)
    except Exception as exc:
        raise _not_ckpt(path, f"its weights do not fit the architecture ({exc})") from exc
    if isinstance(meta.get("decode"), dict) and hasattr(gen, "calibration"):
        gen.calibration = {k: float(v) for k, v in meta["decode"].items() if k in ("temperature", "shrinkage", "gain")}
    return LoadedCheckpoint(gen.to(device).eval(), meta)


def save_train_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Tensors, numbers, strings, lists and dicts only (loadable with ``weights_only=True``)."""
    path = Path(path)
    _atomic(path, lambda p: torch.save(state, p))
    return path


def load_train_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not an arhiva training state: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT + "-train-state":
        raise CheckpointError(f"{path} is not an arhiva training state: marker missing")
    return state
