"""Emulator of the CMB and sigma8 observables of the Planck / BAO / Pantheon likelihoods.

The Planck (plik-lite, low-ell TT, SRoll2 lowE, lensing), BAO and Pantheon
likelihoods read only a few observables from a :class:`~likelihoods.base.TheoryResult`.
This module tabulates them with :func:`likelihoods.camb_theory.camb_theory` over a
Latin hypercube of the EDE + binned w(z) box (a Dask campaign), compresses each
block by PCA and maps the inputs to the PCA coefficients with a
polynomial (linear by default) plus an MLP (:mod:`emulators.network`) for what the
polynomial leaves::

    design = latin_hypercube(DEFAULT_BOX, n=600, seed=1)
    table = run_campaign(design, client=client)            # ~8 s CPU per point
    emu = train_observables(table, box=DEFAULT_BOX)
    save_observables(emu, "obs.h5"); emu = load_observables("obs.h5")
    theory = emu.theory(params, requirements)               # a TheoryResult

Split of the work.  The background (distances, H(z), r_drag, theta_*, the
derived parameters) is not emulated but computed by camb_theory's background-only
path (~0.1 s of CPU for EDE + 3 w bins, against ~8 s for the C_ell): BAO and
Pantheon are then exact, and theta_* becomes an emulator input in place of H0.
That choice is measured: over an H0 box (63-77) the first campaign spanned
100 theta_* = 0.963-1.123, every acoustic peak moved by up to 8 %, and at 60
points the median TT error was 2.5 % (BAO Delta chi^2 ~5 with emulated
distances).  In theta_* (box +-0.3 %, Planck measures it to 0.03 %) the peaks stay
put and the C_ell are smooth in the inputs.

========  =================================================  ===============================
block     tabulated                                          emulated
========  =================================================  ===============================
tt, ee    lensed C_ell [muK^2], ell = 2..LMAX                ln(C_ell / (A_s e^{-2 tau}))
te        lensed C_ell^TE [muK^2]                            C_ell^TE / (A_s e^{-2 tau}) /
                                                             sqrt(<C^TT><C^EE>) of the design
pp        C_L^{phi phi} (raw, dimensionless), L = 2..LMAX    ln(C_L^{phi phi} / A_s)
sigma8    sigma8 (z = 0, linear, total matter)               ln sigma8
========  =================================================  ===============================

The campaign also stores chi(z), H(z) on Z_GRID and the derived scalars (SCALARS) so
later versions can emulate the background too.

Inputs: ombh2, omch2, theta_star_100 (= 100 theta_*, from H0 through the background),
tau, logA, ns, f_EDE, log10_z_c, theta_i, w_1..w_N (mnu fixed at 0.06 eV).  The
design is drawn in theta_star_100 and :func:`solve_h0` finds the H0 of each point.
Points outside the box raise :class:`EmulatorRangeError` (a ``TheoryError`` from
:meth:`ObservablesEmulator.theory`, so a sampler counts the point as zero likelihood)
naming the parameter and the box.

File format (HDF5, no pickle): root attrs format = 'cosmopipe-observables',
format_version, created, complete (written last), lmax, camb_settings, fixed,
provenance (JSON: campaign size, CAMB version, training settings and losses);
``box/`` (attr names, lower, upper), ``te_norm``, ``z_grid``; ``blocks/<name>/``
mean (m,), basis (c, m), poly (F, c), attrs scale, degree, activation, n_layers,
and the MLP weights W<i>, b<i>.
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
    "emulated_theory", "theory_params", "likelihood_requirements", "background", "solve_h0", "delta_chi2",
    "delta_chi2_at_peak", "load_campaign",
]

FORMAT = "cosmopipe-observables"
FORMAT_VERSION = 1
LMAX = 2508          # plik-lite's highest multipole; lensing needs 2500
Z_GRID = np.geomspace(0.005, 2.5, 100)  # Pantheon 0.01-2.26 and BAO 0.1-2.33 inside
MNU = 0.06           # eV, fixed (Planck 2018 baseline)
# Scalars tabulated (the emulator learns ln sigma8; the others come from the exact background).
SCALARS = ("rdrag", "theta_star", "sigma8", "Omega_m", "zdrag", "zstar", "rstar", "age", "theta_MC_100", "H0")
CL_BLOCKS = ("tt", "te", "ee", "pp")
TABLE_BLOCKS = CL_BLOCKS + ("chi", "hubble", "scalars")
BLOCKS = CL_BLOCKS + ("sigma8",)
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
    from likelihoods.camb_theory import TheoryError

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


def observables_at(params: Mapping[str, float], lmax: int = LMAX,
                   camb: Mapping[str, Any] | None = None) -> dict[str, np.ndarray] | str:
    """Raw observables of one point from camb_theory, as plain arrays (cheap to ship from a
    Dask worker): tt, te, ee [muK^2] and pp for ell = 2..lmax, chi [Mpc] and hubble
    [km/s/Mpc] on Z_GRID, and the SCALARS.  A point CAMB refuses returns the message (str)."""
    from likelihoods.camb_theory import CambSettings, TheoryError, camb_theory

    settings = CambSettings(**{**DEFAULT_CAMB, **dict(camb or {})})
    params = {"mnu": MNU, **dict(params)}
    try:
        if "theta_star_100" in params:
            params["H0"] = solve_h0(params, settings)
            del params["theta_star_100"]
        res = camb_theory(params, likelihood_requirements(lmax), settings)
    except TheoryError as exc:
        return str(exc)
    out = {k: np.asarray(res.cls[k][2:lmax + 1], float) for k in CL_BLOCKS}
    out["chi"] = np.asarray(res.comoving_distance(Z_GRID), float)
    out["hubble"] = np.asarray(res.hubble(Z_GRID), float)
    derived = {**res.derived, "sigma8": res.sigma8}
    out["scalars"] = np.array([derived[k] for k in SCALARS], float)
    return out


def background(params: Mapping[str, Any], settings=None):
    """camb_theory's background-only TheoryResult (distances to Z_GRID[-1], r_drag, theta_*):
    ~0.1 s of CPU for EDE + 3 w bins, against ~8 s for the full observables."""
    from likelihoods.camb_theory import CambSettings, camb_theory

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
                 camb: Mapping[str, Any] | None = None, progress=None) -> ObservableTable:
    """CAMB at every design point: ``client.map`` over the points with a dask.distributed
    client, a plain loop without.  Points CAMB refuses are dropped (listed in ``failed``).
    ``progress``: optional callable(done, total)."""
    if not design:
        raise ValueError("run_campaign: empty design")
    names = tuple(design[0])
    t0 = time.perf_counter()
    camb = dict(camb or {})
    if client is not None:
        from distributed import as_completed

        futures = client.map(observables_at, list(design), lmax=lmax, camb=camb, pure=False)
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
            results.append(observables_at(p, lmax, camb))
            if progress:
                progress(done, len(design))
    return _table(names, design, results, lmax, camb, time.perf_counter() - t0)


def _table(names, design, results, lmax, camb, seconds) -> ObservableTable:
    good = [i for i, r in enumerate(results) if isinstance(r, dict)]
    failed = tuple(f"{dict(design[i])}: {r}" for i, r in enumerate(results) if not isinstance(r, dict))
    if not good:
        raise ValueError(f"run_campaign: CAMB refused every point; first: {failed[0] if failed else '?'}")
    theta = np.array([[design[i][k] for k in names] for i in good], float)
    blocks = {k: np.stack([results[i][k] for i in good]) for k in TABLE_BLOCKS}
    return ObservableTable(names, theta, blocks, int(lmax), dict(camb), failed, float(seconds))


def save_table(table: ObservableTable, path) -> Path:
    """Write a campaign to HDF5 (atomic)."""
    from sims.io import atomic_hdf5

    path = Path(path)
    with atomic_hdf5(path) as f:
        f.attrs["format"] = FORMAT + "-table"
        f.attrs["format_version"] = FORMAT_VERSION
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
            blocks = {k: f["blocks"][k][()] for k in TABLE_BLOCKS}
            return ObservableTable(names, f["theta"][()], blocks, int(f.attrs["lmax"]), json.loads(f.attrs["camb"]),
                                   tuple(json.loads(f.attrs["failed"])), float(f.attrs["seconds"]))
    except (KeyError, OSError) as exc:
        raise ValueError(f"{path}: corrupt or incomplete observable table ({exc})") from None


# -- the emulator ----------------------------------------------------------------------

def _amplitude(theta: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """A_s e^{-2 tau} (n,) for parameter rows (n, p): the exact amplitude of the acoustic peaks."""
    a_s = 1e-10 * np.exp(theta[:, names.index("logA")])
    return a_s * np.exp(-2.0 * theta[:, names.index("tau")])


def _forward(name: str, raw: np.ndarray, theta: np.ndarray, names, te_norm=None) -> np.ndarray:
    """Raw observables (n, m) -> the smooth quantity the network learns (module docstring)."""
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


def _features(x: np.ndarray, degree: int) -> np.ndarray:
    """Polynomial features of unit-box inputs x (n, p): 1, x_i and, for degree 2, x_i x_j (i <= j)."""
    cols = [np.ones((x.shape[0], 1))]
    if degree >= 1:
        cols.append(x)
    if degree >= 2:
        i, j = np.triu_indices(x.shape[1])
        cols.append(x[:, i] * x[:, j])
    return np.concatenate(cols, axis=1)


@dataclass(frozen=True)
class Block:
    """PCA + polynomial + MLP model of one observable block:
    y = mean + (features(x) @ poly + net(x) * scale) @ basis.

    mean (m,), basis (c, m) orthonormal rows; poly (F, c) least-squares polynomial of
    degree ``degree`` in the unit-box parameters (the MLP learns what it leaves);
    scale: common output scale of the network; network: emulators.network.MLP."""

    name: str
    mean: np.ndarray
    basis: np.ndarray
    scale: float
    network: Any
    poly: np.ndarray
    degree: int

    def coefficients(self, x: np.ndarray) -> np.ndarray:
        return _features(x, self.degree) @ self.poly + self.network(x) * self.scale

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.mean + self.coefficients(x) @ self.basis


def _polynomial_fit(x: np.ndarray, coeff: np.ndarray, degree: int) -> np.ndarray:
    """Least squares of coeff (n, c) on the features, with a small ridge so that a design
    barely larger than the feature count stays well conditioned."""
    phi = _features(x, degree)
    lam = 1e-6 * np.trace(phi.T @ phi) / phi.shape[1]
    return np.linalg.solve(phi.T @ phi + lam * np.eye(phi.shape[1]), phi.T @ coeff)


def _fit_block(name: str, x: np.ndarray, y: np.ndarray, x_val, y_val, config, variance: float,
               max_components: int, degree: int = 2) -> tuple[Block, dict]:
    from .network import train_mlp

    mean = y.mean(axis=0)
    _, s, vt = np.linalg.svd(y - mean, full_matrices=False)
    power = s**2
    explained = np.cumsum(power) / max(power.sum(), 1e-300)
    c = int(min(np.searchsorted(explained, variance) + 1, max_components, vt.shape[0]))
    basis = vt[:c]
    # A quadratic needs (p+1)(p+2)/2 points: below twice that, fall back to linear.
    if degree >= 2 and x.shape[0] < 2 * _features(x[:1], 2).shape[1]:
        degree = 1
    coeff = (y - mean) @ basis.T
    poly = _polynomial_fit(x, coeff, degree)
    resid = coeff - _features(x, degree) @ poly
    scale = float(np.std(resid[:, 0])) or 1.0
    val = (None, None)
    if x_val is not None and len(x_val):
        val = (x_val, ((y_val - mean) @ basis.T - _features(x_val, degree) @ poly) / scale)
    net, rep = train_mlp(x, resid / scale, config, *val)
    return Block(name, mean, basis, scale, net, poly, degree), {
        "components": c, "degree": degree, "poly_train_loss": float(np.mean(resid ** 2)),
        "train_loss": rep.train_loss * scale**2,
        "val_loss": None if rep.val_loss is None else rep.val_loss * scale**2,
        "iterations": rep.best_iteration, "seconds": rep.seconds}


@dataclass(frozen=True)
class ObservablesEmulator:
    """PCA + MLP emulators of the C_ell blocks and sigma8 over a parameter box, on top of
    CAMB's exact background (see the module docstring).

    names, lower, upper   emulated inputs (theta_star_100 in place of H0) and their box
    blocks                name -> Block (BLOCKS)
    te_norm (m,)          sqrt(<C^TT><C^EE>) / (A_s e^{-2 tau}) of the design, the TE unit
    lmax                  highest multipole [C_ell for ell = 0..lmax, 0 and 1 set to 0]
    camb                  CambSettings fields of the campaign (model choices)
    provenance            campaign and training record (JSON-able)
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    blocks: dict[str, Block]
    te_norm: np.ndarray
    lmax: int = LMAX
    camb: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def unit(self, theta: np.ndarray) -> np.ndarray:
        return (2.0 * theta - (self.upper + self.lower)) / (self.upper - self.lower)

    def read(self, params: Mapping[str, Any]) -> np.ndarray:
        """(1, p) input row from a dict (theta_star_100 included); missing, non-numeric or
        out-of-box values raise errors naming the parameter and the box."""
        row = np.empty(len(self.names))
        for i, name in enumerate(self.names):
            if name not in params:
                raise KeyError(f"observables emulator: parameter {name!r} missing; it needs "
                               f"{', '.join(n for n in self.names if n != 'theta_star_100')} and H0")
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
        """Raw observables (as observables_at tabulates them) for (n, p) input rows."""
        theta = np.atleast_2d(np.asarray(theta, float))
        x = self.unit(theta)
        return {k: _inverse(k, self.blocks[k](x), theta, self.names, self.te_norm) for k in which}

    def settings(self):
        from likelihoods.camb_theory import CambSettings

        return CambSettings(**{**DEFAULT_CAMB, **self.camb})

    def theory(self, params: Mapping[str, Any], requirements: Mapping[str, Any] | None = None, bg=None):
        """A TheoryResult like camb_theory's (same units) for one point given with H0:
        distances, H(z), r_drag, theta_* and derived parameters from CAMB's background
        (``bg``: an already computed one), C_ell (ell = 0..lmax; 0, 1 zero; no 'bb') and
        sigma8, S8 emulated.  Out-of-box points raise TheoryError naming the parameter."""
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
        missing = [k for k in ("H0",) + self.names if k != "theta_star_100" and k not in params]
        if missing:
            raise KeyError(f"observables emulator: parameter(s) {', '.join(map(repr, missing))} missing")
        if abs(float(params.get("mnu", MNU)) - MNU) > 1e-9:
            raise _theory_error()(f"observables emulator: mnu is fixed at {MNU} eV in training, got {params['mnu']}")
        # camb_theory ignores keys it does not read (likelihood nuisances).
        out = bg if bg is not None else background({k: v for k, v in params.items() if k != "theta_star_100"},
                                                   self.settings())
        inputs = {**params, "theta_star_100": out.theta_star}
        try:
            theta = self.read(inputs)
        except EmulatorRangeError as exc:
            raise _theory_error()(str(exc)) from None
        raw = {k: v[0] for k, v in self.predict(theta, list(CL_BLOCKS) * bool(cls_req) + ["sigma8"]).items()}
        return _with_perturbations(out, raw)


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


