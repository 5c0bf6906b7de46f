"""The validation report: one self-contained HTML file, and the plotting helpers every system shares.

HTML: inline CSS, PNGs embedded as base64 data URIs, no scripts and no links to anything, so the file
opens offline in any browser and can be mailed around. Every string that reaches the HTML passes through
html.escape: file attributes (paths, provenance, commands) are user data.

Plots follow HEP conventions (mplhep's ROOT style, the "Simulation" label, histograms with Poisson error
bars, a generated/reference ratio panel under every comparison, axis labels with units). They are drawn on
matplotlib Figure objects with the Agg canvas, never through pyplot's global state, and matplotlib and
mplhep are imported inside the functions: importing this module stays light.
"""
from __future__ import annotations

import base64
import contextlib
import html
import json
import math
from pathlib import Path

import numpy as np

from physgan.errors import UserError
from physgan.validation.histograms import Histogram, histogram_edges

PNG_DPI = 100
EXPERIMENT_LABEL = r"$\bf{physgan}$ $\it{Simulation}$"
REFERENCE_STYLE = {"fmt": "o", "color": "black", "ms": 4, "label": "reference (MC)"}
GENERATED_STYLE = {"fmt": "s", "color": "C3", "ms": 4, "mfc": "none", "label": "generated"}


# ---------------------------------------------------------------------------------------------
# Plotting helpers


def require_plotting() -> None:
    """One line naming the extra to install when a plotting library is missing (validate calls this first)."""
    try:
        import matplotlib  # noqa: F401
        import mplhep  # noqa: F401
    except ImportError as exc:
        raise UserError(f"validation plots need matplotlib and mplhep ({exc}); "
                        "install them with: pip install 'physgan[report]'") from None


def _mplhep():
    require_plotting()
    import mplhep

    return mplhep


@contextlib.contextmanager
def style():
    """mplhep's ROOT style, with fonts small enough for multi-panel figures."""
    import matplotlib

    mplhep = _mplhep()
    with matplotlib.style.context(mplhep.style.ROOT), matplotlib.rc_context({"font.size": 11, "legend.fontsize": 8}):
        yield


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def ratio_grid(n_panels: int, ncols: int = 4, panel_width: float = 4.0, panel_height: float = 4.0):
    """A figure of n_panels (main, ratio) axis pairs, ncols per row; each ratio axis shares x with its main one.

    Margins are fixed in inches, so the figure can be saved without bbox_inches="tight" (which draws the
    figure twice: 40 % of the plotting time).
    With more than one panel the "physgan Simulation" label stands once, at the figure's top left, and each
    panel's own label (finish's rlabel: its condition) above the panel: both above every panel did not fit
    beside each other in a 4-inch panel.
    """
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    top = 0.35 if n_panels == 1 else 0.6  # inches above the panels: the figure's label needs its own line
    width, height = panel_width * ncols, panel_height * nrows + top - 0.35
    fig = _figure(width, height)
    outer = fig.add_gridspec(nrows, ncols, left=0.8 / width, right=1 - 0.15 / width, bottom=0.6 / height,
                             top=1 - top / height, wspace=0.3, hspace=0.3)
    if n_panels > 1:
        figure_label(fig, 0.8 / width, 1 - 0.08 / height)
    pairs = []
    for i in range(n_panels):
        inner = outer[divmod(i, ncols)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.06)
        ax = fig.add_subplot(inner[0])
        pairs.append((ax, fig.add_subplot(inner[1], sharex=ax)))
    return fig, pairs


def ratio_figure(width: float = 6.4, height: float = 6.0):
    """One (main, ratio) axis pair."""
    fig, pairs = ratio_grid(1, 1, width, height)
    return fig, pairs[0]


def reference_and_generated(ax, x, ref, ref_err, gen, gen_err) -> None:
    """Reference and generated points with error bars."""
    ax.errorbar(x, ref, ref_err, **REFERENCE_STYLE)
    ax.errorbar(x, gen, gen_err, **GENERATED_STYLE)


def ratio_panel(rax, x, num, num_err, den, den_err, color: str = "C3") -> None:
    """num/den with the errors of both propagated (independent samples); a line at 1 (ratio_panels)."""
    ratio_panels(rax, [(x, num, num_err, den, den_err, color)])


