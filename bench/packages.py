"""Reading files out of installable packages: Qt resource files (``.rcc``) and the credits of a
Debian (DEP-5) copyright file. Used by ``bench/photos.py``."""

from __future__ import annotations

import fnmatch
import re
import struct
import zlib

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _stem(path: str) -> str:
    """``path`` without the extension of its last part."""
    head, _, last = path.rpartition("/")
    return (head + "/" if head else "") + (last.rsplit(".", 1)[0] if "." in last.strip(".") else last)


def rcc_files(data: bytes) -> dict[str, bytes]:
    """The files of a Qt resource file (``rcc`` binary format, versions 1-3) by their inner paths.

    Layout: the magic ``qres``, the format version and the offsets of the tree, data and names
    sections (big-endian). Each tree node: its name's offset, flags (2 directory, 1 zlib as
    qCompress, 4 zstd), then a directory's child count and first child, or a file's locale and
    data offset; from version 2 on a 64-bit modification time follows. A name: its length in
    UTF-16 units, a hash, the UTF-16BE text. A file's data: its size, then the bytes (qCompress:
    a 4-byte uncompressed size, then zlib)."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file (no 'qres' magic)")
    version, tree, blobs, names = struct.unpack(">IIII", data[4:20])
    if version not in (1, 2, 3):
        raise ValueError(f"Qt resource file version {version} is not known")
    node = 22 if version >= 2 else 14

    def name(off: int) -> str:
        (n,) = struct.unpack(">H", data[names + off:names + off + 2])
        return data[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes] = {}
    todo = [(0, "")]
    while todo:
        i, prefix = todo.pop()
        p = tree + i * node
        name_off, flags = struct.unpack(">IH", data[p:p + 6])
        path = prefix + (name(name_off) if i else "")
        if flags & 2:
            count, first = struct.unpack(">II", data[p + 6:p + 14])
            todo += [(c, path + "/") for c in range(first, first + count)]
            continue
        (off,) = struct.unpack(">I", data[p + 10:p + 14])
        (size,) = struct.unpack(">I", data[blobs + off:blobs + off + 4])
        blob = data[blobs + off + 4:blobs + off + 4 + size]
        if flags & 1:
            blob = zlib.decompress(blob[4:])
        elif flags & 4:
            raise ValueError(f"{path}: zstd-compressed resources are not supported")
        out[path] = blob
    return out


def dep5_credit(text: str, basename: str, source: str | None = None) -> tuple[str, str]:
    """Copyright holder and licence of a file in a Debian (DEP-5) copyright file; last match wins.

    ``source``: the file's path in the source tree, matched against the whole ``Files`` globs
    with the extensions left aside (GCompris's build turns ``x.jpg`` into ``x.webp``)."""
    author, licence = "", ""
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(Files|Copyright|License):[ \t]*(.*)$", stanza, re.M))
        globs = fields.get("Files", "").split() + re.findall(r"^[ \t]+(\S+)$", stanza.split("\nCopyright:")[0], re.M)
        if source is not None:
            hit = any(fnmatch.fnmatch(_stem(source), _stem(g)) for g in globs)
        else:
            # Installed paths differ from the source tree's: match on the file name; a folder-wide
            # glob such as ``debian/*`` says nothing about an installed photo.
            lasts = [g.rsplit("/", 1)[-1] for g in globs if "/" not in g or g.rsplit("/", 1)[-1] not in ("*", "*.*")]
            hit = any(fnmatch.fnmatch(basename, g) for g in lasts)
        if hit and globs == ["*"]:  # the package-wide stanza: it lists every author of the package
            author, licence = "", f"{fields.get('License', '?').strip()} (the package's: Files: *)"
        elif hit:
            author, licence = fields.get("Copyright", author).strip(), fields.get("License", licence).strip()
    if not licence:  # not named: the licence most of the package's files have
        found = re.findall(r"^License:[ \t]*(\S.*)$", text, re.M)
        licence = f"{max(set(found), key=found.count)} (the package's; file not named in its copyright)" if found else "?"
    return author or "not named", licence
