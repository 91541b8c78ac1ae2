"""Emulator of the CMB, sigma8 and background observables of the Planck / BAO / Pantheon likelihoods.

The Planck (plik-lite, low-ell TT, SRoll2 lowE, lensing), BAO and Pantheon
likelihoods read only a few observables from a :class:`~likelihoods.base.TheoryResult`.
This module tabulates them with :func:`cosmopipe.likelihoods.camb_theory.camb_theory` over a
Latin hypercube of the EDE + binned w(z) box (a Dask campaign), compresses each
block by PCA and interpolates the PCA coefficients with Gaussian processes
(:mod:`cosmopipe.emulators.gp`: linear trend + anisotropic Matern-5/2 kernel)::

    design = latin_hypercube(DEFAULT_BOX, n=1200, seed=1)
    table = run_campaign(design, client=client)                 # ~6 s CPU per point
    bg = run_campaign(bg_design, client=client, background_only=True)   # ~0.2 s per point
    emu = train_observables(table, box=DEFAULT_BOX, background_table=bg)
    save_observables(emu, "obs.h5"); emu = load_observables("obs.h5")
    theory = emu.theory(params, requirements)                   # a TheoryResult, ~1 ms

Inputs.  100 theta_* replaces H0: over an H0 box (63-77) a first campaign spanned
100 theta_* = 0.963-1.123, every acoustic peak moved by up to 8 % and the C_ell were
strongly non-linear in the inputs (2.5 % median TT error at 60 points); in theta_*
(box +-0.3 %, Planck measures it to 0.03 %) the peaks stay put.  Sampling theta_*
(H0 derived) also makes every observable an emulator output: no CAMB call per point.
A point given with H0 instead takes the background from CAMB's background-only run
(exact, ~20 ms) and theta_* from it.

Regressor.  At 254 campaign points the plik-lite Delta chi^2 of the emulated C_ell at
the peak was median / p95 0.72 / 2.4 with the format-1 PCA + linear + MLP model and
0.22 / 0.57 with the Gaussian processes (same PCA).  The background blocks train on a
separate background-only campaign (ten times denser at a thirtieth of the cost),
because BAO and Pantheon need distances good to ~1e-4.  theta_i enters the regressors as
ln(pi - theta_i) (COORDINATES): on 1683 CAMB points the plik-lite Delta chi^2 at the peak of
48 held-out points fell from median / p95 / max 0.030 / 0.19 / 0.35 to 0.0084 / 0.051 / 0.085.

==========  =================================================  ===============================
block       tabulated                                          emulated
==========  =================================================  ===============================
tt, ee      lensed C_ell [muK^2], ell = 2..LMAX                ln(C_ell / (A_s e^{-2 tau}))
te          lensed C_ell^TE [muK^2]                            C_ell^TE / (A_s e^{-2 tau}) /
                                                               sqrt(<C^TT><C^EE>) of the design
pp          C_L^{phi phi} (raw, dimensionless), L = 2..LMAX    ln(C_L^{phi phi} / A_s)
sigma8      sigma8 (z = 0, linear, total matter)               ln sigma8
chi         comoving distance [Mpc] on Z_GRID                  ln(chi / z)
hubble      H(z) [km/s/Mpc] on Z_GRID                          ln H
background  BACKGROUND_SCALARS (H0, r_drag, z_drag, ...)      ln of each
==========  =================================================  ===============================

The background blocks read only the inputs that change the background (not
PERTURBATION_ONLY: tau, logA, ns and theta_i, which sets only the EDE fluid's sound
speed).  Inputs: ombh2, omch2, theta_star_100, tau, logA, ns, f_EDE, log10_z_c,
theta_i, w_1..w_N (mnu fixed at 0.06 eV); :func:`solve_h0` finds each design
point's H0.  Points outside the box raise :class:`EmulatorRangeError` (a
``TheoryError`` from :meth:`ObservablesEmulator.theory`, so a sampler counts the point
as zero likelihood) naming the parameter and the box.  :mod:`cosmopipe.emulators.obs_check`
reruns CAMB at posterior samples of a chain.

File format 3 (HDF5, no pickle): root attrs format = 'cosmopipe-observables',
format_version, created, complete (written last), lmax, omnuh2, camb_settings, fixed,
coordinates (JSON: parameter -> the coordinate its regressor reads; absent in format 2,
which is read as no coordinates),
provenance (JSON: campaign sizes, CAMB version, per-block components and timings);
``box/`` (attr names, lower, upper), ``te_norm``, ``z_grid``; ``blocks/<name>/``
mean (m,), basis (c, m), inputs (q,), and the GP arrays x_train (n, q), trend (q+1, c),
lengths (c, q), alpha (c, n).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "DEFAULT_BOX", "LMAX", "Z_GRID", "BLOCKS", "FORMAT", "FORMAT_VERSION", "EmulatorRangeError",
    "ObservableTable", "ObservablesEmulator", "latin_hypercube", "observables_at", "run_campaign",
    "train_observables", "save_table", "load_table", "save_observables", "load_observables",
    "emulated_theory", "theory_params", "camb_at", "posterior_design", "likelihood_requirements", "background", "solve_h0", "delta_chi2",
    "delta_chi2_at_peak", "load_campaign", "COORDINATES", "to_coordinates", "unit_box",
]

FORMAT = "cosmopipe-observables"
FORMAT_VERSION = 3   # 2: Gaussian processes in place of the MLP, emulated background; 3: input coordinates
READS_VERSIONS = (2, 3)
TABLE_FORMAT_VERSION = 1
LMAX = 2508          # plik-lite's highest multipole; lensing needs 2500
Z_GRID = np.geomspace(0.005, 2.5, 100)  # Pantheon 0.01-2.26 and BAO 0.1-2.33 inside
MNU = 0.06           # eV, fixed (Planck 2018 baseline)
# Scalars tabulated (the emulator learns ln sigma8; the others come from the exact background).
SCALARS = ("rdrag", "theta_star", "sigma8", "Omega_m", "zdrag", "zstar", "rstar", "age", "theta_MC_100", "H0")
CL_BLOCKS = ("tt", "te", "ee", "pp")
# Every campaign table holds these; a C_ell campaign also the CL_BLOCKS.
BACKGROUND_TABLE_BLOCKS = ("chi", "hubble", "scalars")
BLOCKS = CL_BLOCKS + ("sigma8",)
# Emulated background: ln(chi / z) and ln H on Z_GRID, ln of these scalars; inputs without
# PERTURBATION_ONLY (theta_i sets only the EDE fluid's sound speed: the background is
# independent of it, checked with CAMB).
BACKGROUND_BLOCKS = ("chi", "hubble", "background")
BACKGROUND_SCALARS = ("H0", "rdrag", "zdrag", "zstar", "rstar", "age", "theta_MC_100")
PERTURBATION_ONLY = ("tau", "logA", "ns", "theta_i")
# Coordinates the regressor sees in place of a parameter.  The C_ell change with theta_i as
# ~ln(pi - theta_i): CAMB's rms d ln C_TT / d theta_i (f_EDE = 0.05) grows from 4e-4 at
# theta_i = 1.25 to 3.4e-2 at 3.09 while its product with pi - theta_i stays within 0.8-2e-3;
# in theta_i itself the points near pi were the emulator's worst (8 of the 10 worst
# posterior samples had theta_i >= 2.885 against 17 % of the chain).
COORDINATES = {"theta_i": "ln_pi_minus"}


def _ln_pi_minus(v):
    with np.errstate(invalid="ignore", divide="ignore"):   # theta_i >= pi: NaN/-inf, refused by the caller
        return np.log(np.pi - v)


_COORDINATE_MAPS = {"ln_pi_minus": _ln_pi_minus}

H0_SEARCH = (40.0, 100.0)   # km/s/Mpc, bracket of the theta_* -> H0 solve

# EDE + 3-bin w(z) box: wide enough for the arXiv:2302.07333 posterior, narrow enough
# for a few hundred CAMB runs (f_EDE is capped at 0.2, well above its 95 % limit).  The
# emulator's inputs use 100 theta_* in place of H0: an H0 box lets the acoustic scale vary
# by +-8 % (measured over a first campaign: 100 theta_* = 0.963-1.123), which moves every
# peak and made ln C_ell strongly non-linear in the inputs (2.5 % median TT error at 60
# points); Planck pins 100 theta_* to 3e-4, so a +-0.3 % theta_* box covers any posterior.
DEFAULT_BOX: dict[str, tuple[float, float]] = {
    "ombh2": (0.0215, 0.0235), "omch2": (0.110, 0.140), "theta_star_100": (1.038, 1.044), "tau": (0.035, 0.080),
    "logA": (2.98, 3.12), "ns": (0.94, 1.00), "f_EDE": (0.0, 0.2), "log10_z_c": (3.0, 4.3),
    "theta_i": (0.1, 3.1), "w_1": (-1.5, -0.5), "w_2": (-1.5, -0.5), "w_3": (-1.5, -0.5),
}
# Bins crossing -1 and phantom bins with EDE need the PPF perturbations (camb_theory refuses otherwise).
DEFAULT_CAMB = {"de_perturbations": "ppf", "threads": 1}


class EmulatorRangeError(ValueError):
    """A parameter outside the emulator's training box (message names it and the box)."""


