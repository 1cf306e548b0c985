"""What the terminal shows while a run works: one line per step that can take more than a moment.

Every slow step (scanning a dataset, fingerprinting its images, downloading and loading a model,
encoding, statistics, rendering) runs inside :func:`step` (a line with the seconds elapsed) or
drives a :func:`bar` (a count of items); both go to stderr through tqdm, so they stack cleanly
with the Hugging Face Hub's own download bars. Nothing is shown unless the job switched progress
on for its run with :func:`shown` (``AuditOptions.progress``; ``--quiet`` switches it off), so a
library call prints nothing by surprise.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from clipaudit.format import inert

_SHOWN: ContextVar[bool] = ContextVar("clipaudit_progress_shown", default=False)
TICK_SECONDS = 1.0  # how often a step's elapsed time is redrawn on a terminal


@contextmanager
def shown(enabled: bool) -> Iterator[None]:
    """Progress on (or off) for everything run inside the block."""
    token = _SHOWN.set(bool(enabled))
    try:
        yield
    finally:
        _SHOWN.reset(token)


def is_shown() -> bool:
    return _SHOWN.get()


def bar(*, total: int | None, what: str, unit: str = "img", worth_showing: bool = True):
    """A tqdm bar counting ``total`` items of a step; disabled unless progress is shown and the
    caller deems the step long enough to be ``worth_showing``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=inert(what), unit=unit, disable=not (worth_showing and is_shown()),
                file=sys.stderr, dynamic_ncols=True, leave=False)


@contextmanager
def step(what: str) -> Iterator[None]:
    """A step of unknown length: '<what> 00:07', the time redrawn every second on a terminal;
    in a log (no terminal) the line is written when the step starts and when it ends."""
    if not is_shown():
        yield
        return
    from tqdm.auto import tqdm

    line = tqdm(total=None, desc=inert(what), bar_format="{desc} {elapsed}", file=sys.stderr, dynamic_ncols=True)
    done = threading.Event()
    ticker = None
    if _is_terminal(sys.stderr):
        ticker = threading.Thread(target=_tick, args=(line, done), daemon=True)
        ticker.start()
    try:
        yield
    finally:
        done.set()
        if ticker is not None:
            ticker.join()
        line.close()


def _tick(line, done: threading.Event) -> None:
    while not done.wait(TICK_SECONDS):
        line.refresh()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
