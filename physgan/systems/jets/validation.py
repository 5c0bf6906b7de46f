"""Jets plug-in of the validation engine (physgan.validation.validate): what to compare and how.

The interface is physgan.systems.interface.Validation. Jets specifics:

Conditions: (signal, pt_bin). A generated file stores the REQUESTED pT (the generator's condition) as
jet_pt, a Monte Carlo file the trimmed jet's pT (what the generator is trained on); either way jet_pt is the
condition, and it is put in fixed bins of PT_BIN_WIDTH GeV (250-275, 275-300, ...: the same edges for every
file) so that both files get identical condition rows. The observables never come from the stored per-jet
fields: they are computed from the image by the same code for both files (observables.image_observables):
mass, pT, tau_21, tau_32, delta R and the number of non-empty pixels. All are finite for any image with
finite, non-negative pixels (which per_sample demands): tau_N ratios are 0 where the denominator is 0 (an
empty image, or one with at most N pixels), delta R is 0 for a jet left with one trimmed subjet (as LAGAN),
and pT and mass of an empty image are 0.

Extras, per class (signal = 1, 0):
- the mean image of each file with per-pixel standard errors, and the (generated - reference) difference
  map with its pulls (difference / combined standard error; chi2 per pixel over the pixels with a non-zero
  error);
- the pixel-intensity spectrum (observables.pixel_spectrum, log bins) of each file, and its separation power;
- FPD and KPD on the 36 EFPs of degree <= 4 (observables.efps, pixels as particles; metrics.fpd and
  metrics.kpd, Kansal et al. arXiv:2211.10295), next to the reference-vs-reference values computed the same
  way. As in JetNet, whose particles carry pT relative to the jet's, the EFPs are those of each image scaled
  to unit total pT (dimensionless; the energy scale is the pT and mass observables' business, and a
  degree-4 EFP in GeV^4 would add the pT spread to its already heavy tail). The protocol: an evenly strided
  subsample of at most EFP_JETS reference jets of the class is split at random into halves R1 and R2; R2
  and a random subsample G of the generated jets are cut to the same size n; FPD(R1, G) and FPD(R1, R2)
  then use the same normalisation (max |EFP| over R1), the same bootstrap sizes and the same KPD batch size.
  JetNet's sizes (20k-50k for FPD, batches of 5k for KPD) need far more jets than the EFPs can be
  afforded for (energyflow: about 2.4 ms per jet on one core here, so EFP_JETS = 4000 costs ~15 s per
  class): fpd then fits FD against 1/N between n/2 and n, and KPD uses batches of min(5000, n // 2)
  (drawn without replacement, so no jet meets its own copy in the unbiased MMD, and different batches see
  different jets). Why the reference-vs-reference value is indispensable: bootstrapping from finite pools
  leaves FPD at the pools' own distance, which the 1/N extrapolation cannot remove (36 Gaussian features,
  pools of 1000: FPD ~ 0.06 for one distribution). And the EFPs are heavy-tailed: a few QCD jets with
  wide-angle pT have EFPs hundreds of times the median, so with tens to hundreds of jets per half both values
  depend on whether such a jet was drawn (measured, reference vs reference: QCD 0 to 0.9 with 100 jets per
  half and 4.5 +- 4.0 with 50; W' 0.07 to 1.2 with 100); read them with their errors;
- the conditional check: how the image pT follows the requested pT (jet_pt). For both files the mean and
  spread of image pT / jet_pt and the slope of image pT against jet_pt (least squares) with jackknife errors;
  `follows_requested_pt` is false when the generated slope is more than SLOPE_PULL_LIMIT standard errors
  from the reference's (a generator that ignores the requested pT within a bin has slope ~0, the Monte Carlo
  ~1), and the W1/floor of the ratio image pT / jet_pt (the engine's protocol) says how well its spread is
  reproduced. The pT observable itself only sees the requested pT through the 25 GeV bins.

Memorisation (with a training sample): the energy mover's distance (Komiske, Metodiev, Thaler,
arXiv:1902.02346; energyflow.emd.emds, pixels as massless particles at the pixel centres, R = EMD_R = 1.0, the
jet radius, beta = 1, pT not normalised, so in GeV) from MEMORISATION_QUERIES random jets of each file to the
nearest training image. EMD to every training image is too slow (0.04 ms a pair for Monte Carlo images of ~20
pixels, 0.8 ms at ~110, 30 ms at 625 faint pixels), so the training images are first ranked by the Euclidean
distance between the images smoothed with a Gaussian of PREFILTER_SIGMA pixels, and the exact EMD is computed
to the CANDIDATES nearest: the minimum over them is an upper bound of the true nearest-neighbour EMD (measured
on 300 training jets: the true nearest among the 20 candidates for 88 % of the queries, the bound 1.7 % high
on average), computed identically for both files. A copy of a training image has EMD 0; independent Monte
Carlo jets sit at ~17 GeV (median, 300 training jets; less for larger training samples, which is why the
reference's distances are the yardstick).
"""
from __future__ import annotations

