"""Progress bars of a fit (tqdm, on stderr), redrawn every few seconds even while nothing advances
them (nautilus trains its networks between batches of calls), so the elapsed time keeps moving."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from tqdm import tqdm

REDRAW_S = 5.0


@contextlib.contextmanager
def progress(description: str, unit: str | None = None, quiet: bool = False) -> Iterator[tqdm]:
    """A tqdm bar, disabled when `quiet`; without `unit` it shows the elapsed time only."""
    style = {"unit": unit} if unit else {"bar_format": "{desc}: {elapsed}"}
    with tqdm(desc=description, mininterval=1.0, dynamic_ncols=True, disable=quiet,
              **style) as bar:
        stop = threading.Event()

        def redraw() -> None:
            while not stop.wait(REDRAW_S):
                bar.refresh()

        redrawing = threading.Thread(target=redraw, name="progress-redraw", daemon=True)
        redrawing.start()
        try:
            yield bar
        finally:
            stop.set()
            redrawing.join()
