"""Ising plug-in of the validation engine (physgan.validation.validate): what to compare and how.

It implements physgan.systems.interface.Validation (the contract, member by member) for Ising lattices:
conditions are the temperatures, and files of different L cannot be compared.

Observables: e = E/N, |m|, signed m (a generator that collapses onto one sign of m below T_c fails on it
while e and |m| can look perfect) and m^2. Extras: thermodynamics per temperature (<e>, C, <|m|>, chi',
U4, kappa_3, xi) with jackknife errors next to exact values, the fraction of m > 0, G(r), the
local-equilibrium temperature of each sample (Callen identity, observables.local_temperature: a
reference-free check that equals T for any Boltzmann sample) and Fuerrutter's observable distance
(docs/physics.md, "Ising model"):

    D_T = sqrt((1/6) sum_i ((x_gen,i - x_MC,i) / sigma_MC,i)^2),  D = mean of D_T over temperatures,

over x = <|m|>, <e>, chi' = N beta (<m^2> - <|m|>^2), xi, U4 = 1 - <m^4>/(3 <m^2>^2) and
kappa_3 = N beta (<|m|^3> - 3 <|m|><m^2> + 2 <|m|>^3); sigma_MC is the standard error of the reference
value (jackknife for the nonlinear ones).
chi' and kappa_3 (the third cumulant of |m|) follow Fuerrutter's code (github FlorianFuerrutter/
gans-for-spin-models, plotting/data_analysis.py). His U is 3/2 U4 and his xi an exponential fit to the
connected G(r); D divides every difference by its own sigma, so constant factors cancel, but the
correlation length here is the second-moment one (Cooper, Freedman & Preston, Nucl. Phys. B 210, 210
(1982)), which needs no fit: xi = sqrt(S(0)/S(k_min) - 1) / (2 sin(k_min/2)), k_min = 2 pi/L,
S(k) = <|sum_x s_x e^{ik.x}|^2>/N. Two independent Monte Carlo samples of equal size give D of order
sqrt 2 (both fluctuate, only sigma_MC divides); the thesis' best GAN reached D = 32.6 +- 18.3 at L = 64.

Exact checks (exact_checks, for the engine): <e> and C = N beta^2 var(e) of both samples against Kaufman's
finite-L torus values at every temperature, <|m|> and <m^2> too where the lattice is enumerated (L <= 4),
as pulls with p-values and relative deviations; EXACT_TOLERANCE gives the relative deviation that matters.

Memorisation: the Hamming distance, up to a global spin flip, from each of MEMORISATION_QUERIES lattices of
both files (evenly strided) to the nearest training lattice of any temperature, as a fraction of the sites;
a copy has distance 0. Far below T_c honest lattices are often exact copies too (a ground state is a
ground state), which the reference's distances show.
"""
from __future__ import annotations

import math

import numpy as np

from physgan.errors import UserError
from physgan.io import DEFAULT_CHUNK
from physgan.stats import jackknife
from physgan.systems.ising.observables import (energy_per_site, exact_values, local_field_fractions,
                                              magnetization, per_temperature)
from physgan.validation.validate import (Observable, RowPicker, nearest_neighbour_summary, shortest_float,
                                        strided)

