"""Conventions on which shear codes differ, as named options with presets.

Each is a documented choice rather than a bug on either side; what each is
worth in Delta chi^2 on the LSST-Y1 set-up is in docs/lsst_y1_conventions.md.

===================  ===================  ==========================================================
key                  project default      alternatives (the ``cosmolike`` preset's value first)
===================  ===================  ==========================================================
xi_method            curved               flat: flat-sky Hankel transform (J0/J4, as CCL)
xi_weights           exact                cosmolike: Stebbins weights with the extra
                                          (l-1)(l+2)/[l(l+1)] of CosmoLike (likelihoods.shear.curved)
nz_rows              centres              lower_edges: each n(z) row is a histogram bin whose lower
                                          edge is the z column, i.e. z -> z + dz/2 (CosmoLike)
nla_c1rho            0.0134               cosmolike: C1 rho_crit = 0.01389, the value Cocoa's LSST-Y1
                                          interface hard-codes (5e-14 h^-2 Msun Mpc^3 x rho_crit is
                                          0.013877; 0.0134 is the rounding of Bridle & King 2007)
neutrinos            three_degenerate     one_massive: CAMB with one massive eigenstate (Cocoa's
                                          LSST-Y1 choice) instead of three of equal mass
limber_prefactor     spin2                none: C_ell^EE is the bare Limber integral, without the
                                          spin-2 factor (l-1)l(l+1)(l+2)/(l+1/2)^4; CosmoLike's path
                                          for IA models 5 and 6 (TATT, the IA_model = 6 of Cocoa's
                                          LSST-Y1 datasets), whose C_ell^EE carries no l prefactor
boost_extrapolation  constant             boost_linear_log_k: B itself continued linearly in ln k
                                          beyond the emulated k range (EE2 above 9.4 h/Mpc), as Cocoa
                                          does since 2023-09-26 (its EE2 data vectors);
                                          linear_log_k: ln B continued linearly in ln k instead
                                          (Cocoa's vectors before, the *_OLD_EXTRAP ones)
cola_response        auto                 a hybrid's COLA response above the COLA k_max: 'hmcode'
                                          continues it with HMcode-2020's shape (the file's
                                          hmcode_tail; emulators.hmcode_tail), 'constant' holds it
                                          at its edge value, 'unity' sets it to 1; 'auto' is hmcode
                                          when the file has a tail, else constant
===================  ===================  ==========================================================
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping

__all__ = ["Conventions", "PRESETS", "OPTIONS", "conventions_from", "C1_RHO_CRIT_VALUES"]

C1_RHO_CRIT_VALUES = {"0.0134": 0.0134, "cosmolike": 0.01389}

OPTIONS: dict[str, tuple[str, ...]] = {
    "xi_method": ("curved", "flat"),
    "xi_weights": ("exact", "cosmolike"),
    "nz_rows": ("centres", "lower_edges"),
    "nla_c1rho": ("0.0134", "cosmolike"),
    "neutrinos": ("three_degenerate", "one_massive"),
    "limber_prefactor": ("spin2", "none"),
    "boost_extrapolation": ("constant", "boost_linear_log_k", "linear_log_k"),
    "cola_response": ("auto", "hmcode", "constant", "unity"),
}


@dataclass(frozen=True)
class Conventions:
    """One value per key of :data:`OPTIONS` (module doc)."""

    xi_method: str = "curved"
    xi_weights: str = "exact"
    nz_rows: str = "centres"
    nla_c1rho: str = "0.0134"
    neutrinos: str = "three_degenerate"
    limber_prefactor: str = "spin2"
    boost_extrapolation: str = "constant"
    cola_response: str = "auto"

    def __post_init__(self):
        for key, allowed in OPTIONS.items():
            value = getattr(self, key)
            if value not in allowed:
                raise ValueError(f"conventions.{key}: must be one of {', '.join(allowed)}, got {value!r}")

    @property
    def c1_rho_crit(self) -> float:
        """C1 rho_crit of the NLA amplitude (dimensionless)."""
        return C1_RHO_CRIT_VALUES[self.nla_c1rho]

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Conventions] = {
    "project": Conventions(),
    "cosmolike": Conventions(xi_weights="cosmolike", nz_rows="lower_edges", nla_c1rho="cosmolike",
                             limber_prefactor="none", neutrinos="one_massive",
                             boost_extrapolation="boost_linear_log_k"),
}


def conventions_from(preset: str = "project", overrides: Mapping[str, str] | None = None) -> Conventions:
    """The preset's conventions with ``overrides`` applied; unknown preset, key or
    value raise ValueError naming it and the allowed ones."""
    if preset not in PRESETS:
        raise ValueError(f"preset: must be one of {', '.join(PRESETS)}, got {preset!r}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(OPTIONS))
    if unknown:
        raise ValueError(f"conventions: unknown key {unknown[0]!r}; allowed: {', '.join(OPTIONS)}")
    return replace(PRESETS[preset], **{k: str(v) for k, v in overrides.items()})