def train_observables(table: ObservableTable, config=None, variance: float = 1 - 1e-7,
                      max_components: int = 24, validation_fraction: float = 0.0, seed: int = 0,
                      box: Mapping[str, tuple[float, float]] | None = None, client=None,
                      degree: int = 1) -> ObservablesEmulator:
    """Fit one PCA + polynomial + MLP per block to a campaign.  ``box``: the input box
    (default the design's span).  ``config``: emulators.network.TrainConfig (default
    2 x 32 tanh, 2000 L-BFGS iterations); ``validation_fraction`` > 0 holds points out
    for early stopping.  With a Dask ``client`` each block is one task.

    Defaults measured at 72 campaign points (plik-lite Delta chi^2 at the peak, median /
    p95 over 23 held-out points): 2 x 32, 2000 iterations, all points 49 / 144; with 10 %
    held out for early stopping 48 / 302; 2 x 64 and 2 x 128 were no better at 52 points.
    ``degree``: the polynomial under the MLP; a quadratic (91 terms for 12 inputs, used
    only from 182 points) overfits: at 254 points plik-lite Delta chi^2 (box points,
    median) 108 against 13.8 with the linear default."""
    from .network import TrainConfig

    config = config or TrainConfig(hidden=(32, 32), epochs=2000, patience=40)
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
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(n * validation_fraction) if n * validation_fraction >= 1 else 0
    val, tr = order[:n_val], order[n_val:]
    theta = table.theta
    x = (2.0 * theta - (upper + lower)) / (upper - lower)
    amp = _amplitude(theta, names)[:, None]
    te_norm = np.sqrt(np.mean(table.blocks["tt"] / amp, axis=0) * np.mean(table.blocks["ee"] / amp, axis=0))
    raw = {**{k: table.blocks[k] for k in CL_BLOCKS},
           "sigma8": table.blocks["scalars"][:, SCALARS.index("sigma8")][:, None]}
    jobs = []
    for name in BLOCKS:
        y = _forward(name, raw[name], theta, names, te_norm)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"train_observables: block {name} has non-finite values after its transform "
                             f"(a non-positive C_ell in the campaign)")
        jobs.append((name, x[tr], y[tr], x[val], y[val], config, variance, max_components, degree))
    t0 = time.perf_counter()
    if client is not None:
        results = client.gather([client.submit(_fit_block, *job, pure=False) for job in jobs])
    else:
        results = [_fit_block(*job) for job in jobs]
    blocks = {b.name: b for b, _ in results}
    report = {b.name: r for b, r in results}
    import camb

    provenance = {"n_campaign": n, "n_train": int(tr.size), "n_validation": int(val.size),
                  "campaign_seconds": table.seconds, "failed_points": len(table.failed),
                  "camb_version": camb.__version__, "train_seconds": time.perf_counter() - t0,
                  "network": {"hidden": list(config.hidden), "activation": config.activation,
                              "epochs": config.epochs, "optimizer": config.optimizer},
                  "pca_variance": variance, "max_components": max_components, "degree": degree, "blocks": report}
    return ObservablesEmulator(names, lower, upper, blocks, te_norm, table.lmax, dict(table.camb), provenance)


