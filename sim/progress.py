"""Progress on stderr, drawn by tqdm: a bar with rate and ETA on a terminal or in a notebook.

When stderr is a file or a pipe (a CI log), a bar of carriage returns is noise:
:class:`RunProgress` prints a plain line per tenth instead, and a run's buyer
progress shows nothing (the commands print a line per finished item).

The simulator and the real driver report progress through a plain callback,
``progress(done, total)`` (``total`` is None when unknown in advance, as for
closed-loop users), so neither depends on tqdm; :func:`buyer_progress` makes one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.asyncio import tqdm as _console_tqdm
from tqdm.auto import tqdm

Callback = Callable[[int, int | None], None]


def interactive() -> bool:
    """A bar makes sense here: stderr is a terminal, or this is a Jupyter kernel (tqdm's widget)."""
    return tqdm is not _console_tqdm or sys.stderr.isatty()


@contextmanager
def buyer_progress(label: str, quiet: bool = False) -> Iterator[Callback | None]:
    """A ``progress(done, total)`` callback drawing a bar of buyers (None: show nothing)."""
    if quiet or not interactive():
        yield None
        return
    bar: tqdm | None = None

    def show(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, unit=" buyers" if total else " requests", unit_scale=True,
                       file=sys.stderr, leave=True)
        bar.update(done - bar.n)

    try:
        yield show
    finally:
        if bar is not None:
            bar.close()


class RunProgress:
    """Finished runs of a batch (a sweep): a bar when interactive, else a line per tenth."""

    def __init__(self, label: str, total: int, done: int = 0, quiet: bool = False):
        self.label, self.quiet = label, quiet
        self.bar = tqdm(total=total, initial=done, desc=label, unit=" runs", file=sys.stderr,
                        disable=quiet or not interactive())
        self.total, self.done, self.initial = total, done, done
        self.start = time.perf_counter()
        self._last_tenth = done * 10 // max(total, 1)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.bar.write(f"{self.label}: {text}", file=sys.stderr)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self.bar.update(count)
        tenth = self.done * 10 // max(self.total, 1)
        if self.bar.disable and not self.quiet and tenth > self._last_tenth:
            self._last_tenth = tenth
            print(self.line(), file=sys.stderr, flush=True)

    def line(self) -> str:
        """The bar as one plain line: label, count, elapsed, ETA and rate (tqdm's own format)."""
        return tqdm.format_meter(self.done, self.total, time.perf_counter() - self.start, prefix=self.label,
                                 unit=" runs", ascii=True, initial=self.initial)

    def finish(self) -> None:
        self.bar.close()
