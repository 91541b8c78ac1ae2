"""Chain files: emcee's HDF5 layout with per-step checksums (:class:`ChainBackend`), the
locks that keep two writers off one chain, and verified reads (:func:`read_chain`)."""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Sequence

import emcee
import json

import h5py
import numpy as np

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.integrity import CorruptFileError, attrs_digest, reading, row_checksums, text, warn_unverified

from .posterior import SamplingError

__all__ = ["ChainBackend", "read_chain", "read_chain_samples"]

# -- chain files ----------------------------------------------------------------------
# Chain integrity: emcee appends one step at a time, so instead of one digest per array
# every step carries its own (the first 8 bytes of a sha256 over that step's coords,
# log_prob and blobs), and the few values rewritten at each step (iteration, accepted,
# random state, shape) carry one digest, rewritten with them.
_STEP_SUMS = "cosmopipe_step_sha256"
_STATE_DIGEST = "cosmopipe_state_sha256"
_CHAIN_HINT = "move it away (or set sample.sampler.restart: true) and run the chain again"


def _state_digest(nwalkers: int, ndim: int, has_blobs: bool, iteration: int, accepted: np.ndarray,
                  random_state: Sequence | None) -> str:
    values = {"nwalkers": int(nwalkers), "ndim": int(ndim), "has_blobs": bool(has_blobs),
              "iteration": int(iteration), "accepted": np.ascontiguousarray(accepted, dtype="<f8")}
    for i, v in enumerate(random_state or ()):
        values[f"random_state_{i}"] = v.decode() if isinstance(v, bytes) else v
    return attrs_digest(values)


