"""Checkpoints: generator weights in safetensors with JSON metadata in its header; training
state (optimisers, discriminator, RNG) in a tensors-only file read with ``weights_only=True``.

The ``safetensors`` package is used when installed; otherwise the same format is read and
written by :mod:`colorization.safetensors_lite`. Nothing here unpickles arbitrary objects. A file that is not an arhiva checkpoint raises
:class:`CheckpointError` with the reason.
"""

from __future__ import annotations

import json
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


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the generator (eval mode) and return ``(generator, metadata)``."""
    from .networks import build_generator

    load_file = _st()[1]

    path = Path(path)
    meta = read_metadata(path)
    try:
        gen = build_generator(meta["arch"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _not_ckpt(path, f"unknown architecture {meta.get('arch')!r}") from exc
    try:
        state = load_file(str(path), device="cpu")
        gen.load_state_dict(state, strict=True)
    except Exception as exc:
        raise _not_ckpt(path, f"its weights do not fit the architecture ({exc})") from exc
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
