"""Shipped-model machinery on tiny models made here: the twin-response hybrid
(checked against EuclidEmulator2 itself), the response sensitivity (against an
analytic response), the model registry (manifest, checksums, unknown names,
newer formats), batch predictions from the command line and short reprs."""
import dataclasses
import json
import re
import shutil

import h5py
import numpy as np
import pytest

from cosmopipe import emulators
from cosmopipe.emulators import io as emu_io
from cosmopipe.emulators import registry
from cosmopipe.emulators.boost import train_boost
from cosmopipe.emulators.ee2 import EE2_BOX
from cosmopipe.emulators.hybrid import make_hybrid
from cosmopipe.emulators.network import TrainConfig
from cosmopipe.emulators.response import (TWIN_SUFFIX, ee2_twin_dataset, response_sensitivity, train_response,
                                          twin_pairs)
from cosmopipe.emulators.synthetic import ee2_dataset
from cosmopipe.emulators.training import FitSettings
from cosmopipe.pipeline import cli
from cosmopipe.pipeline.simulate import TWIN_SUFFIX as SIMULATE_SUFFIX
from cosmopipe.sims.dataset import write_dataset

VARIED = ("Omega_m", "Omega_b", "w0", "wa")
BOX = {name: EE2_BOX[name] for name in VARIED}
Z = [0.0, 0.5, 1.0]
K = np.geomspace(0.02, 1.0, 20)
FIT = FitSettings(network=TrainConfig(hidden=(24, 24), epochs=1500))


@pytest.fixture(scope="module")
def twins():
    return ee2_twin_dataset(40, Z, K, BOX, seed=3)


@pytest.fixture(scope="module")
def held_out():
    return ee2_twin_dataset(12, Z, K, BOX, seed=4)


@pytest.fixture(scope="module")
def response(twins):
    return train_response(twins, FIT)


def columns(ds, rows):
    return {name: ds.column(name)[rows] for name in ds.names}


# -- response mode --------------------------------------------------------------------
def test_twin_suffix_is_the_simulate_stage_s():
    assert TWIN_SUFFIX == SIMULATE_SUFFIX


def test_twin_pairs_skip_unpaired_and_name_broken_pairs(twins, caplog):
    a, b, unpaired = twin_pairs(twins)
    assert a.size == 40 and unpaired == 0
    assert all(twins.sim_ids[j] == twins.sim_ids[i] + TWIN_SUFFIX for i, j in zip(a, b))
    keep = np.array([i for i in range(len(twins)) if twins.sim_ids[i] != twins.sim_ids[1]])  # drop one twin
    partial = subset(twins, keep)
    with caplog.at_level("INFO", logger="cosmopipe.emulators"):
        _, _, unpaired = twin_pairs(partial)
    assert unpaired == 1 and "1 of 40 simulations have no LCDM twin" in caplog.text
    orphan = subset(twins, np.arange(1, len(twins)))  # an interrupted campaign: the twin finished first
    caplog.clear()
    with caplog.at_level("INFO", logger="cosmopipe.emulators"):
        a, _, unpaired = twin_pairs(orphan)
    assert a.size == 39 and unpaired == 1
    assert f"1 LCDM twin(s) without their simulation are skipped ({twins.sim_ids[1]})" in caplog.text
    params = twins.params.copy()
    params[1] = params[3]  # the twin of point 0 carries point 1's parameters
    with pytest.raises(ValueError, match=f"{twins.sim_ids[1]} is not the LCDM twin of {twins.sim_ids[0]}"):
        twin_pairs(dataclasses.replace(twins, params=params))


def subset(ds, rows):
    return dataclasses.replace(ds, params=ds.params[rows], boost=ds.boost[rows], pk=ds.pk[rows],
                               pk_lin=ds.pk_lin[rows], sim_ids=tuple(ds.sim_ids[i] for i in rows),
                               timings=ds.timings[rows])


def test_response_hybrid_tracks_ee2_and_is_exact_at_lcdm(response, held_out):
    hybrid = make_hybrid(response)
    assert hybrid.mode == "response" and hybrid.info["mode"] == "response"
    a, b, _ = twin_pairs(held_out)
    # EE2 itself at theta (w0, wa included) is the independent reference: the
    # hybrid's error is R_emu's; the bar for the hybrid is 1 %.
    err = np.abs(hybrid.boost(K, held_out.z, columns(held_out, a)) / held_out.boost[a] - 1)
    assert err.max() < 0.01
    # R_emu(theta_LCDM) ~ 1: at the twins the hybrid is EE2's LCDM boost.
    assert response.info["lcdm_check"]["max_abs_R_minus_1"] < 1e-3
    at_lcdm = hybrid.boost(K, held_out.z, columns(held_out, b))
    assert np.abs(at_lcdm / held_out.boost[b] - 1).max() < 2e-3


