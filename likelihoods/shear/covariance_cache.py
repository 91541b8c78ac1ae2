"""The analytic xi+- covariance of a set of terms, computed once per analysis and kept on disk.

    C = C_gaussian [+ C_SSC] [+ C_cNG]

(:mod:`cosmopipe.likelihoods.shear.covariance` for the Gaussian term,
:mod:`cosmopipe.likelihoods.shear.covariance_ng` for the others).  The
non-Gaussian terms cost a minute or two of CPU, so the result is stored in a
small HDF5 file named after the sha256 of everything it depends on:

* the terms and the numerical settings of the non-Gaussian ones;
* the parameter point (every cosmological and nuisance parameter);
* the survey (its description and the bytes of its n(z) table), the angular bins
  and the conventions;
* the shear spectra C_l at the model's spline nodes at that point, which stand
  for the power source (a table or an emulator is not described by its name).

Where: the ``cache`` directory of the workflow, else ``$COSMOPIPE_CACHE``, else
``<run_dir>/cache``; with none of these the result is kept in memory only.
A later analysis with the same key reads the file instead of recomputing.

File layout (format "cosmopipe-shear-covariance", format_version 1)::

    /covariance      (n, n)  the total, xi+ (pair, theta) then xi- (pair, theta)
    /<term>          (n, n)  each term (gaussian, ssc, cng) as computed
    /theta_edges     (nt+1,) arcmin
    root attrs: format, format_version, key (sha256 hex), settings (JSON of what the key
                hashes), terms (JSON), code_version, created, complete

Every array and attribute is sealed with :mod:`cosmopipe.integrity`: a damaged
file (checksum mismatch, unreadable HDF5, an interrupted write, a total that is
not the sum of its terms) is reported in the log and recomputed, never used.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cosmopipe._version import __version__ as cosmopipe_version
from cosmopipe.h5format import attr_value, open_file, read_header
from cosmopipe.integrity import CorruptFileError, reading, seal, text, verify
from cosmopipe.sims.io import atomic_hdf5

from .covariance import check_covariance, gaussian_covariance
from .covariance_ng import NON_GAUSSIAN_TERMS, TERMS, NGSettings, non_gaussian_covariance

__all__ = ["FORMAT", "CACHE_ENV", "CovarianceResult", "check_terms", "covariance_key", "cache_directory",
           "shear_covariance", "read_cached", "write_cached"]

log = logging.getLogger("cosmopipe.shear")

FORMAT = "cosmopipe-shear-covariance"
FORMAT_VERSION = 1
CACHE_ENV = "COSMOPIPE_CACHE"
_HINT = "it is recomputed"
_MEMORY: dict[str, "CovarianceResult"] = {}   # key -> result, for runs without a cache directory
_MEMORY_SIZE = 4


@dataclass
class CovarianceResult:
    """Total covariance, its terms, the key, and where it lives (None: memory only)."""

    total: np.ndarray
    parts: dict[str, np.ndarray]
    key: str
    path: Path | None = None
    from_cache: bool = False
    settings: dict = field(default_factory=dict)

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.parts)


def check_terms(terms: Sequence[str]) -> tuple[str, ...]:
    """``terms`` in canonical order; ValueError names the allowed values.  The Gaussian
    term is required: SSC and cNG alone are not positive definite."""
    terms = list(terms)
    unknown = [t for t in terms if t not in TERMS]
    if unknown:
        raise ValueError(f"unknown covariance term {unknown[0]!r}; allowed: {', '.join(TERMS)}")
    if "gaussian" not in terms:
        raise ValueError(f"must include gaussian (the non-Gaussian terms alone are not positive definite); "
                         f"allowed: {', '.join(TERMS)}")
    return tuple(t for t in TERMS if t in terms)


def cache_directory(configured: str | os.PathLike | None, run_dir: str | os.PathLike | None) -> Path | None:
    """The cache directory: ``configured``, else $COSMOPIPE_CACHE, else <run_dir>/cache, else None."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(run_dir) / "cache" if run_dir else None


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def covariance_key(model, params: Mapping[str, float], terms: Sequence[str],
                   settings: NGSettings | None = None) -> tuple[str, dict]:
    """(sha256 hex, the settings it hashes) of the covariance of ``model`` at ``params`` (module doc)."""
    terms = check_terms(terms)
    cosmo, nuis = model.split(params)
    point = {**model.fiducial, **{k: v for k, v in params.items() if k in model.fiducial}}
    survey = model.survey
    described = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "terms": list(terms),
        "non_gaussian": (settings or NGSettings()).to_dict() if set(terms) & set(NON_GAUSSIAN_TERMS) else None,
        "point": {k: float(v) for k, v in sorted(point.items())},
        "survey": survey.describe(), "theta_edges_arcmin": model.theta_edges.tolist(),
        "conventions": model.conventions.to_dict(), "power": model.power.describe(),
    }
    h = hashlib.sha256(json.dumps(described, sort_keys=True, default=_json_default).encode())
    for array in (survey.z, survey.nz, survey.n_eff):
        h.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    # the spectra at the point stand for the power source (a table is not described by its name)
    f = model._cl_tilde(cosmo, nuis, model.ell_nodes) * model._bias(nuis)[:, None]
    h.update(np.ascontiguousarray(f, dtype="<f8").tobytes())
    return h.hexdigest(), described


def _file_name(key: str) -> str:
    return f"shear_covariance_{key[:16]}.h5"