def _theory_error():
    from cosmopipe.likelihoods.camb_theory import TheoryError

    return TheoryError


def likelihood_requirements(lmax: int = LMAX) -> dict[str, Any]:
    """Merged requirements of plik-lite + low-ell TT/EE + lensing + BAO + Pantheon, plus sigma8."""
    return {"cls": {"lmax": int(lmax), "lensing": True, "spectra": ["ee", "pp", "te", "tt"]},
            "distances": {"zmax": float(Z_GRID[-1])}, "rdrag": True, "sigma8": True, "S8": True}


# -- design and campaign ---------------------------------------------------------------

def latin_hypercube(box: Mapping[str, tuple[float, float]], n: int, seed: int = 0) -> list[dict[str, float]]:
    """n parameter dicts on a Latin hypercube of ``box`` (name -> (lower, upper))."""
    from scipy.stats import qmc

    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"latin_hypercube: n must be a positive integer, got {n!r}")
    names = list(box)
    lo = np.array([box[k][0] for k in names], float)
    hi = np.array([box[k][1] for k in names], float)
    if np.any(~(hi > lo)):
        bad = names[int(np.argmax(~(hi > lo)))]
        raise ValueError(f"latin_hypercube: box of {bad} must have lower < upper, got {box[bad]}")
    unit = qmc.LatinHypercube(d=len(names), seed=seed).random(int(n))
    return [dict(zip(names, map(float, row))) for row in lo + unit * (hi - lo)]


def posterior_design(chain_dir, n: int, box: Mapping[str, tuple[float, float]] = DEFAULT_BOX,
                     seed: int = 0) -> list[dict[str, float]]:
    """n design points around the posterior of a converged sample-stage chain: random chain
    samples, each moved by a Gaussian step with the posterior covariance (a kernel density
    estimate twice as wide in variance as the posterior), redrawn until inside ``box``.

    A Latin hypercube spends most points where the data rule the model out; a second
    campaign drawn here makes the emulator dense where the posterior is (the training
    stays global: both campaigns are used)."""
    from cosmopipe.likelihoods.shear.bias import read_chain_samples

    names, samples = read_chain_samples(chain_dir)
    missing = [k for k in box if k not in names]
    if missing:
        raise ValueError(f"posterior_design: the chains in {chain_dir} do not sample {', '.join(missing)}")
    keys = list(box)
    x = samples[:, [names.index(k) for k in keys]]
    lo = np.array([box[k][0] for k in keys])
    hi = np.array([box[k][1] for k in keys])
    chol = np.linalg.cholesky(np.cov(x, rowvar=False) + 1e-30 * np.eye(len(keys)))
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < n:
        trial = x[rng.integers(len(x), size=n)] + rng.standard_normal((n, len(keys))) @ chol.T
        out.extend(trial[np.all((trial >= lo) & (trial <= hi), axis=1)])
    return [dict(zip(keys, map(float, row))) for row in out[:n]]


def camb_at(params: Mapping[str, float], requirements: Mapping[str, Any], camb: Mapping[str, Any] | None = None):
    """camb_theory's TheoryResult at a point given with theta_star_100 (H0 solved first) or
    H0, mnu fixed, with the campaign's CAMB settings ``camb``; raises TheoryError."""
    from cosmopipe.likelihoods.camb_theory import CambSettings, camb_theory

    settings = CambSettings(**{**DEFAULT_CAMB, **dict(camb or {})})
    params = {"mnu": MNU, **dict(params)}
    if "theta_star_100" in params:
        params["H0"] = solve_h0(params, settings)
        del params["theta_star_100"]
    return camb_theory(params, requirements, settings)


def observables_at(params: Mapping[str, float], lmax: int = LMAX, camb: Mapping[str, Any] | None = None,
                   background_only: bool = False) -> dict[str, np.ndarray] | str:
    """Raw observables of one point from camb_theory, as plain arrays (cheap to ship from a
    Dask worker): tt, te, ee [muK^2] and pp for ell = 2..lmax, chi [Mpc] and hubble
    [km/s/Mpc] on Z_GRID, and the SCALARS.  ``background_only``: no C_ell and sigma8 NaN,
    ~0.2 s of CPU against ~6 s, so a background campaign can be ten times denser.  A
    point CAMB refuses returns the message (str)."""
    from cosmopipe.likelihoods.camb_theory import TheoryError

    req = {"distances": {"zmax": float(Z_GRID[-1])}, "rdrag": True} if background_only else \
        likelihood_requirements(lmax)
    try:
        res = camb_at(params, req, camb)
    except TheoryError as exc:
        return str(exc)
    out = {} if background_only else {k: np.asarray(res.cls[k][2:lmax + 1], float) for k in CL_BLOCKS}
    out["chi"] = np.asarray(res.comoving_distance(Z_GRID), float)
    out["hubble"] = np.asarray(res.hubble(Z_GRID), float)
    derived = {**res.derived, "sigma8": np.nan if background_only else res.sigma8}
    out["scalars"] = np.array([derived[k] for k in SCALARS], float)
    return out


