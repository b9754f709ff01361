"""The command line's shape: one app per command module, every command where it belongs, one set of
training defaults, choices as Enums, and what the data says printed as plain text."""
from __future__ import annotations

import importlib
import pkgutil

import typer
from typer.testing import CliRunner

import flows.cli
from colorization.config import DEFAULTS
from flows.cli import app
from flows.cli.ui import Table, console

COMMANDS = {"sources", "collections", "records", "search", "export", "runs", "import", "load", "train-files",
            "colorize-files", "evaluate", "export-model", "train", "colorize", "serve", "deploy", "worker", "web",
            "crawl", "db", "models", "blobs"}


def _command(*path: str):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _default(command, option: str):
    return next(p.default for p in command.params if option in getattr(p, "opts", ()))


def test_every_command_module_has_its_app_and_no_register_function():
    helpers = {"ui", "flowrun", "crawl_common"}
    for info in pkgutil.iter_modules(flows.cli.__path__):
        module = importlib.import_module(f"flows.cli.{info.name}")
        assert not hasattr(module, "register"), info.name
        if info.name not in helpers:
            assert isinstance(module.app, typer.Typer), info.name


def test_unnamed_apps_merge_into_the_root_and_groups_keep_their_names():
    root = _command()
    assert set(root.commands) == COMMANDS
    assert set(root.commands["crawl"].commands) == {"pastvu", "archive"}
    assert set(root.commands["db"].commands) == {"upgrade", "downgrade", "status", "stop"}
    assert set(root.commands["models"].commands) == {"promote", "rollback"}
    assert set(root.commands["blobs"].commands) == {"where", "migrate", "verify", "get"}


def test_training_defaults_come_from_train_config():
    import inspect

    from flows.train import train_flow

    flow_defaults = inspect.signature(train_flow.fn).parameters
    for command in (_command("train"), _command("train-files")):
        assert _default(command, "--stage1-epochs") == DEFAULTS.stage1_epochs
        assert _default(command, "--stage2-epochs") == DEFAULTS.stage2_epochs
        assert _default(command, "--crop-size") == DEFAULTS.crop_size
        assert _default(command, "--batch-size") == DEFAULTS.batch_size
        assert _default(command, "--width") == DEFAULTS.width
    for name in ("stage1_epochs", "stage2_epochs", "crop_size", "batch_size", "width", "device", "num_workers"):
        assert flow_defaults[name].default == getattr(DEFAULTS, name), name


def test_pastvu_tile_size_default_is_the_crawler_constant():
    from crawlers.pastvu.tiles import TILE_SIZE

    assert _default(_command("crawl", "pastvu"), "--tile-size") == TILE_SIZE


def test_choices_are_checked_before_anything_runs():
    for argv in (["records", "--status", "gone"], ["records", "--colorized", "maybe"], ["runs", "--kind", "nope"],
                 ["export", "--out", "-", "--colorized", "maybe"], ["train-files", "x", "--head", "nope"]):
        r = CliRunner().invoke(app, argv)
        assert r.exit_code == 2, (argv, r.output)
        assert "Invalid value" in r.output, (argv, r.output)


def test_table_cells_and_titles_are_plain_text():
    t = Table("title", title="[bold]run[/bold] [1]")
    t.add_row("[untitled] photo [b]x[/b]")
    with console.capture() as out:
        console.print(t)
    text = out.get()
    assert "[untitled] photo [b]x[/b]" in text and "[bold]run[/bold] [1]" in text
