"""Tomographic cosmic-shear spectra C_ell^{ij} (Limber) and xi+-(theta), fast.

For source bins i, j (distances in Mpc/h, k in h/Mpc, P in (Mpc/h)^3):

    C_ell^{ij} = T(ell) int dchi g_i(chi) g_j(chi) / chi^2  P_nl(k = (ell + 1/2)/chi, z(chi))

    T(ell)     = (ell+2)!/(ell-2)! / (ell+1/2)^4        exact spin-2 Limber prefactor (1 with the
                                                        ``limber_prefactor: none`` convention: CosmoLike's TATT path)
    g_i        = q_i + I_i
    q_i(chi)   = 3/2 Omega_m (H0/c)^2 chi (1+z) int_z^inf dz' n_i(z') (1 - chi/chi(z'))     lensing efficiency
    I_i(chi)   = -A_IA C1 rho_crit Omega_m / D(z) [(1+z)/1.62]^eta_IA  n_i(z) H(z)/c       NLA intrinsic alignments

(GG + GI + IG + II in one product, all with the nonlinear matter power as in
the NLA model), C1 rho_crit = 0.0134 (or Cocoa's 0.01389: the
``nla_c1rho`` convention of :mod:`cosmopipe.likelihoods.shear.conventions`), D(0) = 1.  Nuisances: photo-z shifts
n_i(z) -> n_i(z - dz_i) (renormalised), multiplicative shear bias: spectra and
correlations of pair ij times (1 + m_i)(1 + m_j).

Numerics, chosen so that one evaluation of all 15 pairs costs about a
millisecond besides the power source: n(z), chi(z) and the lensing
efficiencies on a fine grid uniform in ln(z + 0.1) (513 points to z = 4; the
efficiencies are two reverse cumulative trapezoid sums), the Limber integral
by Simpson's rule on every 4th point of it (128 nodes; dense at low z, where
k = (ell + 1/2)/chi sweeps fast through the BAO wiggles), P(k, z) from the
power source at 41 redshifts, cubic in z onto the nodes and cubic in ln k
(40 points per decade) onto k = (ell + 1/2)/chi, C_ell on 81 log-spaced
nodes from ell = 1 to 1e5, and xi+- through precomputed (ntheta, nnodes)
matrices: by default the exact curved-sky Legendre sums over every integer
ell < 1e5 of :mod:`cosmopipe.likelihoods.shear.curved`, or (``xi_method: flat``) the
bin-averaged flat-sky Hankel transform of :mod:`cosmopipe.likelihoods.shear.hankel`.  Against CCL fed the
same P(k, z) and n(z), C_ell agree to better than 0.1 % for 20 <= ell <= 3000
(tests/test_shear_ccl.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numba
import numpy as np
from scipy.interpolate import CubicSpline

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.sims.cosmology import Cosmology

from cosmopipe.likelihoods.theory.background import HUBBLE_DISTANCE, background, comoving_distance_grid
from .conventions import Conventions
from .curved import COSMOLIKE_LMAX, curved_transform_matrices
from .hankel import spin2_limber_factor, theta_centres, theta_edges, xi_transform_matrices
from cosmopipe.likelihoods.theory.matter_power import PowerSource
from .survey import Survey

__all__ = ["C1_RHO_CRIT", "IA_PIVOT_Z", "Nuisance", "ShearModel", "shear_model", "nuisance_names"]

C1_RHO_CRIT = 0.0134  # C1 rho_crit of the NLA normalisation (Hirata & Seljak 2004; Bridle & King 2007)
IA_PIVOT_Z = 0.62


def nuisance_names(nbins: int) -> list[str]:
    return [f"dz_{i + 1}" for i in range(nbins)] + [f"m_{i + 1}" for i in range(nbins)] + ["A_IA", "eta_IA"]


@dataclass(frozen=True)
class Nuisance:
    """Photo-z shifts dz (nbins,), shear biases m (nbins,), NLA amplitude and redshift slope."""

    dz: np.ndarray
    m: np.ndarray
    A_IA: float = 0.0
    eta_IA: float = 0.0


@numba.njit(cache=True)
def _power_at(lnp, lnk0, dlnk, lnchi, lnL):
    """P at k = L / chi for every (chi_a, L_m): exp of a 4-point Lagrange
    interpolation of lnp[a, :] (uniform ln k grid from lnk0, step dlnk),
    linear in ln k beyond the table."""
    na, nk = lnp.shape
    out = np.empty((na, lnL.size))
    for a in range(na):
        for m in range(lnL.size):
            x = (lnL[m] - lnchi[a] - lnk0) / dlnk
            if x < 1.0:
                v = lnp[a, 0] + (lnp[a, 1] - lnp[a, 0]) * x
            elif x >= nk - 2:
                v = lnp[a, nk - 1] + (lnp[a, nk - 1] - lnp[a, nk - 2]) * (x - (nk - 1))
            else:
                i = int(x)
                t = x - i
                c0 = -t * (t - 1.0) * (t - 2.0) / 6.0
                c1 = (t + 1.0) * (t - 1.0) * (t - 2.0) / 2.0
                c2 = -(t + 1.0) * t * (t - 2.0) / 2.0
                c3 = (t + 1.0) * t * (t - 1.0) / 6.0
                v = c0 * lnp[a, i - 1] + c1 * lnp[a, i] + c2 * lnp[a, i + 1] + c3 * lnp[a, i + 2]
            out[a, m] = np.exp(v)
    return out


def _simpson_weights(n_intervals: int, h: float) -> np.ndarray:
    w = np.full(n_intervals + 1, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w * h / 3.0


@dataclass(frozen=True)
class ShearModel:
    """Precomputed grids and matrices for fast shear theory (build with :func:`shear_model`)."""

    survey: Survey
    power: PowerSource
    fiducial: dict
    z_fine: np.ndarray
    node_step: int
    node_weights: np.ndarray
    ell_nodes: np.ndarray
    lnk0: float
    dlnk: float
    nk: int
    z_power: np.ndarray
    z_interp: np.ndarray
    theta_edges: np.ndarray
    M_plus: np.ndarray = field(repr=False)
    M_minus: np.ndarray = field(repr=False)
    lnp_fixed: np.ndarray | None = field(default=None, repr=False)
    conventions: Conventions = field(default_factory=Conventions)

    # -- layout -------------------------------------------------------------
    @property
    def nbins(self) -> int:
        return self.survey.nbins

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return self.survey.pairs

    @property
    def ntheta(self) -> int:
        return self.theta_edges.size - 1

    @property
    def theta(self) -> np.ndarray:
        """Pair-weighted mean angle of each bin [arcmin]."""
        return theta_centres(self.theta_edges)

    @property
    def z_nodes(self) -> np.ndarray:
        return self.z_fine[self.node_step::self.node_step]

    @property
    def k(self) -> np.ndarray:
        return np.exp(self.lnk0 + self.dlnk * np.arange(self.nk))

    @property
    def size(self) -> int:
        """Length of the xi+- data vector."""
        return 2 * len(self.pairs) * self.ntheta

    def parameter_names(self) -> list[str]:
        return list(Cosmology.names()) + nuisance_names(self.nbins)

    def describe(self) -> dict:
        """Settings for provenance records."""
        return {"survey": self.survey.describe(), "power": self.power.describe(),
                "theta_edges_arcmin": self.theta_edges.tolist(), "z_fine_points": int(self.z_fine.size),
                "limber_nodes": int(self.z_nodes.size), "ell_nodes": int(self.ell_nodes.size),
                "ell_max": float(self.ell_nodes[-1]), "k_per_decade": float(np.log(10) / self.dlnk),
                "z_power": int(self.z_power.size), "conventions": self.conventions.to_dict()}

    # -- parameters ---------------------------------------------------------
    def split(self, params: Mapping[str, float], strict: bool = True) -> tuple[Cosmology, Nuisance]:
        """Cosmology and nuisances from ``params``; missing ones take the fiducial
        values.  Unknown names (when ``strict``) and non-numbers raise
        LikelihoodError; values outside the physical ranges (Cosmology's, |dz| <= 0.5,
        m > -1) raise a plain ValueError naming the parameter."""
        if strict:
            unknown = sorted(set(params) - set(self.parameter_names()))
            if unknown:
                raise LikelihoodError(f"unknown shear parameter(s) {', '.join(unknown)}; known: "
                                      f"{', '.join(self.parameter_names())}")
        merged = {**self.fiducial, **{k: v for k, v in params.items() if k in self.fiducial}}
        for name in self.fiducial:
            value = merged[name]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not np.isfinite(value):
                raise LikelihoodError(f"shear parameter {name}: expected a finite number, got {value!r}")
        cosmo = Cosmology.from_dict({n: merged[n] for n in Cosmology.names()})
        nb = self.nbins
        nuis = Nuisance(dz=np.array([merged[f"dz_{i + 1}"] for i in range(nb)], dtype=float),
                        m=np.array([merged[f"m_{i + 1}"] for i in range(nb)], dtype=float),
                        A_IA=float(merged["A_IA"]), eta_IA=float(merged["eta_IA"]))
        if np.any(np.abs(nuis.dz) > 0.5):
            raise ValueError(f"shear parameters dz_i must lie in [-0.5, 0.5], got {nuis.dz.tolist()}")
        if np.any(nuis.m <= -1.0):
            raise ValueError(f"shear parameters m_i must be > -1, got {nuis.m.tolist()}")
        return cosmo, nuis

    # -- theory -------------------------------------------------------------
    def shifted_nz(self, dz: np.ndarray) -> np.ndarray:
        """n_i(z - dz_i) on the fine grid, renormalised there (nbins, nfine) [per unit z]."""
        s = self.survey
        nz = np.stack([np.interp(self.z_fine - dz[i], s.z, s.nz[i], left=0.0, right=0.0) for i in range(s.nbins)])
        norm = np.trapezoid(nz, self.z_fine, axis=1)
        if np.any(norm <= 0):
            raise ValueError(f"photo-z shifts {dz.tolist()} move a bin's n(z) out of the grid [0, {self.z_fine[-1]:g}]")
        return nz / norm[:, None]

    def kernels(self, cosmo: Cosmology, nuis: Nuisance) -> dict:
        """Radial weights at the Limber nodes: z, chi [Mpc/h], the kernels g_i = q_i + I_i
        (nbins, nnodes) [h/Mpc], and the Simpson measure dchi / chi^2 [h/Mpc]."""
        bg = background(cosmo)
        E = bg.E(self.z_fine)
        return self.kernels_from(E, comoving_distance_grid(self.z_fine, E), bg.Omega_m, bg.growth, nuis)

    def kernels_from(self, E: np.ndarray, chi: np.ndarray, Omega_m: float, growth, nuis: Nuisance) -> dict:
        """:meth:`kernels` from a background given on the fine grid ``z_fine``: E = H/H0 and
        chi [Mpc/h] (nfine,), Omega_m (total matter today) and ``growth(z) -> D(z)``, D(0) = 1,
        called at the Limber nodes only when A_IA != 0 (a theory code's background, e.g. Cobaya's)."""
        z = self.z_fine
        nz = self.shifted_nz(nuis.dz)
        dz = np.diff(z)
        inv_chi = np.zeros_like(chi)
        inv_chi[1:] = 1.0 / chi[1:]
        # Reverse cumulative trapezoid sums: S0 = int_z^zmax n, S1 = int_z^zmax n / chi.
        s0 = np.zeros_like(nz)
        s1 = np.zeros_like(nz)
        s0[:, :-1] = np.cumsum((0.5 * (nz[:, 1:] + nz[:, :-1]) * dz)[:, ::-1], axis=1)[:, ::-1]
        nzc = nz * inv_chi
        s1[:, :-1] = np.cumsum((0.5 * (nzc[:, 1:] + nzc[:, :-1]) * dz)[:, ::-1], axis=1)[:, ::-1]
        sl = slice(self.node_step, None, self.node_step)
        zn, chin, En = z[sl], chi[sl], E[sl]
        q = 1.5 * Omega_m / HUBBLE_DISTANCE**2 * (1.0 + zn) * chin * (s0[:, sl] - chin * s1[:, sl])
        g = q
        if nuis.A_IA != 0.0:
            amp = -nuis.A_IA * self.conventions.c1_rho_crit * Omega_m / growth(zn) * ((1.0 + zn) / (1.0 + IA_PIVOT_Z)) ** nuis.eta_IA
            g = q + amp * nz[:, sl] * En / HUBBLE_DISTANCE
        measure = self.node_weights * HUBBLE_DISTANCE / En / chin**2
        return {"z": zn, "chi": chin, "g": g, "measure": measure, "nz": nz}

    def log_pk_nodes(self, cosmo: Cosmology) -> np.ndarray:
        """ln P_nl at (Limber nodes, k grid), (nnodes, nk)."""
        if self.lnp_fixed is not None:
            return self.lnp_fixed
        lnp = self.power.log_pk(cosmo, self.k, self.z_power)
        return self.z_interp @ lnp

    def _cl_tilde(self, cosmo, nuis, ell, lnp=None, kern=None) -> np.ndarray:
        """Limber C_ell without T(ell) and without shear bias, (npairs, nell)."""
        kern = self.kernels(cosmo, nuis) if kern is None else kern
        lnp = self.log_pk_nodes(cosmo) if lnp is None else lnp
        P = _power_at(lnp, self.lnk0, self.dlnk, np.log(kern["chi"]), np.log(np.asarray(ell, dtype=float) + 0.5))
        g, w = kern["g"], kern["measure"]
        i, j = np.array(self.pairs).T
        return (g[i] * g[j] * w) @ P

    def _bias(self, nuis: Nuisance) -> np.ndarray:
        i, j = np.array(self.pairs).T
        return (1.0 + nuis.m[i]) * (1.0 + nuis.m[j])

    def cl(self, params: Mapping[str, float], ell) -> np.ndarray:
        """C_ell^{ij} (npairs, nell) at multipoles ``ell`` (>= 2), shear bias included."""
        cosmo, nuis = self.split(params)
        ell = np.atleast_1d(np.asarray(ell, dtype=float))
        if np.any(ell < 2):
            raise ValueError("shear C_ell: multipoles must be >= 2")
        factor = spin2_limber_factor(ell) if self.conventions.limber_prefactor == "spin2" else np.ones_like(ell)
        return self._cl_tilde(cosmo, nuis, ell) * factor * self._bias(nuis)[:, None]

    def xi(self, params: Mapping[str, float], strict: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Bin-averaged xi+ and xi-, each (npairs, ntheta), shear bias included."""
        cosmo, nuis = self.split(params, strict=strict)
        return self.xi_from(cosmo, nuis)

    def xi_from(self, cosmo: Cosmology, nuis: Nuisance, lnp: np.ndarray | None = None, kern: dict | None = None):
        """xi+, xi- (npairs, ntheta); ``lnp`` ln P at (nodes, k) and ``kern`` (:meth:`kernels_from`)
        replace the power source and the background of ``cosmo`` when given."""
        f = self._cl_tilde(cosmo, nuis, self.ell_nodes, lnp, kern) * (self.ell_nodes**2 * self._bias(nuis)[:, None])
        return f @ self.M_plus.T, f @ self.M_minus.T

    def data_vector(self, params: Mapping[str, float], strict: bool = True) -> np.ndarray:
        """xi+ of every pair (theta fastest), then xi- likewise: (2 npairs ntheta,)."""
        xp, xm = self.xi(params, strict=strict)
        return np.concatenate([xp.ravel(), xm.ravel()])