# All four take values on a finite set of lattice levels: e in steps of 4/N, m in steps of 2/N (N = L^2).
OBSERVABLES = {
    "e": Observable("e", "$e = E/N$", "J", "energy per site", discrete=True),
    "abs_m": Observable("|m|", "$|m|$", "", "absolute magnetisation per site", discrete=True),
    "m": Observable("m", "$m$", "", "signed magnetisation per site", discrete=True),  # fails a collapse onto one sign
    "m2": Observable("m²", "$m^2$", "", "squared magnetisation per site", discrete=True),
}
# the classifier on physics observables also sees the local structure (the fractions of sites whose four
# neighbours all disagree, w4, or two of them, w2: the lone flipped spins and domain walls) and the
# long-range order (the structure factor at the smallest wave vector)
CLASSIFIER_FEATURES = (*OBSERVABLES, "w4", "w2", "S_kmin")
CONDITION_NAMES = ("T",)
CORRELATION_SAMPLES = 50_000  # G(r) from at most this many configurations per file, evenly strided
MEMORISATION_QUERIES = 200  # lattices per file whose nearest training lattice is searched, evenly strided
FUERRUTTER = ("abs_m", "e", "chi_prime", "xi", "U4", "kappa_3")  # the observables of his distance D
FUERRUTTER_BEST_GAN = "32.6 ± 18.3 (Fuerrutter's best conditional GAN, L = 64; DCGAN 95.4)"
# Relative deviation from the exact value beyond which a significant deviation fails exact_checks (the engine
# fails a quantity iff it is significant after its multiple-testing correction AND |relative| > tolerance;
# a preset may override per quantity). Statistics decide small samples; these decide large ones, where
# any generator is significantly off and the question is whether it is off by enough to matter.
# - e 1 %: between the run presets' fidelity tolerances for <e> against the test Monte Carlo (quick 2 %,
#   full 0.5 %). Near T_c, de/dT = C (about 1.5 at L = 16-32), so 1 % of |e| = 1.4 is a temperature
#   error of about 0.01, i.e. T_c within half a percent; away from T_c (C of 0.3-0.5) 0.03-0.05.
# - C 5 %: C = N beta^2 var(e), so 5 % in C is 2.5 % in the width of the energy distribution, the same
#   order as e's 1 %. The statistics of a variance are poorer (relative error sqrt((kurtosis - 1)/n),
#   about 4.5 % at n = 1000, the quick preset's test size, and 2 % at the full preset's 5000), so a tighter
#   tolerance would be decided by noise, not by the generator.
# - |m| 1 %: the same as e (both are means of one per-lattice observable of comparable spread); the full
#   preset's 1.5 % (3 % near T_c) fidelity tolerance is against a Monte Carlo that has errors of its own.
# - m^2 2 %: to first order d(m^2)/m^2 = 2 d|m|/|m|, twice |m|'s tolerance for the same distortion.
# |m| and m^2 are exact only where the lattice is enumerated (L <= 4: observables.exact_values).
EXACT_TOLERANCE = {"e": 0.01, "C": 0.05, "abs_m": 0.01, "m2": 0.02}
THERMO_LABELS = {"e": "<e>", "C": "C", "abs_m": "<|m|>", "chi_prime": "χ'", "U4": "U4", "kappa_3": "κ3",
                 "xi": "ξ", "frac_m_pos": "frac m>0"}


def lattice_size(samples) -> int:
    return int(samples.fields["spins"][0][0])


def check_compatible(reference, generated) -> None:
    L_ref, L_gen = lattice_size(reference), lattice_size(generated)
    if L_ref != L_gen:
        raise UserError(f"lattice sizes differ: {reference.path} has L = {L_ref}, {generated.path} has L = {L_gen}; "
                        "compare samples of one lattice size")


def conditions(samples) -> np.ndarray:
    """Temperatures (n, 1) float32, as stored."""
    return samples.read("T").astype(np.float32).reshape(-1, 1)


def condition_label(row) -> str:
    return f"T = {float(row[0]):.4g}"


# ---------------------------------------------------------------------------------------------
# Per-sample features, one streamed pass


