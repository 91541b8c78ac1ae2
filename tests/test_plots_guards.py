"""Guards on a posterior: the sample stage refuses an emulator that misses its validation
target, whose box does not cover a prior or that holds a sampled parameter fixed (with an
explicit override recorded in the summary); ``cosmopipe plot`` marks unconverged runs
(banner, warning, --strict), hides nuisances without --all, labels units, names runs
after their workflow and writes thinned chains that replot to the same constraints.

The emulator is a real boost emulator trained in seconds on EuclidEmulator2 boosts; the
likelihood a Gaussian in its parameters that names the emulator file in its settings,
as the shear likelihood does (``power: {source: emulator, path: ...}``).
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from cosmopipe.emulators.boost import train_boost
from cosmopipe.emulators.ee2 import EE2_BOX
from cosmopipe.emulators.network import TrainConfig
from cosmopipe.emulators.synthetic import ee2_dataset
from cosmopipe.emulators.training import FitSettings
from cosmopipe.likelihoods import base
from cosmopipe.pipeline.cli import main
from cosmopipe.pipeline.stages.emulator_guard import EmulatorRef, GuardRefusal, check_emulators
from cosmopipe.pipeline.stages.posterior import parse, run
from cosmopipe.pipeline.workflow import RunContext, Workflow
from cosmopipe.schema import ConfigError, Section

import logging

LOG = logging.getLogger("test")


class EmuGauss:
    """Gaussian in (Omega_m, w0); its settings name an emulator file like the shear likelihood's."""

    name = "emu_gauss"
    input_params = ("Omega_m", "w0", "h")

    def requirements(self):
        return {}

    def parameters(self):
        return {"b_nuis": {"prior": "flat", "min": -1.0, "max": 1.0}}

    def loglike(self, theory, params):
        return -0.5 * (((params["Omega_m"] - 0.3) / 0.02) ** 2 + ((params["w0"] + 1) / 0.1) ** 2
                       + (params["b_nuis"] / 0.3) ** 2)


def emu_gauss(section, info):
    section.take("power", lambda v: v)
    section.finish()
    return EmuGauss()


@pytest.fixture(autouse=True)
def _register(monkeypatch):
    monkeypatch.setitem(base.LIKELIHOODS, "emu_gauss", f"{__name__}:emu_gauss")


@pytest.fixture(scope="module")
def emulator_file(tmp_path_factory):
    """A boost emulator varying Omega_m, w0 (h fixed at 0.67) in a run-directory layout."""
    box = {n: EE2_BOX[n] for n in ("Omega_m", "w0")}
    ds = ee2_dataset(16, [0.0, 1.0], np.geomspace(0.05, 1.0, 12), box, seed=1)
    emu = train_boost(ds, FitSettings(network=TrainConfig(hidden=(16,), epochs=300)))
    run_dir = tmp_path_factory.mktemp("emu_run")
    return emu.save(run_dir / "emulators" / "boost.h5"), emu


def _sample(path, **params):
    p = {"Omega_m": {"prior": {"min": 0.25, "max": 0.35}}, "w0": {"prior": {"min": -1.2, "max": -0.8}}}
    p.update(params)
    return {"likelihoods": {"emu_gauss": {"power": {"source": "emulator", "path": str(path)}}}, "params": p,
            "sampler": {"walkers": 8, "chains": 1, "seed": 2, "max_steps": 40, "check_every": 20,
                        "parallel": "none"}}


def _run(sample: dict, run_dir: Path, allow_cli: bool = False):
    info = {"name": "guarded", "run_dir": run_dir, "source": "test.yaml", "data_dir": None}
    settings = parse(Section(sample, "sample", "test.yaml"), info)
    wf = Workflow(source="test.yaml", name="guarded", run_dir=run_dir, data_dir=None, cluster=None,
                  stages={"sample": settings})
    if allow_cli:
        from cosmopipe.pipeline.stages.sample_support import allow_unvalidated_emulators

        allow_unvalidated_emulators(wf)
    run(wf.stages["sample"], RunContext(wf, progress=False))
    return json.loads((run_dir / "chains" / "summary.json").read_text())


