"""The CAMB campaign of the observables emulator: the raw observables at each design point
(C_ell [muK^2], distances [Mpc], H(z) [km/s/Mpc], derived scalars), run on a Dask client.

    design = latin_hypercube(DEFAULT_BOX, n=1200, seed=1)
    table = run_campaign(design, client=client)                 # ~6 s CPU per point
    bg = run_campaign(bg_design, client=client, background_only=True)   # ~0.2 s per point

Points are given with 100 theta_* (``theta_star_100``) in place of H0; :func:`solve_h0`
finds each point's H0 with CAMB's background (module doc of
:mod:`cosmopipe.likelihoods.theory.observables.model` says why).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..camb_theory import CambSettings, TheoryError, camb_theory
from .design import DEFAULT_BOX, latin_hypercube

__all__ = ["LMAX", "Z_GRID", "MNU", "SCALARS", "CL_BLOCKS", "PERTURBATION_ONLY", "DEFAULT_CAMB", "ObservableTable",
           "likelihood_requirements", "camb_at", "observables_at", "background", "solve_h0", "run_campaign",
           "table_from_results", "merge_tables", "campaign_jobs"]

LMAX = 2508          # plik-lite's highest multipole; lensing needs 2500
Z_GRID = np.geomspace(0.005, 2.5, 100)  # Pantheon 0.01-2.26 and BAO 0.1-2.33 inside
MNU = 0.06           # eV, fixed (Planck 2018 baseline)
# Scalars tabulated (the emulator learns ln sigma8; the others come from the exact background).
SCALARS = ("rdrag", "theta_star", "sigma8", "Omega_m", "zdrag", "zstar", "rstar", "age", "theta_MC_100", "H0")
CL_BLOCKS = ("tt", "te", "ee", "pp")
# Every campaign table holds these; a C_ell campaign also the CL_BLOCKS.
BACKGROUND_TABLE_BLOCKS = ("chi", "hubble", "scalars")
PERTURBATION_ONLY = ("tau", "logA", "ns", "theta_i")

H0_SEARCH = (40.0, 100.0)   # km/s/Mpc, bracket of the theta_* -> H0 solve
# Bins crossing -1 and phantom bins with EDE need the PPF perturbations (camb_theory refuses otherwise).
DEFAULT_CAMB = {"de_perturbations": "ppf", "threads": 1}


def likelihood_requirements(lmax: int = LMAX) -> dict[str, Any]:
    """Merged requirements of plik-lite + low-ell TT/EE + lensing + BAO + Pantheon, plus sigma8."""
    return {"cls": {"lmax": int(lmax), "lensing": True, "spectra": ["ee", "pp", "te", "tt"]},
            "distances": {"zmax": float(Z_GRID[-1])}, "rdrag": True, "sigma8": True, "S8": True}


def camb_at(params: Mapping[str, float], requirements: Mapping[str, Any], camb: Mapping[str, Any] | None = None):
    """camb_theory's TheoryResult at a point given with theta_star_100 (H0 solved first) or
    H0, mnu fixed, with the campaign's CAMB settings ``camb``; raises TheoryError."""
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
        raise TheoryError(f"no H0 in [{lo:g}, {hi:g}] km/s/Mpc gives 100 theta_* = {target:g} "
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
        from distributed import as_completed  # only with a cluster

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
    return table_from_results(names, design, results, lmax, camb, time.perf_counter() - t0)


def table_from_results(names, design, results, lmax, camb, seconds) -> ObservableTable:
    good = [i for i, r in enumerate(results) if isinstance(r, dict)]
    failed = tuple(f"{dict(design[i])}: {r}" for i, r in enumerate(results) if not isinstance(r, dict))
    if not good:
        raise ValueError(f"run_campaign: CAMB refused every point; first: {failed[0] if failed else '?'}")
    theta = np.array([[design[i][k] for k in names] for i in good], float)
    blocks = {k: np.stack([results[i][k] for i in good]) for k in results[good[0]]}
    return ObservableTable(names, theta, blocks, int(lmax), dict(camb), failed, float(seconds))


def merge_tables(tables: Sequence[ObservableTable]) -> ObservableTable:
    names = tables[0].names
    if any(t.names != names or t.lmax != tables[0].lmax or set(t.blocks) != set(tables[0].blocks) for t in tables):
        raise ValueError("campaign chunks differ in parameters, lmax or tabulated blocks")
    return ObservableTable(names, np.concatenate([t.theta for t in tables]),
                           {k: np.concatenate([t.blocks[k] for t in tables]) for k in tables[0].blocks},
                           tables[0].lmax, tables[0].camb, tuple(f for t in tables for f in t.failed),
                           float(sum(t.seconds for t in tables)))


def campaign_jobs(n: int, n_test: int, n_background: int, chunk: int, seed: int,
                  posterior: Sequence[Mapping[str, float]] = ()) -> list[tuple[str, list[dict], bool]]:
    """The chunks of a resumable campaign as (name, design points, background_only):
    ``test`` (held out, 5 % inside the box edges), ``train_NNN`` (the Latin hypercube),
    ``bg_NNN`` (background only, 25 chunks' worth per file) and ``train_post_NNN`` (the
    ``posterior`` points, see :func:`~.design.posterior_design`)."""
    inner = {k: (lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo)) for k, (lo, hi) in DEFAULT_BOX.items()}
    jobs = [("test", latin_hypercube(inner, n_test, seed=seed + 1), False)]
    design = latin_hypercube(DEFAULT_BOX, n, seed=seed)
    jobs += [(f"train_{i // chunk:03d}", design[i:i + chunk], False) for i in range(0, n, chunk)]
    # Background points: the perturbation-only inputs do not matter there (fixed values).
    bg_box = {k: v for k, v in DEFAULT_BOX.items() if k not in PERTURBATION_ONLY}
    fixed = {k: 0.5 * sum(DEFAULT_BOX[k]) for k in PERTURBATION_ONLY}
    bg = [{**p, **fixed} for p in latin_hypercube(bg_box, n_background, seed=seed + 10)]
    step = 25 * chunk
    jobs += [(f"bg_{i // step:03d}", bg[i:i + step], True) for i in range(0, len(bg), step)]
    posterior = list(posterior)
    jobs += [(f"train_post_{i // chunk:03d}", posterior[i:i + chunk], False) for i in range(0, len(posterior), chunk)]
    return jobs