import math

import numpy as np

from physgan.errors import UserError
from physgan.io import DEFAULT_CHUNK
from physgan.stats import jackknife, mean_and_error
from physgan.systems.jets.images import HALF_WIDTH
from physgan.systems.jets.observables import (CLASS_NAMES, SPECTRUM_EDGES, efps, image_observables, image_particles,
                                              pixel_spectrum)
from physgan.validation import metrics as m
from physgan.validation.validate import Observable, RowPicker, compare, nearest_neighbour_summary, strided

OBSERVABLES = {
    "mass": Observable("mass", "$m$", "GeV", "jet mass from the image"),
    "pt": Observable("pT", "$p_T$", "GeV", "jet pT from the image"),
    "tau_21": Observable("τ21", r"$\tau_{21}$", "", "N-subjettiness ratio tau_2 / tau_1 of the pixels"),
    "tau_32": Observable("τ32", r"$\tau_{32}$", "", "N-subjettiness ratio tau_3 / tau_2 of the pixels"),
    "delta_R": Observable("ΔR", r"$\Delta R$", "", "distance of the two leading trimmed subjets of the pixels"),
    "n_pixels": Observable("pixels", r"$N_{\mathrm{pixels}}$", "", "number of non-empty pixels"),
}
CONDITION_NAMES = ("signal", "pt_bin")
CLASS_ORDER = (1, 0)  # signal (W'), background (QCD): the order of tables and plots
PT_BIN_WIDTH = 25.0  # GeV; bins [k W, (k + 1) W), the condition is the bin centre
EFP_JETS = 4000  # per class and file at most, evenly strided: the EFPs cost ~2.4 ms per jet
MIN_EFP_JETS = 8  # per half; fewer give no covariance worth the name
KPD_BATCH = 5000  # JetNet's batch size, reduced to n // 2 for smaller samples
SLOPE_PULL_LIMIT = 4.0
MEMORISATION_QUERIES = 200  # random jets per file whose nearest training image is searched
CANDIDATES = 20  # training images per query that get an exact EMD
PREFILTER_SIGMA = 1.5  # pixels: the Gaussian smoothing of the prefilter's Euclidean distance
EMD_R = 1.0  # the jet radius (anti-kT R = 1.0)
COPY_EMD = 1.0  # GeV: a (near-)copy of a training image


def check_compatible(reference, other) -> None:
    shapes = [samples.fields["image"][0] for samples in (reference, other)]
    if shapes[0] != shapes[1]:
        raise UserError(f"image sizes differ: {reference.path} has {shapes[0]} pixels, {other.path} has "
                        f"{shapes[1]}; compare jet images of one size")


def conditions(samples) -> np.ndarray:
    """(n, 2) float32: signal and the centre of the jet_pt bin (fixed PT_BIN_WIDTH edges)."""
    signal, jet_pt = samples.read("signal"), samples.read("jet_pt").astype(np.float64)
    if not np.all(np.isfinite(jet_pt)):
        raise UserError(f"{samples.path}: jet_pt must be finite in every jet (it is the condition: the requested "
                        "pT of a generated jet)")
    centre = (np.floor(jet_pt / PT_BIN_WIDTH) + 0.5) * PT_BIN_WIDTH
    return np.stack([signal.astype(np.float32), centre.astype(np.float32)], axis=1)


def condition_label(row) -> str:
    centre = float(row[1])
    return (f"{CLASS_NAMES.get(int(row[0]), str(row[0]))}, pT {centre - PT_BIN_WIDTH / 2:g}-"
            f"{centre + PT_BIN_WIDTH / 2:g} GeV")


# ---------------------------------------------------------------------------------------------
# Per-sample features, one streamed pass


