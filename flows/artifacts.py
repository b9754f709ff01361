"""Prefect artifacts every flow run leaves: a summary table and, where useful, an image grid."""
from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from prefect.artifacts import create_markdown_artifact, create_table_artifact


def summary_table(key: str, summary: dict[str, Any], description: str) -> None:
    rows = [{"measure": k, "value": v if isinstance(v, (int, float, str)) else str(v)}
            for k, v in summary.items() if not isinstance(v, (list, dict))]
    create_table_artifact(key=_key(key), table=rows, description=description)


def before_after_grid(pairs: list[tuple[Image.Image, Image.Image]], out: Path, cell: int = 192) -> Path | None:
    """Originals (left) beside their colorizations (right), one pair per row; written atomically as PNG."""
    if not pairs:
        return None
    grid = Image.new("RGB", (2 * cell + 12, len(pairs) * (cell + 4) + 4), "white")
    draw = ImageDraw.Draw(grid)
    for i, (before, after) in enumerate(pairs):
        for j, im in enumerate((before, after)):
            t = im.convert("RGB").copy()
            t.thumbnail((cell, cell))
            x, y = 4 + j * (cell + 4), 4 + i * (cell + 4)
            grid.paste(t, (x + (cell - t.width) // 2, y + (cell - t.height) // 2))
        draw.line([(cell + 6, 4 + i * (cell + 4)), (cell + 6, 4 + i * (cell + 4) + cell)], fill="#999")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    grid.save(tmp, "PNG")
    tmp.replace(out)
    return out


def image_artifact(key: str, path: Path, title: str, max_side: int = 640, blob: str | None = None) -> None:
    """A markdown artifact that shows the PNG inline (embedded, small) and says where the full one is
    (``blob``: its sha256 in the blob store, which every machine can read)."""
    im = Image.open(path).convert("RGB")
    im.thumbnail((max_side, max_side * 4))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    data = base64.b64encode(buf.getvalue()).decode()
    create_markdown_artifact(key=_key(key), description=title,
                             markdown=f"## {title}\n\n![{title}](data:image/jpeg;base64,{data})\n\nFull size: `{path}`"
                             + (f", blob `{blob}` (`arhiva blobs get {blob}`)" if blob else "") + "\n")


def _key(key: str) -> str:
    # artifact keys: lowercase letters, numbers and dashes
    return "".join(c if c.isalnum() else "-" for c in key.lower()).strip("-")[:100]
