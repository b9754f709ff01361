"""What the command line shows: the consoles, one-line errors, and the error boundary.

Every command prints through ``console`` (results, stdout) and ``err`` (progress, messages,
stderr). ``fail(message)`` prints one escaped line and exits 2; ``say`` and ``warn`` escape too.
``Table`` is a Rich table whose cells and title are plain text (a title, a path or a name from the
data is never read as markup); ``progress(*columns)`` is a progress display on ``err``.
``ArhivaGroup``, the app's command class, is the one error boundary around every command:

- our expected errors (bad parameters, a catalogue that cannot be reached, an unknown collection
  or model, a missing file) become one ``error:`` line and exit status 2;
- Ctrl-C or SIGTERM end with ``interrupted`` and status 130 / 143 (the run is marked cancelled
  by the activity that owned it);
- output whose reader has gone (``arhiva records --format csv | head``: a closed pipe) ends
  quietly, status 1, as Click and Rich end it when they meet the closed pipe themselves;
- anything else is one line naming the log file, status 1.

Full tracebacks always go to ``$ARHIVA_HOME/logs/arhiva.log``; ``-v`` also prints them.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import sys
import traceback
from typing import NoReturn

import typer
from rich.console import Console, RenderableType
from rich.markup import escape as _markup_escape
from rich.progress import Progress, ProgressColumn
from rich.table import Table as RichTable
from rich.text import Text
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

console = Console()
err = Console(stderr=True, soft_wrap=True, highlight=False)

log = logging.getLogger("arhiva")


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so every activity ends as cancelled."""


def verbose() -> bool:
    return os.environ.get("ARHIVA_VERBOSE", "") not in ("", "0")