def _check_images(samples, images: np.ndarray) -> None:
    if not np.all(np.isfinite(images)):
        raise UserError(f"{samples.path}: images hold NaN or infinite pixels")
    if np.any(images < 0):
        raise UserError(f"{samples.path}: images hold negative pixels (min {images.min():.3g} GeV); a pixel is a pT "
                        "sum: clip a generator's output at 0 before writing it")


def per_sample(samples, keep: np.ndarray | None = None, chunk_size: int = DEFAULT_CHUNK):
    """Stream the file once: the observables of every image, and what the extras need.

    Returns (features, kept): features holds OBSERVABLES (n,) float64, signal (n,) int8 and jet_pt (n,)
    float64 (the condition), per class c in (0, 1) image_sum and image_sq_sum (2, P, P) float64, count (2,),
    spectrum (2, len(SPECTRUM_EDGES) - 1), and sub_images (k, P, P) float32 with sub_signal (k,): at most
    EFP_JETS images per class, evenly strided; kept (len(keep), 1, P, P) float32, the images at `keep`.
    """
    shape = samples.fields["image"][0]
    signal = samples.read("signal").astype(np.int8)
    sub = np.sort(np.concatenate([np.flatnonzero(signal == c)[strided(int(np.sum(signal == c)), EFP_JETS)]
                                  for c in (0, 1)]))
    kept, sub_images = RowPicker(keep, (1,) + shape, np.float32), RowPicker(sub, shape, np.float32)
    sums = {"image_sum": np.zeros((2,) + shape), "image_sq_sum": np.zeros((2,) + shape), "count": np.zeros(2),
            "spectrum": np.zeros((2, len(SPECTRUM_EDGES) - 1))}
    parts, start = [], 0
    for chunk in samples.iter_chunks(chunk_size, names=("image", "signal", "jet_pt")):
        images = chunk["image"].astype(np.float32)
        _check_images(samples, images)
        observables = image_observables(images)
        parts.append({**{name: observables[name].astype(np.float64) for name in OBSERVABLES},
                      "signal": chunk["signal"].astype(np.int8), "jet_pt": chunk["jet_pt"].astype(np.float64)})
        for c in (0, 1):
            members = images[chunk["signal"] == c].astype(np.float64)
            sums["image_sum"][c] += members.sum(axis=0)
            sums["image_sq_sum"][c] += np.square(members).sum(axis=0)
            sums["count"][c] += len(members)
            sums["spectrum"][c] += pixel_spectrum(members)
        kept.add(start, images[:, None])
        sub_images.add(start, images)
        start += len(images)
    features = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    features.update(sums, sub_images=sub_images.rows, sub_signal=signal[sub])
    return features, kept.rows


# ---------------------------------------------------------------------------------------------
# Classifier


def make_classifier(shape: tuple[int, ...], n_cond: int, channels: int = 16):
    """Small conditional CNN for the classifier two-sample test: image (B, 1, P, P) in GeV and the
    standardised condition (B, n_cond) -> logit (B,).

    The network sees log(1 + pixel pT) (pixel intensities span five decades), then two stride-2 convolutions
    (P = 25 -> 13 -> 7) and a dense head that also gets the condition. No pooling over positions: a
    preprocessed jet image has a fixed geometry (leading subjet at the centre, the second one below it), so
    where the pT sits is the physics. No BatchNorm (it would let the samples of a batch inform each other's
    scores). About 0.3 M multiply-adds per image: fast on a CPU.
    """
    import torch
    from torch import nn

    class JetImageClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(shape[0], channels, 3, stride=2, padding=1), nn.SiLU(),
                nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten())
            with torch.no_grad():
                size = self.features(torch.zeros((1,) + tuple(shape))).shape[1]
            self.head = nn.Sequential(nn.Linear(size + n_cond, 64), nn.SiLU(), nn.Linear(64, 1))

        def forward(self, x, cond):
            return self.head(torch.cat([self.features(torch.log1p(x)), cond], dim=1)).reshape(-1)

    return JetImageClassifier()


# ---------------------------------------------------------------------------------------------
# Extras


def classes_of(measured) -> list[int]:
    present = {int(c) for c in measured.rows[:, 0]}
    return [c for c in CLASS_ORDER if c in present]


