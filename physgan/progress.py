"""Progress bars on stderr, only when a person is watching (stderr is a terminal) and not --quiet."""
from __future__ import annotations

import contextlib
import sys


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, desc: str, quiet: bool = False):
    if quiet or not sys.stderr.isatty():
        yield _Silent()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, file=sys.stderr, leave=False) as bar:
        yield bar