def write_cached(path: str | os.PathLike, result: CovarianceResult, theta_edges: np.ndarray) -> Path:
    """Write ``result`` atomically and sealed (module doc); returns the path."""
    path = Path(path)
    with atomic_hdf5(path) as f:
        f.create_dataset("covariance", data=np.asarray(result.total, dtype=float))
        for term, part in result.parts.items():
            f.create_dataset(term, data=np.asarray(part, dtype=float))
        f.create_dataset("theta_edges", data=np.asarray(theta_edges, dtype=float)).attrs["units"] = text("arcmin")
        f.attrs["format"] = text(FORMAT)
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["key"] = text(result.key)
        f.attrs["settings"] = text(json.dumps(result.settings, sort_keys=True, default=_json_default))
        f.attrs["terms"] = text(json.dumps(list(result.parts)))
        f.attrs["code_version"] = text(cosmopipe_version)
        f.attrs["created"] = text(datetime.now(timezone.utc).isoformat(timespec="seconds"))
        seal(f)
        f.attrs["complete"] = True
    return path


def read_cached(path: str | os.PathLike, key: str, size: int) -> CovarianceResult | None:
    """The cached result at ``path`` if it holds ``key``; None when it holds another key.
    Raises :class:`cosmopipe.integrity.CorruptFileError` for anything that cannot be trusted."""
    path = Path(path)
    f = open_file(path, "shear covariance cache")
    with f, reading(path, "shear covariance"):
        fmt, version, complete = read_header(f.attrs)
        if fmt != FORMAT or version != FORMAT_VERSION:
            raise CorruptFileError(path, f"not a {FORMAT} file of version {FORMAT_VERSION} "
                                         f"(format {fmt!r}, version {version!r}); {_HINT}")
        if complete is not True:
            raise CorruptFileError(path, f"incomplete file (the write was interrupted); {_HINT}")
        arrays = verify(f, path, _HINT)
        if attr_value(f.attrs["key"]) != key:
            return None
        terms = json.loads(attr_value(f.attrs["terms"]))
        settings = json.loads(attr_value(f.attrs["settings"]))
    missing = [name for name in ("covariance", *terms) if name not in arrays]
    if missing:
        raise CorruptFileError(path, f"lacks the array(s) {', '.join(missing)}; {_HINT}")
    parts = {t: arrays[t] for t in terms}
    total = arrays["covariance"]
    if total.shape != (size, size) or any(p.shape != (size, size) for p in parts.values()):
        raise CorruptFileError(path, f"arrays are not {size} x {size}; {_HINT}")
    # the seal covers the bytes; this covers a file written from inconsistent pieces
    if not np.allclose(total, sum(parts.values()), rtol=1e-12, atol=0.0):
        raise CorruptFileError(path, f"the total covariance is not the sum of its terms; {_HINT}")
    return CovarianceResult(total=total, parts=parts, key=key, path=path, from_cache=True, settings=settings)


def _compute(model, params, terms, settings) -> dict[str, np.ndarray]:
    parts = {"gaussian": gaussian_covariance(model, params)}
    ng = [t for t in terms if t in NON_GAUSSIAN_TERMS]
    if ng:
        parts.update(non_gaussian_covariance(model, params, ng, settings))
    return {t: parts[t] for t in terms}


def shear_covariance(model, params: Mapping[str, float] | None = None, terms: Sequence[str] = ("gaussian",),
                     settings: NGSettings | None = None, cache_dir: str | os.PathLike | None = None,
                     use_cache: bool = True) -> CovarianceResult:
    """Covariance (size x size) of ``model``'s xi+- data vector at ``params`` (default: the
    model's fiducial), the sum of ``terms`` (gaussian, ssc, cng; gaussian required).

    Read from ``cache_dir`` (or the in-memory cache) when the key matches; otherwise
    computed and, with a ``cache_dir``, written there.  ``use_cache`` False always
    computes (and stores nothing).  A damaged cache file is logged and recomputed.
    The Gaussian term alone is cheap and never cached (its result has key '')."""
    params = dict(params or {})
    terms = check_terms(terms)
    settings = settings or NGSettings()
    if terms == ("gaussian",):
        # a second of work: never cached, as before the non-Gaussian terms existed
        gauss = gaussian_covariance(model, params)
        return CovarianceResult(total=gauss, parts={"gaussian": gauss}, key="")
    key, described = covariance_key(model, params, terms, settings)
    path = Path(cache_dir) / _file_name(key) if (cache_dir and use_cache) else None
    if use_cache:
        if path is not None and path.exists():
            try:
                cached = read_cached(path, key, model.size)
            except CorruptFileError as exc:
                log.warning("shear covariance cache: %s", exc)
            else:
                if cached is not None:
                    log.info("shear covariance (%s) read from %s", " + ".join(terms), path)
                    return cached
                log.warning("shear covariance cache %s holds another key; it is recomputed", path)
        elif path is None and key in _MEMORY:
            return _MEMORY[key]
    parts = _compute(model, params, terms, settings)
    total = parts["gaussian"].copy()
    for term in terms[1:]:
        total = total + parts[term]
    total = 0.5 * (total + total.T)
    check_covariance(total, model.size, f"analytic covariance ({' + '.join(terms)})")
    result = CovarianceResult(total=total, parts=parts, key=key, path=None, settings=described)
    if use_cache:
        if path is not None:
            try:
                result.path = write_cached(path, result, model.theta_edges)
                log.info("shear covariance (%s) written to %s", " + ".join(terms), path)
            except OSError as exc:   # a read-only cache must not stop the analysis
                log.warning("shear covariance: cannot write the cache %s (%s); continuing without it", path, exc)
        if len(_MEMORY) >= _MEMORY_SIZE:
            _MEMORY.pop(next(iter(_MEMORY)))
        _MEMORY[key] = result
    return result

