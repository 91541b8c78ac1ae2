"""The parts a hybrid emulator carries besides its COLA emulator, as the train stage
builds them: the EE2 surrogate on the LCDM slice (emulators.ee2_lcdm) and HMcode's
response above the COLA k_max (emulators.hmcode_tail).  Each is reused from an
existing hybrid file made with the same settings (``--resume``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosmopipe.emulators.loader import load
from cosmopipe.emulators.ee2_lcdm import lcdm_space, train_ee2_lcdm
from cosmopipe.emulators.hmcode_tail import train_hmcode_tail
from cosmopipe.emulators.training import FitSettings

__all__ = ["SurrogateSettings", "TailSettings", "ee2_surrogate", "hmcode_tail",
           "SURROGATE_PCA_VARIANCE"]


# 21 components for EE2's boost: truncation error p95 0.014 % (13 components at 1 - 1e-6: 0.1 %)
SURROGATE_PCA_VARIANCE = 1.0 - 1e-8


@dataclass(frozen=True)
class SurrogateSettings:
    """The EE2 surrogate on the LCDM slice (emulators.ee2_lcdm).  31 redshifts in
    [0, 3] (dz = 0.1): with 16 the spline in z alone costs 0.1-0.2 % between nodes."""

    n: int = 3000
    seed: int = 0
    nz: int = 31
    n_test: int = 300
    fit: FitSettings = FitSettings(pca_variance=SURROGATE_PCA_VARIANCE)

    def to_dict(self) -> dict:
        return {"n": self.n, "seed": self.seed, "nz": self.nz, "n_test": self.n_test, "fit": self.fit.to_dict()}


@dataclass(frozen=True)
class TailSettings:
    """HMcode's response above the COLA k_max (emulators.hmcode_tail)."""

    n: int = 250
    n_test: int = 50
    seed: int = 0
    nz: int = 16
    nk: int = 30
    fit: FitSettings = FitSettings(pca_variance=SURROGATE_PCA_VARIANCE)

    def to_dict(self) -> dict:
        return {"n": self.n, "n_test": self.n_test, "seed": self.seed, "nz": self.nz, "nk": self.nk,
                "fit": self.fit.to_dict()}


def _reusable(hybrid_path: Path, part: str, ctx, settings_key: str, settings: dict, space, z: np.ndarray):
    """``part`` of the existing hybrid file when ``--resume`` and it was made with the same
    settings over the same space and redshifts; else None."""
    if not (ctx.resume and hybrid_path.is_file()):
        return None
    try:
        old = getattr(load(hybrid_path), part)
    except (OSError, ValueError):
        return None
    if (old is None or old.info.get(settings_key) != settings or old.space != space
            or old.model.z.shape != z.shape or not np.allclose(old.model.z, z)):
        return None
    return old


def ee2_surrogate(su: SurrogateSettings, emu, hybrid_path: Path, ctx):
    """The EE2 surrogate for ``emu``'s LCDM slice: reused from an existing hybrid file
    made with the same settings, else trained (minutes)."""
    space = lcdm_space(emu.space)
    z_max = max(emu.z_range[1], emu.linear.z_range[1] if emu.linear is not None else 0.0)
    z = np.linspace(0.0, z_max, su.nz)
    old = _reusable(hybrid_path, "ee2_lcdm", ctx, "surrogate_settings", su.to_dict(), space, z)
    if old is not None:
        ctx.log.info("train: reusing the EE2 surrogate of %s (same settings)", hybrid_path)
        return old
    ctx.log.info("train: fitting the EE2 surrogate on the LCDM slice (%d cosmologies, %d z up to %g)",
                 su.n, su.nz, z_max)
    client = ctx.client() if su.n >= 1000 else None
    sur = train_ee2_lcdm(space, n=su.n, z=z, seed=su.seed, settings=su.fit, n_test=su.n_test, client=client)
    sur.info["surrogate_settings"] = su.to_dict()
    v = sur.info["validation"]
    if v:
        ctx.log.info("train: EE2 surrogate in %.0f s; held-out max |dB/B| p95 %.3f %% (k <= 1), %.3f %% (k > 1)",
                     sur.info["training_seconds"], 100 * v["k_le_1"]["p95"], 100 * v["k_1_to_10"]["p95"])
    return sur


def hmcode_tail(tl: TailSettings, emu, hybrid_path: Path, ctx):
    """HMcode's response shape above ``emu``'s k_max: reused from an existing hybrid file
    made with the same settings over the same box, else two CAMB runs per cosmology."""
    k_c = float(emu.k_range[1])
    z = np.linspace(0.0, float(emu.z_range[1]), tl.nz)
    old = _reusable(hybrid_path, "hmcode_tail", ctx, "tail_settings", tl.to_dict(), emu.space, z)
    if old is not None and old.info.get("k_c") == k_c:
        ctx.log.info("train: reusing the HMcode tail of %s (same settings)", hybrid_path)
        return old
    ctx.log.info("train: HMcode-2020 response above k = %.3g h/Mpc: CAMB at %d + %d cosmology pairs", k_c,
                 tl.n, tl.n_test)
    tail = train_hmcode_tail(emu.space, k_c, n=tl.n, z=z, seed=tl.seed, settings=tl.fit, n_test=tl.n_test,
                             nk=tl.nk, client=ctx.client())
    tail.info["tail_settings"] = tl.to_dict()
    v = tail.info["validation"]
    if v:
        ctx.log.info("train: HMcode tail in %.0f s; held-out max |dR/R| p50 %.3f %%, p95 %.3f %% (|ln R_HM| up to "
                     "%.1f %% above k_max)", tail.info["training_seconds"], 100 * v["max_abs_dR_over_R"]["p50"],
                     100 * v["max_abs_dR_over_R"]["p95"], 100 * v["size_of_T"])
    return tail