def test_restricted_inputs_ignore_the_left_out_parameter(twins):
    emu = train_response(twins, FIT, params=["w0", "wa", "Omega_m"])
    assert emu.inputs == ("Omega_m", "w0", "wa") and emu.params == twins.varied
    p = {"Omega_m": 0.3, "Omega_b": 0.042, "w0": -0.8, "wa": 0.2}
    np.testing.assert_array_equal(emu.response(K, Z, p), emu.response(K, Z, {**p, "Omega_b": 0.058}))
    with pytest.raises(ValueError, match="train.params: h not varied by the dataset; allowed: Omega_m, Omega_b, w0, wa"):
        train_response(twins, FIT, params=["h", "w0"])
    with pytest.raises(ValueError, match="must include w0 or wa"):
        train_response(twins, FIT, params=["Omega_m"])


def test_response_round_trip_and_old_format_files(response, twins, tmp_path):
    hybrid = make_hybrid(response)
    back = emulators.load(hybrid.save(tmp_path / "hybrid.h5"))
    assert back.mode == "response" and back.cola.inputs == response.inputs
    p = columns(twins, np.arange(6))
    np.testing.assert_array_equal(back.boost(K, Z, p), hybrid.boost(K, Z, p))
    with h5py.File(tmp_path / "hybrid.h5") as f:
        assert f.attrs["format_version"] == emu_io.FORMAT_VERSION == 3


def test_version_2_files_are_still_read(twins, tmp_path, monkeypatch):
    boost = train_boost(ee2_dataset(12, Z, K, {"Omega_m": BOX["Omega_m"], "w0": BOX["w0"]}, seed=1),
                        FitSettings(network=TrainConfig(hidden=(8,), epochs=100)))
    monkeypatch.setattr(emu_io, "FORMAT_VERSION", 2)
    path = make_hybrid(boost).save(tmp_path / "v2.h5")
    monkeypatch.undo()
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == 2
    back = emulators.load(path)
    assert back.mode == "ratio"
    np.testing.assert_array_equal(back.boost(K, Z, {"Omega_m": 0.3, "w0": -0.9}),
                                  make_hybrid(boost).boost(K, Z, {"Omega_m": 0.3, "w0": -0.9}))


def test_sensitivity_recovers_an_analytic_response(twins):
    # ln R = 0.05 (w0 + 1)(1 + 0.4 x_b) + 0.02 wa, x_b = Omega_b scaled to [-1, 1]:
    # crossing Omega_b's box changes ln R by 0.04 |w0 + 1|; Omega_m not at all.
    a, b, _ = twin_pairs(twins)
    w0, wa, ob = twins.column("w0")[a], twins.column("wa")[a], twins.column("Omega_b")[a]
    lo, hi = BOX["Omega_b"]
    x_b = (2 * ob - lo - hi) / (hi - lo)
    ln_r = 0.05 * (w0 + 1) * (1 + 0.4 * x_b) + 0.02 * wa
    boost = twins.boost.copy()
    boost[a] = boost[b] * np.exp(ln_r)[:, None, None]

    sens = response_sensitivity(dataclasses.replace(twins, boost=boost))
    expect = 0.04 * np.abs(w0 + 1)
    assert sens["Omega_b"]["max"] == pytest.approx(expect.max(), rel=1e-6)
    assert sens["Omega_b"]["rms"] == pytest.approx(np.sqrt(np.mean(expect**2)), rel=1e-6)
    assert sens["Omega_m"]["max"] < 1e-10 and sens["_fit_rms"] < 1e-10
    assert sens["wa"]["max"] == pytest.approx(0.02 * 1.2, rel=1e-6)


# -- registry -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_root(response, twins, held_out, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    src = tmp_path_factory.mktemp("src")
    emu_path = make_hybrid(response).save(src / "hybrid.h5")
    write_dataset(src / "train.h5", twins)
    write_dataset(src / "test.h5", held_out)
    registry.write_model(emu_path, root / "tiny-w0wa", train=src / "train.h5", test=src / "test.h5",
                         description="A tiny test model.", ee2_points=12)
    return root