def mean_images(reference, generated, c: int) -> dict:
    """Mean image of class c in each file with per-pixel standard errors, their difference and its pulls."""
    out = {}
    for who, measured in (("ref", reference), ("gen", generated)):
        f, n = measured.features, measured.features["count"][c]
        mean = f["image_sum"][c] / n
        variance = np.maximum(f["image_sq_sum"][c] / n - mean**2, 0.0) * n / max(n - 1, 1)
        out[who], out[who + "_err"] = mean, np.sqrt(variance / n)
    difference = out["gen"] - out["ref"]
    error = np.hypot(out["ref_err"], out["gen_err"])
    compared = error > 0
    pull = np.divide(difference, error, out=np.zeros_like(difference), where=compared)
    worst = np.unravel_index(np.argmax(np.abs(pull)), pull.shape)
    return {"ref_mean": out["ref"], "ref_err": out["ref_err"], "gen_mean": out["gen"], "gen_err": out["gen_err"],
            "difference": difference, "pull": pull, "pixels_compared": int(compared.sum()),
            "chi2_per_pixel": float(np.sum(pull**2) / max(compared.sum(), 1)),
            "largest_pull": float(pull[worst]), "largest_pull_pixel": [int(i) for i in worst],
            "relative_abs_difference": float(np.abs(difference).sum() / max(out["ref"].sum(), 1e-300))}


def spectra(reference, generated, c: int) -> dict:
    ref, gen = reference.features["spectrum"][c], generated.features["spectrum"][c]
    power = m.histogram_separation_power(ref, gen) if ref.sum() > 0 and gen.sum() > 0 else float("nan")
    return {"edges": SPECTRUM_EDGES, "ref": ref, "gen": gen, "separation_power": power}


def relative_efps(images: np.ndarray) -> np.ndarray:
    """The 36 EFPs (n, 36) of images (n, P, P) scaled to unit total pT (JetNet's relative pT); empty images
    give zeros."""
    totals = images.reshape(len(images), -1).sum(axis=1, dtype=np.float64)
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return efps(images * scale[:, None, None])


