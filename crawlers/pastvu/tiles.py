"""Areas and tiles for ``photo.getByBounds``.

Boxes are ``(west, south, east, north)`` in degrees. GeoJSON sent to PastVu
is ``[lng, lat]`` and a polygon's ring must run counter-clockwise (RFC 7946):
a clockwise ring selects the complement of the area (``tests/pastvu_server.py`` answers so too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PRECISION = 6
TILE_SIZE = 0.25        # degrees: the side of the tiles an area is cut into (``--tile-size``)
MIN_TILE_SIZE = 0.005   # degrees: a tile too slow to answer is split down to this side, no further


@dataclass(frozen=True)
class BBox:
    west: float
    south: float
    east: float
    north: float

    def __post_init__(self):
        for name in ("west", "east"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and -180 <= v <= 180):
                raise ValueError(f"{name} longitude {v!r} is not within ±180")
        for name in ("south", "north"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and -90 <= v <= 90):
                raise ValueError(f"{name} latitude {v!r} is not within ±90")
        if self.west >= self.east:
            raise ValueError(f"west {self.west} must be less than east {self.east}")
        if self.south >= self.north:
            raise ValueError(f"south {self.south} must be less than north {self.north}")

    @property
    def width(self) -> float:
        return self.east - self.west

    @property
    def height(self) -> float:
        return self.north - self.south

    def as_list(self) -> list[float]:
        return [self.west, self.south, self.east, self.north]

    def contains(self, lat: float, lon: float, tolerance: float = 1e-6) -> bool:
        return (self.south - tolerance <= lat <= self.north + tolerance
                and self.west - tolerance <= lon <= self.east + tolerance)


# SW 26.616475,45.466549  NE 30.163753,48.491593 (lng,lat), from the issue.
REGIONS = {"moldova": BBox(26.616475, 45.466549, 30.163753, 48.491593)}


def parse_bbox(text: str | list | tuple) -> BBox:
    """``"W,S,E,N"`` (longitude first, as GeoJSON; read as the catalogue reads it,
    ``catalog.queries.parse_bbox``) or a 4-sequence, checked as an area (``BBox``)."""
    from catalog.queries import parse_bbox as catalogue_bbox

    if isinstance(text, str):
        return BBox(*catalogue_bbox(text))
    parts = list(text)
    if len(parts) != 4:
        raise ValueError(f"bbox must be W,S,E,N (4 numbers), got {text!r}")
    try:
        return BBox(*(float(p) for p in parts))
    except (TypeError, ValueError):
        raise ValueError(f"bbox must be 4 numbers W,S,E,N, got {text!r}") from None


def region_bbox(name: str) -> BBox:
    try:
        return REGIONS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown region {name!r}; known: {', '.join(sorted(REGIONS))}") from None


def grid(area: BBox, size: float) -> list[BBox]:
    """Tiles of ``size`` degrees covering ``area`` (the last row/column clipped), west→east, south→north."""
    if not size > 0:
        raise ValueError("tile size must be positive")
    cols = max(1, math.ceil(round(area.width / size, 9)))
    rows = max(1, math.ceil(round(area.height / size, 9)))
    out = []
    for r in range(rows):
        s = round(area.south + r * size, PRECISION)
        n = round(min(area.north, area.south + (r + 1) * size), PRECISION)
        for c in range(cols):
            w = round(area.west + c * size, PRECISION)
            e = round(min(area.east, area.west + (c + 1) * size), PRECISION)
            if e > w and n > s:
                out.append(BBox(w, s, e, n))
    return out


def split(tile: BBox) -> list[BBox]:
    """Four quadrants of a tile (asked when the tile was too big to answer)."""
    mx = round((tile.west + tile.east) / 2, PRECISION + 2)
    my = round((tile.south + tile.north) / 2, PRECISION + 2)
    return [BBox(tile.west, tile.south, mx, my), BBox(mx, tile.south, tile.east, my),
            BBox(tile.west, my, mx, tile.north), BBox(mx, my, tile.east, tile.north)]


def ring(tile: BBox) -> list[list[float]]:
    """The tile's outer ring, ``[lng, lat]``, counter-clockwise, closed."""
    w, s, e, n = tile.west, tile.south, tile.east, tile.north
    return [[w, s], [e, s], [e, n], [w, n], [w, s]]


def polygon(tile: BBox) -> dict:
    return {"type": "Polygon", "coordinates": [ring(tile)]}
