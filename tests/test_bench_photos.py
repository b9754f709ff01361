"""The photo set's readers: Qt resource files (GCompris's pictures), Debian copyright credits,
and which globbed pictures count as training photos."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bench.packages import dep5_credit, rcc_files
from bench.photos import _name, _usable


def _rcc(tree: dict, version: int = 3) -> bytes:
    """A Qt resource file holding ``tree`` (folders are dicts, files are (bytes, compress))."""
    names, data = bytearray(), bytearray()
    nodes: list[list] = [[0, 2, 0, 0]]  # root: a folder
    name_at: dict[str, int] = {}

    def name(n: str) -> int:
        if n not in name_at:
            name_at[n] = len(names)
            names.extend(struct.pack(">HI", len(n), 0) + n.encode("utf-16-be"))
        return name_at[n]

    def place(index: int, folder: dict) -> None:  # a folder's children are consecutive nodes
        first = len(nodes)
        items = sorted(folder.items())
        nodes.extend([name(n), 0, 0, 0] for n, _ in items)
        nodes[index][2:] = [len(items), first]
        for k, (_, v) in enumerate(items):
            if isinstance(v, dict):
                nodes[first + k][1] = 2
                place(first + k, v)
            else:
                blob, compress = v
                if compress:
                    blob = struct.pack(">I", len(blob)) + zlib.compress(blob)
                nodes[first + k][1:] = [1 if compress else 0, len(data)]
                data.extend(struct.pack(">I", len(blob)) + blob)

    place(0, tree)
    size = 22 if version >= 2 else 14
    raw = bytearray()
    for node in nodes:
        if node[1] & 2:
            raw += struct.pack(">IHII", node[0], node[1], node[2], node[3])
        else:
            raw += struct.pack(">IHHHI", node[0], node[1], 0, 0, node[2])
        if version >= 2:
            raw += struct.pack(">Q", 0)
        assert len(raw) % size == 0
    head = 20 + (4 if version >= 3 else 0)
    tree_at, data_at = head, head + len(raw)
    names_at = data_at + len(data)
    out = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        out += struct.pack(">I", 0)
    return out + bytes(raw) + bytes(data) + bytes(names)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_files_reads_every_file_by_its_inner_path_compressed_or_not(version):
    big = bytes(range(256)) * 40
    blob = _rcc({"gcompris": {"a.webp": (b"plain bytes", False),
                              "sub": {"b.png": (big, True), "ţară.jpg": (b"x", False)}}}, version)
    assert rcc_files(blob) == {"/gcompris/a.webp": b"plain bytes", "/gcompris/sub/b.png": big,
                               "/gcompris/sub/ţară.jpg": b"x"}


def test_rcc_files_refuses_what_is_not_a_resource_file():
    with pytest.raises(ValueError, match="qres"):
        rcc_files(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(ValueError, match="version 9"):
        rcc_files(b"qres" + struct.pack(">IIII", 9, 0, 0, 0))


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2014 Some Author
           2015 Another Author
License: GPL-3+

Files: src/activities/details/resource/image/*
       src/activities/explore_farm_animals/resource/animals/*
Copyright: 2000 Bruno Coudoin and others
License: GPL-3

Files: src/activities/explore_world_animals/resource/animals/koala.jpg
Copyright: David Iliff
License: CC-BY-SA-3.0
Comment: https://commons.wikimedia.org/wiki/File:Koala_climbing_tree.jpg
"""


def test_dep5_credit_matches_source_paths_whatever_the_extension_and_says_when_only_the_package_wide_stanza_does():
    animals = "src/activities/explore_world_animals/resource/animals/"
    assert dep5_credit(COPYRIGHT, "koala.webp", animals + "koala.webp") == ("David Iliff", "CC-BY-SA-3.0")
    # a second line of a Files field counts as much as the first
    farm = "src/activities/explore_farm_animals/resource/animals/dog.webp"
    assert dep5_credit(COPYRIGHT, "dog.webp", farm) == ("2000 Bruno Coudoin and others", "GPL-3")
    # only the package-wide stanza: no author is claimed from its list of the package's authors
    author, licence = dep5_credit(COPYRIGHT, "eiffelTower.webp", "src/activities/explore_monuments/x/eiffelTower.webp")
    assert author == "not named" and licence.startswith("GPL-3+") and "Files: *" in licence
    # the installed-file form (by file name) is unchanged
    assert dep5_credit(COPYRIGHT, "koala.jpg") == ("David Iliff", "CC-BY-SA-3.0")


def _photo(size=(320, 240)) -> Image.Image:
    rng = np.random.default_rng(0)
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[..., 0] = 200
    arr[..., 1] = np.linspace(40, 160, size[0], dtype=np.uint8)
    arr[..., 2] = rng.integers(0, 60, (size[1], size[0]))
    return Image.fromarray(arr)


def test_usable_keeps_colour_photos_and_says_why_it_leaves_others_out():
    assert _usable(_photo()) is None
    assert "smaller than" in _usable(_photo((150, 300)))
    assert "colourless" in _usable(_photo().convert("L").convert("RGB"))
    cut = _photo().convert("RGBA")
    alpha = np.full((240, 320), 255, np.uint8)
    alpha[:, :100] = 0
    cut.putalpha(Image.fromarray(alpha))
    assert "cut-out" in _usable(cut)
    opaque = _photo().convert("RGBA")  # an alpha channel that hides nothing
    assert _usable(opaque) is None


def test_names_of_gcompris_pictures_say_activity_and_folder_and_never_collide():
    a = _name("/gcompris/src/activities/explore_farm_animals/resource/animals/dog.webp")
    b = _name("/gcompris/src/activities/babyshapes/resource/dog2/dog.webp")
    c = _name("/gcompris/src/activities/explore_monuments/resource/france/eiffelTower.webp")
    assert a == "gc-explore-farm-animals-animals-dog"
    assert b == "gc-babyshapes-dog2-dog"
    assert c == "gc-explore-monuments-france-eiffel-tower"
