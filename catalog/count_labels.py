"""What a search's count and facets say: a number, exact or an estimate in words ("about 1.2
million"), and the facet groups beside the results (catalog.counts computes them)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Count:
    value: int
    exact: bool

    def label(self) -> str:
        """'1,234' when exact; 'about 1.2 million', 'about 35,000' when estimated."""
        return f"{self.value:,}" if self.exact else f"about {approx(self.value)}"


@dataclass
class Facets:
    exact: bool
    decades: list[dict[str, Any]] = field(default_factory=list)  # {"decade": 1940 | None, "count": n}
    collections: list[dict[str, Any]] = field(default_factory=list)  # {"name": ..., "count": n}
    colorized: dict[str, int] = field(default_factory=dict)  # {"yes": n, "no": n}

    def as_dict(self) -> dict[str, Any]:
        return {"exact": self.exact, "decades": self.decades, "collections": self.collections,
                "colorized": self.colorized}


def approx(n: int) -> str:
    """Two significant figures in words: 1,234,567 → '1.2 million', 34,567 → '35,000'."""
    if n <= 0:
        return "0"
    digits = math.floor(math.log10(n)) + 1
    rounded = round(n, -(digits - 2)) if digits > 2 else n
    if rounded >= 1_000_000_000:
        return f"{rounded / 1e9:.1f}".rstrip("0").rstrip(".") + " billion"
    if rounded >= 1_000_000:
        return f"{rounded / 1e6:.1f}".rstrip("0").rstrip(".") + " million"
    return f"{rounded:,}"