def test_validated_emulator_covering_the_priors_is_sampled(emulator_file, tmp_path):
    path, emu = emulator_file
    assert emu.info["validation"]["max_k_le_1_p95"] <= 0.01       # the premise: it meets the boost target
    summary = _run(_sample(path), tmp_path)
    assert summary["warnings"] == [] and summary["nuisance"] == ["b_nuis"] and summary["workflow"] == "guarded"


def _refusal(sample, tmp_path) -> str:
    with pytest.raises(ConfigError) as info:
        _run(sample, tmp_path)
    message = str(info.value)
    assert "\n" not in message and not (tmp_path / "chains").exists()
    print(message)
    return message


def test_refuses_a_failed_validation_recorded_by_the_validate_stage(emulator_file, tmp_path):
    path, emu = emulator_file
    report = path.parent.parent / "validation" / "validation.json"
    report.parent.mkdir(exist_ok=True)
    report.write_text(json.dumps({"summary": {"emulator_kind": "boost", "trained_on": emu.info["dataset_hash"],
                                              "p95_max_error_k_le_1_z_le_3": 0.034}}))
    try:
        msg = _refusal(_sample(path), tmp_path)
    finally:
        report.unlink()
    assert f"emulator {path} (boost) fails its validation target" in msg
    assert "against the held-out simulations = 3.4 % > target 1 %" in msg
    assert "allow_unvalidated_emulator: true or run with --allow-unvalidated" in msg


def test_refuses_a_box_that_does_not_cover_the_prior(emulator_file, tmp_path):
    path, _ = emulator_file
    msg = _refusal(_sample(path, w0={"prior": {"min": -1.5, "max": -0.8}}), tmp_path)
    lo, hi = EE2_BOX["w0"]
    assert f"its box of w0, [{lo:g}, {hi:g}], does not cover the prior [-1.5, -0.8]" in msg


def test_refuses_a_sampled_parameter_the_emulator_holds_fixed(emulator_file, tmp_path):
    path, _ = emulator_file
    msg = _refusal(_sample(path, h={"prior": {"min": 0.6, "max": 0.8}}), tmp_path)
    assert "holds h fixed at 0.67 but the workflow samples it (prior [0.6, 0.8])" in msg


def test_a_shipped_model_name_is_judged_on_its_model_card(caplog):
    """The workflows name shipped models (power.path: w0wa_cola128): the guard must judge the
    model's recorded validation, not refuse the bare name as a missing file."""
    ref = EmulatorRef(Path("w0wa_cola128"), "sample.likelihoods.lsst_y1_shear.power.path", "power")
    with pytest.raises(GuardRefusal) as err:
        check_emulators([ref], {}, allow=False, log=logging.getLogger("test"))
    msg = str(err.value)
    assert "not found" not in msg
    assert "against EuclidEmulator2" in msg and "> target 1 %" in msg and "hybrid.validation.json" in msg
    unknown = EmulatorRef(Path("no_such_model"), "sample.theory.path", "observables")
    with pytest.raises(GuardRefusal, match="unknown emulator model 'no_such_model'; shipped models: "):
        check_emulators([unknown], {}, allow=False, log=logging.getLogger("test"))


@pytest.mark.parametrize("via", ["config", "cli"])
def test_override_samples_anyway_and_records_the_warning(emulator_file, tmp_path, via):
    path, _ = emulator_file
    sample = _sample(path, h={"prior": {"min": 0.6, "max": 0.8}})
    if via == "config":
        sample["allow_unvalidated_emulator"] = True
    summary = _run(sample, tmp_path, allow_cli=via == "cli")
    assert len(summary["warnings"]) == 1 and summary["warnings"][0].startswith("UNVALIDATED EMULATOR ALLOWED: ")
    assert "holds h fixed at 0.67" in summary["warnings"][0]
    assert f"**WARNING: {summary['warnings'][0]}**" in (tmp_path / "chains" / "summary.md").read_text()