def ratio_panels(rax, series: list[tuple]) -> None:
    """Several ratios num/den in one panel, each (x, num, num_err, den, den_err, colour), on one range that zooms
    on the data but spans at most [0, 2]; a point beyond it is marked by a triangle at the edge, pointing out."""
    from matplotlib.ticker import MaxNLocator

    rax.axhline(1.0, color="grey", lw=1)
    drawn, spreads = [], []
    for x, num, num_err, den, den_err, color in series:
        num, num_err, den, den_err = (np.asarray(a, dtype=np.float64) for a in (num, num_err, den, den_err))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = num / den
            error = np.abs(ratio) * np.hypot(num_err / num, den_err / den)
            error = np.where(num == 0, np.abs(num_err / den), error)
        rax.errorbar(x, ratio, error, fmt="o", ms=3, color=color)
        finite = np.isfinite(ratio)
        if finite.any():
            spreads.append(np.max(np.abs(ratio[finite] - 1) + np.nan_to_num(error[finite])))
        drawn.append((np.asarray(x, dtype=np.float64), ratio, color))
    half = min(max(1.2 * max(spreads, default=0.5), 0.05), 1.0)  # zoom on the data, but never hide a factor of two
    rax.set_ylim(1 - half, 1 + half)
    inset = 0.12 * half  # the triangles sit just inside the edge, whole
    for x, ratio, color in drawn:
        with np.errstate(invalid="ignore"):
            above, below = ratio > 1 + half, ratio < 1 - half
        for beyond, y, marker in ((above, 1 + half - inset, "^"), (below, 1 - half + inset, "v")):
            if beyond.any():
                rax.plot(x[beyond], np.full(beyond.sum(), y), marker, ms=5, color=color, ls="none")
    rax.yaxis.set_major_locator(MaxNLocator(nbins=4, prune="upper"))  # its top label met the main panel's 0
    rax.set_ylabel("gen. / ref.")


def finish(ax, rax, *, ylabel: str, xlabel: str, rlabel: str = "", legend: bool = True) -> None:
    """Axis labels (x on the ratio panel only), legend and the experiment-style "Simulation" label."""
    ax.set_ylabel(ylabel)
    rax.set_xlabel(xlabel)
    ax.tick_params(labelbottom=False)
    if legend:
        ax.legend(loc="best", frameon=False)
    label(ax, rlabel)


def label(ax, rlabel: str = "") -> None:
    """The experiment-style label "physgan Simulation" above the top left corner (unless the figure carries it
    once for all its panels: ratio_grid), `rlabel` above the top right.

    mplhep's layout, drawn directly: mplhep.label.exp_label measures text by rendering the figure (~0.7 s a call).
    """
    if not any(text.get_text() == EXPERIMENT_LABEL for text in ax.figure.texts):
        ax.text(0, 1.01, EXPERIMENT_LABEL, transform=ax.transAxes, ha="left", va="bottom", fontsize=12)
    if rlabel:
        ax.text(1, 1.01, rlabel, transform=ax.transAxes, ha="right", va="bottom", fontsize=10)


def figure_label(fig, x: float, y: float) -> None:
    """The "physgan Simulation" label once for a figure of several panels, its top left corner at (x, y) in
    figure coordinates; label() then leaves it off the panels."""
    fig.text(x, y, EXPERIMENT_LABEL, ha="left", va="top", fontsize=12)


def save(fig, plots_dir, name: str, pdf: bool) -> str:
    """Write plots_dir/name.png (and name.pdf); returns the PNG's file name."""
    plots_dir = Path(plots_dir)
    fig.savefig(plots_dir / f"{name}.png", dpi=PNG_DPI)
    if pdf:
        fig.savefig(plots_dir / f"{name}.pdf")
    return f"{name}.png"