def test_model_directory(model_root):
    d = model_root / "tiny-w0wa"
    manifest = json.loads((d / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"hybrid.h5", "train.h5", "test.h5", "MODEL_CARD.md", "hybrid.validation.json"}
    assert sum(e["size"] for e in manifest["files"].values()) < 300_000
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == registry.sha256(d / name)
    assert manifest["files"]["hybrid.h5"]["format_version"] == emu_io.FORMAT_VERSION
    card = (d / "MODEL_CARD.md").read_text()
    for text in ("| Omega_b | 0.04 | 0.06 |", "## Against simulations (response R)", "## Against EuclidEmulator2", "p95 %",
                 "Headline (the hybrid's target): against EuclidEmulator2",
                 "cosmologies/s", f"version {emu_io.FORMAT_VERSION}", manifest["files"]["hybrid.h5"]["sha256"],
                 "train set: 80 simulations", "response R = B(theta)/B(theta_LCDM)",
                 "## Against EuclidEmulator2 over the box (12 Latin-hypercube cosmologies, seed 0)"):
        assert text in card, text
    assert "vs EE2 over the box (12 cosmologies)" in manifest["accuracy"]


def test_load_by_name_verifies_and_prints_short(model_root, monkeypatch, held_out):
    monkeypatch.setenv(registry.MODELS_ENV, str(model_root))
    emu = emulators.load("tiny-w0wa")
    text = repr(emu)
    assert len(text) < 1000 and text == str(emu)
    for part in ("hybrid emulator (response mode) 'tiny-w0wa'", "Omega_b [0.04, 0.06]", "k         0.02 - 1 h/Mpc",
                 "test simulations", str(model_root / "tiny-w0wa" / "hybrid.h5")):
        assert part in text, part
    assert repr(emu.cola).startswith("response emulator") and len(repr(emu.cola)) < 1000
    boost = train_boost_tiny()
    assert repr(boost).startswith("boost emulator") and "file      (not saved)" in repr(boost)
    with pytest.raises(ValueError, match="unknown emulator model 'nope'; shipped models: tiny-w0wa"):
        emulators.load("nope")


def test_workflows_name_shipped_models(model_root, monkeypatch):
    """power: {source: emulator, path: NAME} and emulator_bias.emulator take a shipped model;
    the sample stage's guard finds the validation report shipped next to it, and the
    response-mode hybrid feeds the shear power source."""
    from cosmopipe.likelihoods.shear.likelihood import _power_from
    from cosmopipe.pipeline.stages.emulator_guard import _power_facts
    from cosmopipe.schema import ConfigError, Section
    from cosmopipe.sims.cosmology import Cosmology

    monkeypatch.setenv(registry.MODELS_ENV, str(model_root))
    source = _power_from(Section({"source": "emulator", "path": "tiny-w0wa"}, "power", "w.yaml"), {})
    assert source.path == str(model_root / "tiny-w0wa" / "hybrid.h5")
    k, z = np.geomspace(0.05, 0.8, 12), np.array([0.0, 0.5])
    cosmo = Cosmology(Omega_m=0.3, w0=-0.85, wa=0.2)
    ratio = source.emulator.log_cola_ratio(k, z, cosmo.to_dict())
    assert ratio.shape == (2, 12) and np.all(np.isfinite(ratio)) and np.abs(ratio).max() > 1e-3
    facts = _power_facts(model_root / "tiny-w0wa" / "hybrid.h5")
    assert "EE2 at 12 cosmologies over the box" in facts.measured and "hybrid.validation.json" in facts.measured
    with pytest.raises(ConfigError, match="power.path: unknown emulator model 'nope'; shipped models: tiny-w0wa"):
        _power_from(Section({"source": "emulator", "path": "nope"}, "power", "w.yaml"), {})


def train_boost_tiny():
    return train_boost(ee2_dataset(6, Z, K, {"w0": BOX["w0"]}, seed=1),
                       FitSettings(network=TrainConfig(hidden=(4,), epochs=20)))


def test_damaged_and_newer_files_name_themselves(model_root, tmp_path):
    root = tmp_path / "models"
    shutil.copytree(model_root, root)
    d = root / "tiny-w0wa"
    expected = json.loads((d / "MANIFEST.json").read_text())["files"]["test.h5"]["sha256"]
    data = bytearray((d / "test.h5").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / "test.h5").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"test.h5: damaged: sha256 [0-9a-f]{{64}} .* should be sha256 {expected}"):
        registry.load("tiny-w0wa", root=root)
    shutil.copy(model_root / "tiny-w0wa" / "test.h5", d / "test.h5")
    manifest = json.loads((d / "MANIFEST.json").read_text())
    manifest["files"]["hybrid.h5"]["format_version"] = emu_io.FORMAT_VERSION + 1
    (d / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="hybrid.h5: emulator format_version 4 was written by a newer cosmopipe"):
        registry.load("tiny-w0wa", root=root)
    manifest["format_version"] = registry.MANIFEST_VERSION + 1
    (d / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="MANIFEST.json: manifest format_version 2 was written by a newer"):
        registry.load("tiny-w0wa", root=root)


# -- command line ---------------------------------------------------------------------
def run_cli(argv):
    return cli.main(argv)


