"""Progress bars for long work: rich on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[..., None]


@contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Advance]:
    """Yields ``advance(n=1, description=None)``. Silent when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield lambda *_args, **_kwargs: None
        return
    from opsctl.cli.output import console

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: float = 1, description: str | None = None, total: float | None = None) -> None:
            bar.update(task, advance=n, description=description or bar.tasks[0].description, total=total)

        yield advance