class ChainBackend(emcee.backends.HDFBackend):
    """emcee's HDF5 layout, written without HDF5 file locks (a reader, e.g. a plot of a
    running chain, cannot make the writer fail; concurrent runs on one chain directory are
    excluded by :func:`_lock_dir` instead), with checksums.

    Inside :meth:`writing` the file stays open and is flushed after every step, which
    costs a fraction of emcee's open-write-close per step and is as safe against a kill:
    either way what a completed step wrote has reached the operating system.

    Integrity: ``mcmc/cosmopipe_step_sha256`` (uint64 per step) checks each step's coords,
    log_prob and blobs; the attr ``cosmopipe_state_sha256`` checks iteration, accepted,
    random state and shape.  Every read (chains, log_prob, blobs, last sample, iteration)
    verifies what it returns and raises :class:`cosmopipe.integrity.CorruptFileError` naming
    the file; chains written before (no checksums) are read with a warning.
    """

    _handle = None
    _datasets = None

    def open(self, mode="r"):
        if self._handle is not None:
            return contextlib.nullcontext(self._handle)
        if self.read_only and mode != "r":
            raise RuntimeError("chain file opened read-only")
        f = h5py.File(self.filename, mode, locking=False)
        if not self.dtype_set and self.name in f and "chain" in f[self.name]:
            self.dtype = f[self.name]["chain"].dtype
            self.dtype_set = True
        return f

    @contextlib.contextmanager
    def writing(self):
        """Keep the file open while a block of steps runs."""
        self._handle = h5py.File(self.filename, "a", locking=False)
        self._datasets = None
        try:
            yield self
        finally:
            handle, self._handle, self._datasets = self._handle, None, None
            handle.close()

    # -- writing ------------------------------------------------------------------------
    def reset(self, nwalkers, ndim):
        super().reset(nwalkers, ndim)
        with self.open("a") as f:
            g = f[self.name]
            g.attrs["version"] = text(g.attrs["version"])   # fixed-length: see sims.integrity.text
            g.create_dataset(_STEP_SUMS, (0,), maxshape=(None,), dtype="<u8")
            g.attrs[_STATE_DIGEST] = text(_state_digest(nwalkers, ndim, False, 0, np.zeros(nwalkers), None))

    def grow(self, ngrow, blobs):
        # A chain is verified before steps are appended to it; emcee may set has_blobs
        # here, so the state digest is renewed (a run stopped before its first step keeps
        # a consistent file).
        with self._group() as g:
            state = self._checked_state(g) if _STEP_SUMS in g else None
        super().grow(ngrow, blobs)
        self._datasets = None
        if state is not None:
            with self.open("a") as f:
                g = f[self.name]
                g[_STEP_SUMS].resize(g["chain"].shape[0], axis=0)
                state["has_blobs"] = bool(g.attrs["has_blobs"])
                g.attrs.modify(_STATE_DIGEST, text(_state_digest(**state)))

    def save_step(self, state, accepted):
        # emcee's datasets, attributes and order (iteration counter and state digest last,
        # so a step interrupted half-written is not counted), without its re-opens for
        # checks; attributes are modified in place rather than deleted and re-created.
        with self.open("a") as f:
            g = f[self.name]
            ds = self._datasets if self._handle is not None else None
            if ds is None:
                ds = {k: g[k] for k in ("chain", "log_prob", "blobs", "accepted", _STEP_SUMS) if k in g}
                ds["dtypes"] = {k: ds[k].dtype.base for k in ("chain", "log_prob", "blobs") if k in ds}
                if self._handle is not None:
                    self._datasets = ds
            iteration = g.attrs["iteration"]
            nwalkers, ndim = ds["chain"].shape[1:]
            if state.coords.shape != (nwalkers, ndim):
                raise ValueError(f"invalid coordinate dimensions {state.coords.shape}")
            rows = [np.asarray(state.coords, dtype=ds["dtypes"]["chain"]),
                    np.asarray(state.log_prob, dtype=ds["dtypes"]["log_prob"])]
            if state.blobs is not None:
                rows.append(np.asarray(state.blobs, dtype=ds["dtypes"]["blobs"]))
            ds["chain"][iteration, :, :] = rows[0]
            ds["log_prob"][iteration, :] = rows[1]
            if state.blobs is not None:
                ds["blobs"][iteration, :] = rows[2]
            if _STEP_SUMS in ds:
                ds[_STEP_SUMS][iteration] = row_checksums(*(r[None] for r in rows))[0]
            total = ds["accepted"][:] + accepted
            ds["accepted"][:] = total
            random_state = [text(v) if isinstance(v, str) else v for v in state.random_state]
            for i, v in enumerate(random_state):
                g.attrs.modify(f"random_state_{i}", v)
            g.attrs.modify("iteration", iteration + 1)
            if _STEP_SUMS in ds:
                g.attrs.modify(_STATE_DIGEST, text(_state_digest(nwalkers, ndim, "blobs" in ds, iteration + 1,
                                                                 total, random_state)))
            if self._handle is not None:
                f.flush()

    # -- reading (verified) ---------------------------------------------------------------
    @contextlib.contextmanager
    def _group(self):
        """The chain's group, with any damage turned into CorruptFileError naming the file."""
        with reading(self.filename, "chain content"):
            try:
                opened = self.open()
            except OSError as exc:
                raise CorruptFileError(self.filename, f"not a readable chain file ({exc}); {_CHAIN_HINT}") from None
            with opened as f:
                if self.name not in f:
                    raise CorruptFileError(self.filename, f"no group {self.name!r}: not a chain file; {_CHAIN_HINT}")
                yield f[self.name]

    def _checked_state(self, g) -> dict:
        """nwalkers, ndim, has_blobs, iteration, accepted, random_state, checked against the
        state digest and against the sizes of the datasets."""
        a = g.attrs
        rs = [a[k] for k in sorted(a) if k.startswith("random_state_")]
        state = {"nwalkers": int(a["nwalkers"]), "ndim": int(a["ndim"]), "has_blobs": bool(a["has_blobs"]),
                 "iteration": int(a["iteration"]), "accepted": g["accepted"][()],
                 "random_state": [v.decode() if isinstance(v, bytes) else v for v in rs] or None}
        if _STEP_SUMS in g:
            stored = a.get(_STATE_DIGEST, b"")
            stored = stored.decode("utf-8", "replace") if isinstance(stored, bytes) else str(stored)
            computed = _state_digest(**state)
            if stored != computed:
                raise CorruptFileError(self.filename, f"the chain state (iteration, acceptance, random state) fails "
                                                      f"its sha256 check (stored {stored[:12]}…, computed "
                                                      f"{computed[:12]}…): the file is damaged; {_CHAIN_HINT}")
        else:
            warn_unverified("chain", self.filename)
        n, shape = state["iteration"], (state["nwalkers"], state["ndim"])
        sizes = {"chain": (g["chain"].shape[0], g["chain"].shape[1:] == shape),
                 "log_prob": (g["log_prob"].shape[0], g["log_prob"].shape[1:] == shape[:1]),
                 "accepted": (n, g["accepted"].shape == shape[:1])}
        if state["has_blobs"]:
            sizes["blobs"] = (g["blobs"].shape[0], g["blobs"].shape[1:] == shape[:1])
        if _STEP_SUMS in g:
            sizes[_STEP_SUMS] = (g[_STEP_SUMS].shape[0], True)
        for name, (rows, shape_ok) in sizes.items():
            if n < 0 or rows < n or not shape_ok:
                raise CorruptFileError(self.filename, f"iteration {n} with {state['nwalkers']} walkers x "
                                                      f"{state['ndim']} parameters does not fit dataset {name!r} "
                                                      f"of shape {g[name].shape}: the file is damaged; {_CHAIN_HINT}")
        return state

    def read_steps(self, discard: int = 0, thin: int = 1) -> tuple[dict[str, np.ndarray], dict]:
        """({'chain': (n, nwalkers, ndim), 'log_prob': (n, nwalkers), 'blobs': ... if any}, state)
        of the steps discard + thin - 1, ..., iteration - 1 (every thin-th), each step checked."""
        with self._group() as g:
            state = self._checked_state(g)
            sel = slice(discard + thin - 1, state["iteration"], thin)
            names = ("chain", "log_prob", "blobs") if state["has_blobs"] else ("chain", "log_prob")
            rows = {name: g[name][sel] for name in names}
            if _STEP_SUMS in g:
                stored = g[_STEP_SUMS][sel]
                computed = row_checksums(*rows.values())
                bad = np.flatnonzero(stored != computed)
                if bad.size:
                    step = range(state["iteration"])[sel][bad[0]]
                    raise CorruptFileError(self.filename, f"step {step} fails its sha256 check (stored "
                                                          f"{int(stored[bad[0]]):016x}, computed "
                                                          f"{int(computed[bad[0]]):016x}; {bad.size} damaged "
                                                          f"step(s)): the file is damaged; {_CHAIN_HINT}")
        return rows, state

    def get_value(self, name, flat=False, thin=1, discard=0):
        rows, state = self.read_steps(discard, thin)
        if state["iteration"] <= 0:
            raise AttributeError("You must run the sampler with 'store == True' before accessing the results")
        if name == "blobs" and not state["has_blobs"]:
            return None
        v = rows[name]
        if flat:
            s = list(v.shape[1:])
            s[0] = np.prod(v.shape[:2])
            return v.reshape(s)
        return v

    def _state(self) -> dict:
        with self._group() as g:
            return self._checked_state(g)

    @property
    def iteration(self):
        return self._state()["iteration"]

    @property
    def shape(self):
        state = self._state()
        return state["nwalkers"], state["ndim"]

    @property
    def accepted(self):
        return self._state()["accepted"]

    @property
    def random_state(self):
        return self._state()["random_state"]

    def has_blobs(self):
        return self._state()["has_blobs"]


