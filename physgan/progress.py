"""Progress of the long stages (Monte Carlo, training, sampling, validation), wherever physgan runs.

- stderr is a terminal: tqdm bars on stderr;
- a Jupyter kernel (stderr is no terminal there) with ipywidgets: tqdm.auto's notebook bar (without
  ipywidgets, the lines below);
- anywhere else (a batch job's log, nohup, tee, a pipe): one plain line about every INTERVAL_S seconds
  through the logger `physgan.progress` (INFO): the stage, step/total, time so far, an ETA and the latest
  numbers, and a last line when a stage that printed any ends. A stage shorter than INTERVAL_S prints
  nothing. The command line shows these records on stderr (cli.py); a library user sees them after
  logging.basicConfig(level=logging.INFO);
- quiet: nothing.

Every form offers update(n) and set_postfix(**numbers) (the latest numbers worth watching, e.g. the
training losses and the monitor's score), so the code that reports progress does not ask which it got.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import time

INTERVAL_S = 30.0  # seconds between progress lines where no bar can be drawn (tests set it to 0)

logger = logging.getLogger(__name__)


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **numbers) -> None:
        pass


class _Bar:
    """A tqdm bar; its numbers show at the bar's next redraw (training sets them every step, and a redraw
    each time would cost more than the step)."""

    def __init__(self, bar):
        self._bar = bar

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix(self, **numbers) -> None:
        self._bar.set_postfix(numbers, refresh=False)


class _Lines:
    """Progress as a log line about every INTERVAL_S seconds."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.n, self.numbers, self.lines = total, desc, 0, {}, 0
        self.started = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= INTERVAL_S:
            self.last = now
            self._emit(now)

    def set_postfix(self, **numbers) -> None:
        self.numbers = numbers

    def close(self) -> None:
        if self.lines:  # a stage long enough to have been reported says that it ended
            self._emit(time.monotonic(), done=True)

    def _emit(self, now: float, done: bool = False) -> None:
        self.lines += 1
        logger.info(progress_line(self.desc, self.n, self.total, now - self.started, self.numbers, done))


def progress_line(desc: str, n: int, total: int, elapsed: float, numbers: dict, done: bool = False) -> str:
    """e.g. "training: 120/2000 (6 %), 1 min 10 s, ETA 18 min 20 s; critic_loss -0.2158, score 130.4"."""
    text = f"{desc}: {n}/{total} ({100 * n / max(total, 1):.0f} %), {duration(elapsed)}"
    if done:
        text += ", done"
    elif n > 0:
        text += f", ETA {duration(elapsed / n * max(total - n, 0))}"
    shown = [f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
             for key, value in numbers.items() if value is not None]
    return text + (f"; {', '.join(shown)}" if shown else "")


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def in_notebook() -> bool:
    """Running under an IPython kernel (Jupyter). IPython is looked up, not imported: a kernel has loaded it."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and hasattr(shell, "kernel")


def has_widgets() -> bool:
    """Whether ipywidgets is installed: tqdm.auto's notebook bar needs it (without, it warns and prints text)."""
    return importlib.util.find_spec("ipywidgets") is not None


@contextlib.contextmanager
def progress_bar(total: int, desc: str, quiet: bool = False):
    """Progress of `total` steps of the stage `desc`, in the form the place physgan runs in can show."""
    if quiet:
        yield _Silent()
    elif in_notebook() and has_widgets():
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=desc, leave=False) as bar:
            yield _Bar(bar)
    elif sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, file=sys.stderr, leave=False) as bar:
            yield _Bar(bar)
    elif logger.isEnabledFor(logging.INFO):
        lines = _Lines(total, desc)
        yield lines
        lines.close()  # not after a failure: the stage did not end
    else:
        yield _Silent()
