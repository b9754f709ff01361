"""The ``arhiva`` command line.

Each module in ``COMMAND_MODULES`` adds its commands with ``register(app)``
(crawl commands go on ``crawl_app``). Modules import nothing heavy at the
top: torch, Prefect and Scrapy are imported inside the commands that use
them, so ``arhiva --help`` and the catalogue commands answer fast.
"""
from __future__ import annotations

import importlib

import typer

from flows.cli.ui import ArhivaGroup

app = typer.Typer(
    name="arhiva",
    cls=ArhivaGroup,
    help="Harvest historical photo archives into a catalogue you can trust, and colorize them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
crawl_app = typer.Typer(help="Harvest a source into the catalogue.", no_args_is_help=True)
app.add_typer(crawl_app, name="crawl")


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


COMMAND_MODULES = ("catalog_cmds", "crawl_pastvu", "crawl_archive", "import_folder", "engine", "flow_cmds", "pool_cmds",
                   "web_cmds", "blobs_cmds")


def _load() -> None:
    for name in COMMAND_MODULES:
        full = f"{__name__}.{name}"
        try:
            module = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name == full:
                continue  # not built yet
            raise
        register = module.register
        if register.__code__.co_argcount >= 2:
            register(app, crawl_app)
        else:
            register(app)


_load()


def main() -> None:
    from flows.cli.ui import install_signal_handlers

    install_signal_handlers()
    app()