def test_cli_models_and_batch_predictions(model_root, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(registry.MODELS_ENV, str(model_root))
    assert run_cli(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-w0wa: hybrid emulator (response mode)" in out and "w0 [-1.3, -0.7]" in out and "test simulations" in out
    table = tmp_path / "cosmologies.csv"
    table.write_text("Omega_m,w0,wa\n0.30,-0.9,0.1\n0.35,-1.1,-0.3\n")
    assert run_cli(["predict", "--emulator", "tiny-w0wa", "--table", str(table), "--z", "0", "1",
                    "--k", "0.1", "0.5", "--out", str(tmp_path / "out.csv")]) == 0
    rows = np.genfromtxt(tmp_path / "out.csv", delimiter=",", names=True)
    assert rows.size == 2 * 2 * 2
    # Omega_b was left out: the same default the Python API takes (the reference value).
    py = emulators.predict("tiny-w0wa", {"Omega_m": [0.30, 0.35], "w0": [-0.9, -1.1], "wa": [0.1, -0.3]},
                           z=[0, 1], k=[0.1, 0.5])
    np.testing.assert_allclose(rows["boost"], py["boost"].ravel(), rtol=1e-9)
    np.testing.assert_allclose(rows["Omega_b"], py["params"]["Omega_b"])
    emu = emulators.load("tiny-w0wa")
    direct = emu.boost([0.1, 0.5], [0, 1], {"Omega_m": 0.35, "Omega_b": float(rows["Omega_b"][0]), "w0": -1.1,
                                            "wa": -0.3})
    np.testing.assert_allclose(rows["boost"][4:], direct.ravel(), rtol=1e-9)
    assert run_cli(["predict", "tiny-w0wa", "--table", str(table), "--z", "0", "1", "--k", "0.1", "0.5",
                    "--out", str(tmp_path / "out.h5")]) == 0
    with h5py.File(tmp_path / "out.h5") as f:
        assert f["boost"].shape == (2, 2, 2)
        np.testing.assert_allclose(f["boost"][()], py["boost"], rtol=1e-9)
        np.testing.assert_array_equal(f["params/w0"][()], [-0.9, -1.1])
        assert f.attrs["emulator"].decode() == "tiny-w0wa" and f.attrs["code_version"]


@pytest.mark.parametrize("content, message", [
    ("Omega_m,w0\n0.3,abc\n", "line 2, column w0: 'abc' is not a number"),
    ("Omega_m,w0\n0.3\n", "line 2 has 1 values, the header 2 names"),
    ("Omega_m,w0\n0.5,-0.9\n", "parameter Omega_m=0.5 is outside the training box \\[0.24, 0.4\\]"),
    ("Omega_x,w0\n0.3,-0.9\n", "unknown parameter\\(s\\) Omega_x"),
])
def test_cli_table_errors(model_root, monkeypatch, tmp_path, capsys, content, message):
    monkeypatch.setenv(registry.MODELS_ENV, str(model_root))
    table = tmp_path / "t.csv"
    table.write_text(content)
    assert run_cli(["predict", "--emulator", "tiny-w0wa", "--table", str(table), "--out", str(tmp_path / "o.csv")]) != 0
    err = capsys.readouterr().err
    assert "t.csv" in err and re.search(message, err), err


def test_cli_model_card(model_root, tmp_path, capsys):
    d = model_root / "tiny-w0wa"
    assert run_cli(["model-card", str(d / "hybrid.h5"), "--out", str(tmp_path / "again"), "--no-ee2"]) == 0
    out = capsys.readouterr().out
    assert "# Model `again`" in out and "Not validated" not in out
    assert registry.verify_model(tmp_path / "again")["name"] == "again"


def test_few_rows_read_a_float32_copy_of_a_large_folded_basis():
    # The EE2 surrogate on a sampling grid (40 z x 200 k) folds 21 components into a 1.3 MB
    # basis: one cosmology reads its float32 copy (memory-bound: twice as fast), a batch the
    # float64 original.  The copy's rounding must stay far below the surrogate's own error.
    sur = emulators.load("w0wa_cola128").ee2_lcdm
    z, k = np.linspace(0.0, 3.0, 40), np.geomspace(0.03, 1.2, 200)
    theta = sur.space.lower + np.linspace(0.2, 0.8, 6)[:, None] * (sur.space.upper - sur.space.lower)
    op = sur.model.operator(k, z, "test")
    assert op.basis32 is not None and op.basis32.dtype == np.float32
    batch = sur.model.apply(theta, op)                        # 6 rows: float64
    for i in range(theta.shape[0]):
        one = sur.model.apply(theta[i:i + 1], op)[0]           # 1 row: float32 basis
        np.testing.assert_allclose(one, batch[i], rtol=0, atol=2e-6)   # in ln B
