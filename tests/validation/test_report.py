"""The report's plotting helpers: training curves from a log, ratio panels that mark what they cannot show, and
the experiment label that stays clear of the panels' own labels."""
import json

import matplotlib.image
import numpy as np
import pytest

from physgan.errors import UserError
from physgan.validation import report


def write_log(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def losses(step, scale=1.0):
    return {"step": step, "time": 0.1 * step, "critic_loss": -scale * step, "generator_loss": scale / step,
            "wasserstein": 0.5 * scale}


def test_training_curves_and_plot_from_a_small_log(tmp_path):
    # steps 1-4 with a monitor every second step; then a resume from the checkpoint at step 2 logs 3 and 4 again
    records = [losses(1), {**losses(2), "monitor": {"score": 40.0}}, losses(3),
               {**losses(4), "monitor": {"score": 9.0}},
               losses(3, scale=2.0), {**losses(4, scale=2.0), "monitor": {"score": 7.0}}]
    log = write_log(tmp_path / "log.jsonl", records)
    curves = report.training_curves(log)
    assert set(curves["losses"]) == {"critic_loss", "generator_loss", "wasserstein"}  # the monitor is no loss
    assert curves["losses"]["critic_loss"] == ([1, 2, 3, 4], [-1.0, -2.0, -6.0, -8.0])  # the resumed steps' records
    assert curves["score"] == ([2, 4], [40.0, 7.0])
    (tmp_path / "plots").mkdir()
    title, name = report.training_plot(log, tmp_path / "plots", pdf=True)
    assert name == "training.png" and "monitor" in title
    image = matplotlib.image.imread(tmp_path / "plots/training.png")
    assert image.shape[:2] == (round(100 * (3.2 * 2 + 0.3)), round(100 * 4.2 * 3))  # 4 panels, 3 a row, at 100 dpi
    assert (tmp_path / "plots/training.pdf").stat().st_size > 0


def test_an_empty_training_log_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no training records"):
        report.training_curves(write_log(tmp_path / "log.jsonl", []))


def markers(rax, marker):
    """The (x, y) of the points drawn with `marker` in an axes."""
    return [(x, y) for line in rax.lines if line.get_marker() == marker for x, y in zip(*line.get_data())]


def test_ratio_points_beyond_the_panel_are_marked_at_its_edge():
    with report.style():
        fig, (ax, rax) = report.ratio_figure()
        # ratios 1, 1.1, 5, and one series far below: the panel spans its widest, [0, 2]
        report.ratio_panels(rax, [(np.array([1.0, 2.0, 3.0]), [1.0, 1.1, 5.0], [0.1] * 3, [1.0] * 3, [0.1] * 3, "C0"),
                                  (np.array([1.5, 2.5]), [1.0, -3.0], [0.1] * 2, [1.0] * 2, [0.1] * 2, "C1")])
    assert rax.get_ylim() == (0.0, 2.0)
    assert markers(rax, "^") == [(3.0, pytest.approx(1.88))]  # just inside the top edge
    assert markers(rax, "v") == [(2.5, pytest.approx(0.12))]
    assert max(rax.get_yticks()) < 2.0  # the top label would meet the main panel's lowest one


def test_a_ratio_panel_zooms_on_data_within_range_and_marks_nothing():
    with report.style():
        fig, (ax, rax) = report.ratio_figure()
        report.ratio_panel(rax, [1.0, 2.0], [1.0, 1.1], [0.01, 0.01], [1.0, 1.0], [0.01, 0.01])
    low, high = rax.get_ylim()
    assert 1.1 < high < 1.3 and 0.7 < low < 0.9
    assert markers(rax, "^") == markers(rax, "v") == []


def test_the_experiment_label_stands_once_above_a_grid_and_clear_of_the_panels_labels():
    with report.style():
        fig, pairs = report.ratio_grid(3)
        for (ax, rax), condition in zip(pairs, ("T = 1.8", "T = 2.269", "T = 3")):
            report.finish(ax, rax, ylabel="density", xlabel="e", rlabel=condition, legend=False)
        single, (ax, rax) = report.ratio_figure()
        report.finish(ax, rax, ylabel="density", xlabel="e", rlabel="L = 16", legend=False)
    assert [text.get_text() for text in fig.texts] == [report.EXPERIMENT_LABEL]
    assert [[text.get_text() for text in ax.texts] for ax, _ in pairs] == [["T = 1.8"], ["T = 2.269"], ["T = 3"]]
    label_bottom = fig.texts[0].get_window_extent(fig.canvas.get_renderer()).y0
    assert all(label_bottom > text.get_window_extent(fig.canvas.get_renderer()).y1
               for ax, _ in pairs for text in ax.texts)
    assert [text.get_text() for text in ax.texts] == [report.EXPERIMENT_LABEL, "L = 16"]  # one panel: both on it
