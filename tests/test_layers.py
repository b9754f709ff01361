"""The rooms' imports go one way (DESIGN.md): catalog imports none of the others; crawlers and
importers import the catalogue; colorization imports none of ours; flows ties them together.
Read from the source (every import, at any depth), and checked once imported: the catalogue and
the importers load without torch, Scrapy or Prefect."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("catalog", "crawlers", "importers", "colorization", "flows", "migrations")
ALLOWED = {
    "catalog": {"catalog", "migrations"},  # catalog.migrate runs the migrations (their folder, by the package)
    "crawlers": {"crawlers", "catalog"},
    "importers": {"importers", "catalog"},
    "colorization": {"colorization"},
    "migrations": {"migrations", "catalog"},
    "flows": set(OURS),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(OURS)


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_a_room_imports_only_the_rooms_below_it(room):
    wrong = {str(p.relative_to(ROOT)): sorted(_imports(p) - ALLOWED[room])
             for p in sorted((ROOT / room).rglob("*.py"))}
    assert not {k: v for k, v in wrong.items() if v}


def test_the_catalogue_and_the_importers_load_without_torch_scrapy_or_prefect():
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for room in ("catalog", "importers")
               for p in sorted((ROOT / room).rglob("*.py")) if p.name != "__init__.py"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'scrapy', 'prefect', 'twisted'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
