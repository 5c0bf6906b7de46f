"""Progress wherever physgan runs: bars on a terminal, tqdm.auto in Jupyter, log lines elsewhere, nothing quiet."""
import io
import logging
import sys
import time
import types

import pytest
import tqdm.auto
import tqdm.std

from physgan import progress
from physgan.progress import progress_bar, progress_line


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def log_lines(caplog):
    """The progress lines logged (INFO) while a test runs; a line each time one is due (interval 0)."""
    caplog.set_level(logging.INFO, logger="physgan.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "physgan.progress"]


def run_stage(total=4, desc="training", quiet=False):
    with progress_bar(total=total, desc=desc, quiet=quiet) as bar:
        for step in range(total):
            bar.set_postfix(critic_loss=-0.25 - step, score=None if step == 0 else 3.5)
            bar.update(1)


def test_outside_a_terminal_a_line_names_the_stage_step_eta_and_latest_numbers(monkeypatch, log_lines):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    run_stage()
    lines = log_lines()
    assert len(lines) == 5  # one per step, and the stage's end
    assert lines[0].startswith("training: 1/4 (25 %), 0 s, ETA 0 s; critic_loss -0.25")
    assert "score" not in lines[0]  # no monitor yet
    assert lines[3].startswith("training: 4/4 (100 %)") and lines[3].endswith("critic_loss -3.25, score 3.5")
    assert lines[4].startswith("training: 4/4 (100 %), 0 s, done;")
    assert sys.stderr.getvalue() == ""  # no bar drawn


def test_a_stage_shorter_than_the_interval_prints_nothing(monkeypatch, log_lines):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress.INTERVAL_S == 30.0
    run_stage()
    assert log_lines() == []


def test_a_failed_stage_does_not_say_done(monkeypatch, log_lines):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    with pytest.raises(RuntimeError):
        with progress_bar(total=3, desc="sampling") as bar:
            bar.update(1)
            raise RuntimeError("stopped")
    assert [line.split(",")[0] for line in log_lines()] == ["sampling: 1/3 (33 %)"]


def test_the_line_s_eta_is_the_mean_time_per_step_times_the_steps_left():
    line = progress_line("training", 120, 2000, 70.0, {"critic_loss": -0.21581956, "step_time": 3})
    # 70 s / 120 steps x 1880 steps left = 1096.7 s
    assert line == "training: 120/2000 (6 %), 1 min 10 s, ETA 18 min 17 s; critic_loss -0.2158, step_time 3"
    assert progress_line("jets", 5, 10, 7300.0, {}, done=True) == "jets: 5/10 (50 %), 2 h 01 min, done"


def test_on_a_terminal_a_bar_carries_the_latest_numbers(monkeypatch, log_lines):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    with progress_bar(total=4, desc="training") as bar:
        bar.set_postfix(critic_loss=-0.25, score=3.5)
        time.sleep(0.15)  # past tqdm's minimum interval, so the next update redraws
        bar.update(1)
    assert "training:  25%" in terminal.getvalue() and "critic_loss=-0.25, score=3.5" in terminal.getvalue()
    assert log_lines() == []


def test_under_a_jupyter_kernel_the_bar_is_tqdm_auto_s(monkeypatch, log_lines):
    made = []

    class NotebookBar(tqdm.std.tqdm):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, file=io.StringIO(), **kwargs)

    kernel = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    monkeypatch.setattr(tqdm.auto, "tqdm", NotebookBar)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a kernel's stderr is no terminal
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    monkeypatch.setattr(progress, "has_widgets", lambda: True)
    run_stage(desc="sampling")
    assert [kwargs["desc"] for kwargs in made] == ["sampling"]
    assert log_lines() == []
    # without ipywidgets tqdm.auto would warn and fall back to text: the plain lines instead
    monkeypatch.setattr(progress, "has_widgets", lambda: False)
    run_stage(desc="sampling")
    assert len(made) == 1 and len(log_lines()) == 5
    monkeypatch.setattr(progress, "has_widgets", lambda: True)
    # a plain IPython shell (no kernel) is a terminal or a pipe like any other program
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: types.SimpleNamespace()))
    run_stage(desc="sampling")
    assert len(made) == 1 and len(log_lines()) == 10


def test_quiet_silences_every_form(monkeypatch, log_lines):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    run_stage(quiet=True)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    run_stage(quiet=True)
    assert terminal.getvalue() == "" and log_lines() == []
