"""Emulator of the CMB, sigma8 and background observables of the Planck / BAO / Pantheon likelihoods.

The Planck (plik-lite, low-ell TT, SRoll2 lowE, lensing), BAO and Pantheon
likelihoods read only a few observables from a :class:`~likelihoods.base.TheoryResult`.
This module tabulates them with :func:`cosmopipe.likelihoods.theory.camb_theory.camb_theory` over a
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
as zero likelihood) naming the parameter and the box.  :func:`cosmopipe.pipeline.stages.observables.check_chain`
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

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from cosmopipe.emulators.gp import fit_gp

from ..camb_theory import Background, CambSettings, TheoryError
from ..contract import TheoryResult
from .campaign import CL_BLOCKS, DEFAULT_CAMB, LMAX, MNU, PERTURBATION_ONLY, SCALARS, Z_GRID, ObservableTable, background

__all__ = ["BLOCKS", "BACKGROUND_BLOCKS", "BACKGROUND_SCALARS", "COORDINATES", "EmulatorRangeError", "Block",
           "ObservablesEmulator", "train_observables", "to_coordinates", "coordinate_box", "unit_box"]

BLOCKS = CL_BLOCKS + ("sigma8",)
# Emulated background: ln(chi / z) and ln H on Z_GRID, ln of these scalars; inputs without
# PERTURBATION_ONLY (theta_i sets only the EDE fluid's sound speed: the background is
# independent of it, checked with CAMB).
BACKGROUND_BLOCKS = ("chi", "hubble", "background")
BACKGROUND_SCALARS = ("H0", "rdrag", "zdrag", "zstar", "rstar", "age", "theta_MC_100")
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


class EmulatorRangeError(ValueError):
    """A parameter outside the emulator's training box (message names it and the box)."""


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
        return CambSettings(**{**DEFAULT_CAMB, **self.camb})

    def emulated_background(self, params: Mapping[str, Any], theta: np.ndarray):
        """A background TheoryResult like camb_theory's, every field emulated (input row ``theta``)."""
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
            raise TheoryError(f"observables emulator: mnu is fixed at {MNU} eV in training, got {params['mnu']}")
        if not fast:
            # camb_theory ignores keys it does not read (likelihood nuisances).
            bg = bg if bg is not None else background(
                {k: v for k, v in params.items() if k != "theta_star_100"}, self.settings())
            params = {**params, "theta_star_100": bg.theta_star}
        try:
            theta = self.read(params)
        except EmulatorRangeError as exc:
            raise TheoryError(str(exc)) from None
        if fast:
            bg = self.emulated_background(params, theta)
        raw = {k: v[0] for k, v in self.predict(theta, list(CL_BLOCKS) * bool(cls_req) + ["sigma8"]).items()}
        return _with_perturbations(bg, raw)


def _with_perturbations(bg, raw: Mapping[str, np.ndarray]):
    """A copy of the background TheoryResult ``bg`` with C_ell and sigma8 (S8) from ``raw``."""
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
    import camb  # for its version; loaded already by the campaign

    provenance = {"n_campaign": n, "n_background": len(bg_table), "campaign_seconds": table.seconds, "failed_points": len(table.failed),
                  "camb_version": camb.__version__, "train_seconds": time.perf_counter() - t0,
                  "regressor": "linear trend + Matern-5/2 ARD Gaussian process per PCA component",
                  "pca_variance": variance, "background_pca_variance": background_variance,
                  "max_components": max_components, "blocks": report}
    return ObservablesEmulator(names, lower, upper, blocks, te_norm, omnuh2, table.lmax, dict(table.camb), provenance,
                               coordinates)
