"""Tiles and rings for photo.getByBounds: longitude first, counter-clockwise."""
import pytest

from crawlers.pastvu.tiles import REGIONS, BBox, grid, parse_bbox, polygon, region_bbox, ring, split


def signed_area(points: list[list[float]]) -> float:
    """Shoelace area of a closed ``[x, y]`` ring: positive when counter-clockwise."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:])) / 2


def test_ring_is_counter_clockwise_lng_lat_and_closed():
    tile = BBox(28.828, 47.022, 28.842, 47.029)
    r = ring(tile)
    assert r[0] == r[-1] == [28.828, 47.022]  # [lng, lat]
    assert signed_area(r) > 0
    assert polygon(tile) == {"type": "Polygon", "coordinates": [r]}
    # the fixture's request ring, for comparison
    assert r == [[28.828, 47.022], [28.842, 47.022], [28.842, 47.029], [28.828, 47.029], [28.828, 47.022]]


def test_clockwise_ring_has_negative_area():
    assert signed_area(list(reversed(ring(BBox(0, 0, 1, 1))))) < 0


def test_grid_covers_area_without_gaps_or_overlap():
    area = BBox(28.80, 47.00, 28.86, 47.04)
    tiles = grid(area, 0.025)
    assert len(tiles) == 3 * 2
    assert min(t.west for t in tiles) == area.west and max(t.east for t in tiles) == area.east
    assert min(t.south for t in tiles) == area.south and max(t.north for t in tiles) == area.north
    total = sum(t.width * t.height for t in tiles)
    assert total == pytest.approx(area.width * area.height)
    assert all(t.width <= 0.025 + 1e-9 and t.height <= 0.025 + 1e-9 for t in tiles)


def test_grid_of_moldova():
    md = region_bbox("Moldova")
    assert md == REGIONS["moldova"] == BBox(26.616475, 45.466549, 30.163753, 48.491593)
    tiles = grid(md, 0.25)
    assert len(tiles) == 15 * 13
    assert all(signed_area(ring(t)) > 0 for t in tiles)


def test_split_in_four_quadrants():
    t = BBox(28.0, 47.0, 28.5, 47.5)
    parts = split(t)
    assert len(parts) == 4
    assert sum(p.width * p.height for p in parts) == pytest.approx(t.width * t.height)
    assert {(p.west, p.south) for p in parts} == {(28.0, 47.0), (28.25, 47.0), (28.0, 47.25), (28.25, 47.25)}


def test_parse_bbox():
    assert parse_bbox("26.6,45.4,30.2,48.5") == BBox(26.6, 45.4, 30.2, 48.5)
    assert parse_bbox([1, 2, 3, 4]).as_list() == [1, 2, 3, 4]
    for bad in ("1,2,3", "a,b,c,d", "30,45,26,48", "26,48,30,45", "26,95,30,96", "190,1,191,2"):
        with pytest.raises(ValueError):
            parse_bbox(bad)
    with pytest.raises(ValueError, match="unknown region"):
        region_bbox("atlantis")


def test_contains_uses_lat_lon():
    t = BBox(28.8, 47.0, 28.9, 47.1)
    assert t.contains(47.05, 28.85)
    assert not t.contains(28.85, 47.05)


def test_checked_parameters_check_again_unchanged():
    """The runner checks a crawl's parameters, then the spider is built from the checked ones."""
    from crawlers.pastvu.spider import PastvuSpider

    once = PastvuSpider.check_params({"region": "moldova", "years": "1920-1940"})
    assert PastvuSpider.check_params(once) == once
    with pytest.raises(ValueError, match="not both"):
        PastvuSpider.check_params({"region": "moldova", "bbox": "28.8,47.0,28.9,47.1"})
