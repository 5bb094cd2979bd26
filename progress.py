"""Progress for long work: bars on stderr, labelled with the step they run in, silenced by ``--quiet``.

    from snnpipe import progress

    for item in progress.steps(recipe.steps, lambda s: s.name):  # a bar of the steps; each labels
        for batch in progress.bar(batches, desc="epoch 3/10", unit="batch"):   # ... the bars inside it
            ...
    with progress.step("student"):                                # a label; nested ones join with " > "
        with progress.bar(total=cells, desc="cells", unit="cell") as cells_bar:  # a known total
            cells_bar.update(1)

A bar is a ``tqdm`` on stderr (stdout stays for results and ``--json``) whose description is the
labels of the enclosing `step` blocks and its own ``desc``. It shows nothing:

- under `quiet` (the CLI's ``--quiet`` and ``--json`` enter it for the whole command);
- when its caller passes ``show=False``;
- when stderr is not a terminal (a log file, CI), unless asked: ``SNNPIPE_PROGRESS=1`` or `force`.

Both switches are context variables, so a thread or a test sets them for itself alone. Torch-free
and importable from every floor (``hw_targets/`` shows the export's progress with it).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from tqdm import tqdm

#: Set to 1 to show bars when stderr is not a terminal.
FORCE_VARIABLE = "SNNPIPE_PROGRESS"

T = TypeVar("T")

_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("snnpipe_progress_quiet", default=False)
_forced: contextvars.ContextVar[bool] = contextvars.ContextVar("snnpipe_progress_forced", default=False)
_labels: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("snnpipe_progress_labels", default=())


def enabled() -> bool:
    """Whether a bar would show now (module docstring)."""
    if _quiet.get():
        return False
    return _forced.get() or os.environ.get(FORCE_VARIABLE) == "1" or sys.stderr.isatty()


@contextlib.contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """No bar inside the block (``on=False``: no change)."""
    token = _quiet.set(_quiet.get() or on)
    try:
        yield
    finally:
        _quiet.reset(token)


@contextlib.contextmanager
def force(on: bool = True) -> Iterator[None]:
    """Bars inside the block even where stderr is not a terminal (not under `quiet`)."""
    token = _forced.set(on)
    try:
        yield
    finally:
        _forced.reset(token)


@contextlib.contextmanager
def step(label: str) -> Iterator[None]:
    """Label every bar made inside the block (nested labels join with " > ")."""
    token = _labels.set(_labels.get() + (label,))
    try:
        yield
    finally:
        _labels.reset(token)


def label(desc: str = "") -> str:
    """The enclosing steps' labels and ``desc``, as a bar shows them."""
    return " > ".join(part for part in (*_labels.get(), desc) if part)


def steps(items: Sequence[T], name: Callable[[T], str], desc: str = "", unit: str = "step") -> Iterator[T]:
    """Iterate over ``items`` (a recipe's steps) under a bar of them, each inside a `step`
    labelled ``[i/n] name(item)``, so that the bars the work makes show which step they belong to."""
    with bar(total=len(items), desc=desc, unit=unit) as outer:
        for number, item in enumerate(items, 1):
            text = f"[{number}/{len(items)}] {name(item)}"
            outer.set_postfix_str(text)
            with step(text):
                yield item
            outer.update(1)


def write(line: str) -> None:
    """Print ``line`` on stdout above the bars that show (they are redrawn below it)."""
    tqdm.write(line, file=sys.stdout)


def bar(iterable: Iterable[Any] | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
        initial: float = 0, show: bool = True, leave: bool = False, **options: Any) -> tqdm:
    """A progress bar over ``iterable`` (or of ``total``, updated by hand) on stderr; a silent
    pass-through where nothing may show (module docstring)."""
    return tqdm(iterable, total=total, desc=label(desc), unit=unit, initial=initial, leave=leave, file=sys.stderr,
                disable=not (show and enabled()), dynamic_ncols=True, **options)
