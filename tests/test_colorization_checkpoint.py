"""colorization.checkpoint: bit-exact round trip, clear refusals, no unpickling; ONNX export."""

import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from colorization.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_train_state,
    read_metadata,
    save_checkpoint,
    save_train_state,
)
from colorization.networks import UNetGenerator
from colorization.reference import ReferenceUNet

torch.set_num_threads(2)


def _trained_like(gen):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.01)
        gen.train()
        gen(torch.randn(4, 1, 64, 64))  # move the BatchNorm running statistics
    return gen.eval()


@pytest.mark.parametrize("make", [lambda: UNetGenerator(8, (1, 1, 1, 1)), lambda: ReferenceUNet(8),
                                  lambda: UNetGenerator(8, (1, 1, 1, 1), head="classes")])
def test_round_trip_is_bit_exact(tmp_path, make):
    from colorization import chroma

    gen = _trained_like(make())
    path = save_checkpoint(tmp_path / "m.safetensors", gen, {"metrics": {"psnr": 21.5}, "config": {"x": 1}})
    chroma._bins.cache_clear()  # as in a fresh process: the first model built is the meta-device check's
    loaded, meta = load_checkpoint(path)
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        assert torch.equal(gen(x), loaded(x))
    assert meta["metrics"]["psnr"] == 21.5 and meta["arch"] == gen.arch
    assert read_metadata(path)["config"] == {"x": 1}
    assert not loaded.training


def _refused(path, *needles):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_non_checkpoints_are_refused_clearly(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    _refused(junk, "is not an arhiva checkpoint")

    jpeg = tmp_path / "photo.jpg"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(jpeg)
    _refused(jpeg, "is not an arhiva checkpoint")

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    _refused(foreign, "is not an arhiva checkpoint", "marker")

    _refused(tmp_path / "missing.safetensors", "does not exist")

    good = save_checkpoint(tmp_path / "good.safetensors", UNetGenerator(8, (1, 1, 1, 1)), {})
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _refused(truncated, "is not an arhiva checkpoint")


def test_wrong_weights_for_the_architecture(tmp_path):
    good = save_checkpoint(tmp_path / "g.safetensors", UNetGenerator(8, (1, 1, 1, 1)), {})
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(good), framework="pt") as f:
        header = f.metadata()
    state = load_file(str(good))
    state.pop("head.0.weight")
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=header)
    _refused(bad, "do not fit")
    state = load_file(str(good))
    state["head.0.weight"] = torch.zeros(1, 1, 3, 3)
    save_file(state, str(bad), metadata=header)
    _refused(bad, "do not fit")


def _with_arch(tmp_path, arch_change: dict):
    """A small real checkpoint whose header claims another architecture."""
    import json as _json

    from safetensors import safe_open
    from safetensors.torch import load_file

    good = save_checkpoint(tmp_path / "small.safetensors", UNetGenerator(8, (1, 1, 1, 1)), {})
    with safe_open(str(good), framework="pt") as f:
        header = f.metadata()
    meta = _json.loads(header["arhiva"])
    meta["arch"] = meta["arch"] | arch_change
    path = tmp_path / "claims.safetensors"
    save_file(load_file(str(good)), str(path), metadata=header | {"arhiva": _json.dumps(meta)})
    return path


def _peak_growth_mb(fn) -> float:
    """How far the process's resident memory rose above its start while ``fn`` ran (Linux)."""
    def kb(field):
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = kb("VmRSS:")
    fn()
    return (kb("VmHWM:") - before) / 1024


def test_the_header_is_checked_before_anything_is_allocated(tmp_path):
    huge = _with_arch(tmp_path, {"width": 4096})  # ~45 billion parameters
    grew = _peak_growth_mb(lambda: _refused(huge, "parameters, over the limit"))
    assert grew < 50
    wide = _with_arch(tmp_path, {"width": 160})  # plausible, but not what the file holds (~85M parameters)
    grew = _peak_growth_mb(lambda: _refused(wide, "do not fit"))
    assert grew < 50  # the 340 MB network was never built


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/arhiva_pwned_by_pickle",))


def test_pickles_are_never_executed(tmp_path):
    import os

    flag = "/tmp/arhiva_pwned_by_pickle"
    if os.path.exists(flag):
        os.remove(flag)
    evil = tmp_path / "train_state.pt"
    torch.save({"format": "arhiva-colorizer-train-state", "x": _Evil()}, evil)
    with pytest.raises(CheckpointError):
        load_train_state(evil)
    plain = tmp_path / "model.pkl"
    with open(plain, "wb") as f:
        pickle.dump(_Evil(), f)
    _refused(plain, "is not an arhiva checkpoint")
    assert not os.path.exists(flag)


def test_train_state_round_trip(tmp_path):
    state = {"format": "arhiva-colorizer-train-state", "w": torch.arange(3), "epoch": 2, "hist": "[]"}
    save_train_state(tmp_path / "s.pt", state)
    back = load_train_state(tmp_path / "s.pt")
    assert torch.equal(back["w"], state["w"]) and back["epoch"] == 2
    torch.save({"other": 1}, tmp_path / "o.pt")
    with pytest.raises(CheckpointError, match="marker"):
        load_train_state(tmp_path / "o.pt")


def test_onnx_export_matches_torch(tmp_path):
    from colorization.onnx_export import export_onnx

    gen = _trained_like(UNetGenerator(8, (1, 1, 1, 1)))
    info = export_onnx(gen, tmp_path / "g.onnx")
    assert info["max_abs_diff"] < 1e-4
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 32, 128)).astype(np.float32)
    with torch.no_grad():
        ref = gen(torch.from_numpy(x)).numpy()
    assert np.abs(sess.run(["ab"], {"L": x})[0] - ref).max() < 1e-4
