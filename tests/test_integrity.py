"""End-to-end integrity: every file cosmopipe writes is verified on read (issue 16, item 3).

The core check flips one byte at a time (300 seeded trials per file kind) and
requires zero silent changes: each damaged file is either refused with
CorruptFileError naming it, or reads back bit-identical to the intact file.
"""
import dataclasses
import hashlib
import logging
import shutil
import time

import emcee
import h5py
import numpy as np
import pytest

from cosmopipe.pipeline import cli
from cosmopipe.sims.dataset import dataset_hash, read_dataset, write_dataset
from cosmopipe.pipeline.simulate import campaign_status, sim_path, simulate_task
from cosmopipe.sims import Cosmology, SimConfig
from cosmopipe.integrity import CorruptFileError, array_digest, attrs_digest, row_checksums
from cosmopipe.sims.io import check, is_complete, read_config, read_result, write_result

TRIALS = 300


# -- the byte-flip harness -------------------------------------------------------------------
def _same(a, b) -> bool:
    """Bit-identical comparison of what a reader returned (arrays by dtype and bytes)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a) if f.compare)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind == "O" or b.dtype.kind == "O":
            return a.shape == b.shape and all(_same(x, y) for x, y in zip(a.ravel(), b.ravel()))
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return isinstance(b, float) and np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b


def flip_trials(path, read, tmp_path, trials=TRIALS, seed=0):
    """(detected, harmless, silent, others) over ``trials`` single-byte changes of ``path``.

    Each trial replaces one byte (at a seeded random offset) by a different value."""
    reference = read(path)
    original = path.read_bytes()
    rng = np.random.default_rng(seed)
    detected, harmless, silent, others = 0, 0, [], []
    for i in range(trials):
        data = bytearray(original)
        pos = int(rng.integers(len(data)))
        data[pos] ^= int(rng.integers(1, 256))
        damaged = tmp_path / f"flip-{i:03d}-{path.name}"
        damaged.write_bytes(bytes(data))
        try:
            got = read(damaged)
        except CorruptFileError as exc:
            assert exc.path == damaged and str(exc).startswith(str(damaged)), str(exc)
            detected += 1
        except Exception as exc:  # noqa: BLE001 - any other type is a failure of the contract
            others.append(f"offset {pos}: {type(exc).__name__}: {exc}")
        else:
            if _same(got, reference):
                harmless += 1
            else:
                silent.append(pos)
        damaged.unlink()
    return detected, harmless, silent, others


def _assert_no_silent(case, path, read, tmp_path):
    t0 = time.perf_counter()
    detected, harmless, silent, others = flip_trials(path, read, tmp_path)
    table = (f"case {case}: trials {TRIALS}, detected {detected}, harmless {harmless}, silent {len(silent)}, "
             f"other errors {len(others)} ({time.perf_counter() - t0:.1f} s)")
    print(table)
    assert not silent, f"{table}; silent changes at offsets {silent[:10]}"
    assert not others, f"{table}; {others[:5]}"
    assert detected + harmless == TRIALS, table
    assert detected > 0, table


# -- simulation files ---------------------------------------------------------------------
def _small_result(make_result):
    config = SimConfig(box=256.0, particles=16, z_out=(1.0, 0.0), paired=True, cola_nlpt=None, k_max=0.3, nk=6)
    return make_result(Cosmology(Omega_m=0.3, w0=-0.9), config)


def test_sim_byte_flips_are_never_silent(tmp_path, make_result):
    path = write_result(tmp_path / "sim.h5", _small_result(make_result))
    _assert_no_silent("simulation", path, read_result, tmp_path)


def test_flipped_boost_value_is_refused_with_its_name(tmp_path, make_result):
    path = write_result(tmp_path / "train-0003.h5", _small_result(make_result))
    with h5py.File(path, "r") as f:
        offset = f["boost"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset + 7] ^= 0x40           # the exponent byte of boost[0, 0]: a value of ~1e154
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=r"train-0003\.h5: array 'boost' fails its sha256 check "
                                               r"\(stored [0-9a-f]{12}…, computed [0-9a-f]{12}…\): the file "
                                               r"is damaged; delete it to re-simulate") as info:
        read_result(path)
    assert info.value.path == path
    assert not is_complete(path)


def test_changed_attribute_value_is_detected(tmp_path, make_result):
    path = write_result(tmp_path / "sim.h5", _small_result(make_result))
    with h5py.File(path, "r+") as f:
        f["cosmology"].attrs["Omega_m"] = 0.31     # rewritten in place: the seal no longer matches
    with pytest.raises(CorruptFileError, match=r"group '/cosmology' \(attributes or members\) fails its sha256"):
        read_config(path)


def test_digests_are_independent_of_the_writer():
    """The stored digest is a plain sha256 of dtype, shape and bytes: recomputed here by hand."""
    a = np.arange(6.0).reshape(2, 3)
    h = hashlib.sha256()
    for chunk in (b"<f8" + b"(2, 3)" + a.tobytes(),):
        h.update(len(chunk).to_bytes(8, "little") + chunk)
    assert array_digest(a) == h.hexdigest()
    # attribute values hash by value, whichever HDF5 integer type holds them
    assert attrs_digest({"n": np.int32(3)}) == attrs_digest({"n": 3}) != attrs_digest({"n": 4})
    assert attrs_digest({"x": 1.0}, ["a"]) != attrs_digest({"x": 1.0}, ["b"])
    sums = row_checksums(np.arange(6.0).reshape(3, 2), np.arange(3.0))
    assert sums.dtype == np.uint64 and sums.shape == (3,)
    row1 = np.arange(6.0).reshape(3, 2)[1].tobytes() + np.arange(3.0)[1:2].tobytes()
    assert int(sums[1]) == int.from_bytes(hashlib.sha256(row1).digest()[:8], "little")


def _to_v1(path):
    """Turn a sealed file into what cosmopipe wrote before checksums: no seal, text as
    variable-length strings, format_version 1."""
    def strip(obj):
        for key in list(obj.attrs):
            value = obj.attrs[key]
            if key in ("sha256", "attrs_sha256"):
                del obj.attrs[key]
            elif isinstance(value, bytes):
                obj.attrs[key] = value.decode()
            elif isinstance(value, np.ndarray) and value.dtype.kind == "S":
                obj.attrs[key] = np.asarray([v.decode() for v in value], dtype=h5py.string_dtype())

    with h5py.File(path, "r+") as f:
        f.visititems(lambda name, obj: strip(obj))
        strip(f)
        f.attrs["format_version"] = 1
    return path


def _write_v1(path, result):
    return _to_v1(write_result(path, result))


def test_version_1_file_is_still_read(tmp_path, make_result):
    result = _small_result(make_result)
    path = _write_v1(tmp_path / "old.h5", result)
    back = read_result(path)
    assert _same(back, result)
    assert check(path) is False and is_complete(path)
    assert check(write_result(tmp_path / "new.h5", result)) is True


def test_complete_file_lacking_a_dataset_is_corrupt(tmp_path, make_result):
    path = _write_v1(tmp_path / "old.h5", _small_result(make_result))
    with h5py.File(path, "r+") as f:
        del f["pk_runs"]
    with pytest.raises(CorruptFileError, match="marked complete but lacks the dataset"):
        read_result(path)
    assert not is_complete(path)


# -- datasets -------------------------------------------------------------------------------
def _small_dataset():
    from cosmopipe.emulators.synthetic import ee2_dataset

    box = {"Omega_m": (0.28, 0.34), "w0": (-1.1, -0.9)}
    return ee2_dataset(6, [0.0, 1.0], np.geomspace(0.05, 1.0, 8), box, seed=3)


def test_dataset_byte_flips_are_never_silent(tmp_path):
    path = write_dataset(tmp_path / "train.h5", _small_dataset())
    _assert_no_silent("dataset", path, read_dataset, tmp_path)


def test_dataset_hash_is_verified_in_old_files(tmp_path, caplog):
    ds = _small_dataset()
    path = _to_v1(write_dataset(tmp_path / "old.h5", ds))
    with caplog.at_level(logging.WARNING, logger="cosmopipe.integrity"):
        back = read_dataset(path)
        read_dataset(path)
    assert _same(back.boost, ds.boost) and back.hash == dataset_hash(ds)
    assert caplog.text.count("written before cosmopipe stored checksums") == 1   # warned once per file
    with h5py.File(path, "r+") as f:
        boost = f["boost"][()]
        boost[0, 0, 0] *= 1.0 + 1e-12
        f["boost"][...] = boost
    with pytest.raises(CorruptFileError, match=r"old\.h5: the dataset hash does not match its arrays"):
        read_dataset(path)


# -- emulators ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hybrid_file(tmp_path_factory):
    """A tiny hybrid emulator (its COLA boost emulator embedded) saved to disk."""
    from cosmopipe.emulators.boost import train_boost
    from cosmopipe.emulators.hybrid import make_hybrid
    from cosmopipe.emulators.network import TrainConfig
    from cosmopipe.emulators.training import FitSettings

    emu = train_boost(_small_dataset(), FitSettings(network=TrainConfig(hidden=(6,), epochs=30)))
    return make_hybrid(emu).save(tmp_path_factory.mktemp("emu") / "hybrid.h5")


def test_emulator_byte_flips_are_never_silent(hybrid_file, tmp_path):
    from cosmopipe import emulators
    _assert_no_silent("emulator (hybrid)", hybrid_file, emulators.load, tmp_path)


def test_flipped_network_weight_is_refused(hybrid_file, tmp_path):
    from cosmopipe import emulators
    path = tmp_path / "hybrid.h5"
    shutil.copy(hybrid_file, path)
    with h5py.File(path, "r") as f:
        offset = f["cola/model/network/W0"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset + 3] ^= 0x01           # a low mantissa byte: a 1e-11 relative change of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=r"hybrid\.h5: array 'cola/model/network/W0' fails its sha256 check"):
        emulators.load(path)
    # the CLI turns it into one line and exit code 2
    assert cli.main(["predict", str(path)]) == 2


def test_old_emulator_is_read_with_a_warning(hybrid_file, tmp_path, caplog):
    from cosmopipe import emulators
    path = tmp_path / "old.h5"
    shutil.copy(hybrid_file, path)
    _to_v1(path)
    with caplog.at_level(logging.WARNING, logger="cosmopipe.integrity"):
        back = emulators.load(path)
    assert _same(back, emulators.load(hybrid_file))
    assert "old.h5: this emulator was written before cosmopipe stored checksums" in caplog.text


# -- chains ---------------------------------------------------------------------------------
def _log_prob(theta):
    """A Gaussian with two blobs per walker (like derived parameters and ln L)."""
    lp = -0.5 * np.sum(theta ** 2, axis=1)
    return [(l, np.array([2.0 * t, l])) for l, t in zip(lp, theta[:, 0])]


def _write_chain(path, steps=40, nwalkers=6, ndim=2):
    from cosmopipe.likelihoods.sampling import ChainBackend

    backend = ChainBackend(str(path))
    backend.reset(nwalkers, ndim)
    sampler = emcee.EnsembleSampler(nwalkers, ndim, _log_prob, vectorize=True, backend=backend)
    p0 = np.random.default_rng(1).normal(size=(nwalkers, ndim))
    with backend.writing():
        sampler.run_mcmc(p0, steps, progress=False)
    return backend


def test_chain_byte_flips_are_never_silent(tmp_path):
    from cosmopipe.likelihoods.sampling import read_chain

    path = tmp_path / "chain_1.h5"
    _write_chain(path)
    samples, lnp, blobs = read_chain(path)
    assert samples.shape == (40 * 6, 2) and blobs.shape == (40 * 6, 2)
    np.testing.assert_array_equal(blobs[:, 1], lnp)     # blobs travel row by row with their step

    def read_all(p):
        from cosmopipe.likelihoods.sampling import ChainBackend

        backend = ChainBackend(str(p), read_only=True)
        return read_chain(p), backend.get_last_sample().random_state, backend.accepted, backend.iteration

    _assert_no_silent("chain", path, read_all, tmp_path)


def test_damaged_chain_is_refused_with_its_name(tmp_path):
    from cosmopipe.likelihoods.sampling import ChainBackend, read_chain

    path = tmp_path / "chain_2.h5"
    _write_chain(path)
    with h5py.File(path, "r+", locking=False) as f:
        chain = f["mcmc/chain"][()]
        chain[17, 3, 1] = np.inf          # what made gelman_rubin crash with a raw traceback
        f["mcmc/chain"][...] = chain
    with pytest.raises(CorruptFileError, match=r"chain_2\.h5: step 17 fails its sha256 check"):
        read_chain(path)
    with pytest.raises(CorruptFileError, match=r"chain_2\.h5: step 17"):
        ChainBackend(str(path), read_only=True).get_chain()
    read_chain(path, discard=18)        # the intact steps after it are still readable
    with h5py.File(path, "r+", locking=False) as f:
        f["mcmc"].attrs.modify("iteration", 30)
    with pytest.raises(CorruptFileError, match=r"chain_2\.h5: the chain state .* fails its sha256 check"):
        read_chain(path)


def test_resumed_chain_continues_its_checksums(tmp_path):
    from cosmopipe.likelihoods.sampling import ChainBackend, read_chain

    path = tmp_path / "chain.h5"
    backend = _write_chain(path, steps=10)
    sampler = emcee.EnsembleSampler(6, 2, _log_prob, vectorize=True, backend=backend)
    with backend.writing():
        sampler.run_mcmc(backend.get_last_sample(), 5, progress=False)
    assert ChainBackend(str(path)).iteration == 15 and read_chain(path)[0].shape == (90, 2)


def test_old_chain_is_read_with_a_warning(tmp_path, caplog):
    from cosmopipe.likelihoods.sampling import read_chain

    path = tmp_path / "old_chain.h5"
    _write_chain(path, steps=5)
    with h5py.File(path, "r+", locking=False) as f:
        del f["mcmc/cosmopipe_step_sha256"]
        del f["mcmc"].attrs["cosmopipe_state_sha256"]
    with caplog.at_level(logging.WARNING, logger="cosmopipe.integrity"):
        samples = read_chain(path)[0]
    assert samples.shape == (30, 2) and "old_chain.h5: this chain was written before" in caplog.text


def test_checksum_cost_per_step_is_small(tmp_path):
    """The per-step checksum and state digest against the whole save_step (both measured)."""
    from cosmopipe.likelihoods.sampling.backend import _state_digest

    backend = _write_chain(tmp_path / "c.h5", steps=1)
    state = backend.get_last_sample()
    rows = [state.coords, state.log_prob, state.blobs]
    n = 300
    t0 = time.perf_counter()
    for _ in range(n):
        row_checksums(*(r[None] for r in rows))
        _state_digest(6, 2, True, 10, np.zeros(6), state.random_state)
    checksum = (time.perf_counter() - t0) / n
    backend.grow(n, state.blobs)
    with backend.writing():
        t0 = time.perf_counter()
        for _ in range(n):
            backend.save_step(state, np.ones(6, dtype=bool))
        step = (time.perf_counter() - t0) / n
    print(f"chain checksums: {checksum * 1e6:.0f} us of a {step * 1e6:.0f} us save_step")
    assert checksum < 0.5 * step, (checksum, step)


# -- campaigns: a damaged simulation file is reported and re-simulated ---------------------------
def test_corrupt_simulation_is_reported_and_resimulated(tmp_path, make_result, monkeypatch, capsys):
    import cosmopipe.sims.run
    from cosmopipe import sims
    result = _small_result(make_result)
    run_dir = tmp_path / "run"
    (run_dir / "designs").mkdir(parents=True)
    (run_dir / "campaign.json").write_text("{}")
    (run_dir / "designs" / "train.csv").write_text("id,Omega_m\ntrain-0000,0.3\ntrain-0001,0.3\ntrain-0002,0.3\n")
    write_result(sim_path(run_dir, "train", "train-0000"), result)
    bad = write_result(sim_path(run_dir, "train", "train-0001"), result)
    with h5py.File(bad, "r") as f:
        offset = f["boost"].id.get_offset()
    data = bytearray(bad.read_bytes())
    data[offset + 7] ^= 0x40
    bad.write_bytes(bytes(data))

    status = campaign_status(run_dir)["train"]
    assert status["done"] == ["train-0000"] and status["missing"] == ["train-0002"]
    assert status["corrupt"] == ["train-0001"] and "array 'boost' fails its sha256 check" in status["reasons"]["train-0001"]
    assert cli.main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "corrupt train-0001:" in out and "delete it to re-simulate" in out

    calls = []
    monkeypatch.setattr(sims.run, "run_simulation", lambda c, cfg, progress=False: calls.append(c) or result)
    args = (result.cosmology.to_dict(), result.config.to_dict())
    assert simulate_task("train-0000", *args, str(sim_path(run_dir, "train", "train-0000")), {})["status"] == "skipped"
    assert simulate_task("train-0001", *args, str(bad), {})["status"] == "done"
    assert len(calls) == 1 and check(bad) is True
    assert campaign_status(run_dir)["train"]["done"] == ["train-0000", "train-0001"]
