"""Ising observables: per configuration (vectorised over a batch) and per temperature with errors.

Conventions (docs/physics.md, "Ising model"): N = L^2 sites, m = (1/N) sum s_i, e = E/N with
E = -sum_i s_i (s_{i+x} + s_{i+y}) on the torus (2N bonds). Thermodynamic estimators:
C = N beta^2 (<e^2> - <e>^2), chi = N beta <m^2>, chi' = N beta (<m^2> - <|m|>^2),
U4 = 1 - <m^4> / (3 <m^2>^2) (Binder, Z. Phys. B 43, 119 (1981)).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physgan.stats import jackknife, mean_and_error


def magnetization(spins: np.ndarray) -> np.ndarray:
    """m per configuration; spins (n, L, L) of +-1 -> (n,) float64."""
    return spins.reshape(len(spins), -1).mean(axis=1, dtype=np.float64)


def energy_per_site(spins: np.ndarray) -> np.ndarray:
    """e = E/N per configuration; spins (n, L, L) of +-1 -> (n,) float64."""
    s = spins.astype(np.int32)
    bonds = s * (np.roll(s, 1, axis=1) + np.roll(s, 1, axis=2))
    return -bonds.reshape(len(s), -1).mean(axis=1, dtype=np.float64)


def local_field_fractions(spins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per configuration, the fractions of sites whose local field h_i (the sum of the 4 neighbours)
    has |h_i| = 4 and |h_i| = 2; spins (n, L, L) of +-1 -> two (n,) float64."""
    s = spins.astype(np.int8)
    h = np.abs(np.roll(s, 1, 1) + np.roll(s, -1, 1) + np.roll(s, 1, 2) + np.roll(s, -1, 2)).reshape(len(s), -1)
    return (h == 4).mean(axis=1, dtype=np.float64), (h == 2).mean(axis=1, dtype=np.float64)


def local_temperature(e: np.ndarray, w4: np.ndarray, w2: np.ndarray) -> float:
    """The temperature at which lattices are in local equilibrium, from the Callen identity.

    In equilibrium at beta each spin, given its neighbours, is +1 with probability e^{beta h}/(2 cosh beta h),
    so <s_i h_i> = <h_i tanh(beta h_i)>. Averaged over sites: -2<e> = 4 tanh(4 beta) <w4> + 2 tanh(2 beta) <w2>
    (w4, w2: fractions of sites with |h| = 4, 2; e, w4, w2 per configuration, as local_field_fractions).
    The right side grows with beta, so the solution is unique: 1/beta is T for a Boltzmann sample at T, at
    any L, with no reference sample needed. Lattices whose spins oppose their local field more often than
    the Boltzmann weight at T allows (too disordered locally) give a higher temperature. It tests how a
    spin responds to its neighbours, not how many neighbourhoods of each kind there are: a lattice with too
    much domain wall, each wall site in local equilibrium, gives T. Returns inf when -2<e> <= 0, 0 when
    even beta = inf cannot match it (more order than any temperature gives these neighbourhoods).
    """
    a, W4, W2 = -2 * np.mean(e), np.mean(w4), np.mean(w2)
    if a <= 0:
        return float("inf")
    if a >= 4 * W4 + 2 * W2:
        return 0.0
    low, high = 0.0, 1.0  # u = tanh(2 beta) in (0, 1); tanh(4 beta) = 2u / (1 + u^2)
    for _ in range(60):
        u = 0.5 * (low + high)
        low, high = (u, high) if 8 * u / (1 + u * u) * W4 + 2 * u * W2 < a else (low, u)
    return float(4.0 / np.log((1 + u) / (1 - u)))  # beta = artanh(u) / 2 = ln((1 + u) / (1 - u)) / 4


