"""The catalogue browser and JSON/IIIF API (``arhiva web``). No torch, Scrapy or Prefect here."""
from __future__ import annotations

__all__ = ["create_app"]


def create_app(engine=None, settings=None):
    """See :func:`catalog.web.app.create_app`."""
    from catalog.web.app import create_app as _create

    return _create(engine, settings)
