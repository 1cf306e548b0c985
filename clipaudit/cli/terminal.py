"""What the command line prints: every line goes through :func:`clipaudit.format.inert`, once, here.

Text from inputs (dataset values, class ids, prompts, file names) reaches error and summary lines;
control characters in it are shown as escapes instead of being sent raw (see ``format.inert``).
"""
from __future__ import annotations

import sys

from clipaudit.format import inert

__all__ = ["inert", "say"]


def say(line: object, *, stream=None) -> None:
    """One line, made inert, on ``stream`` (stderr unless told)."""
    print(inert(line), file=stream or sys.stderr)