def _lock_dir(out_dir: Path):
    """An exclusive lock on the chain directory (released by the kernel if the process dies)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handle = open(out_dir / ".sample.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise SamplingError(f"the chains in {out_dir} are being written by {owner}; wait for it or stop it") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {os.uname().nodename}")
    handle.flush()
    return handle


def _chain_lock(path: Path, timeout: float | None = None):
    """Exclusive lock on ``<chain>.lock``, held while a ``parallel: chains`` task writes the
    chain.  Waits for it (``timeout`` seconds at most; None: forever)."""
    handle = open(Path(path).with_suffix(".lock"), "a+")
    t0 = time.monotonic()
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if timeout is not None and time.monotonic() - t0 >= timeout:
                handle.close()
                raise SamplingError(f"chain {path} is still being written by another process after {timeout:g} s "
                                    "(a worker of a killed run?); stop it or wait, then resume") from None
            time.sleep(0.2)


def _wait_for_chain_writers(paths: Sequence[Path], timeout: float, log_: logging.Logger) -> None:
    """Wait until no process writes any of these chains: a worker of a killed driver may
    finish its segment after the driver died; its steps are complete and kept."""
    for path in paths:
        try:
            _chain_lock(path, timeout=0.0).close()
        except SamplingError:
            log_.info("waiting for another process to finish writing %s", path)
            _chain_lock(path, timeout=timeout).close()



def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_chain(path: Path, discard: int = 0, thin: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(samples (n, ndim), ln posterior (n,), blobs (n, nblob) or None) of one chain file, step-major."""
    # One verified read of all three (each step's checksum covers coords, ln p and blobs).
    rows, _ = ChainBackend(str(path), read_only=True).read_steps(discard, thin)
    samples = rows["chain"].reshape(-1, rows["chain"].shape[-1])
    lnp = rows["log_prob"].reshape(-1)
    blobs = rows.get("blobs")
    if blobs is not None:
        blobs = np.asarray(blobs, dtype=float).reshape(samples.shape[0], -1)
    return samples, lnp, blobs


def read_chain_samples(chain_dir: str | Path, max_samples: int | None = None) -> tuple[list[str], np.ndarray]:
    """(sampled parameter names, samples (n, p)) of a converged sample-stage run: its
    chains after the burn-in, thinned as its summary says, evenly subsampled to at most
    ``max_samples``."""
    chain_dir = Path(chain_dir)
    path = chain_dir / "summary.json"
    if not path.is_file():
        raise LikelihoodError(f"chains: no sample summary at {path} (run the sample stage first)")
    summary = json.loads(path.read_text())
    names = list(summary["params"])
    files = sorted(chain_dir.glob("chain_*.h5"))
    if not files:
        raise LikelihoodError(f"chains: no chain files chain_*.h5 in {chain_dir}")
    samples = np.concatenate([read_chain(f, int(summary["burn_in_steps"]), int(summary["thin"]))[0] for f in files])
    if samples.shape[1] != len(names):
        raise LikelihoodError(f"chains: chains in {chain_dir} have {samples.shape[1]} parameters, "
                              f"the summary lists {len(names)}")
    if max_samples is not None and len(samples) > max_samples:
        samples = samples[np.linspace(0, len(samples) - 1, max_samples).round().astype(int)]
    return names, samples
