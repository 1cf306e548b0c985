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
from clipaudit.errors import ClipauditError


__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL_ERROR", "EXIT_OK", "EXIT_REGRESSION", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
        if getattr(arguments, "out", None) is not None:
            from clipaudit.files import check_output_dir

            check_output_dir(arguments.out)
        return arguments.command(arguments)
    except ClipauditError as error:
        print(f"clipaudit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("clipaudit: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: never exit 1, which a CI gate reads as "a group got worse"
        print(f"clipaudit: internal error: {type(error).__name__}: {_one_line(error)} "
              f"(full traceback in {_save_traceback()})", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


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
