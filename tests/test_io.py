"""HDF5 result files: round trip, rejection of foreign/broken files, atomic writes."""
import json

import h5py
import numpy as np
import pytest

from cosmopipe.sims import Cosmology, SimConfig, io
from cosmopipe.sims.io import is_complete, read_config, read_result, write_result


def _assert_same(a, b):
    for name in ("k", "z", "pk", "pk_lin", "boost", "nmodes", "pk_runs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
    assert a.cosmology == b.cosmology
    assert a.config == b.config
    assert a.timings == b.timings
    assert a.version == b.version
    assert a.extra == b.extra


def test_round_trip(tmp_path, make_result):
    cosmo = Cosmology(Omega_m=0.3, w0=-0.9, wa=0.1, m_nu=0.1)
    config = SimConfig(box=500.0, particles=32, mesh=96, steps=12, z_init=29.0, z_out=(2.0, 1.0, 0.0),
                       step_spacing="log", assignment="tsc", cola_nlpt=None, seed=7, paired=True,
                       fixed_amplitude=True, k_max=0.3, threads=2)
    result = make_result(cosmo, config)
    path = write_result(tmp_path / "runs" / "sim.h5", result)
    assert path == tmp_path / "runs" / "sim.h5"
    back = read_result(path)
    _assert_same(result, back)
    assert back.config.cola_nlpt is None and back.config.nk is None
    assert isinstance(back.config.paired, bool) and isinstance(back.config.particles, int)
    assert isinstance(back.config.z_out, tuple)
    assert is_complete(path)
    assert read_config(path) == (cosmo, config)


def test_file_layout(tmp_path, make_result):
    result = make_result()
    path = write_result(tmp_path / "sim.h5", result)
    with h5py.File(path, "r") as f:
        # text is stored as fixed-length UTF-8 bytes (see sims.integrity.text)
        assert f.attrs["format"] == b"cosmopipe-sim"
        assert f.attrs["format_version"] == 2
        assert bool(f.attrs["complete"]) is True
        assert f.attrs["seed"] == result.config.seed
        assert f.attrs["code_version"] == b"0.1.0+gtest"
        assert json.loads(f.attrs["extra"]) == result.extra
        assert f["pk"].shape == (3, result.k.size)
        assert f["pk_runs"].shape == (2, 3, result.k.size)
        assert f["k"].attrs["units"] == b"h/Mpc"
        assert f["cosmology"].attrs["Omega_m"] == pytest.approx(0.319)
        assert f["timings"].attrs["total"] == 12.5
        assert b"cola_nlpt" in list(f["config"].attrs["none_fields"])
        assert len(f["pk"].attrs["sha256"]) == 64 and len(f.attrs["attrs_sha256"]) == 64


def test_overwrite_replaces_file(tmp_path, make_result):
    path = tmp_path / "sim.h5"
    write_result(path, make_result())
    write_result(path, make_result(config=SimConfig(seed=5)))
    assert read_result(path).config.seed == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.h5"]


def test_truncated_file(tmp_path, make_result):
    path = write_result(tmp_path / "sim.h5", make_result())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a complete cosmopipe simulation file"):
        read_result(path)
    assert not is_complete(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "sim.h5"
    path.write_bytes(b"this is not hdf5 at all" * 10)
    with pytest.raises(ValueError, match=r"sim\.h5: not a complete cosmopipe simulation file"):
        read_result(path)


def test_foreign_hdf5(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["k"] = np.arange(3.0)
    with pytest.raises(ValueError, match=r"other\.h5: not a complete cosmopipe simulation file \(format"):
        read_result(path)
    with pytest.raises(ValueError, match="not a complete cosmopipe"):
        read_config(path)
    assert not is_complete(path)


def test_missing_complete_flag(tmp_path, make_result):
    path = write_result(tmp_path / "sim.h5", make_result())
    with h5py.File(path, "a") as f:
        del f.attrs["complete"]
    with pytest.raises(ValueError, match="'complete' flag is missing"):
        read_result(path)
    assert not is_complete(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_result(tmp_path / "nope.h5")
    assert not is_complete(tmp_path / "nope.h5")


@pytest.mark.parametrize("step", ["_write_arrays", "_write_metadata"])
def test_crash_during_write_leaves_nothing(tmp_path, make_result, monkeypatch, step):
    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(io, step, boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_result(tmp_path / "sim.h5", make_result())
    assert list(tmp_path.iterdir()) == []


def test_crash_keeps_previous_file(tmp_path, make_result, monkeypatch):
    path = write_result(tmp_path / "sim.h5", make_result())
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "_write_metadata", boom)
    with pytest.raises(KeyboardInterrupt):
        write_result(path, make_result(config=SimConfig(seed=9)))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.h5"]


def test_unserialisable_extra_fails_before_writing(tmp_path, make_result):
    import dataclasses

    result = dataclasses.replace(make_result(), extra={"bad": object()})
    with pytest.raises(TypeError, match="SimResult.extra"):
        write_result(tmp_path / "sim.h5", result)
    assert list(tmp_path.iterdir()) == []