def say(message: str, style: str | None = None) -> None:
    """One escaped line on stderr."""
    err.print(f"[{style}]{escape(message)}[/{style}]" if style else escape(message))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` (escaped, one line) and exit with ``code``."""
    err.print(f"[red]error:[/red] {escape(_one_line(message))}")
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(_one_line(message))}")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with its control characters written out (``\\x1b``): a harvested title's escape
    sequences would otherwise reach the terminal (colours, a cleared screen, a window title, a
    carriage return that overwrites what came before). Tabs and newlines stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def escape(text: str) -> str:
    """``text`` for Rich markup: its brackets escaped and its control characters made visible."""
    return _markup_escape(visible(str(text)))


def plain(value):
    """A string as plain text (never read as markup, control characters shown); anything else as it is."""
    return Text(visible(value)) if isinstance(value, str) else value


class Table(RichTable):
    """A Rich table whose title, caption and cells are plain text: what the data says is shown as it is."""

    def __init__(self, *headers, title: str | RenderableType | None = None,
                 caption: str | RenderableType | None = None, **options):
        super().__init__(*headers, title=plain(title), caption=plain(caption), **options)

    def add_row(self, *cells, **options) -> None:
        super().add_row(*(plain(c) for c in cells), **options)


def progress(*columns: str | ProgressColumn, transient: bool = True) -> Progress:
    """A progress display on stderr (text columns are templates: escape what goes into them)."""
    # off a terminal a transient bar would leave only an empty line; a lasting one leaves its last state
    return Progress(*columns, console=err, transient=transient, disable=transient and not err.is_interactive)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def log_file():
    from catalog.settings import get_settings

    return get_settings().home / "logs" / "arhiva.log"


def _record_traceback(exc: BaseException) -> str | None:
    """Append the traceback to the log file; return its path (None if it cannot be written)."""
    try:
        path = log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8", errors="backslashreplace") as fh:
            from datetime import datetime

            fh.write(f"--- {datetime.now().isoformat(timespec='seconds')} arhiva {' '.join(sys.argv[1:])}\n")
            fh.write("".join(traceback.format_exception(exc)))
        return str(path)
    except Exception:
        return None


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that speak to the user: one line, exit 2."""
    from catalog.db import DatabaseUnavailable

    kinds: list[type[BaseException]] = [DatabaseUnavailable, LookupError, ValueError, FileNotFoundError,
                                        NotADirectoryError, IsADirectoryError, PermissionError]
    if "crawlers.runner" in sys.modules:
        kinds.append(sys.modules["crawlers.runner"].CrawlError)
    if "flows.deploy" in sys.modules:
        kinds.append(sys.modules["flows.deploy"].NoSharedServer)
    return tuple(kinds)


# -- signals ----------------------------------------------------------------------------------
_signals = {"count": 0}


def _on_signal(signum, frame) -> None:
    _signals["count"] += 1
    if signum == signal.SIGTERM and _signals.get("term"):
        return  # already stopping (Prefect re-sends SIGTERM to itself while unwinding a flow)
    if _signals["count"] >= 3:
        os._exit(128 + signum)  # children die with us (they hold PR_SET_PDEATHSIG)
    if signum == signal.SIGTERM:
        _signals["term"] = True
        raise Terminated()
    raise KeyboardInterrupt()


def install_signal_handlers() -> None:
    """Ctrl-C and SIGTERM stop the work first (runs end as cancelled), a second one hurries it, a
    third ends the process at once."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def _interrupt_code(exc: BaseException) -> int:
    if isinstance(exc, Terminated) or getattr(exc, "signal", None) == signal.SIGTERM or _signals.get("term"):
        return 128 + signal.SIGTERM
    return 128 + signal.SIGINT


class ArhivaGroup(TyperGroup):
    """The application's command group: every command runs inside the error boundary."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except BaseException as exc:
            raise typer.Exit(_report(exc)) from None


def _report(exc: BaseException) -> int:
    # Ctrl-C is known before anything is imported: an interrupt that broke off a first import
    # (SQLAlchemy's, half a second into a command) would break the same import here again
    interrupted = isinstance(exc, KeyboardInterrupt)
    if not interrupted:
        from catalog.runs import is_interrupt

        interrupted = is_interrupt(exc)
    if interrupted:
        say("interrupted: stopped" + (" (SIGTERM)" if _interrupt_code(exc) == 143 else ""), "yellow")
        return _interrupt_code(exc)
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    if isinstance(exc, BrokenPipeError) and _stdout_reader_gone():
        return _quiet_exit_reader_gone()
    where = _record_traceback(exc)
    if verbose():
        err.print_exception()
    # a run that had started and failed (catalog.runs.RUN_FAILED): named, and the status is 1
    from catalog.runs import RUN_FAILED

    failed_run = getattr(exc, RUN_FAILED, None)
    ran = f" ({failed_run} failed)" if failed_run else ""
    if isinstance(exc, expected_errors()) and not isinstance(exc, (KeyError, IndexError)):
        message = _settings_problem(exc) or unquoted(str(exc).strip()) or type(exc).__name__
        err.print(f"[red]error:[/red] {escape(_one_line(message))}{escape(ran)}")
        return 1 if failed_run else 2
    err.print(f"[red]error:[/red] {escape(_one_line(f'{type(exc).__name__}: {exc}'))}{escape(ran)}"
              + (f" (traceback in {escape(where)})" if where else ""))
    return 1


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reading end has been closed (``| head`` that has
    read its lines). Only then is a broken pipe the reader's doing: one from a socket (a server
    that hung up) is an error like any other."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows) or no standard output
        return True


def _quiet_exit_reader_gone() -> int:
    """Nothing more is printed to the closed pipe: standard output goes to the null device (as
    Rich does), so that the interpreter's last flush finds no broken pipe either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass
    return 1


def _settings_problem(exc: BaseException) -> str | None:
    """A setting of the installation that cannot be (``ARHIVA_MAX_IMAGE_PIXELS=-5``) as the user
    wrote it, one problem after another, instead of pydantic's report."""
    if type(exc).__name__ != "ValidationError" or getattr(exc, "title", None) != "Settings":
        return None
    return "; ".join(f"ARHIVA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}, got {e.get('input')!r}"
                     for e in exc.errors())


def unquoted(message: str) -> str:
    """A LookupError raised as ``KeyError``-style prints its text in quotes ('no record 7'): those
    go; a quote the message ends with ("no collection named 'nope'") stays."""
    if len(message) >= 2 and message[0] == message[-1] and message[0] in "'\"":
        return message[1:-1]
    return message