def refinement_plot(curve: dict, path) -> None:
    """One panel per series of a refinement curve (pipeline.refinement_curve): generated minus reference
    against the number of sweeps K, one line per condition, coloured along the conditions."""
    import matplotlib

    series = curve["series"]
    ncols = 4
    nrows = math.ceil(len(series) / ncols)
    with style():
        fig = _figure(4.0 * ncols, 3.4 * nrows)
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12 / nrows, top=1 - 0.25 / nrows, wspace=0.35,
                            hspace=0.45)
        x = np.arange(len(curve["sweeps"]))  # K = 0, 1, 2, 4, ... at even spacing
        colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(curve["T"])))
        for i, (name, entry) in enumerate(series.items()):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            values, errors = np.array(entry["values"]), np.array(entry["errors"])
            for c in range(values.shape[1]):
                tag = f"T = {curve['T'][c]:.4g}"
                ax.errorbar(x + 0.04 * (c - values.shape[1] / 2), values[:, c], errors[:, c], marker="o", ms=3,
                            lw=1, color=colours[c] if values.shape[1] > 1 else "C0", label=tag)
            ax.axhline(0.0, color="grey", lw=1)
            ax.set_xticks(x, [str(k) for k in curve["sweeps"]])
            ax.set_xlabel("refinement sweeps K")
            ax.set_ylabel(entry["label"], fontsize=10)
            if i == 0:
                label(ax)
                handles = ax.get_legend_handles_labels()
            if values.shape[1] == 1:
                ax.legend(loc="best", frameon=False, fontsize=8)
        # the conditions' colours, in the next free cell (or on the first panel when none is free)
        key = fig.add_subplot(nrows, ncols, len(series) + 1) if len(series) < nrows * ncols else fig.axes[0]
        if key is not fig.axes[0]:
            key.axis("off")
        key.legend(*handles, loc="center", frameon=False, fontsize=8, ncol=2 if len(curve["T"]) > 6 else 1)
        fig.savefig(path, dpi=PNG_DPI)


def histogram_panel(ax, rax, reference: Histogram, generated: Histogram, log_x: bool = False) -> None:
    """Reference (step with errors) and generated (points) densities on the same edges, and their ratio (at
    the bins' geometric centres with log_x, which also sets both axes' scales to log)."""
    mplhep = _mplhep()
    edges = reference.edges
    mplhep.histplot(reference.density, edges, yerr=reference.error, ax=ax, histtype="step", color="black",
                    label="reference (MC)")
    mplhep.histplot(generated.density, edges, yerr=generated.error, ax=ax, histtype="errorbar", color="C3",
                    marker="s", markersize=3, label="generated")
    filled = reference.counts > 0
    centres = np.sqrt(edges[1:] * edges[:-1]) if log_x else 0.5 * (edges[1:] + edges[:-1])
    ratio_panel(rax, centres[filled], generated.density[filled], generated.error[filled], reference.density[filled],
                reference.error[filled])
    if log_x:
        ax.set_xscale("log")
        ax.set_yscale("log")


def observable_plots(observables: dict, reference, generated, metrics: dict, plots_dir, pdf: bool,
                     histograms) -> list:
    """Per observable: histograms per condition with ratio panels (each kept in `histograms`, a
    histograms.HistogramFile); then W1/floor of every comparison."""
    labels = [c["label"] for c in metrics["conditions"]]
    out = []
    with style():
        for name, observable in observables.items():
            fig, pairs = ratio_grid(len(labels))
            for c, ((ax, rax), text) in enumerate(zip(pairs, labels)):
                ref, gen = reference.values(name, c), generated.values(name, c)
                edges = histogram_edges(ref, gen)
                series = {"reference": Histogram.of(ref, edges), "generated": Histogram.of(gen, edges)}
                histograms.add(f"hist_{name}", name, observable, series, panel=f"condition_{c}", label=text,
                               condition=metrics["conditions"][c]["condition"])
                histogram_panel(ax, rax, series["reference"], series["generated"])
                finish(ax, rax, ylabel="probability density", xlabel=observable.axis_label, rlabel=text,
                       legend=c == 0)
            out.append((f"{observable.description.capitalize()} ({observable.label}) per condition",
                        save(fig, plots_dir, f"hist_{name}", pdf)))
        out.append(("W1 / floor of every comparison (filled: significant)",
                    _ratio_overview(observables, metrics, labels, plots_dir, pdf)))
    return out