def _observables_file(path: Path, check: dict | None) -> Path:
    """The attributes the guard reads of an observables emulator (box, fixed, provenance)."""
    with h5py.File(path, "w") as f:
        f.attrs["fixed"] = json.dumps({"mnu": 0.06})
        f.attrs["provenance"] = json.dumps({"n_campaign": 14, **({"delta_chi2_check": check} if check else {})})
        b = f.create_group("box")
        b.attrs["names"] = json.dumps(["omch2", "f_EDE"])
        b.create_dataset("lower", data=[0.11, 0.0])
        b.create_dataset("upper", data=[0.14, 0.2])
    return path


def test_observables_emulator_delta_chi2_check_travels_in_the_file(tmp_path):
    priors = {"omch2": (0.11, 0.14), "f_EDE": (0.0, 0.2)}
    bad = EmulatorRef(_observables_file(tmp_path / "bad.h5", {"p95_total": 512.0, "points": 50,
                                                              "where": "held-out CAMB"}), "sample.theory.path",
                      "observables")
    with pytest.raises(GuardRefusal) as info:
        check_emulators([bad], priors, allow=False, log=LOG)
    print(info.value)
    assert ("fails its validation target: p95 of the emulator error's Delta chi^2 (all likelihoods, data = the "
            "CAMB model) against CAMB = 512 > target 1 (50 held-out CAMB points)") in str(info.value)
    unchecked = EmulatorRef(_observables_file(tmp_path / "old.h5", None), "sample.theory.path", "observables")
    with pytest.raises(GuardRefusal, match="no Delta chi\\^2 check recorded in the file"):
        check_emulators([unchecked], priors, allow=False, log=LOG)
    good = EmulatorRef(_observables_file(tmp_path / "good.h5", {"p95_total": 0.12, "points": 200,
                                                                "where": "posterior-sample CAMB"}),
                       "sample.theory.path", "observables")
    assert check_emulators([good], priors, allow=False, log=LOG) == []
    with pytest.raises(GuardRefusal, match="holds mnu fixed at 0.06"):
        check_emulators([good], {**priors, "mnu": (0.0, 0.5)}, allow=False, log=LOG)
    assert len(check_emulators([bad, unchecked], priors, allow=True, log=LOG)) == 2


