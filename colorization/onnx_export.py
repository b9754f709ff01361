"""ONNX export of the generator, checked against torch with onnxruntime.

The exported graph takes ``L`` (N, 1, H, W) float32 scaled to [-1, 1] (H, W multiples of 32,
batch, height and width dynamic) and returns ``ab`` (N, 2, H, W) = a*b* / 110.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["export_onnx", "check_onnx"]


def export_onnx(generator: nn.Module, path: str | Path, *, opset: int = 17, check: bool = True,
                metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Write ``path`` and (``check``) compare onnxruntime with torch on random inputs.

    Returns ``{"path", "opset", "max_abs_diff"}``; raises ``RuntimeError`` when the outputs
    differ by more than 1e-3.
    """
    import onnx  # imported here: only export needs it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = copy.deepcopy(getattr(generator, "_orig_mod", generator)).float().cpu().eval()
    gen = gen.to(memory_format=torch.contiguous_format)
    example = torch.randn(1, 1, 64, 96)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            gen, (example,), str(path), input_names=["L"], output_names=["ab"], opset_version=opset,
            dynamic_axes={"L": {0: "batch", 2: "height", 3: "width"}, "ab": {0: "batch", 2: "height", 3: "width"}},
            dynamo=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    for k, v in {"producer": "arhiva.colorization", **(metadata or {})}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, str(v)
    onnx.save(model, str(path))
    result: dict[str, Any] = {"path": str(path), "opset": opset, "max_abs_diff": None}
    if check:
        result["max_abs_diff"] = check_onnx(gen, path)
    return result


def check_onnx(generator: nn.Module, path: str | Path, shapes=((2, 1, 64, 64), (1, 1, 96, 160))) -> float:
    """Largest |onnxruntime - torch| over random inputs of several shapes."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = generator.float().cpu().eval()
    worst = 0.0
    g = torch.Generator().manual_seed(0)
    for shape in shapes:
        x = torch.rand(shape, generator=g) * 2 - 1
        with torch.no_grad():
            ref = gen(x.contiguous()).numpy()
        got = sess.run(["ab"], {"L": x.numpy()})[0]
        worst = max(worst, float(abs(got - ref).max()))
    if worst > 1e-3:
        raise RuntimeError(f"ONNX export of {path} differs from torch by {worst:.2e}")
    return worst