def default_fiducial(nbins: int) -> dict:
    """EE2 reference cosmology, no photo-z shift or shear bias, A_IA = 0.5, eta_IA = 0."""
    out = dict(Cosmology().to_dict())
    out.update({n: 0.0 for n in nuisance_names(nbins)})
    out["A_IA"] = 0.5
    return out


def shear_model(survey: Survey, power: PowerSource, theta_edges_arcmin: np.ndarray | None = None,
                fiducial: Mapping[str, float] | None = None, n_nodes: int = 128, node_step: int = 4,
                z_stretch: float = 0.1, ell_max: float = 1.0e5, ell_per_decade: int = 16, k_per_decade: int = 40,
                nz_power: int = 41, conventions: Conventions | None = None,
                curved_lmax: int = COSMOLIKE_LMAX) -> ShearModel:
    """Build a :class:`ShearModel`.

    theta_edges_arcmin  bin edges [arcmin]; default 26 log bins over 2.5-900
    fiducial            values of parameters not given at evaluation (and of the
                        fixed power table); default :func:`default_fiducial`
    n_nodes, node_step  Limber nodes (Simpson, rounded up to even) and the fine grid of
                        n(z) and the efficiencies, node_step points per node
    z_stretch           grids are uniform in ln(z + z_stretch): dense at low z, where
                        k = ell/chi sweeps fast through the BAO wiggles of P(k)
    ell_max, ell_per_decade   spline nodes of l^2 C_ell, from l = 1
    k_per_decade        resolution of the ln P table in ln k
    nz_power            redshifts at which the power source is evaluated (uniform in z
                        over the n(z) range; cubic in z onto the Limber nodes)
    conventions         :class:`cosmopipe.likelihoods.shear.conventions.Conventions` (default: the
                        project's); the model uses xi_method, xi_weights, limber_prefactor and
                        nla_c1rho, the survey and power source carry the others
    curved_lmax         the curved-sky sum runs over 2 <= l < curved_lmax (<= ell_max)
    """
    conventions = Conventions() if conventions is None else conventions
    edges = theta_edges() if theta_edges_arcmin is None else np.asarray(theta_edges_arcmin, dtype=float)
    fid = default_fiducial(survey.nbins)
    if fiducial:
        unknown = sorted(set(fiducial) - set(fid))
        if unknown:
            raise LikelihoodError(f"fiducial: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(fid)}")
        fid.update({k: float(v) for k, v in fiducial.items()})
    z_max = float(survey.z[-1])
    n_int = int(n_nodes) + int(n_nodes) % 2
    u = np.linspace(np.log(z_stretch), np.log(z_max + z_stretch), n_int * node_step + 1)
    z_fine = np.exp(u) - z_stretch
    z_fine[0], z_fine[-1] = 0.0, z_max  # exact ends (exp/log round-off)
    z_nodes = z_fine[node_step::node_step]
    weights = _simpson_weights(n_int, u[node_step] - u[0])[1:] * (z_nodes + z_stretch)
    n_ell = int(round(np.log10(ell_max) * ell_per_decade)) + 1
    ell_nodes = np.geomspace(1.0, ell_max, n_ell)
    # k grid: from (1 + 1/2)/chi(z_max) to (ell_max + 1/2)/chi(first node), with margin
    cosmo = Cosmology.from_dict({n: fid[n] for n in Cosmology.names()})
    chi = background(cosmo).comoving_distance(np.array([z_nodes[0], z_fine[-1]]))
    lnk0 = np.floor(np.log10(0.3 * 1.5 / chi[1]) * k_per_decade) / k_per_decade * np.log(10)
    lnk1 = np.log(3.0 * (ell_max + 0.5) / chi[0])
    dlnk = np.log(10) / k_per_decade
    nk = int(np.ceil((lnk1 - lnk0) / dlnk)) + 1
    z_power = np.linspace(0.0, z_fine[-1], nz_power)
    z_interp = CubicSpline(z_power, np.eye(nz_power), axis=0)(z_nodes)
    if conventions.xi_method == "curved":
        if curved_lmax > ell_max + 1:
            raise ValueError(f"curved_lmax = {curved_lmax} exceeds ell_max + 1 = {ell_max + 1:g}")
        M_plus, M_minus = curved_transform_matrices(edges, ell_nodes, curved_lmax, conventions.xi_weights,
                                                    conventions.limber_prefactor)
    else:
        M_plus, M_minus = xi_transform_matrices(edges, ell_nodes, spin2=conventions.limber_prefactor == "spin2")
    model = ShearModel(survey=survey, power=power, fiducial=fid, z_fine=z_fine, node_step=node_step,
                       node_weights=weights, ell_nodes=ell_nodes, lnk0=float(lnk0), dlnk=float(dlnk), nk=nk,
                       z_power=z_power, z_interp=z_interp, theta_edges=edges, M_plus=M_plus, M_minus=M_minus,
                       conventions=conventions)
    if not power.depends_on_cosmology:
        object.__setattr__(model, "lnp_fixed", np.ascontiguousarray(power.log_pk(cosmo, model.k, z_nodes)))
    return model
