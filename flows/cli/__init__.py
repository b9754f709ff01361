"""The ``arhiva`` command line.

Each command module defines its commands at module level on its own ``app`` (a ``typer.Typer``):
an unnamed one, whose commands join the level it is added to, or a named group (``db``,
``models``, ``blobs``). This module adds them all, once, below; ``crawl`` is the group the
crawl modules join. Modules import nothing heavy at the top: torch, Prefect and Scrapy are
imported inside the commands that use them, so ``arhiva --help`` and the catalogue commands
answer fast. What a command prints goes through ``flows.cli.ui``.
"""
from __future__ import annotations

import typer

from flows.cli import (
    blobs_cmds,
    catalog_cmds,
    crawl_archive,
    crawl_pastvu,
    export_cmds,
    flow_cmds,
    import_folder,
    model_files,
    models_cmds,
    pool_cmds,
    web_cmds,
)
from flows.cli.ui import ArhivaGroup

app = typer.Typer(
    name="arhiva",
    cls=ArhivaGroup,
    help="Harvest historical photo archives into a catalogue you can trust, and colorize them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
crawl_app = typer.Typer(name="crawl", help="Harvest a source into the catalogue.", no_args_is_help=True)


@app.callback()
def _global_options(
    database_url: str = typer.Option(None, "--database-url", help="Catalogue URL (overrides ARHIVA_DATABASE_URL).",
                                     show_default=False),
    home: str = typer.Option(None, "--home", help="Data folder (overrides ARHIVA_HOME).", show_default=False),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Show Prefect's logs and full tracebacks (always in $ARHIVA_HOME/logs)."),
) -> None:
    """Historical photo archives: harvest, catalogue, colorize."""
    import os

    from catalog.settings import reset_settings_cache

    if verbose:
        os.environ["ARHIVA_VERBOSE"] = "1"
    if database_url:
        os.environ["ARHIVA_DATABASE_URL"] = database_url
    if home:
        os.environ["ARHIVA_HOME"] = home
    reset_settings_cache()
    if home:
        from flows.prefect_env import configure

        configure()  # Prefect's state follows the home given


crawl_app.add_typer(crawl_pastvu.app)
crawl_app.add_typer(crawl_archive.app)
for module in (catalog_cmds, export_cmds, import_folder, model_files, flow_cmds, pool_cmds, web_cmds):
    app.add_typer(module.app)  # unnamed: their commands are top-level commands
app.add_typer(crawl_app)
for module in (catalog_cmds.db_app, models_cmds.app, blobs_cmds.app):
    app.add_typer(module)


def main() -> None:
    from flows.cli.ui import install_signal_handlers

    install_signal_handlers()
    app()
