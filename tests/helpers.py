"""Small generators of test data (images) shared by the tests."""
from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image


def image(seed: int = 0, size: tuple[int, int] = (64, 48), grey: bool = False) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 / w), (yy * 255 / h), ((xx + yy) * 127 / (w + h))], axis=-1)
    arr = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    return im.convert("L") if grey else im


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (64, 48), grey: bool = False, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image(seed, size, grey).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@contextmanager
def statements_run(engine, phrase: str = "") -> Iterator[list[str]]:
    """The statements run on ``engine`` inside the block that contain ``phrase`` (all by default)."""
    from sqlalchemy import event

    seen: list[str] = []

    def listener(conn, cursor, statement, *args):
        if phrase in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)
