"""How every bncli command ends: bad input is one line on stderr and exit 2, a failure
one line and exit 1, an interrupt exit 130 (``errors``); ``--debug`` shows tracebacks."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import typer

EXIT_BAD_INPUT, EXIT_FAILED, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 1, 3, 130
# Exceptions that mean bad user input (raised by tasks/ and report/).
USER_ERRORS = ("TaskError", "ReportError")
state = {"debug": False}


def say(text: str) -> None:
    print(text, flush=True)


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt (Ctrl-C, or SIGTERM where bncli turns it into one) is in
    ``exc``'s chain: numpy, for one, reports an interrupted import as an ImportError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def errors():
    """Bad input -> one line on stderr and exit 2; anything else -> one line and exit 1."""
    from .config import ConfigError

    try:
        yield
    except typer.Exit:
        raise
    except (ConfigError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        if state["debug"]:
            raise
        print(f"bncli: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("bncli: interrupted", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if caused_by_interrupt(exc):  # e.g. a stop signal inside an extension's import
            print("bncli: interrupted", file=sys.stderr)
            raise typer.Exit(EXIT_INTERRUPTED)
        if state["debug"]:
            raise
        user_error = type(exc).__name__ in USER_ERRORS
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if user_error:
            print(f"bncli: error: {line}", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT)
        print(f"bncli: failed ({type(exc).__name__}): {line} (rerun with --debug for the "
              "traceback)", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)