def background(params: Mapping[str, Any], settings=None):
    """camb_theory's background-only TheoryResult (distances to Z_GRID[-1], r_drag, theta_*):
    ~0.1 s of CPU for EDE + 3 w bins, against ~8 s for the full observables."""
    from cosmopipe.likelihoods.camb_theory import CambSettings, camb_theory

    settings = settings or CambSettings(**DEFAULT_CAMB)
    return camb_theory({"mnu": MNU, **dict(params)}, {"distances": {"zmax": float(Z_GRID[-1])}, "rdrag": True},
                       settings)


def solve_h0(params: Mapping[str, Any], settings=None, xtol: float = 1e-7) -> float:
    """H0 [km/s/Mpc] giving 100 theta_* = params['theta_star_100'] (background runs, Brent)."""
    from scipy.optimize import brentq

    target = float(params["theta_star_100"])
    rest = {k: v for k, v in params.items() if k not in ("theta_star_100", "H0")}

    def miss(h0):
        return background({**rest, "H0": h0}, settings).theta_star - target

    lo, hi = H0_SEARCH
    f_lo, f_hi = miss(lo), miss(hi)
    if f_lo * f_hi > 0:
        raise _theory_error()(f"no H0 in [{lo:g}, {hi:g}] km/s/Mpc gives 100 theta_* = {target:g} "
                              f"(theta_* spans {f_lo + target:.5f}-{f_hi + target:.5f})")
    return float(brentq(miss, lo, hi, xtol=xtol))


@dataclass(frozen=True)
class ObservableTable:
    """A campaign: names (p,), theta (n, p) parameter values, blocks name -> (n, m) raw
    observables as returned by :func:`observables_at`, lmax, camb settings and failures."""

    names: tuple[str, ...]
    theta: np.ndarray
    blocks: dict[str, np.ndarray]
    lmax: int = LMAX
    camb: dict = field(default_factory=dict)
    failed: tuple[str, ...] = ()
    seconds: float = 0.0

    def __len__(self) -> int:
        return self.theta.shape[0]

    def subset(self, rows) -> "ObservableTable":
        rows = np.asarray(rows)
        return ObservableTable(self.names, self.theta[rows], {k: v[rows] for k, v in self.blocks.items()},
                               self.lmax, self.camb, self.failed, self.seconds)

    def params(self, i: int) -> dict[str, float]:
        return dict(zip(self.names, map(float, self.theta[i])))