# -- files -----------------------------------------------------------------------------

def save_observables(emu: ObservablesEmulator, path) -> Path:
    """Write the emulator to one HDF5 file (atomic; layout in the module docstring)."""
    from datetime import datetime, timezone

    from sims.io import atomic_hdf5

    path = Path(path)
    with atomic_hdf5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        f.attrs["lmax"] = emu.lmax
        f.attrs["camb_settings"] = json.dumps(emu.camb)
        f.attrs["provenance"] = json.dumps(emu.provenance, default=float)
        f.attrs["fixed"] = json.dumps({"mnu": MNU})
        b = f.create_group("box")
        b.attrs["names"] = json.dumps(list(emu.names))
        b.create_dataset("lower", data=emu.lower)
        b.create_dataset("upper", data=emu.upper)
        f.create_dataset("z_grid", data=Z_GRID)
        f.create_dataset("te_norm", data=emu.te_norm)
        g = f.create_group("blocks")
        for name, blk in emu.blocks.items():
            h = g.create_group(name)
            h.attrs["scale"] = blk.scale
            h.attrs["activation"] = blk.network.activation
            h.attrs["n_layers"] = len(blk.network.weights)
            h.create_dataset("mean", data=blk.mean)
            h.create_dataset("basis", data=blk.basis)
            h.create_dataset("poly", data=blk.poly)
            h.attrs["degree"] = blk.degree
            for i, (w, bias) in enumerate(zip(blk.network.weights, blk.network.biases)):
                h.create_dataset(f"W{i}", data=w)
                h.create_dataset(f"b{i}", data=bias)
        f.attrs["complete"] = True
    return path


