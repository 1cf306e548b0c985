"""The command line: one function per command, each one call into the API.

`main(argv) -> int` returns the exit code: 0 done, 1 a check found a regression, 2 bad input or
usage (one line on stderr, no traceback), 3 an internal error (one line on stderr naming the file
that holds the full traceback).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from clipaudit.cli.exit_codes import EXIT_BAD_INPUT, EXIT_INTERNAL_ERROR, EXIT_OK, EXIT_REGRESSION
from clipaudit.cli.parser import build_parser
from clipaudit.cli.terminal import say
from clipaudit.errors import ClipauditError


__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL_ERROR", "EXIT_OK", "EXIT_REGRESSION", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
        _check_folders(arguments)
        return arguments.command(arguments)
    except ClipauditError as error:
        say(f"clipaudit: error: {error}")  # say() escapes any newline a value carried in
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        say("clipaudit: interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`clipaudit validate NAME | head`): nothing left to say
        _silence_stdout()
        return EXIT_OK
    except Exception as error:  # a bug: never exit 1, which a CI gate reads as "a group got worse"
        say(f"clipaudit: internal error: {type(error).__name__}: {_one_line(error)} "
            f"(full traceback in {_save_traceback()})")
        return EXIT_INTERNAL_ERROR


def _check_folders(arguments) -> None:
    """--out and --cache-dir must be folders we can write into, before anything is loaded."""
    from clipaudit.files import check_cache_dir, check_output_dir

    if getattr(arguments, "out", None) is not None:
        check_output_dir(arguments.out)
    if getattr(arguments, "cache_dir", None) is not None:
        check_cache_dir(arguments.cache_dir)


def _silence_stdout() -> None:
    """Python would report the closed pipe again when it flushes stdout at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _save_traceback() -> str:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="clipaudit-traceback-", suffix=".txt", delete=False,
                                     encoding="utf-8") as handle:
        traceback.print_exc(file=handle)
    return handle.name


if __name__ == "__main__":
    sys.exit(main())
