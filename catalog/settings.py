"""One settings object for the app, the CLI, the flows and Alembic.

Precedence: explicit overrides (CLI options) > environment (``ARHIVA_*``) >
config file (``ARHIVA_CONFIG`` or ``$ARHIVA_HOME/arhiva.toml``) > defaults.
"""
from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def default_home() -> Path:
    """Where arhiva keeps blobs, models and the embedded database.

    Root gets ``/var/lib/arhiva``: the embedded PostgreSQL runs as a separate
    system user and needs every parent folder of its data dir to be readable,
    which ``/root`` must not become.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/arhiva")
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "arhiva"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads ``arhiva.toml`` (flat keys, same names as the settings)."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("ARHIVA_CONFIG")
        if path:
            cfg = Path(path)
        else:
            home = os.environ.get("ARHIVA_HOME")
            cfg = (Path(home) if home else default_home()) / "arhiva.toml"
        if not cfg.is_file():
            return {}
        try:
            data = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {cfg} is not valid TOML: {exc}") from exc
        section = data.get("arhiva", data)
        return {k: v for k, v in section.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARHIVA_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalogue (postgresql+psycopg://…). "
        "Unset: arhiva runs its own PostgreSQL under ARHIVA_HOME/pg.",
    )
    home: Path = Field(default_factory=default_home, description="Blobs, models, logs, embedded database.")
    user_agent: str = Field(
        default="arhiva/0.1 (+https://github.com/arhiva-project/arhiva; historical photo catalogue)",
        description="User-Agent sent by every harvester.",
    )
    contact_url: str = Field(default="https://github.com/arhiva-project/arhiva", description="Contact URL put in the User-Agent.")
    pastvu_api_url: str = Field(default="https://pastvu.com/api2", description="PastVu API endpoint.")
    pastvu_base_url: str = Field(default="https://pastvu.com", description="PastVu site (photo links, images).")
    max_image_bytes: int = Field(default=60_000_000, ge=1, description="Largest image file accepted.")
    max_image_pixels: int = Field(default=120_000_000, ge=1, description="Largest image (pixels) accepted: decompression-bomb guard.")
    page_size_max: int = Field(default=1000, ge=1, description="Largest page a query or the API returns.")
    count_exact_max: int = Field(default=10_000, ge=0, description="Searches count their matches exactly up to "
                                 "this many; beyond, the count is an estimate (marked 'about').")
    count_sample_rows: int = Field(default=40_000, ge=1, description="Rows of the records table an estimated count "
                                   "reads (a block sample): more is closer and slower.")
    blobs: str | None = Field(
        default=None,
        description="Where blobs live: unset = ARHIVA_HOME/blobs; a folder; or s3://bucket/prefix "
        "(endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY).",
    )
    web_blob_redirect_seconds: int = Field(
        default=0, ge=0, le=7 * 24 * 3600,
        description="`arhiva web` with S3 blobs: 0 streams files through the server; N > 0 redirects "
        "to presigned URLs valid N seconds.",
    )
    web_token: str | None = Field(default=None, description="Token that enables writing endpoints of `arhiva web`.")
    crawl_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Scrapy settings for every crawl of this installation (e.g. a mirror of your own that "
        "needs no delay); a crawl's --setting NAME=VALUE still wins.")
    public_url: str | None = Field(
        default=None, description="Root URL of `arhiva web` as others reach it (https://photos.example/); "
        "absolute links in JSON and IIIF use it instead of the request's Host header.")
    allow_private: str = Field(
        default="", description="Origins (http://host:port, comma-separated) on loopback, private or link-local "
        "addresses that harvesters may fetch; every other such address is refused.")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def blob_root(self) -> Path:
        return self.home / "blobs"

    @property
    def blob_cache(self) -> Path:
        """Local copies of remote blobs (checkpoints, training photos): a cache, safe to delete."""
        return self.home / "cache" / "blobs"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def embedded_pgdata(self) -> Path:
        return self.home / "pg"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