def run_campaign(design: Sequence[Mapping[str, float]], client=None, lmax: int = LMAX,
                 camb: Mapping[str, Any] | None = None, progress=None,
                 background_only: bool = False) -> ObservableTable:
    """CAMB at every design point: ``client.map`` over the points with a dask.distributed
    client, a plain loop without.  Points CAMB refuses are dropped (listed in ``failed``).
    ``progress``: optional callable(done, total); ``background_only``: tabulate
    chi, hubble and the scalars only (see :func:`observables_at`)."""
    if not design:
        raise ValueError("run_campaign: empty design")
    names = tuple(design[0])
    t0 = time.perf_counter()
    camb = dict(camb or {})
    if client is not None:
        from distributed import as_completed

        futures = client.map(observables_at, list(design), lmax=lmax, camb=camb, background_only=background_only,
                             pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(design)
        for done, fut in enumerate(as_completed(futures), 1):
            results[index[fut.key]] = fut.result()
            fut.release()
            if progress:
                progress(done, len(design))
    else:
        results = []
        for done, p in enumerate(design, 1):
            results.append(observables_at(p, lmax, camb, background_only))
            if progress:
                progress(done, len(design))
    return _table(names, design, results, lmax, camb, time.perf_counter() - t0)


def _table(names, design, results, lmax, camb, seconds) -> ObservableTable:
    good = [i for i, r in enumerate(results) if isinstance(r, dict)]
    failed = tuple(f"{dict(design[i])}: {r}" for i, r in enumerate(results) if not isinstance(r, dict))
    if not good:
        raise ValueError(f"run_campaign: CAMB refused every point; first: {failed[0] if failed else '?'}")
    theta = np.array([[design[i][k] for k in names] for i in good], float)
    blocks = {k: np.stack([results[i][k] for i in good]) for k in results[good[0]]}
    return ObservableTable(names, theta, blocks, int(lmax), dict(camb), failed, float(seconds))


def save_table(table: ObservableTable, path) -> Path:
    """Write a campaign to HDF5 (atomic)."""
    from cosmopipe.sims.io import atomic_hdf5

    path = Path(path)
    with atomic_hdf5(path) as f:
        f.attrs["format"] = FORMAT + "-table"
        f.attrs["format_version"] = TABLE_FORMAT_VERSION
        f.attrs["names"] = json.dumps(list(table.names))
        f.attrs["lmax"] = table.lmax
        f.attrs["camb"] = json.dumps(table.camb)
        f.attrs["failed"] = json.dumps(list(table.failed))
        f.attrs["seconds"] = table.seconds
        f.create_dataset("theta", data=table.theta)
        f.create_dataset("z_grid", data=Z_GRID)
        g = f.create_group("blocks")
        for k, v in table.blocks.items():
            g.create_dataset(k, data=v)
    return path


def load_table(path) -> ObservableTable:
    """Read a campaign written by :func:`save_table` (errors name the file and what is wrong)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"observable table {path} does not exist (build it with run_campaign + save_table)")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT + "-table":
                raise ValueError(f"{path}: not a cosmopipe observable table (format {f.attrs.get('format')!r})")
            names = tuple(json.loads(f.attrs["names"]))
            blocks = {k: f["blocks"][k][()] for k in f["blocks"]}
            if not set(BACKGROUND_TABLE_BLOCKS) <= set(blocks):
                raise KeyError(f"blocks {sorted(set(BACKGROUND_TABLE_BLOCKS) - set(blocks))}")
            return ObservableTable(names, f["theta"][()], blocks, int(f.attrs["lmax"]), json.loads(f.attrs["camb"]),
                                   tuple(json.loads(f.attrs["failed"])), float(f.attrs["seconds"]))
    except (KeyError, OSError) as exc:
        raise ValueError(f"{path}: corrupt or incomplete observable table ({exc})") from None


# -- the emulator ----------------------------------------------------------------------

def to_coordinates(theta: np.ndarray, names: Sequence[str], coordinates: Mapping[str, str]) -> np.ndarray:
    """Parameter rows (n, p) -> the regressor's coordinates (COORDINATES; others unchanged)."""
    out = np.array(theta, float, copy=True)
    for name, kind in coordinates.items():
        if name in names:
            out[..., list(names).index(name)] = _COORDINATE_MAPS[kind](out[..., list(names).index(name)])
    return out


def coordinate_box(names: Sequence[str], lower: np.ndarray, upper: np.ndarray,
                   coordinates: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The box in the regressor's coordinates (a decreasing map swaps the ends; a box edge
    outside a coordinate's domain gives a non-finite end)."""
    ends = to_coordinates(np.vstack([lower, upper]), names, coordinates)
    return ends.min(axis=0), ends.max(axis=0)


def unit_box(theta: np.ndarray, names: Sequence[str], lower: np.ndarray, upper: np.ndarray,
             coordinates: Mapping[str, str]) -> np.ndarray:
    """Parameter rows (n, p) -> [-1, 1] in each coordinate, the box edges mapped to +-1."""
    lo, hi = coordinate_box(names, lower, upper, coordinates)
    return (2.0 * to_coordinates(theta, names, coordinates) - (hi + lo)) / (hi - lo)


def _amplitude(theta: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """A_s e^{-2 tau} (n,) for parameter rows (n, p): the exact amplitude of the acoustic peaks."""
    a_s = 1e-10 * np.exp(theta[:, names.index("logA")])
    return a_s * np.exp(-2.0 * theta[:, names.index("tau")])


def _forward(name: str, raw: np.ndarray, theta: np.ndarray, names, te_norm=None) -> np.ndarray:
    """Raw observables (n, m) -> the smooth quantity the regressor learns (module docstring)."""
    if name in ("tt", "ee"):
        return np.log(raw / _amplitude(theta, names)[:, None])
    if name == "te":
        return raw / _amplitude(theta, names)[:, None] / te_norm
    if name == "pp":
        return np.log(raw / (1e-10 * np.exp(theta[:, names.index("logA")]))[:, None])
    return np.log(raw)


def _inverse(name: str, y: np.ndarray, theta: np.ndarray, names, te_norm=None) -> np.ndarray:
    if name in ("tt", "ee"):
        return np.exp(y) * _amplitude(theta, names)[:, None]
    if name == "te":
        return y * te_norm * _amplitude(theta, names)[:, None]
    if name == "pp":
        return np.exp(y) * (1e-10 * np.exp(theta[:, names.index("logA")]))[:, None]
    return np.exp(y)


@dataclass(frozen=True)
class Block:
    """PCA + Gaussian-process model of one observable block: y(x) = mean + gp(x[:, inputs]) @ basis.

    mean (m,), basis (c, m) orthonormal rows; inputs: the columns of the unit-box input
    row the block reads (the background blocks ignore tau, logA, ns, theta_i);
    gp: emulators.gp.GPRegressor for the c PCA coefficients."""

    name: str
    mean: np.ndarray
    basis: np.ndarray
    inputs: tuple[int, ...]
    gp: Any

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.mean + self.gp(x[:, list(self.inputs)]) @ self.basis


def _fit_block(name: str, x: np.ndarray, y: np.ndarray, inputs: Sequence[int], variance: float,
               max_components: int, n_optimise: int = 500) -> tuple[Block, dict]:
    from .gp import fit_gp

    t0 = time.perf_counter()
    mean = y.mean(axis=0)
    _, s, vt = np.linalg.svd(y - mean, full_matrices=False)
    power = s**2
    explained = np.cumsum(power) / max(power.sum(), 1e-300)
    c = int(min(np.searchsorted(explained, variance) + 1, max_components, vt.shape[0]))
    basis = vt[:c]
    gp, rep = fit_gp(x[:, list(inputs)], (y - mean) @ basis.T, n_optimise=n_optimise)
    pca_floor = float(np.max(np.abs((y - mean) - ((y - mean) @ basis.T) @ basis)))
    return Block(name, mean, basis, tuple(int(i) for i in inputs), gp), {
        "components": c, "inputs": len(inputs), "pca_max_residual": pca_floor,
        "nugget_max": max(rep["nugget"]), "seconds": time.perf_counter() - t0}


def _block_targets(table: "ObservableTable", names, te_norm) -> dict[str, np.ndarray]:
    """The smooth quantity each perturbation block learns, (n, m) per block (module docstring)."""
    out = {k: _forward(k, table.blocks[k], table.theta, names, te_norm) for k in CL_BLOCKS}
    out["sigma8"] = np.log(table.blocks["scalars"][:, [SCALARS.index("sigma8")]])
    return out


def _background_targets(table: "ObservableTable") -> dict[str, np.ndarray]:
    """ln(chi / z), ln H on Z_GRID and ln BACKGROUND_SCALARS, (n, m) per block."""
    scal = table.blocks["scalars"]
    out = {}
    out["chi"] = np.log(table.blocks["chi"] / Z_GRID)
    out["hubble"] = np.log(table.blocks["hubble"])
    out["background"] = np.log(scal[:, [SCALARS.index(k) for k in BACKGROUND_SCALARS]])
    return out


@dataclass(frozen=True)
class ObservablesEmulator:
    """PCA + Gaussian-process emulators of the C_ell blocks, sigma8 and the background
    (distances, H(z), r_drag, H0 and the other derived scalars) over a parameter box.

    names, lower, upper   emulated inputs (theta_star_100 in place of H0) and their box
    blocks                name -> Block (BLOCKS)
    te_norm (m,)          sqrt(<C^TT><C^EE>) / (A_s e^{-2 tau}) of the design, the TE unit
    omnuh2                neutrino density of the fixed mnu (for Omega_m)
    lmax                  highest multipole [C_ell for ell = 0..lmax, 0 and 1 set to 0]
    camb                  CambSettings fields of the campaign (model choices)
    provenance            campaign and training record (JSON-able)
    coordinates           parameter -> coordinate the regressor reads (COORDINATES)
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    blocks: dict[str, Block]
    te_norm: np.ndarray
    omnuh2: float
    lmax: int = LMAX
    camb: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    coordinates: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # unit() runs once per likelihood call: the box in coordinates is computed once.
        lo, hi = coordinate_box(self.names, self.lower, self.upper, self.coordinates)
        object.__setattr__(self, "_centre", hi + lo)
        object.__setattr__(self, "_width", hi - lo)

    def unit(self, theta: np.ndarray) -> np.ndarray:
        return (2.0 * to_coordinates(theta, self.names, self.coordinates) - self._centre) / self._width

    def read(self, params: Mapping[str, Any]) -> np.ndarray:
        """(1, p) input row from a dict (theta_star_100 included); missing, non-numeric or
        out-of-box values raise errors naming the parameter and the box."""
        row = np.empty(len(self.names))
        for i, name in enumerate(self.names):
            if name not in params:
                raise KeyError(f"observables emulator: parameter {name!r} missing; it needs "
                               f"{', '.join(self.names)} (or H0 in place of theta_star_100)")
            try:
                v = float(params[name])
            except (TypeError, ValueError):
                raise ValueError(f"observables emulator: parameter {name} must be a number, got {params[name]!r}") from None
            lo, hi = self.lower[i], self.upper[i]
            if not lo <= v <= hi:
                what = "100 theta_* (from H0 and the other parameters)" if name == "theta_star_100" else name
                raise EmulatorRangeError(f"observables emulator: {what}={v:.6g} is outside the training "
                                         f"box [{lo:g}, {hi:g}]")
            row[i] = v
        mnu = params.get("mnu", MNU)
        if abs(float(mnu) - MNU) > 1e-9:
            raise EmulatorRangeError(f"observables emulator: mnu is fixed at {MNU} eV in training, got {mnu}")
        return row[None]

    def predict(self, theta: np.ndarray, which: Sequence[str] = BLOCKS) -> dict[str, np.ndarray]:
        """Raw observables (as observables_at tabulates them) for (n, p) input rows:
        C_ell blocks, sigma8 (n, 1), chi and hubble on Z_GRID, background (n, len(BACKGROUND_SCALARS))."""
        theta = np.atleast_2d(np.asarray(theta, float))
        x = self.unit(theta)
        out = {}
        for k in which:
            y = self.blocks[k](x)
            out[k] = (Z_GRID * np.exp(y) if k == "chi" else np.exp(y) if k in ("hubble", "background")
                      else _inverse(k, y, theta, self.names, self.te_norm))
        return out

    def settings(self):
        from cosmopipe.likelihoods.camb_theory import CambSettings

        return CambSettings(**{**DEFAULT_CAMB, **self.camb})

    def emulated_background(self, params: Mapping[str, Any], theta: np.ndarray):
        """A background TheoryResult like camb_theory's, every field emulated (input row ``theta``)."""
        from cosmopipe.likelihoods.base import TheoryResult
        from cosmopipe.likelihoods.camb_theory import Background

        raw = {k: v[0] for k, v in self.predict(theta, ("chi", "hubble", "background")).items()}
        scal = dict(zip(BACKGROUND_SCALARS, map(float, raw["background"])))
        h0, h = scal["H0"], scal["H0"] / 100.0
        p = {**{k: float(v) for k, v in params.items() if isinstance(v, (int, float))},
             **dict(zip(self.names, map(float, theta[0])))}
        omegamh2 = p["ombh2"] + p["omch2"] + self.omnuh2
        derived = {**p, **scal, "h": h, "Omega_m": omegamh2 / h**2, "Omega_b": p["ombh2"] / h**2,
                   "Omega_c": p["omch2"] / h**2, "omegamh2": omegamh2, "omnuh2": self.omnuh2, "mnu": MNU,
                   "theta_star": p["theta_star_100"]}
        if "logA" in p:
            derived["As"] = 1e-10 * math.exp(p["logA"])
        if "log10_z_c" in p:
            derived["z_c"] = 10.0 ** p["log10_z_c"]
        # chi(0) = 0 and H(0) = H0 exactly: the spline then covers 0 <= z < Z_GRID[0] too.
        bg = Background(z=np.concatenate([[0.0], Z_GRID]), chi=np.concatenate([[0.0], raw["chi"]]),
                        hubble_z=np.concatenate([[h0], raw["hubble"]]))
        out = TheoryResult(params={**dict(params), "H0": h0}, H0=h0, rdrag=scal["rdrag"],
                           theta_star=p["theta_star_100"], derived=derived)
        out.comoving_distance, out.angular_diameter_distance = bg.comoving_distance, bg.angular_diameter_distance
        out.luminosity_distance, out.hubble = bg.luminosity_distance, bg.hubble
        return out

    def theory(self, params: Mapping[str, Any], requirements: Mapping[str, Any] | None = None, bg=None):
        """A TheoryResult like camb_theory's (same units) for one point.

        Given theta_star_100, everything is emulated (~1 ms): distances, H(z), r_drag, H0 and
        the derived scalars, C_ell (ell = 0..lmax; 0, 1 zero; no 'bb') and sigma8, S8.  Given
        H0 instead, the background comes from CAMB's background-only run (exact, ~0.1 s;
        ``bg``: an already computed one) and theta_* from it.  Out-of-box points raise
        TheoryError naming the parameter."""
        req = dict(requirements or {})
        cls_req = req.get("cls")
        if cls_req and int(cls_req.get("lmax", 0)) > self.lmax:
            raise ValueError(f"observables emulator: C_ell requested to lmax={cls_req['lmax']}, trained to {self.lmax}")
        for key in ("pk_lin", "pk_nl"):
            if req.get(key):
                raise ValueError(f"observables emulator: {key} is not emulated (use provider camb)")
        dist = req.get("distances")
        if isinstance(dist, Mapping) and float(dist.get("zmax", 0)) > Z_GRID[-1]:
            raise ValueError(f"observables emulator: distances requested to z={dist['zmax']}, built to {Z_GRID[-1]}")
        if "theta_star_100" in params and "H0" in params:
            raise ValueError("observables emulator: give theta_star_100 or H0, not both (H0 follows from theta_*)")
        fast = "theta_star_100" in params and bg is None
        need = [k for k in self.names if k != "theta_star_100"] + ([] if fast else ["H0"])
        missing = [k for k in need if k not in params]
        if missing:
            raise KeyError(f"observables emulator: parameter(s) {', '.join(map(repr, missing))} missing "
                           f"(give theta_star_100 or H0)")
        if abs(float(params.get("mnu", MNU)) - MNU) > 1e-9:
            raise _theory_error()(f"observables emulator: mnu is fixed at {MNU} eV in training, got {params['mnu']}")
        if not fast:
            # camb_theory ignores keys it does not read (likelihood nuisances).
            bg = bg if bg is not None else background(
                {k: v for k, v in params.items() if k != "theta_star_100"}, self.settings())
            params = {**params, "theta_star_100": bg.theta_star}
        try:
            theta = self.read(params)
        except EmulatorRangeError as exc:
            raise _theory_error()(str(exc)) from None
        if fast:
            bg = self.emulated_background(params, theta)
        raw = {k: v[0] for k, v in self.predict(theta, list(CL_BLOCKS) * bool(cls_req) + ["sigma8"]).items()}
        return _with_perturbations(bg, raw)


def _with_perturbations(bg, raw: Mapping[str, np.ndarray]):
    """A copy of the background TheoryResult ``bg`` with C_ell and sigma8 (S8) from ``raw``."""
    import dataclasses

    out = dataclasses.replace(bg, derived=dict(bg.derived))
    out.sigma8 = float(np.ravel(raw["sigma8"])[0])
    out.S8 = out.sigma8 * math.sqrt(out.derived["Omega_m"] / 0.3)
    out.derived.update(sigma8=out.sigma8, S8=out.S8)
    if "tt" in raw:
        out.cls = {k: np.concatenate([np.zeros(2), raw[k]]) for k in CL_BLOCKS}
    return out


def train_observables(table: ObservableTable, variance: float = 1 - 1e-7, max_components: int = 24,
                      box: Mapping[str, tuple[float, float]] | None = None, client=None,
                      background_table: ObservableTable | None = None,
                      background_variance: float = 1 - 1e-12, n_optimise: int = 500,
                      coordinates: Mapping[str, str] | None = None) -> ObservablesEmulator:
    """Fit one PCA + Gaussian process (emulators.gp) per block to a campaign.

    ``box``: the input box (default the design's span); ``variance``: PCA variance kept
    for the C_ell blocks (at most ``max_components``), ``background_variance`` for the
    distances and H(z), which must be good to ~1e-5.  ``background_table``: a denser
    background-only campaign (:func:`run_campaign` with ``background_only``) for the
    background blocks (default: the main campaign's background).  Kernel hyperparameters
    are optimised on at most ``n_optimise`` points (O(n^3) per optimiser step), the GP
    weights on all.  ``coordinates``: what the regressor reads in place of a parameter
    (default COORDINATES; {} for the parameters themselves).  With a Dask ``client``
    each block is one task."""
    names = tuple(table.names)
    if box is None:
        lower, upper = table.theta.min(axis=0), table.theta.max(axis=0)
    else:
        missing = [k for k in names if k not in box]
        if missing:
            raise ValueError(f"train_observables: box lacks {', '.join(missing)}")
        lower = np.array([box[k][0] for k in names], float)
        upper = np.array([box[k][1] for k in names], float)
    n = len(table)
    if n < 4:
        raise ValueError(f"train_observables: need at least 4 campaign points, got {n}")
    missing = [k for k in ("ombh2", "omch2", "theta_star_100") if k not in names]
    if missing:
        raise ValueError(f"train_observables: the campaign must vary {', '.join(missing)} (theta_star_100 in "
                         f"place of H0: see latin_hypercube and observables_at)")
    coordinates = {k: v for k, v in (COORDINATES if coordinates is None else coordinates).items() if k in names}
    unknown = sorted(set(coordinates.values()) - set(_COORDINATE_MAPS))
    if unknown:
        raise ValueError(f"train_observables: unknown coordinate {unknown[0]!r}; known: {', '.join(_COORDINATE_MAPS)}")
    ends = np.vstack(coordinate_box(names, lower, upper, coordinates))
    bad = [names[i] for i in np.flatnonzero(~np.all(np.isfinite(ends), axis=0))]
    if bad:
        raise ValueError(f"train_observables: the box of {bad[0]} [{lower[names.index(bad[0])]:g}, "
                         f"{upper[names.index(bad[0])]:g}] is outside the domain of its coordinate "
                         f"{coordinates[bad[0]]!r} (ln(pi - theta_i) needs theta_i < pi)")
    theta = table.theta
    x = unit_box(theta, names, lower, upper, coordinates)
    amp = _amplitude(theta, names)[:, None]
    te_norm = np.sqrt(np.mean(table.blocks["tt"] / amp, axis=0) * np.mean(table.blocks["ee"] / amp, axis=0))
    bg_inputs = [i for i, k in enumerate(names) if k not in PERTURBATION_ONLY]
    bg_table = table if background_table is None else background_table
    missing = [names[i] for i in bg_inputs if names[i] not in bg_table.names]
    if missing:
        raise ValueError(f"train_observables: background table lacks {', '.join(missing)}")
    # The background GP reads its own table's columns, placed in the full input row.
    theta_bg = np.tile(0.5 * (lower + upper), (len(bg_table), 1))
    for i in bg_inputs:
        theta_bg[:, i] = bg_table.theta[:, bg_table.names.index(names[i])]
    x_bg = np.zeros((len(bg_table), len(names)))
    x_bg[:, bg_inputs] = unit_box(theta_bg, names, lower, upper, coordinates)[:, bg_inputs]
    targets = [(k, x, y, list(range(len(names))), variance, max_components)
               for k, y in _block_targets(table, names, te_norm).items()]
    targets += [(k, x_bg, y, bg_inputs, background_variance, y.shape[1])
                for k, y in _background_targets(bg_table).items()]
    jobs = []
    for name, xx, y, inputs, var, cmax in targets:
        if not np.all(np.isfinite(y)):
            raise ValueError(f"train_observables: block {name} has non-finite values after its transform "
                             f"(a non-positive C_ell or distance in the campaign)")
        jobs.append((name, xx, y, inputs, var, cmax, n_optimise))
    t0 = time.perf_counter()
    if client is not None:
        results = client.gather([client.submit(_fit_block, *job, pure=False) for job in jobs])
    else:
        results = [_fit_block(*job) for job in jobs]
    blocks = {b.name: b for b, _ in results}
    report = {b.name: r for b, r in results}
    scal = table.blocks["scalars"]
    h2 = (scal[:, SCALARS.index("H0")] / 100.0) ** 2
    omnuh2 = float(np.median(scal[:, SCALARS.index("Omega_m")] * h2 - theta[:, names.index("ombh2")]
                             - theta[:, names.index("omch2")]))
    import camb

    provenance = {"n_campaign": n, "n_background": len(bg_table), "campaign_seconds": table.seconds, "failed_points": len(table.failed),
                  "camb_version": camb.__version__, "train_seconds": time.perf_counter() - t0,
                  "regressor": "linear trend + Matern-5/2 ARD Gaussian process per PCA component",
                  "pca_variance": variance, "background_pca_variance": background_variance,
                  "max_components": max_components, "blocks": report}
    return ObservablesEmulator(names, lower, upper, blocks, te_norm, omnuh2, table.lmax, dict(table.camb), provenance,
                               coordinates)


# -- files -----------------------------------------------------------------------------

def save_observables(emu: ObservablesEmulator, path) -> Path:
    """Write the emulator to one HDF5 file (atomic; layout in the module docstring)."""
    from datetime import datetime, timezone

    from cosmopipe.sims.io import atomic_hdf5

    path = Path(path)
    with atomic_hdf5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        f.attrs["lmax"] = emu.lmax
        f.attrs["omnuh2"] = emu.omnuh2
        f.attrs["camb_settings"] = json.dumps(emu.camb)
        f.attrs["provenance"] = json.dumps(emu.provenance, default=float)
        f.attrs["fixed"] = json.dumps({"mnu": MNU})
        f.attrs["coordinates"] = json.dumps(emu.coordinates)
        b = f.create_group("box")
        b.attrs["names"] = json.dumps(list(emu.names))
        b.create_dataset("lower", data=emu.lower)
        b.create_dataset("upper", data=emu.upper)
        f.create_dataset("z_grid", data=Z_GRID)
        f.create_dataset("te_norm", data=emu.te_norm)
        g = f.create_group("blocks")
        for name, blk in emu.blocks.items():
            h = g.create_group(name)
            h.create_dataset("mean", data=blk.mean)
            h.create_dataset("basis", data=blk.basis)
            h.create_dataset("inputs", data=np.asarray(blk.inputs, int))
            for key in ("x_train", "trend", "lengths", "alpha"):
                h.create_dataset(key, data=getattr(blk.gp, key))
        f.attrs["complete"] = True
    return path


def load_observables(path) -> ObservablesEmulator:
    """Read an emulator written by :func:`save_observables`; a missing, foreign, newer or
    truncated file raises an error naming the file and the problem."""
    import h5py

    from .gp import GPRegressor

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"observables emulator {path} does not exist; build it with "
                                f"`python -m cosmopipe.emulators.observables train ...` (see workflows/ede_wbins.yaml)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise ValueError(f"{path}: not a cosmopipe observables emulator (format {fmt!r}, expected {FORMAT!r})")
        version = int(f.attrs.get("format_version", -1))
        if version not in READS_VERSIONS:
            raise ValueError(f"{path}: format_version {version}, this code reads "
                             f"{', '.join(map(str, READS_VERSIONS))} (train the emulator again with this version)")
        if not f.attrs.get("complete", False):
            raise ValueError(f"{path}: incomplete file (the write was interrupted); train it again")
        try:
            if not np.allclose(f["z_grid"][()], Z_GRID):
                raise ValueError(f"{path}: distance grid differs from this code's Z_GRID")
            names = tuple(json.loads(f["box"].attrs["names"]))
            blocks = {}
            for name in BLOCKS + BACKGROUND_BLOCKS:
                h = f["blocks"][name]
                gp = GPRegressor(*(h[k][()] for k in ("x_train", "trend", "lengths", "alpha")))
                blocks[name] = Block(name, h["mean"][()], h["basis"][()], tuple(int(i) for i in h["inputs"][()]), gp)
            # Format 2 predates input coordinates: its regressors read the parameters.
            coordinates = json.loads(f.attrs["coordinates"]) if version >= 3 else {}
            unknown = sorted(set(coordinates.values()) - set(_COORDINATE_MAPS))
            if unknown:
                raise ValueError(f"{path}: unknown input coordinate {unknown[0]!r} (newer code?)")
            return ObservablesEmulator(names, f["box"]["lower"][()], f["box"]["upper"][()], blocks,
                                       f["te_norm"][()], float(f.attrs["omnuh2"]), int(f.attrs["lmax"]),
                                       json.loads(f.attrs["camb_settings"]), json.loads(f.attrs["provenance"]),
                                       coordinates)
        except KeyError as exc:
            raise ValueError(f"{path}: corrupt observables emulator, missing {exc}") from None


_LOADED: dict[str, ObservablesEmulator] = {}


def _emulator(path=None) -> ObservablesEmulator:
    import os

    path = str(path or os.environ.get("COSMOPIPE_OBS_EMULATOR", ""))
    if not path:
        raise ValueError("observables emulator: no file given (path= or $COSMOPIPE_OBS_EMULATOR)")
    if path not in _LOADED:
        _LOADED[path] = load_observables(path)
    return _LOADED[path]


def theory_params(path=None) -> tuple[str, ...]:
    """Parameters :func:`emulated_theory` reads (Planck-style names): theta_star_100 for the
    fully emulated path, or H0 for CAMB's background (one of the two is sampled)."""
    return tuple(_emulator(path).names) + ("H0", "mnu")


def emulated_theory(params: Mapping[str, Any], requirements: Mapping[str, Any] | None = None,
                    path=None):
    """TheoryResult from the emulator file ``path`` (default $COSMOPIPE_OBS_EMULATOR),
    loaded once per process: the hook for a ``theory: {provider: emulator, path: ...}``."""
    return _emulator(path).theory(params, requirements)


# -- validation in units of the data errors --------------------------------------------

def planck_bao_sn_likelihoods(data_dir=None) -> dict[str, Any]:
    """The six likelihoods the emulator serves, by name (data from data_dir or $COSMOPIPE_DATA)."""
    from cosmopipe.likelihoods import bao, planck, planck_lensing, sn

    likes = [planck.plik_lite(data_dir), planck.lowl_tt(data_dir), planck.lowl_ee(data_dir),
             planck_lensing.planck_lensing(data_dir), bao.bao_likelihood(data_dir=data_dir), sn.pantheon(data_dir)]
    return {like.name: like for like in likes}


def _held_out_theories(emu, table):
    """(index, CAMB truth, emulated) TheoryResults for each point of a held-out table: the
    truth is CAMB's background at the point's H0 with the tabulated C_ell and sigma8, the
    emulated one is fully emulated from the point's theta_star_100."""
    h0 = table.blocks["scalars"][:, SCALARS.index("H0")]
    for i in range(len(table)):
        params = table.params(i)
        at_h0 = {k: v for k, v in params.items() if k != "theta_star_100"}
        at_h0["H0"] = float(h0[i])
        truth = _with_perturbations(background(at_h0, emu.settings()),
                                    {**{k: table.blocks[k][i] for k in CL_BLOCKS},
                                     "sigma8": table.blocks["scalars"][i, SCALARS.index("sigma8")]})
        yield i, truth, emu.theory(params, likelihood_requirements(emu.lmax))


def delta_chi2(emu: ObservablesEmulator, table: ObservableTable, likelihoods: Mapping[str, Any],
               nuisance: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """chi^2(emulator) - chi^2(CAMB) per likelihood (name -> (n,)) at the points of a
    held-out campaign: BAO and Pantheon through the emulated background, the CMB
    likelihoods through the emulated C_ell."""
    nuisance = {"A_planck": 1.0, **dict(nuisance or {})}
    out = {name: np.empty(len(table)) for name in likelihoods}
    for i, truth, emul in _held_out_theories(emu, table):
        for name, like in likelihoods.items():
            ll_emul, ll_truth = like.loglike(emul, nuisance), like.loglike(truth, nuisance)
            # Equal covers both -inf (a point a likelihood rules out, e.g. outside the MGS table).
            out[name][i] = 0.0 if ll_emul == ll_truth else -2.0 * (ll_emul - ll_truth)
    return out


def _recentred(like, truth, nuisance):
    """A copy of a Gaussian band-power likelihood whose data are the model of ``truth``
    (None for a likelihood that is not of that kind)."""
    import dataclasses

    from cosmopipe.likelihoods import planck, planck_lensing

    if isinstance(like, planck.PlikLite):
        data = like.binned_model(truth, 1.0)
    elif isinstance(like, planck_lensing.PlanckLensing):
        data = like.binned_model(truth, nuisance)
    elif isinstance(like, planck.LowlTT):
        data = like.binning @ planck.theory_cls(truth, ("tt",), like.lmax, like.name)["tt"]
    else:
        return None
    return dataclasses.replace(like, data=np.asarray(data, float))


def delta_chi2_at_peak(emu: ObservablesEmulator, table: ObservableTable, likelihoods: Mapping[str, Any],
                       nuisance: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """(C_emu - C_camb)^T Cov^-1 (C_emu - C_camb) per Gaussian CMB likelihood (plik-lite,
    low-ell TT, lensing): the Delta chi^2 at a point where the data equal the CAMB theory,
    i.e. near the posterior peak, where the term linear in the data residual vanishes.
    :func:`delta_chi2` at box points far from the data is dominated by that linear term."""
    nuisance = {"A_planck": 1.0, **dict(nuisance or {})}
    out: dict[str, np.ndarray] = {}
    for i, truth, emul in _held_out_theories(emu, table):
        for name, like in likelihoods.items():
            peak = _recentred(like, truth, nuisance)
            if peak is not None:
                out.setdefault(name, np.empty(len(table)))[i] = -2.0 * peak.loglike(emul, nuisance)
    return out


# -- command line ----------------------------------------------------------------------

def _merge_tables(tables: Sequence[ObservableTable]) -> ObservableTable:
    names = tables[0].names
    if any(t.names != names or t.lmax != tables[0].lmax or set(t.blocks) != set(tables[0].blocks) for t in tables):
        raise ValueError("campaign chunks differ in parameters, lmax or tabulated blocks")
    return ObservableTable(names, np.concatenate([t.theta for t in tables]),
                           {k: np.concatenate([t.blocks[k] for t in tables]) for k in tables[0].blocks},
                           tables[0].lmax, tables[0].camb, tuple(f for t in tables for f in t.failed),
                           float(sum(t.seconds for t in tables)))


def load_campaign(directory, pattern: str = "train_*.h5") -> ObservableTable:
    """All chunks ``pattern`` of a campaign directory, merged (``bg_*.h5``: the
    background-only campaign)."""
    paths = sorted(Path(directory).glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no campaign chunks {pattern} under {directory}")
    return _merge_tables([load_table(p) for p in paths])


def main(argv=None) -> int:
    """``python -m cosmopipe.emulators.observables campaign|train ...`` (see workflows/ede_wbins.yaml)."""
    import argparse
    import os

    ap = argparse.ArgumentParser(prog="python -m cosmopipe.emulators.observables")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("campaign", help="CAMB runs on a Latin hypercube of DEFAULT_BOX, in chunks (resumable)")
    c.add_argument("--out", required=True)
    c.add_argument("--n", type=int, default=1200, help="C_ell campaign points (~6 s of CPU each)")
    c.add_argument("--n-test", type=int, default=50)
    c.add_argument("--n-background", type=int, default=4000,
                   help="background-only points (~0.2 s of CPU each) for the distance / H0 blocks")
    c.add_argument("--chunk", type=int, default=20)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--from-chains", default=None,
                   help="also draw --n-posterior points around the posterior of these chains (posterior_design)")
    c.add_argument("--n-posterior", type=int, default=400)
    t = sub.add_parser("train", help="fit the emulator to a campaign and report Delta chi^2 on held-out points")
    t.add_argument("--campaign", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--test", nargs="+", default=None, help="held-out campaign file(s) (observable tables)")
    t.add_argument("--n-optimise", type=int, default=500,
                   help="points the GP kernel hyperparameters are fitted on (each optimiser step is O(n^3))")
    t.add_argument("--workers", type=int, default=0, help="Dask workers for the fit (0: in process)")
    t.add_argument("--parameter-coordinates", action="store_true",
                   help="regress on the parameters themselves (default: COORDINATES, ln(pi - theta_i))")
    t.add_argument("--data-dir", default=os.environ.get("COSMOPIPE_DATA"))
    k = sub.add_parser("check", help="CAMB at posterior samples of an emulator chain: Delta chi^2 and "
                                     "importance-sampling shifts (emulators/obs_check.py)")
    k.add_argument("--chains", required=True, help="chain directory of a converged sample stage")
    k.add_argument("--emulator", required=True)
    k.add_argument("--n", type=int, default=200)
    k.add_argument("--out", default=None, help="report path without suffix (default CHAINS/camb_check)")
    k.add_argument("--workers", type=int, default=0)
    k.add_argument("--data-dir", default=os.environ.get("COSMOPIPE_DATA"))
    args = ap.parse_args(argv)
    from contextlib import ExitStack

    with ExitStack() as stack:
        client = None
        workers = args.workers
        if workers:
            from distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1,
                                                       dashboard_address="127.0.0.1:0", env={"OMP_NUM_THREADS": "1"}))
            client = stack.enter_context(Client(cluster))
        if args.command == "campaign":
            return _campaign(args, client)
        if args.command == "check":
            from .obs_check import check_chain, report_markdown, write_report

            report = check_chain(args.chains, args.emulator, args.n, args.data_dir, client)
            write_report(report, Path(args.out or Path(args.chains) / "camb_check"))
            print(report_markdown(report))
            return 0
        return _train(args, client)


def _campaign(args, client) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inner = {k: (lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo)) for k, (lo, hi) in DEFAULT_BOX.items()}
    jobs = [("test", latin_hypercube(inner, args.n_test, seed=args.seed + 1), False)]
    design = latin_hypercube(DEFAULT_BOX, args.n, seed=args.seed)
    jobs += [(f"train_{i // args.chunk:03d}", design[i:i + args.chunk], False) for i in range(0, args.n, args.chunk)]
    # Background points: the perturbation-only inputs do not matter there (fixed values).
    bg_box = {k: v for k, v in DEFAULT_BOX.items() if k not in PERTURBATION_ONLY}
    fixed = {k: 0.5 * sum(DEFAULT_BOX[k]) for k in PERTURBATION_ONLY}
    bg = [{**p, **fixed} for p in latin_hypercube(bg_box, args.n_background, seed=args.seed + 10)]
    step = 25 * args.chunk
    jobs += [(f"bg_{i // step:03d}", bg[i:i + step], True) for i in range(0, len(bg), step)]
    if args.from_chains:
        post = posterior_design(args.from_chains, args.n_posterior, seed=args.seed + 20)
        jobs += [(f"train_post_{i // args.chunk:03d}", post[i:i + args.chunk], False)
                 for i in range(0, len(post), args.chunk)]
    for name, chunk, bg_only in jobs:
        if not (out / f"{name}.h5").exists():
            table = run_campaign(chunk, client=client, background_only=bg_only)
            save_table(table, out / f"{name}.h5")
            print(f"{name}: {len(table)} points, {len(table.failed)} refused, {table.seconds:.0f} s", flush=True)
    return 0


def _train(args, client) -> int:
    bg = sorted(Path(args.campaign).glob("bg_*.h5"))
    emu = train_observables(load_campaign(args.campaign), box=DEFAULT_BOX, client=client,
                            background_table=load_campaign(args.campaign, "bg_*.h5") if bg else None,
                            n_optimise=args.n_optimise, coordinates={} if args.parameter_coordinates else None)
    save_observables(emu, args.out)
    print(f"wrote {args.out}: {emu.provenance['n_campaign']} C_ell points, {emu.provenance['n_background']} "
          f"background points, {emu.provenance['train_seconds']:.0f} s")
    if args.test:
        test, likes = _merge_tables([load_table(p) for p in args.test]), planck_bao_sn_likelihoods(args.data_dir)
        dchi2 = delta_chi2(emu, test, likes)
        dchi2.update({f"{k} (at peak)": v for k, v in delta_chi2_at_peak(emu, test, likes).items()})
        for name, d in dchi2.items():
            a = np.abs(d)
            print(f"{name:36s} |Delta chi2| median {np.median(a):.3g}  p95 {np.percentile(a, 95):.3g}  max {a.max():.3g}")
        from .obs_check import validation_plot

        png = validation_plot({k: v for k, v in dchi2.items() if np.any(v)}, Path(args.out).with_suffix(".validation.png"),
                              title=f"{len(test)} held-out CAMB points; {emu.provenance['n_campaign']} C_ell + "
                                    f"{emu.provenance['n_background']} background training points")
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