def training_curves(log_path) -> dict:
    """A training log (RUN_DIR/log.jsonl, gan/train.py) as series: {"losses": {name: (steps, values)},
    "score": (steps, values)} (the physics monitor's score, which chooses best.pt). A step logged twice (a
    run resumed from a checkpoint older than its last log lines) counts once, with its last record."""
    records = {}
    for line in Path(log_path).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["step"]] = record
    losses, score = {}, ([], [])
    for step in sorted(records):
        for key, value in records[step].items():
            if key not in ("step", "time") and isinstance(value, (int, float)):
                losses.setdefault(key, ([], []))
                losses[key][0].append(step)
                losses[key][1].append(value)
        if "monitor" in records[step]:
            score[0].append(step)
            score[1].append(records[step]["monitor"]["score"])
    if not losses and not score[0]:
        raise UserError(f"{log_path}: no training records")
    return {"losses": losses, "score": score}


def training_plot(log_path, plots_dir, pdf: bool) -> tuple[str, str]:
    """plots/training.png: each logged loss against the step (a running mean over the noisy values), and the
    monitor's score at the monitor steps (log scale; about 1 for a perfect generator; the lowest chose best.pt)."""
    curves = training_curves(log_path)
    panels = len(curves["losses"]) + 1
    ncols = min(3, panels)
    nrows = math.ceil(panels / ncols)
    width, height = 4.2 * ncols, 3.2 * nrows + 0.3
    with style():
        fig = _figure(width, height)
        fig.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, bottom=0.55 / height, top=1 - 0.55 / height,
                            wspace=0.4, hspace=0.45)
        figure_label(fig, 0.8 / width, 1 - 0.08 / height)
        for i, (name, (steps, values)) in enumerate(curves["losses"].items()):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            ax.plot(steps, values, color="C0", lw=0.6, alpha=0.35)
            window = max(1, len(values) // 25)
            ax.plot(steps, _running_mean(np.asarray(values, np.float64), window), color="C0", lw=1.5)
            ax.set_title(name, fontsize=10)
        ax = fig.add_subplot(nrows, ncols, panels)
        steps, values = curves["score"]
        ax.plot(steps, values, "o-", color="C3", ms=3, lw=1)
        if values:
            best = int(np.argmin(values))
            ax.plot(steps[best], values[best], "*", color="black", ms=10, label=f"best.pt: {values[best]:.3g}")
            ax.set_yscale("log")
            ax.legend(loc="best", frameon=False)
        ax.axhline(1.0, color="grey", lw=1, ls="--")
        ax.set_title("monitor score (1: perfect)", fontsize=10)
        for ax in fig.axes:
            ax.set_xlabel("training step")
        return ("Training: losses against the step, and the physics monitor's score (best.pt: its lowest)",
                save(fig, plots_dir, "training", pdf))


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of each value's window (shorter at the ends, so no point is lost)."""
    kernel = np.ones(window)
    return np.convolve(values, kernel, "same") / np.convolve(np.ones_like(values), kernel, "same")


def _ratio_overview(observables: dict, metrics: dict, labels: list[str], plots_dir, pdf: bool) -> str:
    width, height = max(6.4, 0.8 * len(labels) + 3), 5.0
    fig = _figure(width, height)
    fig.subplots_adjust(left=0.9 / width, right=1 - 0.2 / width, bottom=0.9 / height, top=1 - 0.35 / height)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    largest = 1.0
    for i, (name, observable) in enumerate(observables.items()):
        rows = metrics["observables"][name]["per_condition"]
        ratio = np.array([_float(r["ratio"]) for r in rows])
        significant = np.array([r["significant"] for r in rows], dtype=bool)
        offset = (i - (len(observables) - 1) / 2) * 0.08
        # filled: significant after the multiple-testing correction; open: within chance
        line, = ax.plot(x + offset, np.where(significant, ratio, np.nan), "o", ms=5, label=observable.tex)
        ax.plot(x + offset, np.where(significant, np.nan, ratio), "o", ms=5, mfc="none", color=line.get_color())
        largest = max(largest, np.nanmax(ratio, initial=1.0))
    ax.axhline(metrics["threshold"], color="red", ls="--", label=f"threshold {metrics['threshold']:g}")
    ax.axhline(1.0, color="grey", lw=1)
    if largest > 10:
        ax.set_yscale("log")
    ax.set_ylim(top=1.4 * max(largest, metrics["threshold"]))  # room for the legend above the threshold
    ax.set_xticks(x, labels, rotation=30 if len(labels) > 6 else 0)
    ax.set_ylabel(r"$W_1 / W_1^{\mathrm{floor}}$")
    ax.legend(loc="best", frameon=False, ncols=2)
    label(ax)
    return save(fig, plots_dir, "w1_ratio_overview", pdf)


def _float(value) -> float:
    return float("nan") if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# HTML

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1150px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.55em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
.verdict { display: inline-block; padding: 0.2em 0.8em; border-radius: 4px; font-weight: bold; color: white; }
.pass { background: #2e7d32; } .fail { background: #c62828; }
td.pass, td.fail { color: white; font-weight: bold; text-align: center; }
.summary { background: #f7f9fc; border: 1px solid #d6deea; border-radius: 6px; padding: 0.8em 1.2em; }
.note { color: #555; font-size: 0.9em; }
pre { background: #f5f5f5; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-weight: bold; margin-bottom: 0.3em; }
"""

EXPLANATION = (
    "<p><b>W1</b> is the earth mover's distance between the distributions of an observable in the two samples "
    "(in the observable's units). Finite samples differ by chance, so W1 is set against its <b>floor</b>: the median "
    "W1 between random re-splits of the pooled samples at the same sizes (a permutation test; its <b>p</b>-value is "
    "the fraction of re-splits at least as far apart; a discrete observable is tested on its level populations). "
    "<b>W1/floor</b>, the effect size, is near 1 for a sample as close to the reference as chance allows. A comparison "
    "fails when it is <b>significant</b> after Holm's correction over all comparisons of the report (the family-wise "
    "level is stated above) and its effect is beyond the threshold; exact values fail the same way when the relative "
    "deviation is beyond the tolerance. <b>KS</b> is the largest difference between the two "
    "cumulative distributions (0 identical, 1 disjoint). <b>Separation power</b> is ½ Σ (h₁ − h₂)²/(h₁ + h₂) over "
    "normalised histograms (0 identical, 1 disjoint). <b>AUC</b> is the area under the ROC curve of a classifier "
    "trained to tell reference from generated samples and evaluated on held-out samples: 0.5 means it cannot tell "
    "them apart; its error is the Hanley-McNeil standard error.</p>")


def esc(value) -> str:
    """Any value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.{digits}g}"


def mean_err(mean, err) -> str:
    from physgan.textable import with_error

    if mean is None:
        return "–"
    return with_error(mean, err if err is not None else float("nan"))


def table(headers: list, rows: list[list], pass_column: int | None = None) -> str:
    """An HTML table of escaped cells; the cells of `pass_column` (booleans) become coloured pass/fail."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if i == pass_column:
                cells.append(f'<td class="{"pass" if cell else "fail"}">{"pass" if cell else "FAIL"}</td>')
            else:
                cells.append(f"<td>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def worst_observables(metrics: dict, count: int = 3) -> list[tuple[str, float, str, bool]]:
    """(observable, largest W1/floor over conditions, where, pass), worst first."""
    labels = [c["label"] for c in metrics["conditions"]]
    entries = []
    for name, result in metrics["observables"].items():
        ratios = [_float(r["ratio"]) for r in result["per_condition"]]
        worst = int(np.nanargmax(ratios)) if not np.all(np.isnan(ratios)) else 0
        entries.append((name, ratios[worst], labels[worst], result["pass"]))
    entries.sort(key=lambda e: -e[1] if math.isfinite(e[1]) else -math.inf)
    return entries[:count]


def _summary(metrics: dict, observables: dict, content: dict) -> str:
    verdict = metrics["verdict"]
    physics = metrics["physics_classifier"]
    physics_auc = (f"{mean_err(physics['auc'], physics['auc_err'])}; Monte Carlo against Monte Carlo "
                   f"{mean_err(physics['mc_auc'], physics['mc_auc_err'])}" if physics.get("auc") is not None
                   else f"not run ({physics.get('skipped', '')})")
    worst = "".join(f"<li>{esc(observables[n].label)}: W1/floor = {esc(fmt(r, 3))} at {esc(where)} "
                    f"({'pass' if ok else 'FAIL'})</li>" for n, r, where, ok in worst_observables(metrics))
    c = metrics["classifier"]
    auc = (f"{mean_err(c['auc'], c['auc_err'])} (0.5 = indistinguishable)" if c.get("auc") is not None
           else f"not run ({c.get('skipped', '')})")
    rows = [("Threshold", f"W1 ≤ {fmt(metrics['threshold'])} × floor in every condition where significant"),
            ("Reference", _file_summary(metrics["reference"])), ("Generated", _file_summary(metrics["generated"])),
            ("Conditions", ", ".join(c["label"] for c in metrics["conditions"])),
            ("Classifier AUC on physics observables", physics_auc),
            ("Classifier AUC on raw samples (diagnostic)", auc)] + list(content.get("summary", []))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return (f'<div class="summary"><p>Verdict: <span class="verdict {esc(verdict)}">{esc(verdict.upper())}</span> '
            f"({sum(c['pass'] for c in metrics['checks'])} of {len(metrics['checks'])} checks pass)</p>"
            f"{_checks(metrics)}<p>Worst observables (largest W1/floor over conditions):</p><ul>{worst}</ul>"
            f"<table>{body}</table>{_fidelity_text(metrics)}</div>")


def _fidelity_text(metrics: dict) -> str:
    fidelity = metrics.get("fidelity")
    return "" if not fidelity else f"<p>The preset's targets in detail:</p><pre>{esc(fidelity['text'])}</pre>"


def _file_summary(entry: dict) -> str:
    """path, size, and the provenance that says how the file was made."""
    prov = entry.get("provenance") or {}
    config = prov.get("config") if isinstance(prov.get("config"), dict) else {}
    versions = prov.get("versions") if isinstance(prov.get("versions"), dict) else {}
    made = [f"{entry['path']}: n = {entry['n']} ({entry.get('source', '?')})",
            f"command: {prov.get('command', '–')}", f"seed: {config.get('seed', '–')}",
            f"physgan {prov.get('physgan_version', '–')}, torch {versions.get('torch', '–')}"]
    return "; ".join(made)


def _provenance(metrics: dict) -> str:
    parts = []
    for role in ("reference", "generated"):
        entry = metrics[role]
        prov = entry.get("provenance") or {}
        config = prov.get("config") if isinstance(prov.get("config"), dict) else {}
        rows = [("path", entry["path"]), ("source", entry.get("source", "")), ("samples", entry["n"]),
                ("command", prov.get("command", "–")), ("created", prov.get("created", "–")),
                ("physgan", prov.get("physgan_version", "–")), ("seed", config.get("seed", "–")),
                ("versions", ", ".join(f"{k} {v}" for k, v in (prov.get("versions") or {}).items()) or "–")]
        body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
        full = esc(json.dumps(prov, indent=1, sort_keys=True, default=str))
        parts.append(f"<h3>{esc(role.capitalize())}</h3><table>{body}</table>"
                     f"<details><summary>full provenance</summary><pre>{full}</pre></details>")
    return "".join(parts)


def _observable_tables(metrics: dict, observables: dict) -> str:
    overview = [[observables[n].label, fmt(r["w1"]), fmt(r["w1_floor"]), fmt(r["ratio"], 3), fmt(r["p_value"], 2),
                 fmt(r["ks"], 3), fmt(r["separation_power"], 3), r["pass"]] for n, r in metrics["observables"].items()]
    parts = ["<p class='note'>All conditions pooled (p not corrected: the pooled comparisons are not in the family); "
             "the pass column is the verdict over conditions.</p>",
             table(["observable", "W1", "floor", "W1/floor", "p", "KS", "sep. power", "every condition"], overview, 7)]
    for name, result in metrics["observables"].items():
        obs = observables[name]
        unit = f" [{obs.unit}]" if obs.unit else ""
        rows = [[c["label"], p["n_ref"], p["n_gen"], mean_err(p["ref_mean"], p["ref_err"]),
                 mean_err(p["gen_mean"], p["gen_err"]), fmt(p["w1"]), fmt(p["w1_floor"]), fmt(p["ratio"], 3),
                 fmt(p["p_value"], 2), fmt(p["p_adjusted"], 2), fmt(p["ks"], 3), fmt(p["separation_power"], 3),
                 p["pass"]] for c, p in zip(metrics["conditions"], result["per_condition"])]
        parts.append(f"<h3>{esc(obs.label)}{esc(unit)}: {esc(obs.description)}</h3>")
        parts.append(table(["condition", "n ref", "n gen", "ref mean", "gen mean", "W1", "floor", "W1/floor", "p",
                            "p (Holm)", "KS", "sep. power", "pass"], rows, 12))
    if metrics["exact"]:
        rows = [[e["quantity"], e["condition"], fmt(e["exact"], 6), mean_err(e["ref"], e["ref_err"]),
                 fmt(e["ref_pull"], 3), mean_err(e["gen"], e["gen_err"]), fmt(e["gen_pull"], 3),
                 f"{100 * e['relative']:+.2f} %", f"{100 * e['tolerance']:g} %", fmt(e["p_value"], 2),
                 fmt(e["p_adjusted"], 2), e["pass"]] for e in metrics["exact"]]
        parts.append("<h3>Exact values</h3>")
        parts.append(table(["quantity", "condition", "exact", "reference", "pull", "generated", "pull", "deviation",
                            "tolerance", "p", "p (Holm)", "pass"], rows, 11))
    return "".join(parts)


def _checks(metrics: dict) -> str:
    rows = [[c["check"], c["measured"], c["threshold"], c["pass"]] for c in metrics["checks"]]
    family = metrics["multiple_testing"]
    skipped = "".join(f"<li>{esc(s['label'])}: {esc(s['n_ref'])} reference, {esc(s['n_gen'])} generated</li>"
                      for s in metrics["not_judged"])
    return (table(["check", "measured", "threshold", "pass"], rows, 3)
            + f"<p class='note'>Significance: Holm's procedure over {esc(family['family_size'])} comparisons at "
              f"family-wise level {esc(family['level'])}. Judged: {esc(metrics['judged']['n_ref'])} reference and "
              f"{esc(metrics['judged']['n_gen'])} generated samples.</p>"
            + (f"<p>Not judged (fewer samples than a comparison needs):</p><ul>{skipped}</ul>" if skipped else ""))


def _classifier_section(metrics: dict) -> str:
    c = metrics["classifier"]
    if c.get("auc") is None:
        return f"<p>Not run: {esc(c.get('skipped', ''))}</p>"
    rows = [[p["label"], p["n_test"], mean_err(p["auc"], p["auc_err"])] for p in c["per_condition"]]
    rows.insert(0, ["all conditions", c["n_test"], mean_err(c["auc"], c["auc_err"])])
    return (f"<p>A small network from the system plug-in, given each sample and its condition, trained on 60 % of "
            f"{esc(c['n_per_class'])} samples per class (equal numbers per condition), the epoch kept by the "
            f"validation loss (20 %), Platt-calibrated, evaluated on the held-out 20 %. JS divergence bound from the "
            f"calibrated loss: {esc(fmt(c['jsd'], 3))} bits.</p>" + table(["condition", "test samples", "AUC"], rows))


def _plots_section(plots: list[tuple[str, str]], plots_dir: Path) -> str:
    figures = []
    for title, filename in plots:
        data = base64.b64encode((Path(plots_dir) / filename).read_bytes()).decode("ascii")
        figures.append(f'<figure><figcaption>{esc(title)}</figcaption>'
                       f'<img alt="{esc(title)}" src="data:image/png;base64,{data}"></figure>')
    return "".join(figures)


def write_html(path, metrics: dict, *, observables: dict, content: dict, plots: list[tuple[str, str]],
               plots_dir) -> None:
    """The report: summary, meaning of the numbers, provenance, tables, system extras, plots."""
    extra_tables = "".join(f"<h3>{esc(t['title'])}</h3>{table(t['headers'], t['rows'])}"
                           f"<p class='note'>{esc(t.get('note', ''))}</p>" for t in content.get("tables", []))
    title = f"physgan validation: {metrics['system']}"
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title><style>{CSS}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="note">physgan {esc(metrics['physgan_version'])}, seed {esc(metrics['seed'])}</p>
<h2>Summary</h2>
{_summary(metrics, observables, content)}
<h2>What the numbers mean</h2>
{EXPLANATION}
<p class="note">Test protocol: {esc(metrics['test_protocol'])}</p>
<h2>Provenance</h2>
{_provenance(metrics)}
<h2>Observables</h2>
{_observable_tables(metrics, observables)}
<h2>Classifier two-sample test</h2>
{_classifier_section(metrics)}
<h2>System-specific results</h2>
{extra_tables}
<h2>Plots</h2>
{_plots_section(plots, plots_dir)}
</body></html>
"""
    Path(path).write_text(document, encoding="utf-8")