# -- cosmopipe plot ---------------------------------------------------------------------
def _chains(run_dir: Path, status: str, rminus1: float, workflow: str | None = "lsst_demo") -> Path:
    """GetDist chains of Omega_m, H0 (units), nuisance dz_1, derived S8, with a sample-stage summary."""
    chains = run_dir / "chains"
    chains.mkdir(parents=True)
    rng = np.random.default_rng(3)
    x = np.array([0.3, 70.0, 0.0]) + np.array([0.02, 2.0, 0.01]) * rng.standard_normal((20000, 3))
    s8 = 0.8 * np.sqrt(x[:, 0] / 0.3)
    np.savetxt(chains / "run_1.txt", np.column_stack([np.ones(len(x)), np.zeros(len(x)), x, s8]))
    (chains / "run.paramnames").write_text("Omega_m\t\\Omega_m\nH0\tH_0\ndz_1\t\\Delta z_1\nS8*\tS_8\n")
    summary = {"getdist_root": str(chains / "run"), "status": status, "steps_per_chain": 400,
               "tests": {"rminus1": rminus1, "rminus1_limit": 0.01, "tau_long_enough": status == "converged",
                         "tau_factor": 50, "tau_stable": True, "tau_change": 0.001},
               "fiducial": {"Omega_m": 0.3, "H0": 70.0}, "nuisance": ["dz_1"]}
    if workflow:
        summary["workflow"] = workflow
    (chains / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_unconverged_run_gets_a_banner_a_warning_and_is_refused_with_strict(tmp_path, capsys):
    run_dir = _chains(tmp_path / "r", "budget", 0.85)
    out = tmp_path / "tri.png"
    assert main(["plot", str(run_dir), "--out", str(out), "--strict"]) == 2
    said = capsys.readouterr().out
    assert ("cosmopipe plot: refused (--strict): lsst_demo: NOT CONVERGED (R-1 = 0.85 (limit 0.01), chain "
            "shorter than 50 tau, 400 steps per chain)") in said and not out.exists()
    assert main(["plot", str(run_dir), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.rstrip().splitlines()[-1] == ("WARNING: lsst_demo: NOT CONVERGED (R-1 = 0.85 (limit 0.01), chain "
                                              "shorter than 50 tau, 400 steps per chain)")
    from matplotlib.image import imread

    img = imread(out)
    top = img[: max(3, img.shape[0] // 40)].reshape(-1, img.shape[-1])[:, :3]
    red = (top[:, 0] > 0.7) & (top[:, 1] < 0.1) & (top[:, 2] < 0.1)
    assert red.mean() > 0.02                      # the banner's red box across the top
    converged = _chains(tmp_path / "c", "converged", 0.004)
    assert main(["plot", str(converged), "--out", str(tmp_path / "ok.png"), "--strict"]) == 0
    assert "WARNING" not in capsys.readouterr().out
    img = imread(tmp_path / "ok.png")[:10].reshape(-1, 4)[:, :3]
    assert not ((img[:, 0] > 0.7) & (img[:, 1] < 0.1) & (img[:, 2] < 0.1)).any()


def test_defaults_a_cosmologist_would_show_and_thinned_replot(tmp_path, capsys):
    run_dir = _chains(tmp_path / "r", "converged", 0.004)
    out = tmp_path / "tri.png"
    assert main(["plot", str(run_dir), "--out", str(out), "--thin-out", str(tmp_path / "thin")]) == 0
    table = out.with_suffix(".md").read_text()
    header, *rows = [line for line in table.splitlines() if line.startswith("| $") or line.startswith("| Param")]
    assert header.split("|")[2].strip() == "lsst_demo"                 # legend/column: the workflow's name
    assert [r.split("|")[1].strip() for r in rows] == [
        "$\\Omega_m$", "$H_0\\ [\\mathrm{km\\,s^{-1}\\,Mpc^{-1}}]$", "$S_8$"]   # no dz_1; H0 with units
    assert rows[0].split("|")[-2].strip() == "0.3"                      # fiducial column
    thin = tmp_path / "thin" / "lsst_demo"
    meta = json.loads((thin / "thinned.json").read_text())
    assert meta["status"] == "converged" and meta["provenance"]["rows_in"] == 20000
    assert (thin / "lsst_demo.txt").stat().st_size <= 5_000_000
    src = run_dir / "chains" / "run_1.txt"
    import hashlib

    assert meta["provenance"]["source_files"][str(src)] == hashlib.sha256(src.read_bytes()).hexdigest()
    capsys.readouterr()
    assert main(["plot", str(thin), "--out", str(tmp_path / "re.png"), "--all"]) == 0
    again = (tmp_path / "re.md").read_text()
    assert "\\Delta z_1" in again                                        # --all shows the nuisance
    for row in rows:
        assert row in again                                             # same constraints from the thinned chain


def test_thinning_caps_the_file_size(tmp_path):
    from cosmopipe.pipeline.posterior import find_chains
    from cosmopipe.pipeline.thin import thin_run

    run_dir = _chains(tmp_path / "r", "converged", 0.004)
    written = thin_run(find_chains(run_dir), tmp_path / "t", "small", max_bytes=200_000)
    meta = json.loads((written / "thinned.json").read_text())["provenance"]
    assert (written / "small.txt").stat().st_size <= 200_000 and meta["thinned_by"] > 1
    assert meta["rows_kept"] == len(np.loadtxt(written / "small.txt"))
