"""LCDM twins of a design, and a run directory seeded from a committed campaign archive.

A production campaign outlives sessions and machines: its consolidated datasets are
committed as they accumulate and a new run directory is seeded from them.  The seeded
run must consolidate to the very same spectra, run only what the archive lacks, and
refuse an archive made with other physics.
"""
import numpy as np
import pytest
import yaml

from cosmopipe.sims.dataset import read_dataset
from cosmopipe.schema import ConfigError
from cosmopipe.pipeline.cli import main
from cosmopipe.pipeline.simulate import TWIN_SUFFIX, campaign_status, design_points
from cosmopipe.pipeline.workflow import load_workflow, run_workflow
from test_campaign import client, tiny_workflow  # noqa: F401 - the module's Dask cluster fixture

W0WA = {"Omega_m": [0.26, 0.36], "w0": [-1.2, -0.8], "wa": [-0.3, 0.3]}


def _twin_workflow(tmp_path, name, **over):
    path = tiny_workflow(tmp_path, name=name, n_train=3, n_test=1, parameters=W0WA, fixed={"h": 0.67},
                         **over)
    wf = yaml.safe_load(path.read_text())
    for d in wf["simulate"]["designs"].values():
        d["twins"] = "lcdm"
    path.write_text(yaml.safe_dump(wf))
    return path


def test_twins_follow_each_point_at_its_lcdm_projection(tmp_path):
    wf = load_workflow(_twin_workflow(tmp_path, "twins"))
    ids, values, box = design_points(wf.stages["simulate"])["train"]
    assert ids == ["train-0000", "train-0000-lcdm", "train-0001", "train-0001-lcdm", "train-0002",
                   "train-0002-lcdm"]
    w0, wa, om = (box.names.index(n) for n in ("w0", "wa", "Omega_m"))
    np.testing.assert_array_equal(values[1::2, [w0, wa]], np.tile([-1.0, 0.0], (3, 1)))
    np.testing.assert_array_equal(values[1::2, om], values[0::2, om])     # all else as the point's
    assert not np.any((values[0::2, w0] == -1.0) & (values[0::2, wa] == 0.0))


def test_twins_need_a_box_holding_lcdm(tmp_path):
    path = tiny_workflow(tmp_path, name="bad", parameters={"Omega_m": [0.26, 0.36], "w0": [-0.9, -0.8]},
                         fixed={"h": 0.67, "wa": 0.0})
    wf = yaml.safe_load(path.read_text())
    wf["simulate"]["designs"]["train"]["twins"] = "lcdm"
    path.write_text(yaml.safe_dump(wf))
    with pytest.raises(ConfigError, match=r"designs\.train\.twins: the LCDM value w0=-1 lies outside "
                                          r"simulate\.parameters\.w0 \[-0\.9, -0\.8\]"):
        load_workflow(path)


def test_run_dir_seeded_from_an_archive_runs_only_the_rest(tmp_path, client, caplog):  # noqa: F811
    first = load_workflow(_twin_workflow(tmp_path, "first"))
    run_workflow(first, progress=False, client=client)
    original = {d: read_dataset(first.run_dir / "datasets" / f"{d}.h5") for d in ("train", "test")}
    assert original["train"].pk_runs.shape == (6, 2, 2, 6)             # (sims, pair, z, k)

    # The archive: what was committed, short of one pair (the machine was lost mid-campaign).
    partial = first.run_dir / "sims" / "train"
    for sid in ("train-0002", "train-0002" + TWIN_SUFFIX):
        (partial / f"{sid}.h5").unlink()
    archive = tmp_path / "archive"
    assert main(["archive", str(first.run_dir), "--out", str(archive)]) == 0
    assert sorted(p.name for p in archive.iterdir()) == ["test.h5", "train.h5"]
    assert len(read_dataset(archive / "train.h5").sim_ids) == 4

    second = load_workflow(_twin_workflow(tmp_path, "second", seed_from=str(archive)))
    caplog.set_level("INFO", logger="cosmopipe.simulate")
    run_workflow(second, progress=False, client=client)
    log = caplog.text
    assert "4 simulation(s) of design train taken from the archive" in log
    assert "1 already complete" not in log and "8 simulations in 2 design(s); 6 already complete, 2 to run" in log
    assert "; 2/2 done, ETA 0 min" in log                  # the log says how far a campaign is
    for design in ("train", "test"):
        got = read_dataset(second.run_dir / "datasets" / f"{design}.h5")
        ref = original[design]
        assert got.sim_ids == ref.sim_ids
        for name in ("params", "z", "k", "boost", "pk", "pk_lin", "nmodes", "pk_runs"):
            np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=f"{design}.{name}")
    assert {d: len(s["done"]) for d, s in campaign_status(second.run_dir).items()} == {"train": 6, "test": 2}


def test_archive_with_other_physics_is_refused(tmp_path, client):  # noqa: F811
    first = load_workflow(_twin_workflow(tmp_path, "a"))
    run_workflow(first, progress=False, client=client)
    other = _twin_workflow(tmp_path, "b", seed_from=str(first.run_dir / "datasets"))
    wf = yaml.safe_load(other.read_text())
    wf["simulate"]["simulation"]["steps"] = 5
    other.write_text(yaml.safe_dump(wf))
    with pytest.raises(ValueError, match=r"(train|test)\.h5: simulate\.seed_from: this archive was made with other "
                                         r"simulation settings: steps: 4 -> 5"):
        run_workflow(load_workflow(other), progress=False, client=client)


def test_progress_line_extrapolates_the_rate_so_far():
    from cosmopipe.pipeline.simulate import _progress_line

    assert _progress_line(10, 40, 600.0) == "10/40 done, ETA 30 min"
    assert _progress_line(12, 500, 2400.0) == "12/500 done, ETA 27.1 h"