def efp_distances(ref_images: np.ndarray, gen_images: np.ndarray, rng: np.random.Generator) -> dict:
    """FPD and KPD (metrics.fpd, metrics.kpd) of generated vs reference and of reference vs reference.

    ref_images (n_ref, P, P), gen_images (n_gen, P, P): the subsamples of one class. The protocol is in the
    module docstring: R1 = a random half of the reference; R2 and G, n jets each; FPD(R1, G) next to
    FPD(R1, R2), KPD likewise, with identical sizes, batches and normalisation.
    """
    half = len(ref_images) // 2
    n = min(half, len(gen_images))
    if n < MIN_EFP_JETS:
        return {"skipped": f"fewer than {MIN_EFP_JETS} jets per half ({half} reference, {len(gen_images)} generated)"}
    order = rng.permutation(len(ref_images))
    picked = [ref_images[order[:half]], ref_images[order[half:half + n]],
              gen_images[np.sort(rng.choice(len(gen_images), n, replace=False))]]
    real, ref_other, gen = np.split(relative_efps(np.concatenate(picked)), np.cumsum([half, n]))
    batch = min(KPD_BATCH, n // 2)
    out = {"n_real": half, "n_compared": n, "kpd_batch": batch}
    for who, other in (("gen", gen), ("ref", ref_other)):
        out[f"fpd_{who}"], out[f"fpd_{who}_err"] = m.fpd(real, other, rng)
        out[f"kpd_{who}"], out[f"kpd_{who}_err"] = m.kpd(real, other, rng, batch_size=batch)
    return out


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y against x."""
    dx = x - x.mean()
    denominator = np.dot(dx, dx)
    return float(np.dot(dx, y - y.mean()) / denominator) if denominator > 0 else float("nan")


def requested_and_image_pt(measured, c: int) -> tuple[np.ndarray, np.ndarray]:
    """jet_pt (the requested pT) and the image's pT of the jets of class c."""
    members = measured.features["signal"] == c
    return measured.features["jet_pt"][members], measured.features["pt"][members]


def pt_response(measured, c: int) -> dict:
    """How the image pT of class c follows jet_pt (the requested pT): ratio, its spread, slope, correlation."""
    requested, image = requested_and_image_pt(measured, c)
    ratio = image / requested
    spread = jackknife(lambda r: np.std(r, ddof=1), ratio)
    slope = jackknife(_slope, requested, image)
    varied = np.std(requested) > 0 and np.std(image) > 0
    return {"n": len(ratio), "ratio": mean_and_error(ratio), "spread": spread, "slope": slope,
            "correlation": float(np.corrcoef(requested, image)[0, 1]) if varied else float("nan"),
            "requested_range": [float(requested.min()), float(requested.max())]}


def conditional_pt(reference, generated, c: int, rng: np.random.Generator) -> dict:
    ref, gen = pt_response(reference, c), pt_response(generated, c)
    pull = (gen["slope"][0] - ref["slope"][0]) / math.hypot(ref["slope"][1], gen["slope"][1])
    (ref_requested, ref_image), (gen_requested, gen_image) = (requested_and_image_pt(measured, c)
                                                              for measured in (reference, generated))
    w1 = compare(ref_image / ref_requested, gen_image / gen_requested, rng, threshold=math.inf)
    return {"ref": ref, "gen": gen, "slope_pull": pull,
            "follows_requested_pt": bool(abs(pull) <= SLOPE_PULL_LIMIT) if math.isfinite(pull) else None,
            "ratio_w1": w1["w1"], "ratio_w1_floor": w1["w1_floor"], "ratio_w1_ratio": w1["ratio"]}


def extras(reference, generated, seed: int = 0) -> dict:
    """Per class: mean images, pixel spectra, FPD/KPD with reference-vs-reference values, conditional pT.

    Random choices: numpy default_rng([seed, 2, class]) for the EFP subsamples and bootstraps,
    [seed, 3, class] for the W1 of the pT ratio, [seed, 4] in memorisation.
    """
    classes = []
    for c in classes_of(reference):
        subsample = [measured.features["sub_images"][measured.features["sub_signal"] == c]
                     for measured in (reference, generated)]
        classes.append({"signal": c, "label": CLASS_NAMES.get(c, str(c)),
                        "n_ref": int(reference.features["count"][c]), "n_gen": int(generated.features["count"][c]),
                        "mean_image": mean_images(reference, generated, c), "pixel_spectrum": spectra(reference,
                                                                                                     generated, c),
                        "efp": efp_distances(*subsample, np.random.default_rng([seed, 2, c])),
                        "conditional_pt": conditional_pt(reference, generated, c, np.random.default_rng([seed, 3, c]))})
    return {"pt_bin_width": PT_BIN_WIDTH, "efp_jets": EFP_JETS, "classes": classes}


# ---------------------------------------------------------------------------------------------
# Memorisation


def _prefilter_features(images: np.ndarray) -> np.ndarray:
    """Images (n, P, P) smoothed by a Gaussian of PREFILTER_SIGMA pixels, flattened (n, P*P) float32: the
    Euclidean distance between these ranks training images for the exact EMD (it forgives small shifts)."""
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(np.asarray(images, np.float32), sigma=(0, PREFILTER_SIGMA, PREFILTER_SIGMA),
                             mode="constant")
    return smooth.reshape(len(images), -1)


def nearest_candidates(queries: np.ndarray, training, k: int = CANDIDATES) -> np.ndarray:
    """Indices (q, <= k) of the training images nearest to each query image by the prefilter distance."""
    q = _prefilter_features(queries)
    q_norm = np.sum(q * q, axis=1)
    best_distance, best_index = np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    start = 0
    for chunk in training.iter_chunks(DEFAULT_CHUNK, names=("image",)):
        _check_images(training, chunk["image"])
        t = _prefilter_features(chunk["image"])
        distance = q_norm[:, None] + np.sum(t * t, axis=1)[None] - 2 * q @ t.T
        distance = np.concatenate([best_distance, distance], axis=1)
        index = np.concatenate([best_index, np.broadcast_to(start + np.arange(len(t)), (len(q), len(t)))], axis=1)
        keep = np.argpartition(distance, min(k, distance.shape[1]) - 1, axis=1)[:, :k]
        best_distance, best_index = np.take_along_axis(distance, keep, 1), np.take_along_axis(index, keep, 1)
        start += len(t)
    return best_index


def _events(images: np.ndarray) -> list[np.ndarray]:
    """Each image's non-empty pixels as (pT, x, y) rows (observables.image_particles); an empty image as one
    pixel of pT 0 at the centre, whose EMD to an event is that event's total pT (energyflow's pairwise EMD
    fails on an empty event: an error, or a crash when the other event has pT 0)."""
    particles = image_particles(images)
    events = np.split(np.stack([particles.pt, particles.eta, particles.phi], axis=1), particles.offsets[1:-1])
    return [event if len(event) else np.zeros((1, 3)) for event in events]


def emds(events: list[np.ndarray], others: list[np.ndarray]) -> np.ndarray:
    """EMD (GeV) of each of `events` to each of `others`, both from _events: (len(events), len(others))."""
    import energyflow

    # one thread, as the machine is shared: on 2 cores, 2 threads were 1.9x faster idle, 17x slower busy
    return energyflow.emd.emds(events, others, R=EMD_R, n_jobs=1)


def nearest_emd(queries: np.ndarray, training) -> np.ndarray:
    """(q,) EMD of each query image (q, P, P) to the nearest of its CANDIDATES training images."""
    candidates = nearest_candidates(queries, training)
    unique, inverse = np.unique(candidates, return_inverse=True)
    picker = RowPicker(unique, training.fields["image"][0], np.float32)
    start = 0
    for chunk in training.iter_chunks(DEFAULT_CHUNK, names=("image",)):
        picker.add(start, chunk["image"])
        start += len(chunk["image"])
    train_events, query_events = _events(picker.rows), _events(queries)
    inverse = inverse.reshape(candidates.shape)
    # one pairwise call per query: queries x all their candidates would be up to len(queries) times the pairs
    return np.array([emds([event], [train_events[j] for j in row]).min() for event, row in zip(query_events, inverse)])


def memorisation(training, reference, generated, seed: int = 0) -> dict:
    """Nearest-neighbour EMD to the training images of random jets of both files (module docstring)."""
    rng = np.random.default_rng([seed, 4])
    queries = []
    for measured in (reference, generated):
        images = measured.features["sub_images"]
        queries.append(images[np.sort(rng.choice(len(images), min(MEMORISATION_QUERIES, len(images)),
                                                 replace=False))])
    nearest = nearest_emd(np.concatenate(queries), training)
    result = nearest_neighbour_summary(nearest[:len(queries[0])], nearest[len(queries[0]):], copy_distance=COPY_EMD)
    return {**result, "unit": "GeV",
            "metric": f"energy mover's distance (energyflow, R = {EMD_R:g}, beta = 1, pixels as particles), to the "
                      f"nearest of the {CANDIDATES} training images closest by a smoothed-image Euclidean distance",
            "queries": f"{len(queries[0])} and {len(queries[1])} random jets of the two files, both classes; nearest "
                       f"over every training image ({training.n})"}


# ---------------------------------------------------------------------------------------------
# Report content and plots


EFP_NOTE = ("36 EFPs (d ≤ 4) of the images scaled to unit pT, pixels as particles; at most {jets} reference jets "
            "per class, split in two halves R1, R2; FPD(R1, generated) next to FPD(R1, R2), generated and R2 of "
            "equal size, same normalisation (max |EFP| over R1), same bootstrap (Kansal et al. arXiv:2211.10295, "
            "sizes from n/2 to n where JetNet uses 20k to 50k; KPD batches of min(5000, n/2)); errors: the fit's "
            "(FPD), half the 16-84 % range (KPD). Finite samples leave an offset that only the reference-vs-reference "
            "value shows, and a few wide-angle jets dominate the EFPs' tails: with hundreds of jets per sample the "
            "values swing by factors (QCD reference vs reference: 0 to 0.9 with 100 jets per half)")
PT_NOTE = ("slope: least squares of image pT against jet_pt; errors: jackknife; follows: |slope pull| ≤ {limit:g} "
           "(a generator ignoring the requested pT has slope ≈ 0); W1/floor of pT image / pT requested with the "
           "engine's protocol")
IMAGE_NOTE = ("Δ mean = generated − reference mean image; pull = Δ / combined standard error per pixel; χ² over "
              "the pixels with a non-zero error (≈ 1 for independent samples of one distribution)")
FOLLOWS = {True: "yes", False: "NO", None: "–"}


def _with_error(value, error, scale: float = 1.0) -> str:
    from physgan.textable import with_error

    if value is None or not math.isfinite(value):
        return "–"
    return with_error(value * scale, error * scale if error is not None and math.isfinite(error) else float("nan"))


def _efp_row(entry: dict) -> list[str]:
    efp = entry["efp"]
    if "skipped" in efp:
        return [entry["label"], "–", "–", "–", "–", "–", efp["skipped"]]
    return [entry["label"], str(efp["n_compared"])] + [_with_error(efp[key], efp[key + "_err"], 1e3)
                                                       for key in ("fpd_gen", "fpd_ref", "kpd_gen", "kpd_ref")] + [""]


def _pt_rows(entry: dict) -> list[list[str]]:
    cond = entry["conditional_pt"]
    rows = []
    for who, name in (("ref", "reference"), ("gen", "generated")):
        r = cond[who]
        comparison = (f"{cond['slope_pull']:+.2f}", FOLLOWS[cond["follows_requested_pt"]],
                      f"{cond['ratio_w1_ratio']:.3g}") if who == "gen" else ("", "", "")
        rows.append([entry["label"], name, str(r["n"]), _with_error(*r["ratio"]), _with_error(*r["spread"]),
                     _with_error(*r["slope"]), f"{r['correlation']:.3f}" if math.isfinite(r["correlation"]) else "–",
                     *comparison])
    return rows


def _image_row(entry: dict) -> list[str]:
    image = entry["mean_image"]
    row, col = image["largest_pull_pixel"]
    return [entry["label"], str(entry["n_ref"]), str(entry["n_gen"]), f"{image['relative_abs_difference']:.1%}",
            f"{image['chi2_per_pixel']:.3g}", f"{image['largest_pull']:+.2f} at (row, col) = ({row}, {col})",
            f"{entry['pixel_spectrum']['separation_power']:.3g}"]


def report_content(extras: dict) -> dict:
    summary = []
    for entry in extras["classes"]:
        efp, cond = entry["efp"], entry["conditional_pt"]
        if "skipped" not in efp:
            summary.append((f"FPD ×10³, {entry['label']}", f"{_with_error(efp['fpd_gen'], efp['fpd_gen_err'], 1e3)} "
                            f"(reference vs reference: {_with_error(efp['fpd_ref'], efp['fpd_ref_err'], 1e3)})"))
        summary.append((f"Image pT follows the requested pT, {entry['label']}",
                        f"{FOLLOWS[cond['follows_requested_pt']]}: slope {_with_error(*cond['gen']['slope'])} "
                        f"(reference {_with_error(*cond['ref']['slope'])})"))
    classes = extras["classes"]
    tables = [
        {"title": "Energy flow polynomials: FPD and KPD per class (×10³)",
         "headers": ["class", "jets per sample", "FPD gen", "FPD ref vs ref", "KPD gen", "KPD ref vs ref", "note"],
         "rows": [_efp_row(entry) for entry in classes], "note": EFP_NOTE.format(jets=extras["efp_jets"])},
        {"title": "Image pT against the requested pT (jet_pt) per class",
         "headers": ["class", "sample", "jets", "<pT image / pT req>", "spread", "slope", "correlation",
                     "slope pull", "follows", "W1/floor of the ratio"],
         "rows": [row for entry in classes for row in _pt_rows(entry)], "note": PT_NOTE.format(limit=SLOPE_PULL_LIMIT)},
        {"title": "Mean images and pixel spectra per class",
         "headers": ["class", "n ref", "n gen", "Σ|Δ mean| / Σ mean", "χ² per pixel", "largest pull",
                     "pixel-spectrum separation power"],
         "rows": [_image_row(entry) for entry in classes], "note": IMAGE_NOTE},
    ]
    return {"summary": summary, "tables": tables}


def plots(reference, generated, extras: dict, plots_dir, pdf: bool, histograms) -> list[tuple[str, str]]:
    """Mean images with difference and pull maps, pixel spectra (kept in `histograms`), image pT against the
    requested pT."""
    return [mean_image_plot(extras, plots_dir, pdf), spectrum_plot(extras, plots_dir, pdf, histograms),
            response_plot(reference, generated, extras, plots_dir, pdf)]


IMAGE_EXTENT = (-HALF_WIDTH, HALF_WIDTH, -HALF_WIDTH, HALF_WIDTH)


def mean_image_plot(extras: dict, plots_dir, pdf: bool) -> tuple[str, str]:
    from matplotlib.colors import LogNorm

    from physgan.validation import report

    classes = extras["classes"]
    with report.style():
        fig = report._figure(17.0, 4.0 * len(classes))
        fig.subplots_adjust(left=0.05, right=0.96, bottom=0.12 / len(classes), top=1 - 0.3 / (4.0 * len(classes)),
                            wspace=0.45, hspace=0.35)
        for i, entry in enumerate(classes):
            image = entry["mean_image"]
            ref, gen = np.asarray(image["ref_mean"]), np.asarray(image["gen_mean"])
            positive = np.concatenate([ref[ref > 0], gen[gen > 0]])
            norm = (LogNorm(vmin=max(positive.min(), positive.max() * 1e-5), vmax=positive.max())
                    if len(positive) else None)
            difference, pull = np.asarray(image["difference"]), np.asarray(image["pull"])
            largest = max(np.abs(difference).max(), 1e-12)
            largest_pull = max(np.abs(pull).max(), 3.0)
            panels = [(ref, "reference mean [GeV]", dict(norm=norm, cmap="viridis")),
                      (gen, "generated mean [GeV]", dict(norm=norm, cmap="viridis")),
                      (difference, "generated − reference [GeV]", dict(cmap="RdBu_r", vmin=-largest, vmax=largest)),
                      (pull, "pull (Δ / σ)", dict(cmap="RdBu_r", vmin=-largest_pull, vmax=largest_pull))]
            for j, (values, title, style) in enumerate(panels):
                ax = fig.add_subplot(len(classes), 4, 4 * i + j + 1)
                shown = ax.imshow(np.where(values > 0, values, np.nan) if "norm" in style else values,
                                  extent=IMAGE_EXTENT, origin="upper", **style)
                fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
                ax.set_title(f"{entry['label']}: {title}", fontsize=9)
                ax.set_xlabel("rotated η", fontsize=9)
                ax.set_ylabel("rotated φ", fontsize=9)
        return "Mean jet images per class, their difference and its pulls", report.save(fig, plots_dir,
                                                                                        "jets_mean_images", pdf)


PIXEL_PT = Observable("pixel pT", "pixel $p_T$", "GeV", "intensity of the non-empty pixels")


def spectrum_plot(extras: dict, plots_dir, pdf: bool, histograms) -> tuple[str, str]:
    from physgan.validation import report
    from physgan.validation.histograms import Histogram

    classes = extras["classes"]
    with report.style():
        fig, pairs = report.ratio_grid(len(classes), ncols=2, panel_width=5.5)
        for i, ((ax, rax), entry) in enumerate(zip(pairs, classes)):
            spectrum = entry["pixel_spectrum"]
            series = {name: Histogram(np.asarray(spectrum["edges"], np.float64),
                                      np.asarray(spectrum[who]).astype(np.int64))  # summed as floats: whole counts
                      for name, who in (("reference", "ref"), ("generated", "gen"))}
            histograms.add("jets_pixel_spectrum", "pixel_pt", PIXEL_PT, series, panel=f"condition_{i}",
                           label=entry["label"], condition={"signal": entry["signal"]})
            report.histogram_panel(ax, rax, series["reference"], series["generated"], log_x=True)
            report.finish(ax, rax, ylabel="pixels per GeV (normalised)", xlabel="pixel $p_T$ [GeV]",
                          rlabel=f"{entry['label']}, S = {spectrum['separation_power']:.3g}")
        return "Pixel-intensity spectra per class", report.save(fig, plots_dir, "jets_pixel_spectrum", pdf)


def response_plot(reference, generated, extras: dict, plots_dir, pdf: bool, bins: int = 10) -> tuple[str, str]:
    """Per class: the mean of image pT / jet_pt in bins of jet_pt, both files."""
    from physgan.validation import report

    classes = extras["classes"]
    with report.style():
        fig, pairs = report.ratio_grid(len(classes), ncols=2, panel_width=5.5)
        for (ax, rax), entry in zip(pairs, classes):
            c = entry["signal"]
            profiles = []
            selected = [requested_and_image_pt(measured, c) for measured in (reference, generated)]
            lo = min(s[0].min() for s in selected)
            hi = max(s[0].max() for s in selected)
            edges = np.linspace(lo, np.nextafter(hi, np.inf), bins + 1) if hi > lo else np.array([lo - 0.5, hi + 0.5])
            centres = 0.5 * (edges[1:] + edges[:-1])
            for requested, image in selected:
                which = np.digitize(requested, edges) - 1
                stats = [mean_and_error(image[which == b] / requested[which == b]) for b in range(len(centres))]
                profiles.append(np.array(stats).T)
            (ref, ref_err), (gen, gen_err) = profiles
            report.reference_and_generated(ax, centres, ref, ref_err, gen, gen_err)
            report.ratio_panel(rax, centres, gen, gen_err, ref, ref_err)
            report.finish(ax, rax, ylabel=r"$\langle p_T^{\mathrm{image}} / p_T^{\mathrm{requested}} \rangle$",
                          xlabel=r"requested $p_T$ (jet_pt) [GeV]", rlabel=entry["label"])
        return "Image pT against the requested pT", report.save(fig, plots_dir, "jets_pt_response", pdf)
