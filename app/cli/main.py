"""Argument parsing and dispatch. Each subcommand lives in its own module that exposes
`register(subparsers)`; the parser it adds carries a `run(args) -> int` default."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import signal
import sys
import threading

from app import __version__

# subcommand modules, in the order `--help` lists them
COMMANDS = ("app.cli.inpaint_cmd", "app.cli.batch_cmd", "app.cli.restore_cmd", "app.cli.project_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inpaint-studio",
        description="Remove objects from photos and repair old photos. "
        "Without a subcommand, opens the editor (optionally on PHOTO).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a subcommand not written yet
                continue
            raise
        module.register(sub)
    return parser


class _Terminated(BaseException):
    """SIGTERM arrived (not an Exception: no `except Exception` of the work may swallow it)."""


def _stop_on_term(_signum, _frame) -> None:
    raise _Terminated


def _looks_like_a_command(word: str) -> bool:
    """A bare word that is no file: a mistyped subcommand ("restor"), not a photo to open."""
    return (not word.startswith("-") and "." not in word and os.sep not in word and "/" not in word
            and not os.path.exists(word))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()  # noqa: SLF001
    if argv and argv[0] not in known and _looks_like_a_command(argv[0]):
        close = difflib.get_close_matches(argv[0], sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"inpaint-studio: unknown command '{argv[0]}'{hint}; commands: {', '.join(sorted(known))}; "
              "or give a photo or project to open in the editor", file=sys.stderr)
        return 2
    if argv and argv[0] not in known and not argv[0].startswith("-") and len(argv) > 1:
        # "inpaint-studio photo.jpg --mask m.png -o out.png": the command word was forgotten
        print(f"inpaint-studio: the editor opens one photo or project, not {' '.join(argv[1:])!r}; to fill "
              f"from the command line, name the command: inpaint-studio inpaint {argv[0]} --mask MASK -o OUT "
              "(commands: " + ", ".join(sorted(known)) + ")", file=sys.stderr)
        return 2
    if not argv or (argv[0] not in known and not argv[0].startswith("-")):
        from app.ui.launch import launch_editor  # Qt only when the editor is wanted

        return launch_editor(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    # `kill`, `timeout` and CI stop a run with SIGTERM: unwind like Ctrl+C, so that a file being
    # written is removed (atomic_write) instead of left behind half-written
    on_main = threading.current_thread() is threading.main_thread()  # (signal handlers live there only)
    previous = signal.signal(signal.SIGTERM, _stop_on_term) if on_main else None
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a pipe's buffered output goes now, where a closed pipe is caught
        return code
    except _Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, as other command-line tools do; point
        # stdout at devnull so the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
