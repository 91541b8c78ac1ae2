"""Linear matter power spectrum from CAMB.

Wavenumbers are in h/Mpc and spectra in (Mpc/h)^3 throughout.  Two fields
are available: ``cb`` (cold dark matter + baryons, what the N-body particles
trace) and ``tot`` (all matter, massive neutrinos included).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .cosmology import N_EFF, T_CMB, Cosmology

__all__ = ["camb_params", "LinearPower", "linear_power"]

_VARS = {"cb": "delta_nonu", "tot": "delta_tot"}
# How the sum of neutrino masses is split among CAMB's eigenstates.  Codes
# differ: Cocoa's LSST-Y1 set-up uses one massive state (the Planck 2018
# convention), the simulations three of equal mass.
NEUTRINO_STATES = {"three_degenerate": 3, "one_massive": 1}


def camb_params(cosmo: Cosmology, redshifts: Sequence[float] = (0.0,), kmax: float = 20.0,
                neutrinos: str = "three_degenerate"):
    """CAMBparams for ``cosmo``: massive neutrinos as ``neutrinos`` (a key of
    NEUTRINO_STATES; default three degenerate), PPF dark
    energy (so w may cross -1), matter power up to ``kmax`` [h/Mpc] at
    ``redshifts``.  Omega_c is chosen so that Omega_c + Omega_b + Omega_nu
    equals Omega_m with CAMB's own neutrino density."""
    import camb

    if neutrinos not in NEUTRINO_STATES:
        raise ValueError(f"neutrinos: must be one of {', '.join(NEUTRINO_STATES)}, got {neutrinos!r}")
    n_massive = NEUTRINO_STATES[neutrinos] if cosmo.m_nu > 0 else 0
    h = cosmo.h
    pars = camb.CAMBparams()
    pars.set_cosmology(H0=100.0 * h, ombh2=cosmo.Omega_b * h**2, omch2=cosmo.Omega_c * h**2,
                       mnu=cosmo.m_nu, nnu=N_EFF, num_massive_neutrinos=n_massive,
                       neutrino_hierarchy="degenerate", TCMB=T_CMB, omk=0.0)
    # CAMB's neutrino density differs slightly from 93.14 eV; keep Omega_m exact.
    omch2 = cosmo.Omega_m * h**2 - pars.ombh2 - pars.omnuh2
    pars.set_cosmology(H0=100.0 * h, ombh2=cosmo.Omega_b * h**2, omch2=omch2,
                       mnu=cosmo.m_nu, nnu=N_EFF, num_massive_neutrinos=n_massive,
                       neutrino_hierarchy="degenerate", TCMB=T_CMB, omk=0.0)
    pars.InitPower.set_params(As=cosmo.A_s, ns=cosmo.n_s, pivot_scalar=0.05)
    pars.set_dark_energy(w=cosmo.w0, wa=cosmo.wa, dark_energy_model="ppf")
    pars.WantCls = False
    pars.Want_CMB = False
    zs = sorted({float(z) for z in redshifts}, reverse=True)
    # CAMB's table stops short of the requested kmax; ask for margin.
    pars.set_matter_power(redshifts=zs, kmax=1.5 * kmax * h, nonlinear=False)
    return pars


@dataclass(frozen=True)
class LinearPower:
    """Linear P(k, z) tabulated by CAMB, interpolated in (z, ln k).

    k       (nk,) h/Mpc, log-spaced
    z       (nz,) increasing
    pk      {'cb': (nz, nk), 'tot': (nz, nk)} in (Mpc/h)^3
    sigma8  rms of the total linear density in 8 Mpc/h spheres at z = 0
    sigma8_cb  the same for CDM + baryons
    """

    k: np.ndarray
    z: np.ndarray
    pk: dict
    sigma8: float
    sigma8_cb: float
    cosmology: Cosmology = field(repr=False, default=None)

    def __call__(self, k, z=0.0, species: str = "cb") -> np.ndarray:
        """P(k, z) [(Mpc/h)^3] for arrays k [h/Mpc] and scalar z.

        Beyond the tabulated k range the spectrum is continued as a power law
        fitted to the last decade (so deep-UV modes of a small box stay finite)."""
        from scipy.interpolate import CubicSpline

        if species not in self.pk:
            raise ValueError(f"species must be one of {sorted(self.pk)}, got {species!r}")
        z = float(z)
        if not self.z[0] - 1e-9 <= z <= self.z[-1] + 1e-9:
            raise ValueError(f"z={z:g} is outside the tabulated range [{self.z[0]:g}, {self.z[-1]:g}]")
        lnp = np.log(self.pk[species])
        if len(self.z) > 1:
            # ln P is nearly linear in ln(1+z) (D ~ a in matter domination).
            lnp_z = CubicSpline(np.log1p(self.z), lnp, axis=0)(np.log1p(z))
        else:
            lnp_z = lnp[0]
        lnk = np.log(self.k)
        k = np.asarray(k, dtype=float)
        out = np.zeros_like(k)
        pos = k > 0
        lk = np.log(k[pos])
        spline = CubicSpline(lnk, lnp_z)
        res = spline(np.clip(lk, lnk[0], lnk[-1]))
        # Local slopes at the table edges: ln P is curved, a long fit biases them.
        for edge, idx in ((0, slice(0, 3)), (-1, slice(-3, None))):
            slope = np.polyfit(lnk[idx], lnp_z[idx], 1)[0]
            beyond = lk < lnk[0] if edge == 0 else lk > lnk[-1]
            res[beyond] = lnp_z[edge] + slope * (lk[beyond] - lnk[edge])
        out[pos] = np.exp(res)
        return out


def linear_power(cosmo: Cosmology, redshifts: Sequence[float] = (0.0,), kmax: float = 20.0,
                 nk: int = 400) -> LinearPower:
    """Run CAMB for ``cosmo`` and tabulate the linear cb and total spectra at
    ``redshifts`` on ``nk`` log-spaced k from 1e-4 to ``kmax`` h/Mpc."""
    import camb

    zs = sorted({0.0, *[float(z) for z in redshifts]})
    pars = camb_params(cosmo, zs, kmax=kmax)
    results = camb.get_results(pars)
    pk = {}
    for name, var in _VARS.items():
        kh, z_out, p = results.get_linear_matter_power_spectrum(var1=var, var2=var, hubble_units=True, k_hunit=True)
        pk[name] = p
    k = kh
    keep = (k >= 1e-4) & (k <= kmax)
    sig = results.get_sigmaR(8.0, hubble_units=True, var1="delta_tot", var2="delta_tot", z_indices=None)
    sig_cb = results.get_sigmaR(8.0, hubble_units=True, var1="delta_nonu", var2="delta_nonu", z_indices=None)
    # get_sigmaR lists redshifts in CAMB's PK_redshifts order (decreasing z),
    # not in the increasing order of get_linear_matter_power_spectrum's z_out.
    z_sig = np.asarray(pars.Transfer.PK_redshifts[: pars.Transfer.PK_num_redshifts], dtype=float)
    iz0 = int(np.argmin(np.abs(z_sig)))
    z_arr = np.asarray(z_out, dtype=float)
    order = np.argsort(z_arr)
    return LinearPower(k=k[keep], z=z_arr[order], pk={n: v[order][:, keep] for n, v in pk.items()},
                       sigma8=float(np.ravel(sig)[iz0]), sigma8_cb=float(np.ravel(sig_cb)[iz0]),
                       cosmology=cosmo)
