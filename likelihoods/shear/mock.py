"""Mock xi+- data vectors and their files.

A mock is the theory data vector at a fiducial point (EuclidEmulator2 power
by default), optionally plus one Gaussian noise realisation drawn from the
covariance with a given seed (numpy's default_rng), so the same seed always
gives the same mock.

File layout (HDF5, format "cosmopipe-shear-data", format_version 1)::

    /data            (n,)      the data vector: xi+ (pair, theta), then xi- (pair, theta)
    /data_noiseless  (n,)      the theory vector the noise was added to
    /covariance      (n, n)    covariance used for the noise (and the likelihood)
    /theta_edges     (nt+1,)   arcmin
    /theta           (nt,)     pair-weighted bin centres [arcmin]
    /pairs           (np, 2)   tomographic bin pairs, 0-based
    /nz_z, /nz       (nz,), (nbins, nz)  source redshift distributions (normalised)
    root attrs: format, format_version, fiducial (JSON), noise_seed (-1: none),
                power, survey, model (JSON), code_version, created (UTC ISO), complete
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from cosmopipe._version import __version__ as cosmopipe_version
from cosmopipe.h5format import read_header
from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.sims.io import atomic_hdf5

__all__ = ["FORMAT", "add_noise", "write_data", "read_data"]

FORMAT = "cosmopipe-shear-data"
FORMAT_VERSION = 1


def add_noise(vector: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    """``vector`` plus one draw from N(0, cov) with numpy's default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return vector + np.linalg.cholesky(cov) @ rng.standard_normal(vector.size)


def write_data(path: str | Path, data: np.ndarray, noiseless: np.ndarray, cov: np.ndarray, model,
               fiducial: Mapping[str, float], noise_seed: int | None) -> Path:
    """Write a mock (or any data vector with its covariance) atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    survey = model.survey
    with atomic_hdf5(path) as f:
        f.create_dataset("data", data=np.asarray(data, dtype=float))
        f.create_dataset("data_noiseless", data=np.asarray(noiseless, dtype=float))
        f.create_dataset("covariance", data=np.asarray(cov, dtype=float))
        f.create_dataset("theta_edges", data=model.theta_edges).attrs["units"] = "arcmin"
        f.create_dataset("theta", data=model.theta).attrs["units"] = "arcmin"
        f.create_dataset("pairs", data=np.array(model.pairs, dtype=np.int64))
        f.create_dataset("nz_z", data=survey.z)
        f.create_dataset("nz", data=survey.nz)
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["fiducial"] = json.dumps({k: float(v) for k, v in fiducial.items()})
        f.attrs["noise_seed"] = -1 if noise_seed is None else int(noise_seed)
        f.attrs["power"] = json.dumps(model.power.describe())
        f.attrs["survey"] = json.dumps(survey.describe())
        f.attrs["model"] = json.dumps(model.describe())
        f.attrs["code_version"] = str(cosmopipe_version)
        f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        f.attrs["complete"] = True
    return path


def read_data(path: str | Path) -> dict:
    """Read a file written by :func:`write_data`: arrays and provenance as a dict.
    LikelihoodError for missing, foreign or incomplete files."""
    path = Path(path)
    if not path.is_file():
        raise LikelihoodError(f"shear data file {path}: not found")
    try:
        with h5py.File(path, "r") as f:
            fmt, _, complete = read_header(f.attrs)
            if fmt != FORMAT or not complete:
                raise LikelihoodError(f"shear data file {path}: not a complete {FORMAT} file")
            out = {name: f[name][()] for name in ("data", "data_noiseless", "covariance", "theta_edges", "theta",
                                                  "pairs", "nz_z", "nz")}
            seed = int(f.attrs["noise_seed"])
            out.update(fiducial=json.loads(f.attrs["fiducial"]), noise_seed=None if seed < 0 else seed,
                       power=json.loads(f.attrs["power"]), survey=json.loads(f.attrs["survey"]),
                       model=json.loads(f.attrs["model"]), code_version=str(f.attrs["code_version"]),
                       created=str(f.attrs["created"]))
    except OSError as exc:
        raise LikelihoodError(f"shear data file {path}: unreadable HDF5 ({exc})") from None
    return out
