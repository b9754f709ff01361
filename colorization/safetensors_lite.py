"""The safetensors file format in plain torch, for machines without the ``safetensors`` package.

Same bytes on disk (8-byte little-endian header length, JSON header with ``__metadata__``, raw
little-endian tensor data), so files written here load with ``safetensors`` and the other way
round. :mod:`colorization.checkpoint` uses the package when it is installed and this otherwise
(e.g. a GPU machine with only torch, torchvision, numpy, Pillow and scikit-image).
"""

from __future__ import annotations

import json
import struct

import torch

__all__ = ["save_file", "load_file", "read_header_metadata"]

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}
_NAMES = {v: k for k, v in _DTYPES.items()}


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None) -> None:
    header: dict = {"__metadata__": dict(metadata or {})}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def _read(path: str) -> tuple[dict, bytes]:
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("file too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:
            raise ValueError("safetensors header too large")
        header = json.loads(f.read(n))
        return header, f.read()


def read_header_metadata(path: str) -> dict[str, str]:
    return _read(path)[0].get("__metadata__") or {}


def load_file(path: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    header, data = _read(path)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        buf = bytearray(data[start:end])
        t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).to(device)
    return out