def correlation_function_fft(spins: np.ndarray) -> np.ndarray:
    """G(r) along the axes per configuration, as observables.correlation_function, by one 2D FFT per lattice.

    spins (n, L, L) of +-1 -> (n, L//2 + 1) float32 for r = 0 ... L/2. By Wiener-Khinchin,
    sum_x s_x s_{x + r e_x} = (1/N) sum_k |s~(k)|^2 e^{i k_x r} with s~(k) = sum_x s_x e^{-ik.x}: O(N log N)
    per lattice instead of O(N L) (torch: float32, several times faster than numpy's float64 FFT here).
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(spins)).float()
    L = x.shape[1]
    power = torch.view_as_real(torch.fft.rfft2(x)).square().sum(-1)  # (n, L, L//2 + 1): all k_y, k_x >= 0
    along_x = power.sum(1)  # sum over k_y: (n, L//2 + 1), a function of k_x
    # The sum over k_x needs the k_x < 0 columns, which rfft2 drops: |s~(k_y, -k_x)| = |s~(-k_y, k_x)|, so
    # weighting the inner columns by 2 and symmetrising in k_y gives it exactly.
    weights = torch.full((L // 2 + 1,), 2.0)
    weights[0] = 1.0
    if L % 2 == 0:
        weights[-1] = 1.0
    q = (power * weights).sum(2)
    along_y = 0.5 * (q + q[:, (-torch.arange(L)) % L])[:, : L // 2 + 1]
    return (torch.fft.irfft(along_x + along_y, n=L, dim=1)[:, : L // 2 + 1] / (2 * L**3)).numpy()


def structure_factor_kmin(spins: np.ndarray) -> np.ndarray:
    """S(k_min) = (|s~(2pi/L, 0)|^2 + |s~(0, 2pi/L)|^2) / (2N) per configuration, from row and column sums.

    spins (n, L, L) -> (n,) float64; O(N) per lattice (no FFT needed for one momentum).
    """
    L = spins.shape[1]
    phase = np.exp(-2j * np.pi * np.arange(L) / L)
    along_x = spins.sum(axis=1, dtype=np.int32) @ phase  # sum over y first: a function of x
    along_y = spins.sum(axis=2, dtype=np.int32) @ phase
    return (np.abs(along_x) ** 2 + np.abs(along_y) ** 2) / (2 * L * L)


def _features(spins: np.ndarray) -> dict[str, np.ndarray]:
    m = magnetization(spins)
    w4, w2 = local_field_fractions(spins)
    return {"e": energy_per_site(spins), "abs_m": np.abs(m), "m": m, "m2": m * m,
            "S_kmin": structure_factor_kmin(spins), "w4": w4, "w2": w2}


def per_sample(samples, keep: np.ndarray | None = None, chunk_size: int = DEFAULT_CHUNK):
    """Stream the file once: per-sample features and the lattices at the indices `keep`.

    Returns (features, kept): features e, abs_m, m, m2, S_kmin, w4, w2 (n,) float64, G (n_G, L//2 + 1) float32
    with G_index (n_G,), the correlation function of every k-th configuration (at most CORRELATION_SAMPLES:
    the FFT would otherwise cost more than everything else), and memorisation_spins (at most
    MEMORISATION_QUERIES, L, L) int8, evenly strided lattices; kept (len(keep), 1, L, L) int8.
    """
    L = lattice_size(samples)
    stride = max(1, math.ceil(samples.n / CORRELATION_SAMPLES))
    kept = RowPicker(keep, (1, L, L), np.int8)
    queries = RowPicker(strided(samples.n, MEMORISATION_QUERIES), (L, L), np.int8)
    parts, start = [], 0
    for chunk in samples.iter_chunks(chunk_size, names=("spins",)):
        spins = chunk["spins"]
        if np.any(np.abs(spins) != 1):  # int8 or float: either way a spin must be -1 or +1
            raise UserError(f"{samples.path}: spins must be -1 or +1 (found {np.unique(spins)[:5]} ...); "
                            "binarise a generator's output before writing it")
        g_rows = np.arange(-start % stride, len(spins), stride)
        parts.append({**_features(spins), "G": correlation_function_fft(spins[g_rows]), "G_index": start + g_rows})
        kept.add(start, spins[:, None])
        queries.add(start, spins)
        start += len(spins)
    features = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    features["memorisation_spins"] = queries.rows
    return features, kept.rows


# ---------------------------------------------------------------------------------------------
# Classifier


def make_classifier(shape: tuple[int, ...], n_cond: int, channels: int = 16):
    """Small conditional CNN for the classifier two-sample test: lattice (B, 1, L, L) and T (B, n_cond) -> logit.

    The input is the lattice together with its bonds s_i s_{i+x} and s_i s_{i+y} (the local energy), so the
    first layer sees the physics directly and can read 4 x 4 patches at once: training is the costliest step
    of a validation on two CPU cores. Then a circular convolution (the torus has no edges), no BatchNorm (it
    would let the samples of a batch inform each other's scores), and global average pooling, which makes the
    network translation invariant and its features e- and m-like; the head sees them together with the
    temperature, so it judges a lattice at its own T.
    """
    import torch
    from torch import nn

    patch = min(4, shape[-1])

    class LatticeClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3 * shape[0], channels, patch, stride=patch), nn.SiLU(),
                nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, padding_mode="circular"), nn.SiLU())
            self.head = nn.Sequential(nn.Linear(2 * channels + n_cond, 64), nn.SiLU(), nn.Linear(64, 1))

        def forward(self, x, cond):
            x = torch.cat([x, x * torch.roll(x, 1, dims=-1), x * torch.roll(x, 1, dims=-2)], dim=1)
            pooled = self.features(x).mean(dim=(2, 3))
            return self.head(torch.cat([pooled, cond], dim=1)).reshape(-1)

    return LatticeClassifier()


# ---------------------------------------------------------------------------------------------
# Thermodynamics, exact values, Fuerrutter's distance


def _kappa_3(N, beta):
    """Third cumulant of |m| times N beta (Fuerrutter's k3): N beta (<|m|^3> - 3<|m|><m^2> + 2<|m|>^3)."""
    def estimator(m, s_kmin):
        a = np.abs(m)
        return N * beta * (np.mean(a**3) - 3 * np.mean(a) * np.mean(m**2) + 2 * np.mean(a) ** 3)
    return estimator


def _second_moment_xi(N, L):
    """xi = sqrt(S(0)/S(k_min) - 1) / (2 sin(pi/L)), S(0) = N <m^2> (Cooper, Freedman & Preston 1982)."""
    def estimator(m, s_kmin):
        ratio = N * np.mean(m**2) / np.mean(s_kmin)
        return np.sqrt(max(ratio - 1.0, 0.0)) / (2 * np.sin(np.pi / L))
    return estimator


def _table(measured, L: int, local: bool = False) -> dict[str, np.ndarray]:
    """observables.per_temperature of the judged samples, one row per condition row (in their order)."""
    f, judged = measured.features, measured.index >= 0
    T = measured.rows[measured.index[judged], 0].astype(np.float64)
    return per_temperature(T, f["m"][judged], f["e"][judged], L,
                           local=(f["w4"][judged], f["w2"][judged]) if local else None)


def thermodynamics(measured, L: int) -> list[dict]:
    """Per condition row: observables.per_temperature's table (values and `_err`) plus kappa_3 and xi."""
    f = measured.features
    table = _table(measured, L, local=True)
    rows = []
    for c, members in enumerate(measured.groups):
        row = {key: values[c].item() for key, values in table.items()}
        beta, N = 1.0 / row["T"], L * L
        row["T"] = shortest_float(measured.rows[c, 0])  # as labelled, for tables and JSON
        for name, estimator in (("kappa_3", _kappa_3(N, beta)), ("xi", _second_moment_xi(N, L))):
            row[name], row[name + "_err"] = jackknife(estimator, f["m"][members], f["S_kmin"][members])
        rows.append(row)
    return rows


def fuerrutter_distance(ref_rows: list[dict], gen_rows: list[dict]) -> dict:
    """D_T = sqrt(mean_i ((x_gen,i - x_MC,i) / sigma_MC,i)^2) over FUERRUTTER, and D = mean over T.

    docs/physics.md, "Ising model" (Fuerrutter, BSc thesis, github FlorianFuerrutter/gans-for-spin-models).
    An observable whose reference error is 0 (a frozen lattice) has no defined pull and is left out.
    """
    per_condition = []
    for ref, gen in zip(ref_rows, gen_rows):
        pulls = {}
        for name in FUERRUTTER:
            sigma = ref[name + "_err"]
            pulls[name] = (gen[name] - ref[name]) / sigma if sigma > 0 else float("nan")
        values = np.array([p for p in pulls.values() if np.isfinite(p)])
        per_condition.append({"T": ref["T"], "D": float(np.sqrt(np.mean(values**2))) if len(values) else float("nan"),
                              "pulls": pulls})
    d = np.array([p["D"] for p in per_condition])
    return {"D": float(np.nanmean(d)), "D_spread": float(np.nanstd(d)), "observables": list(FUERRUTTER),
            "per_condition": per_condition,
            "definition": "D_T = sqrt(mean_i ((x_gen,i - x_MC,i)/sigma_MC,i)^2) over <|m|>, <e>, chi', xi "
                          "(second moment), U4, kappa_3 (of |m|); D = mean over T, D_spread = std over T",
            "independent_mc_expectation": "order 1-2: sqrt(2) = 1.41 for equal sizes and exact errors (measured "
                                          "0.9 at L = 16, 1.7-2.0 at L = 32 with 7 temperatures)",
            "literature": FUERRUTTER_BEST_GAN}


def _exact_pull(value: float, error: float, exact: float) -> float:
    """(value - exact)/error; with error 0 (a sample of one value) 0 where value equals exact, else +-inf:
    the deviation is then certain, and EXACT_TOLERANCE alone decides whether it matters."""
    if error > 0:
        return float((value - exact) / error)
    if error == 0:
        return 0.0 if value == exact else math.copysign(math.inf, value - exact)
    return float("nan")


def exact_checks(reference, generated) -> list[dict]:
    """Both samples against the exact finite-L values, one dict per temperature and quantity.

    reference, generated: validate.Measured with the features of per_sample. Quantities (EXACT_TOLERANCE's
    keys): "e" = <e> and "C" = N (<e^2> - <e>^2)/T^2 at every L >= 3 (Kaufman's torus solution), "abs_m" = <|m|>
    and "m2" = <m^2> where observables.exact_values enumerates the lattice (L <= 4). Each dict: quantity,
    condition (condition_label), T (as labelled), exact, gen, gen_err, gen_pull, ref, ref_err, ref_pull,
    relative = (gen - exact)/|exact|, p_value = two-sided normal p-value of gen_pull. Values and errors are
    observables.per_temperature's (as in the thermodynamics table: standard errors of means, jackknife for
    C); gen_err is the error an honest sample of the generated size has, the reference's error scaled by
    sqrt(n_ref / n_gen). It does not depend on the generated sample, so a too
    broad generator cannot loosen its own test; the smaller of the two samples' errors would (the minimum of
    two noisy estimates is biased low: with it, honest samples failed 3 % of the time at level 0.01,
    docs/validation.md). A zero error gives a pull of 0 or +-inf (_exact_pull) and p-value 1 or 0.
    """
    import scipy.stats

    L = lattice_size(reference.samples)
    temps = np.array([shortest_float(row[0]) for row in reference.rows])
    exact = exact_values(temps, L)
    ref_table, gen_table = (_table(measured, L) for measured in (reference, generated))
    out = []
    for c, (row, T) in enumerate(zip(reference.rows, temps)):
        for name in EXACT_TOLERANCE:
            if name not in exact:
                continue
            truth = float(exact[name][c])
            ref_value, ref_err, gen_value = ref_table[name][c], ref_table[name + "_err"][c], gen_table[name][c]
            gen_err = float(ref_err * np.sqrt(ref_table["n"][c] / gen_table["n"][c]))
            gen_pull = _exact_pull(gen_value, gen_err, truth)
            out.append({"quantity": name, "condition": condition_label(row), "T": float(T), "exact": truth,
                        "gen": float(gen_value), "gen_err": gen_err, "gen_pull": gen_pull,
                        "ref": float(ref_value), "ref_err": float(ref_err),
                        "ref_pull": _exact_pull(ref_value, ref_err, truth),
                        "relative": float((gen_value - truth) / abs(truth)) if truth != 0 else
                        (0.0 if gen_value == truth else math.copysign(math.inf, gen_value - truth)),
                        "p_value": float(2 * scipy.stats.norm.sf(abs(gen_pull)))})
    return out


def correlation_table(measured) -> list[dict]:
    """Per condition: G(r) for r = 0 ... L/2 with standard errors (from the strided subsample of per_sample)."""
    g_all, condition = measured.features["G"].astype(np.float64), measured.index[measured.features["G_index"]]
    out = []
    for c in range(len(measured.rows)):
        g = g_all[condition == c]
        err = g.std(axis=0, ddof=1) / np.sqrt(len(g)) if len(g) > 1 else np.full(g.shape[1], np.nan)
        out.append({"G": g.mean(axis=0).tolist(), "G_err": err.tolist(), "n": len(g)})
    return out


def extras(reference, generated, seed: int = 0) -> dict:
    """Thermodynamics, exact values, Fuerrutter's distance, G(r) (no random choices: `seed` is unused)."""
    L = lattice_size(reference.samples)
    ref_rows, gen_rows = thermodynamics(reference, L), thermodynamics(generated, L)
    ref_g, gen_g = correlation_table(reference), correlation_table(generated)
    return {
        "L": L,
        "thermodynamics": [{"T": r["T"], "ref": r, "gen": g} for r, g in zip(ref_rows, gen_rows)],
        "fuerrutter_distance": fuerrutter_distance(ref_rows, gen_rows),
        "fraction_m_positive": [{"T": r["T"], "ref": r["frac_m_pos"], "ref_err": r["frac_m_pos_err"],
                                 "gen": g["frac_m_pos"], "gen_err": g["frac_m_pos_err"]}
                                for r, g in zip(ref_rows, gen_rows)],
        "local_temperature": [{"T": r["T"], "ref": r["T_local"], "ref_err": r["T_local_err"],
                               "gen": g["T_local"], "gen_err": g["T_local_err"]} for r, g in zip(ref_rows, gen_rows)],
        "correlation_function": [{"T": r["T"], "r": list(range(L // 2 + 1)), "ref": rg["G"], "ref_err": rg["G_err"],
                                  "gen": gg["G"], "gen_err": gg["G_err"]}
                                 for r, rg, gg in zip(ref_rows, ref_g, gen_g)],
    }


def memorisation(training, reference, generated, seed: int = 0) -> dict:
    """Nearest training lattice (Hamming distance up to a global flip, fraction of sites) of the strided
    lattices of both files; validate.nearest_neighbour_summary of the two. No random choices."""
    queries = [m.features["memorisation_spins"].reshape(len(m.features["memorisation_spins"]), -1)
               for m in (reference, generated)]
    stacked = np.concatenate(queries).astype(np.float32)
    sites = stacked.shape[1]
    largest_overlap = np.zeros(len(stacked), np.float32)
    for chunk in training.iter_chunks(DEFAULT_CHUNK, names=("spins",)):
        lattices = chunk["spins"].reshape(len(chunk["spins"]), -1).astype(np.float32)
        # differing sites = (N - s.t) / 2, and (N + s.t) / 2 after a global flip of t: take the larger |s.t|
        largest_overlap = np.maximum(largest_overlap, np.abs(stacked @ lattices.T).max(axis=1))
    nearest = (sites - largest_overlap) / (2 * sites)
    result = nearest_neighbour_summary(nearest[:len(queries[0])], nearest[len(queries[0]):], copy_distance=0.0)
    return {**result, "metric": "Hamming distance up to a global spin flip, as a fraction of the sites",
            "unit": "", "queries": "evenly strided lattices of each file; nearest over every training lattice (any T)"}


# ---------------------------------------------------------------------------------------------
# Report content and plots


def report_content(extras: dict) -> dict:
    from physgan.textable import with_error

    d = extras["fuerrutter_distance"]
    summary = [("Fuerrutter's observable distance D",
                f"{d['D']:.3g} ± {d['D_spread']:.2g} (spread over T); independent Monte Carlo: "
                f"{d['independent_mc_expectation']}; the literature: {d['literature']}")]
    thermo_cols = ("e", "C", "abs_m", "chi_prime", "U4")
    fuerrutter_cols = ("kappa_3", "xi", "frac_m_pos")
    tables = []
    for title, cols in (("Thermodynamics per temperature (reference | generated)", thermo_cols),
                        ("Fuerrutter's extra observables and the sign of m (reference | generated)", fuerrutter_cols)):
        headers = ["T"] + [f"{THERMO_LABELS[c]} {who}" for c in cols for who in ("ref", "gen")]
        rows = [[f"{t['T']:.4g}"] + [with_error(t[who][c], t[who][c + "_err"]) for c in cols for who in ("ref", "gen")]
                for t in extras["thermodynamics"]]
        tables.append({"title": title, "headers": headers, "rows": rows,
                       "note": "jackknife errors (32 blocks); χ' = Nβ(<m²> − <|m|>²), U4 = 1 − <m⁴>/(3<m²>²), "
                               "κ3 = Nβ × third cumulant of |m|, ξ second-moment correlation length"})
    tables.append({"title": "Fuerrutter's observable distance per temperature",
                   "headers": ["T", "D_T"] + [f"pull {THERMO_LABELS.get(n, n)}" for n in d["observables"]],
                   "rows": [[f"{p['T']:.4g}", f"{p['D']:.3g}"] + [f"{p['pulls'][n]:+.2f}" for n in d["observables"]]
                            for p in d["per_condition"]],
                   "note": d["definition"] + "; pull = (generated − reference)/σ_ref"})
    local = extras["local_temperature"]
    tables.append({"title": "Local equilibrium: the temperature each sample's neighbourhoods are in equilibrium at",
                   "headers": ["T", "T_local ref", "T_local gen", "gen − T"],
                   "rows": [[f"{t['T']:.4g}", with_error(t["ref"], t["ref_err"]), with_error(t["gen"], t["gen_err"]),
                             f"{t['gen'] - float(t['T']):+.4f}"] for t in local],
                   "note": "Callen identity <s h> = <h tanh(h/T)> (h: sum of the 4 neighbours) solved for T; "
                           "a Boltzmann sample at T gives T (no reference needed); higher: too disordered "
                           "locally, lower: too ordered; jackknife errors (32 blocks)"})
    worst = max(local, key=lambda t: abs(t["gen"] - float(t["T"])) / max(t["gen_err"], 1e-12))
    summary.append(("Local equilibrium (Callen identity)",
                    f"generated lattices at T = {worst['T']:.4g} are in local equilibrium at "
                    f"{with_error(worst['gen'], worst['gen_err'])} (the largest pull over temperatures; "
                    f"reference: {with_error(worst['ref'], worst['ref_err'])})"))
    return {"summary": summary, "tables": tables}


def plots(reference, generated, extras: dict, plots_dir, pdf: bool, histograms) -> list[tuple[str, str]]:
    """Curves against T (with exact ones), G(r), and the fraction of m > 0 (no histograms to keep: the engine
    draws those of the observables)."""
    out = [thermodynamic_curve(extras, name, plots_dir, pdf) for name in ("e", "abs_m", "chi_prime", "C", "U4")]
    out.append(correlation_plot(extras, plots_dir, pdf))
    out.append(sign_plot(extras, plots_dir, pdf))
    return out


CURVES = {  # name -> (axis label, title)
    "e": (r"$\langle e \rangle$ [J]", "Energy per site"),
    "abs_m": (r"$\langle |m| \rangle$", "Absolute magnetisation"),
    "chi_prime": (r"$\chi' = N\beta(\langle m^2\rangle - \langle |m|\rangle^2)$ [1/J]", "Susceptibility"),
    "C": (r"$C = N\beta^2\,\mathrm{var}(e)$ [$k_B$]", "Specific heat per site"),
    "U4": (r"$U_4 = 1 - \langle m^4\rangle / 3\langle m^2\rangle^2$", "Binder cumulant"),
}
T_AXIS = r"$T$ [$J/k_B$]"


def _exact_curves(name: str, T: np.ndarray, L: int) -> list[tuple[str, np.ndarray]]:
    """(legend, values) of the exact curves known for an observable: Onsager/Yang (L = inf), Kaufman (L)."""
    from physgan.systems.ising import exact

    if name == "e":
        return [("Onsager, $L = \\infty$", exact.energy_per_site(T)),
                (f"Kaufman, $L = {L}$", exact.energy_per_site(T, L))]
    if name == "C":
        return [("Onsager, $L = \\infty$", exact.specific_heat_per_site(T)),
                (f"Kaufman, $L = {L}$", exact.specific_heat_per_site(T, L))]
    if name == "abs_m":
        return [("Yang, $L = \\infty$", exact.spontaneous_magnetization(T))]
    return []


def _columns(extras: dict, name: str):
    rows = extras["thermodynamics"]
    pick = lambda who, key: np.array([r[who][key] for r in rows])
    return (np.array([r["T"] for r in rows]), pick("ref", name), pick("ref", name + "_err"),
            pick("gen", name), pick("gen", name + "_err"))


def thermodynamic_curve(extras: dict, name: str, plots_dir, pdf: bool) -> tuple[str, str]:
    from physgan.systems.ising.exact import critical_temperature
    from physgan.validation import report

    T, ref, ref_err, gen, gen_err = _columns(extras, name)
    ylabel, title = CURVES[name]
    with report.style():
        fig, (ax, rax) = report.ratio_figure()
        grid = np.linspace(T.min() - 0.05, T.max() + 0.05, 400) if len(T) else T
        grid = grid[grid > 0]
        for (legend, values), style in zip(_exact_curves(name, grid, extras["L"]), ("-", "--")):
            ax.plot(grid, values, style, color="grey", lw=1.2, label=legend)
        report.reference_and_generated(ax, T, ref, ref_err, gen, gen_err)
        ax.axvline(critical_temperature(), color="black", ls=":", lw=1, label="$T_c$")
        report.ratio_panel(rax, T, gen, gen_err, ref, ref_err)
        report.finish(ax, rax, ylabel=ylabel, xlabel=T_AXIS, rlabel=f"$L = {extras['L']}$")
        return title + " against temperature", report.save(fig, plots_dir, f"ising_{name}_vs_T", pdf)


def correlation_plot(extras: dict, plots_dir, pdf: bool) -> tuple[str, str]:
    """G(r) per temperature, coloured in order of temperature by a colormap (the style's colour cycle gave two
    of the quick preset's seven temperatures one colour); their ratios side by side at each r."""
    import matplotlib

    from physgan.validation import report

    rows = extras["correlation_function"]
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(rows)))
    with report.style():
        fig, (ax, rax) = report.ratio_figure()
        ratios = []
        for i, (row, color) in enumerate(zip(rows, colours)):
            r = np.array(row["r"])
            ax.errorbar(r, row["ref"], row["ref_err"], fmt="o", ms=3, color=color, label=f"$T = {row['T']:.4g}$")
            ax.plot(r, row["gen"], "-", color=color, lw=1)
            ratios.append((r + 0.06 * (i - (len(rows) - 1) / 2), row["gen"], row["gen_err"], row["ref"],
                           row["ref_err"], color))
        report.ratio_panels(rax, ratios)
        ax.plot([], [], "ko", ms=3, label="reference (points)")
        ax.plot([], [], "k-", lw=1, label="generated (lines)")
        report.finish(ax, rax, ylabel=r"$G(r) = \langle s_i s_{i+r} \rangle$", xlabel="$r$ [lattice spacings]",
                      rlabel=f"$L = {extras['L']}$")
        return "Spin-spin correlation along the axes", report.save(fig, plots_dir, "ising_correlation_function", pdf)


def sign_plot(extras: dict, plots_dir, pdf: bool) -> tuple[str, str]:
    from physgan.systems.ising.exact import critical_temperature
    from physgan.validation import report

    T, ref, ref_err, gen, gen_err = _columns(extras, "frac_m_pos")
    with report.style():
        fig, (ax, rax) = report.ratio_figure()
        ax.axhline(0.5, color="grey", lw=1, label="symmetry: 1/2")
        ax.axvline(critical_temperature(), color="black", ls=":", lw=1, label="$T_c$")
        report.reference_and_generated(ax, T, ref, ref_err, gen, gen_err)
        ax.set_ylim(-0.05, 1.05)
        report.ratio_panel(rax, T, gen, gen_err, ref, ref_err)
        report.finish(ax, rax, ylabel="fraction of $m > 0$", xlabel=T_AXIS, rlabel=f"$L = {extras['L']}$")
        return "Fraction of configurations with m > 0", report.save(fig, plots_dir, "ising_fraction_m_positive", pdf)
