"""The train and validate workflow stages: YAML validation, dry-run plans,
and a run on small EuclidEmulator2 datasets placed where `simulate` puts them."""
import os

import numpy as np
import pytest
import yaml

from cosmopipe import emulators
from cosmopipe.emulators.ee2 import EE2_BOX
from cosmopipe.emulators.synthetic import ee2_dataset
from cosmopipe.sims.dataset import write_dataset
from cosmopipe.schema import ConfigError
from cosmopipe.pipeline.workflow import load_workflow, run_workflow

BOX = {name: EE2_BOX[name] for name in ("Omega_m", "w0")}
K = np.geomspace(0.03, 0.8, 12)


def write_workflow(tmp_path, **sections):
    doc = {"name": "t", "run_dir": str(tmp_path / "run"), "cluster": "local", **sections}
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


TRAIN = {"network": {"hidden": [8], "epochs": 300}, "validation_fraction": 0.2, "hybrid": True,
         "ee2_surrogate": {"n": 40, "nz": 4, "n_test": 5, "network": {"hidden": [8], "epochs": 200}}}


@pytest.mark.parametrize("train, key, message", [
    ({"netwrk": {}}, "train.netwrk", "unknown key"),
    ({"network": {"hidden": [0]}}, "train.network.hidden", "item 0: must be a positive integer, got 0"),
    ({"pca": {"variance": 1.5}}, "train.pca.variance", "must be a number in (0, 1], got 1.5"),
    ({"mode": "z_input"}, "train.mode", "must be one of joint, per_z"),
    ({"validation_fraction": 0.7}, "train.validation_fraction", "must be a number in [0, 0.5)"),
    ({"linear": {"k_min": 1.0, "k_max": 0.5}}, "train.linear.k_max", "must exceed k_min=1"),
    ({"hybrid": "yes"}, "train.hybrid", "must be true or false"),
    ({"hybrid": True, "ee2_surrogate": {"n": 5}}, "train.ee2_surrogate.n", "needs at least 20 cosmologies, got 5"),
    ({"hybrid": True, "ee2_surrogate": {"nz": 2}}, "train.ee2_surrogate.nz", "needs at least 4 redshifts"),
    ({"hybrid": True, "ee2_surrogate": {"size": 2}}, "train.ee2_surrogate.size", "unknown key"),
    ({"ee2_surrogate": {"n": 100}}, "train.ee2_surrogate", "only used with hybrid: true"),
])
def test_train_section_errors_name_the_key(tmp_path, train, key, message):
    path = write_workflow(tmp_path, train=train)
    with pytest.raises(ConfigError) as err:
        load_workflow(path)
    assert err.value.key == key and message in str(err.value) and str(path) in str(err.value)


def test_validate_section_errors_name_the_key(tmp_path):
    path = write_workflow(tmp_path, validate={"predict": {"params": {"omega_m": 0.3}}})
    with pytest.raises(ConfigError, match="validate.predict.params.omega_m: unknown cosmology parameter"):
        load_workflow(path)
    path = write_workflow(tmp_path, validate={"emulator": [1, 2]})
    with pytest.raises(ConfigError, match="validate.emulator: must be a path or a list of paths"):
        load_workflow(path)


def test_dry_run_plans(tmp_path, capsys):
    path = write_workflow(tmp_path, train={**TRAIN, "linear": {"n": 50}}, validate={"predict": {"z": [0, 1]}})
    run_workflow(load_workflow(path), dry_run=True)
    out = capsys.readouterr().out
    run = tmp_path / "run"
    assert f"read the training set {run / 'datasets' / 'train.h5'}" in out
    assert "run CAMB for 50 Latin-hypercube cosmologies" in out
    assert "run EuclidEmulator2 at 40 + 5 LCDM cosmologies" in out
    assert f"write the hybrid EE2 x COLA emulator {run / 'emulators' / 'hybrid.h5'}" in out
    assert f"validate {run / 'emulators' / 'boost.h5'} against {run / 'datasets' / 'test.h5'}" in out
    assert f"validate {run / 'emulators' / 'hybrid.h5'}" in out
    assert not run.exists() or not (run / "emulators").exists()


def test_train_and_validate_run(tmp_path):
    run = tmp_path / "run"
    write_dataset(run / "datasets" / "train.h5", ee2_dataset(12, [1.0, 0.5, 0.0], K, BOX, seed=1))
    write_dataset(run / "datasets" / "test.h5", ee2_dataset(4, [1.0, 0.5, 0.0], K, BOX, seed=2))
    path = write_workflow(tmp_path, train=TRAIN,
                          validate={"predict": {"params": {"Omega_m": 0.3, "w0": -0.9}, "z": [0, 1]}})
    run_workflow(load_workflow(path), progress=False)
    boost, hybrid = emulators.load(run / "emulators" / "boost.h5"), emulators.load(run / "emulators" / "hybrid.h5")
    assert boost.kind == "boost" and hybrid.kind == "hybrid"
    assert boost.info["validation"]["n"] == 2
    assert hybrid.ee2_lcdm is not None and hybrid.ee2_lcdm.info["n_cosmologies"] == 40
    assert hybrid.ee2_lcdm.z_range == (0.0, 1.0) and hybrid.ee2_lcdm.space.names == ("Omega_m",)
    for name in ("boost", "hybrid"):
        for f in ("validation.csv", "validation.md", "validation.png", "validation.json", "prediction.png"):
            assert (run / "validation" / name / f).stat().st_size > 0
    # A resumed run with the same dataset and settings keeps the trained file.
    stamp = os.stat(run / "emulators" / "boost.h5").st_mtime_ns
    run_workflow(load_workflow(path), only="train", progress=False, resume=True)
    assert os.stat(run / "emulators" / "boost.h5").st_mtime_ns == stamp
    # ... and the EE2 surrogate of the hybrid (its training time is the same record)
    again = emulators.load(run / "emulators" / "hybrid.h5").ee2_lcdm
    assert again.info["training_seconds"] == hybrid.ee2_lcdm.info["training_seconds"]
    # other surrogate settings: refitted on resume
    train = {**TRAIN, "ee2_surrogate": {**TRAIN["ee2_surrogate"], "nz": 5}}
    path = write_workflow(tmp_path, train=train)
    run_workflow(load_workflow(path), only="train", progress=False, resume=True)
    assert emulators.load(run / "emulators" / "hybrid.h5").ee2_lcdm.model.z.size == 5
