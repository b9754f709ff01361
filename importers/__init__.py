"""Importers: harvesters that read local files instead of crawling (no Scrapy, no network).

``importers.folder`` (``arhiva import FOLDER``): a user's own scans, one record per image file,
metadata from sidecars, file names or EXIF. ``importers.jsonl`` (``arhiva load FILE``): records
from a JSON Lines file, in bulk. Like the crawlers they write through the catalogue
(``catalog.ingest``, ``catalog.assets``) and each import is a run; the CLI (``flows.cli``) calls them.
"""