def load_observables(path) -> ObservablesEmulator:
    """Read an emulator written by :func:`save_observables`; a missing, foreign, newer or
    truncated file raises an error naming the file and the problem."""
    import h5py

    from .network import MLP

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"observables emulator {path} does not exist; build it with "
                                f"`python -m emulators.observables train ...` (see workflows/ede_wbins.yaml)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise ValueError(f"{path}: not a cosmopipe observables emulator (format {fmt!r}, expected {FORMAT!r})")
        version = int(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {version}, this code reads {FORMAT_VERSION}")
        if not f.attrs.get("complete", False):
            raise ValueError(f"{path}: incomplete file (the write was interrupted); train it again")
        try:
            if not np.allclose(f["z_grid"][()], Z_GRID):
                raise ValueError(f"{path}: distance grid differs from this code's Z_GRID")
            names = tuple(json.loads(f["box"].attrs["names"]))
            blocks = {}
            for name in BLOCKS:
                h = f["blocks"][name]
                nl = int(h.attrs["n_layers"])
                net = MLP(tuple(h[f"W{i}"][()] for i in range(nl)), tuple(h[f"b{i}"][()] for i in range(nl)),
                          str(h.attrs["activation"]))
                blocks[name] = Block(name, h["mean"][()], h["basis"][()], float(h.attrs["scale"]), net,
                                     h["poly"][()], int(h.attrs["degree"]))
            return ObservablesEmulator(names, f["box"]["lower"][()], f["box"]["upper"][()], blocks,
                                       f["te_norm"][()], int(f.attrs["lmax"]), json.loads(f.attrs["camb_settings"]),
                                       json.loads(f.attrs["provenance"]))
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
    """Parameters :func:`emulated_theory` reads (Planck-style names, H0 not theta_*)."""
    return tuple("H0" if n == "theta_star_100" else n for n in _emulator(path).names) + ("mnu",)


def emulated_theory(params: Mapping[str, Any], requirements: Mapping[str, Any] | None = None,
                    path=None):
    """TheoryResult from the emulator file ``path`` (default $COSMOPIPE_OBS_EMULATOR),
    loaded once per process: the hook for a ``theory: {provider: emulator, path: ...}``."""
    return _emulator(path).theory(params, requirements)


# -- validation in units of the data errors --------------------------------------------

def planck_bao_sn_likelihoods(data_dir=None) -> dict[str, Any]:
    """The six likelihoods the emulator serves, by name (data from data_dir or $COSMOPIPE_DATA)."""
    from likelihoods import bao, planck, planck_lensing, sn

    likes = [planck.plik_lite(data_dir), planck.lowl_tt(data_dir), planck.lowl_ee(data_dir),
             planck_lensing.planck_lensing(data_dir), bao.bao_likelihood(data_dir=data_dir), sn.pantheon(data_dir)]
    return {like.name: like for like in likes}


def _held_out_theories(emu, table):
    """(index, CAMB truth, emulated) TheoryResults for each point of a held-out table;
    both share the exact CAMB background, so only the emulated blocks differ."""
    h0 = table.blocks["scalars"][:, SCALARS.index("H0")]
    for i in range(len(table)):
        params = {k: v for k, v in table.params(i).items() if k != "theta_star_100"}
        params["H0"] = float(h0[i])
        bg = background(params, emu.settings())
        truth = _with_perturbations(bg, {**{k: table.blocks[k][i] for k in CL_BLOCKS},
                                         "sigma8": table.blocks["scalars"][i, SCALARS.index("sigma8")]})
        yield i, truth, emu.theory(params, likelihood_requirements(emu.lmax), bg=bg)


def delta_chi2(emu: ObservablesEmulator, table: ObservableTable, likelihoods: Mapping[str, Any],
               nuisance: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """chi^2(emulator) - chi^2(CAMB) per likelihood (name -> (n,)) at the points of a
    held-out campaign.  Both sides share the same CAMB background (computed once per point),
    so BAO and Pantheon differ only through nothing (exactly 0) and the CMB likelihoods
    through the emulated C_ell."""
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

    from likelihoods import planck, planck_lensing

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
    if any(t.names != names or t.lmax != tables[0].lmax for t in tables):
        raise ValueError("campaign chunks differ in parameters or lmax")
    return ObservableTable(names, np.concatenate([t.theta for t in tables]),
                           {k: np.concatenate([t.blocks[k] for t in tables]) for k in TABLE_BLOCKS},
                           tables[0].lmax, tables[0].camb, tuple(f for t in tables for f in t.failed),
                           float(sum(t.seconds for t in tables)))


def load_campaign(directory) -> ObservableTable:
    """All training chunks ``train_*.h5`` of a campaign directory, merged."""
    paths = sorted(Path(directory).glob("train_*.h5"))
    if not paths:
        raise FileNotFoundError(f"no campaign chunks train_*.h5 under {directory}")
    return _merge_tables([load_table(p) for p in paths])


def main(argv=None) -> int:
    """``python -m emulators.observables campaign|train ...`` (see workflows/ede_wbins.yaml)."""
    import argparse
    import os

    ap = argparse.ArgumentParser(prog="python -m emulators.observables")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("campaign", help="CAMB runs on a Latin hypercube of DEFAULT_BOX, in chunks (resumable)")
    c.add_argument("--out", required=True)
    c.add_argument("--n", type=int, default=600)
    c.add_argument("--n-test", type=int, default=50)
    c.add_argument("--chunk", type=int, default=20)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("train", help="fit the emulator to a campaign and report Delta chi^2 on held-out points")
    t.add_argument("--campaign", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--test", default=None)
    t.add_argument("--data-dir", default=os.environ.get("COSMOPIPE_DATA"))
    args = ap.parse_args(argv)
    if args.command == "campaign":
        from distributed import Client, LocalCluster

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        inner = {k: (lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo)) for k, (lo, hi) in DEFAULT_BOX.items()}
        jobs = [("test", latin_hypercube(inner, args.n_test, seed=args.seed + 1))]
        design = latin_hypercube(DEFAULT_BOX, args.n, seed=args.seed)
        jobs += [(f"train_{i // args.chunk:03d}", design[i:i + args.chunk]) for i in range(0, args.n, args.chunk)]
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None,
                          env={"OMP_NUM_THREADS": "1"}) as cluster, Client(cluster) as client:
            for name, chunk in jobs:
                if not (out / f"{name}.h5").exists():
                    table = run_campaign(chunk, client=client)
                    save_table(table, out / f"{name}.h5")
                    print(f"{name}: {len(table)} points, {len(table.failed)} refused, {table.seconds:.0f} s", flush=True)
        return 0
    emu = train_observables(load_campaign(args.campaign), box=DEFAULT_BOX)
    save_observables(emu, args.out)
    print(f"wrote {args.out}: {emu.provenance['n_campaign']} points, {emu.provenance['train_seconds']:.0f} s")
    if args.test:
        test, likes = load_table(args.test), planck_bao_sn_likelihoods(args.data_dir)
        dchi2 = delta_chi2(emu, test, likes)
        dchi2.update({f"{k} (at peak)": v for k, v in delta_chi2_at_peak(emu, test, likes).items()})
        for name, d in dchi2.items():
            a = np.abs(d)
            print(f"{name:28s} |Delta chi2| median {np.median(a):.3g}  p95 {np.percentile(a, 95):.3g}  max {a.max():.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
