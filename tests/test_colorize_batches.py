"""flows.colorize._colorize: a batch that fails is tried photo by photo; a photo that alone does
not fit in memory is that photo's failure, any other error of the model or device stops the run."""
from __future__ import annotations

import pytest

import flows.colorize as colorize


class Engine:
    """Colorizes names; a name in ``too_big`` cannot be allocated, ``broken`` breaks the device."""

    def __init__(self, too_big=(), broken=()):
        self.too_big, self.broken, self.calls = set(too_big), set(broken), []

    def colorize(self, sources, crop_boxes=None):
        self.calls.append(list(sources))
        if self.too_big & set(sources):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] . DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 21474836480 bytes.\nError code 12")
        if self.broken & set(sources):
            raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")
        return [f"colour of {s}" for s in sources]


class Ref:
    def __init__(self, sha):
        self.sha256, self.crop_box = sha, None


@pytest.fixture(autouse=True)
def blobs_as_names(monkeypatch):
    monkeypatch.setattr(colorize, "photo_sources", lambda store, shas: list(shas))


def test_a_photo_too_big_for_memory_fails_alone_and_the_others_are_colorized():
    part = [Ref("a"), Ref("thin"), Ref("c")]
    done, failed = colorize._colorize(Engine(too_big={"thin"}), None, part)
    assert [(r.sha256, out) for r, _, out in done] == [("a", "colour of a"), ("c", "colour of c")]
    ((ref, reason),) = failed
    assert ref.sha256 == "thin" and reason.startswith("RuntimeError: [enforce fail") and "\n" not in reason


def test_any_other_runtime_error_stops_the_run():
    with pytest.raises(RuntimeError, match="cuDNN"):
        colorize._colorize(Engine(broken={"c"}), None, [Ref("a"), Ref("c")])