def correlation_function(spins: np.ndarray) -> np.ndarray:
    """G(r) = <s_i s_{i+r}> along the two axes, averaged over sites and axes, per configuration.

    spins (n, L, L) -> (n, L//2 + 1) for r = 0 ... L/2 (beyond L/2 the torus repeats itself).
    """
    s = spins.astype(np.float32)
    n, L = len(s), s.shape[1]
    g = np.empty((n, L // 2 + 1))
    for r in range(L // 2 + 1):
        along_x = (s * np.roll(s, r, axis=1)).reshape(n, -1).mean(axis=1)
        along_y = (s * np.roll(s, r, axis=2)).reshape(n, -1).mean(axis=1)
        g[:, r] = 0.5 * (along_x + along_y)
    return g


# Estimators of the per-temperature table, as functions of per-configuration arrays (m, e).
# Each is fed to the jackknife, so nonlinear ones (C, chi', U4) get honest errors.
def _specific_heat(N, beta):
    return lambda m, e: N * beta**2 * np.var(e)


def _susceptibility(N, beta):
    return lambda m, e: N * beta * np.mean(m**2)


def _susceptibility_prime(N, beta):
    return lambda m, e: N * beta * (np.mean(m**2) - np.mean(np.abs(m)) ** 2)


def _binder(m, e):
    m2 = np.mean(m**2)
    return 1.0 - np.mean(m**4) / (3.0 * m2**2) if m2 > 0 else np.nan


MEANS = {  # column -> per-configuration quantity whose mean is reported
    "e": lambda m, e: e,
    "abs_m": lambda m, e: np.abs(m),
    "m": lambda m, e: m,
    "m2": lambda m, e: m**2,
    "m4": lambda m, e: m**4,
    "frac_m_pos": lambda m, e: (m > 0).astype(np.float64),
}
COLUMNS = tuple(MEANS) + ("C", "chi", "chi_prime", "U4")


def per_temperature(T: np.ndarray, m: np.ndarray, e: np.ndarray, L: int,
                    local: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Table of thermodynamic averages, one row per distinct temperature, each with a standard error.

    Inputs are per-configuration arrays (T, m, e of equal length), assumed to be independent draws.
    Returns columns T, n, and for each name in COLUMNS the value and `name_err`; with local = (w4, w2)
    (local_field_fractions) also T_local (local_temperature) and T_local_err.
    """
    T, m, e = (np.asarray(a, dtype=np.float64) for a in (T, m, e))
    temps = np.unique(T)
    N = L * L
    table = {"T": temps, "n": np.zeros(len(temps), dtype=np.int64)}
    for name in COLUMNS + (("T_local",) if local is not None else ()):
        table[name] = np.empty(len(temps))
        table[name + "_err"] = np.empty(len(temps))
    for i, t in enumerate(temps):
        sel = T == t
        mi, ei, beta = m[sel], e[sel], 1.0 / t
        table["n"][i] = sel.sum()
        for name, quantity in MEANS.items():
            table[name][i], table[name + "_err"][i] = mean_and_error(quantity(mi, ei))
        for name, estimator in (("C", _specific_heat(N, beta)), ("chi", _susceptibility(N, beta)),
                                ("chi_prime", _susceptibility_prime(N, beta)), ("U4", _binder)):
            table[name][i], table[name + "_err"][i] = jackknife(estimator, mi, ei)
        if local is not None:
            table["T_local"][i], table["T_local_err"][i] = jackknife(local_temperature, ei, *(w[sel] for w in local))
    return table


def measure_file(samples, chunk_size: int = 4096) -> tuple[dict[str, np.ndarray], int]:
    """Per-temperature table of an Ising sample file, streamed in chunks. Returns (table, L)."""
    T, m, e, w4, w2 = [], [], [], [], []
    for chunk in samples.iter_chunks(chunk_size, names=("spins", "T")):
        T.append(chunk["T"])
        m.append(magnetization(chunk["spins"]))
        e.append(energy_per_site(chunk["spins"]))
        for fractions, w in zip(local_field_fractions(chunk["spins"]), (w4, w2)):
            w.append(fractions)
    L = samples.fields["spins"][0][0]
    return per_temperature(np.concatenate(T), np.concatenate(m), np.concatenate(e), L,
                           local=(np.concatenate(w4), np.concatenate(w2))), L


def exact_values(T: np.ndarray, L: int) -> dict[str, np.ndarray]:
    """The table columns known exactly for a finite L x L torus at temperatures T.

    e and C from Kaufman's solution (L >= 3); the magnetisation moments only where the lattice is
    small enough to enumerate (L <= 4). Infinite-lattice values are not exact for finite L, so
    they are not listed here.
    """
    import physgan.systems.ising.exact as exact

    T = np.asarray(T, dtype=np.float64)
    if L <= 4:
        full = exact.enumerate_lattice(T, L)
        return {"e": full["energy"], "C": full["specific_heat"], "abs_m": full["abs_m"],
                "m2": full["m2"], "m4": full["m4"]}
    return {"e": exact.energy_per_site(T, L), "C": exact.specific_heat_per_site(T, L)}


PULL_LIMIT = 4.0  # |measured - exact| / standard error beyond which a comparison is flagged


def observables_report(samples) -> str:
    """Text table per temperature: <e>, C, <|m|>, <m^2>, chi', U4, fraction m > 0, with exact values."""
    from physgan.textable import format_table, with_error

    table, L = measure_file(samples)
    exact = exact_values(table["T"], L)
    headers = ["T", "n", "<e>", "exact", "pull", "C", "exact", "pull", "<|m|>", "exact", "pull",
               "chi'", "U4", "frac m>0", "T_local"]
    rows, pulls = [], []
    for i, T in enumerate(table["T"]):
        row = [f"{T:.4f}", str(table["n"][i])]
        for name in ("e", "C", "abs_m"):
            value, error = table[name][i], table[name + "_err"][i]
            row.append(with_error(value, error))
            if name in exact:
                pull = (value - exact[name][i]) / error if error > 0 else float("nan")
                pulls.append((abs(pull), name, T))
                row += [f"{exact[name][i]:.6f}", f"{pull:+.1f}"]
            else:
                row += ["-", "-"]
        row += [with_error(table[c][i], table[c + "_err"][i]) for c in ("chi_prime", "U4", "frac_m_pos", "T_local")]
        rows.append(row)
    lines = [f"{samples.path}: ising, L = {L}, {samples.n} configurations, source {samples.source}",
             format_table(headers, rows),
             "pull = (measured - exact) / standard error; exact: Kaufman's finite-L solution"
             + (" and enumeration of all 2^(L^2) states" if L <= 4 else "")
             + "; T_local: the temperature the lattices are in local equilibrium at (Callen identity; T if equilibrated)"]
    if pulls:
        bad = [p for p in pulls if not p[0] <= PULL_LIMIT]
        lines.append(f"{len(pulls) - len(bad)} of {len(pulls)} comparisons within {PULL_LIMIT:g} standard errors"
                     + ("" if not bad else ": outside: " + ", ".join(f"{n} at T = {t:.4f}" for _, n, t in bad)))
    return "\n".join(lines)


@dataclass
class FidelityConfig:
    """Per-temperature acceptance of a run's generated means against its test Monte Carlo (a preset's [fidelity])."""

    relative: dict = field(default_factory=dict)
    """observable -> relative tolerance of the mean (or within 3 combined standard errors); a key
    "name@lo:hi" sets the tolerance for lo <= T <= hi"""
    fraction_positive: list[float] = field(default_factory=lambda: [0.4, 0.6])
    """allowed range of the fraction of samples with m > 0 below T_c"""
    peak_tolerance: float | None = None
    """largest allowed |T_peak(generated) - T_peak(Monte Carlo)| of C and chi' (none: reported, not checked)"""

    def exact_tolerances(self) -> dict[str, float]:
        """The relative tolerances of means that hold at every T, which are also those of the validation's
        checks against the exact values (validation.EXACT_TOLERANCE's quantities)."""
        return {name: value for name, value in self.relative.items() if "@" not in name}


PEAKS = {"C": "C", "chi_prime": "χ'"}  # quantities whose peak temperature the fidelity report compares


def peak_temperature(T: np.ndarray, values: np.ndarray) -> float:
    """Where `values` (sampled at increasing T) peaks: the vertex of the parabola through the largest
    value and its two neighbours (uneven spacing allowed); the end point when the largest value is one."""
    i = int(np.argmax(values))
    if i == 0 or i == len(T) - 1:
        return float(T[i])
    a, b, _ = np.polyfit(T[i - 1:i + 2], values[i - 1:i + 2], 2)
    return float(-b / (2 * a)) if a < 0 else float(T[i])


def peak_checks(ref: dict, gen: dict, tolerance: float | None) -> list[dict]:
    """Peak temperatures of C and chi' in the reference and generated tables, and whether they agree."""
    rows = []
    for name in PEAKS:
        t_ref, t_gen = peak_temperature(ref["T"], ref[name]), peak_temperature(gen["T"], gen[name])
        rows.append({"quantity": name, "T_peak_ref": t_ref, "T_peak_gen": t_gen,
                     "pass": tolerance is None or abs(t_gen - t_ref) <= tolerance})
    return rows


def _tolerance(relative: dict, name: str, T: float) -> float | None:
    """Relative tolerance for observable `name` at T: a key "name@lo:hi" overrides "name" within [lo, hi]."""
    for key, value in relative.items():
        base, _, window = key.partition("@")
        if base == name and window:
            lo, hi = (float(v) for v in window.split(":"))
            if lo <= T <= hi:
                return float(value)
    return relative.get(name)


def local_equilibrium_line(ref: dict, gen: dict) -> str:
    """The range of T_local - T over temperatures for both samples (tables of measure_file)."""
    def span(table):
        gaps = list(zip(table["T_local"] - table["T"], table["T"]))
        (low, t_low), (high, t_high) = min(gaps), max(gaps)
        return f"{low:+.4f} (T = {t_low:.4g}) to {high:+.4f} (T = {t_high:.4g})"
    return f"local-equilibrium temperature (Callen identity) minus T: GAN {span(gen)}; MC {span(ref)}"


def capped_error(gen_err: float, ref_err: float, n_ref: int, n_gen: int) -> float:
    """The generated sample's standard error, capped at what the reference's spread gives at the generated
    sample size, ref_err sqrt(n_ref / n_gen): a generated distribution that is too broad must not widen its
    own tolerance (a too narrow one tightens it, which is safe). Used by fidelity_report."""
    return float(min(gen_err, ref_err * np.sqrt(n_ref / n_gen)))


def fidelity_report(reference, generated, fidelity: FidelityConfig, metrics: dict | None = None) -> tuple[str, dict]:
    """Generated vs reference Monte Carlo per temperature: <e>, <|m|>, fraction of m > 0, and pass/fail.

    A mean passes when it is within its relative tolerance of the reference, or within 3 combined
    standard errors where statistics are the limit (the generated mean's error capped at what the
    reference's spread would give: a generator with too broad a distribution must not loosen its own
    test); below T_c the fraction of m > 0 must lie in fidelity.fraction_positive (a generator collapsed
    onto one sign fails); the peak temperatures of C and chi' (parabola through the largest value and its
    neighbours) must agree within fidelity.peak_tolerance.
    A line gives the local-equilibrium temperatures' deviations from T (not a check).
    `metrics` (physgan validate's) is not needed here.
    """
    from physgan.errors import UserError
    from physgan.systems.ising.exact import critical_temperature
    from physgan.textable import format_table, with_error

    (ref, L), (gen, L_gen) = measure_file(reference), measure_file(generated)
    if L != L_gen:
        raise UserError(f"lattice sizes differ: {reference.path} has L = {L}, {generated.path} has L = {L_gen}")
    if not np.array_equal(ref["T"], gen["T"]):
        raise UserError(f"temperatures differ between {reference.path} and {generated.path}")
    exact_e = exact_values(ref["T"], L)["e"]
    rows, results = [], []
    for i, T in enumerate(ref["T"]):
        checks = {}
        for name in ("e", "abs_m"):
            tolerance = _tolerance(fidelity.relative, name, T)
            diff = abs(gen[name][i] - ref[name][i])
            gen_err = capped_error(gen[name + "_err"][i], ref[name + "_err"][i], ref["n"][i], gen["n"][i])
            sigma = np.hypot(gen_err, ref[name + "_err"][i])
            checks[name] = tolerance is None or bool(diff <= tolerance * abs(ref[name][i]) or diff <= 3 * sigma)
        lo, hi = fidelity.fraction_positive
        if T < critical_temperature():
            checks["frac_m_pos"] = bool(lo <= gen["frac_m_pos"][i] <= hi)
        results.append({"T": float(T), "pass": all(checks.values()), "checks": checks,
                        **{f"{k}_{w}": float(t[k][i]) for k in ("e", "abs_m", "frac_m_pos")
                           for w, t in (("ref", ref), ("gen", gen))}})
        mark = lambda key: "" if key not in checks else (" ok" if checks[key] else " FAIL")
        rows.append([f"{T:.4f}", f"{exact_e[i]:.5f}", with_error(ref["e"][i], ref["e_err"][i]),
                     with_error(gen["e"][i], gen["e_err"][i]) + mark("e"),
                     f"{100 * (gen['e'][i] / ref['e'][i] - 1):+.2f}%",
                     with_error(ref["abs_m"][i], ref["abs_m_err"][i]),
                     with_error(gen["abs_m"][i], gen["abs_m_err"][i]) + mark("abs_m"),
                     f"{100 * (gen['abs_m'][i] / ref['abs_m'][i] - 1):+.2f}%",
                     f"{gen['frac_m_pos'][i]:.3f}" + mark("frac_m_pos")])
    peaks = peak_checks(ref, gen, fidelity.peak_tolerance)
    passed = all(r["pass"] for r in results + peaks)
    tolerance = "not checked" if fidelity.peak_tolerance is None else f"tolerance {fidelity.peak_tolerance:g}"
    text = "\n".join([
        f"generated ({generated.path}, n = {generated.n}) vs Monte Carlo ({reference.path}, n = {reference.n}), L = {L}",
        format_table(["T", "exact e", "MC <e>", "GAN <e>", "diff", "MC <|m|>", "GAN <|m|>", "diff", "GAN m>0"], rows),
        f"tolerances: {fidelity.relative} relative or 3 combined standard errors; "
        f"fraction m > 0 in {fidelity.fraction_positive} below T_c",
        *(f"peak temperature of {PEAKS[p['quantity']]}: MC {p['T_peak_ref']:.4f}, GAN {p['T_peak_gen']:.4f} "
          f"({tolerance}){'' if p['pass'] else ' FAIL'}" for p in peaks),
        local_equilibrium_line(ref, gen),
        f"fidelity: {'PASS' if passed else 'FAIL'} ({sum(r['pass'] for r in results)} of {len(results)} temperatures"
        f"{'' if all(p['pass'] for p in peaks) else '; peak temperatures differ'})"])
    return text, {"pass": passed, "per_condition": results, "peaks": peaks,
                  "checks": fidelity_checks(results, peaks, fidelity)}


FIDELITY_NAMES = {"e": "<e>", "abs_m": "<|m|>"}


def fidelity_checks(results: list[dict], peaks: list[dict], fidelity: FidelityConfig) -> list[dict]:
    """The targets as rows of the verdict's table (check, measured, threshold, pass): each over all
    temperatures, with the worst one named."""
    rows = []
    for name, label in FIDELITY_NAMES.items():
        if not any(k == name or k.startswith(name + "@") for k in fidelity.relative):
            continue
        worst = max(results, key=lambda r: abs(r[f"{name}_gen"] / r[f"{name}_ref"] - 1))
        rows.append({"check": f"{label} against the test Monte Carlo (preset)",
                     "measured": f"{sum(r['checks'][name] for r in results)} of {len(results)} temperatures; worst "
                                 f"{100 * (worst[f'{name}_gen'] / worst[f'{name}_ref'] - 1):+.2f} % at "
                                 f"T = {worst['T']:.4g}",
                     "threshold": f"relative {_tolerance_text(fidelity.relative, name)} or 3 combined s.e.",
                     "pass": all(r["checks"][name] for r in results)})
    below = [r for r in results if "frac_m_pos" in r["checks"]]
    if below:
        fractions = [r["frac_m_pos_gen"] for r in below]
        rows.append({"check": "fraction of m > 0 below T_c (preset)",
                     "measured": f"{min(fractions):.3f} to {max(fractions):.3f}",
                     "threshold": f"in [{fidelity.fraction_positive[0]:g}, {fidelity.fraction_positive[1]:g}]",
                     "pass": all(r["checks"]["frac_m_pos"] for r in below)})
    if fidelity.peak_tolerance is not None:
        for peak in peaks:
            rows.append({"check": f"peak temperature of {PEAKS[peak['quantity']]} (preset)",
                         "measured": f"{peak['T_peak_gen']:.4f} against {peak['T_peak_ref']:.4f}",
                         "threshold": f"within {fidelity.peak_tolerance:g}", "pass": peak["pass"]})
    return rows


def _tolerance_text(relative: dict, name: str) -> str:
    return ", ".join(f"{100 * value:g} %" + (f" at T in [{key.partition('@')[2].replace(':', ', ')}]"
                                               if "@" in key else "")
                     for key, value in relative.items() if key == name or key.startswith(name + "@"))
