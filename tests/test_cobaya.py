"""The project's likelihoods inside Cobaya (cosmopipe.likelihoods.cobaya_interface): Cobaya's
own ``camb`` theory with the project's CAMB settings gives the same log-likelihoods as the
project's CAMB provider, and a short Cobaya MCMC on BAO + SN records the project's values."""
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

cobaya = pytest.importorskip("cobaya", reason="cobaya is not installed")
pytest.importorskip("camb", reason="camb is not installed")

from cosmopipe.likelihoods import data_registry as reg  # noqa: E402


def _shared_data() -> Path | None:
    env = os.environ.get(reg.ENV_VAR)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


DATA = _shared_data()
NEEDED = ("bao_sixdf_2011", "bao_sdss_mgs", "bao_desi_dr2", "sn_pantheon_binned", "sn_pantheon_plus",
          "planck_2018_plik_lite", "planck_2018_lowl_tt_2bins", "planck_sroll2_lowE")
pytestmark = pytest.mark.skipif(DATA is None or not all(reg.available(n, DATA) for n in NEEDED),
                                reason="BAO / SN / Planck data not found: set COSMOPIPE_DATA or provide ../shared/data")

from cosmopipe.likelihoods import cobaya_interface as ci  # noqa: E402
from cosmopipe.likelihoods.theory.camb_theory import camb_theory, merge_requirements  # noqa: E402

# Planck 2018 TT,TE,EE+lowE+lensing best fit (arXiv:1807.06209, Table 1), As = 1e-10 e^3.0448.
POINT = dict(H0=67.32, ombh2=0.022383, omch2=0.12011, As=1e-10 * math.exp(3.0448), ns=0.96605, tau=0.0543,
             mnu=0.06)
A_PLANCK = 1.00044
CLS = "cosmopipe.likelihoods.cobaya_interface."
LIKES = {
    "bao": {"class": CLS + "BAO", "sets": ["sixdf_2011", "sdss_dr7_mgs", "desi_dr2"]},
    "pantheon": {"class": CLS + "Pantheon"},  # binned, stat + sys covariance
    "pantheon_plus": {"class": CLS + "PantheonPlus", "covariance": "diagonal"},
    "plik_lite": {"class": CLS + "PlikLite"},
    "lowl_tt": {"class": CLS + "LowlTT"},
    "lowl_ee": {"class": CLS + "LowlEE"},
}
# The project's own CAMB provider and Cobaya's camb make the same CAMB call (CAMB_EXTRA_ARGS),
# so the bar applies.  Measured (CAMB 2.0.5, cobaya 3.6.2): C_ell equal to 2e-16,
# H(z) to 3e-12, r_drag exactly; D_A to 2e-10 (camb_theory splines chi(z), Cobaya asks CAMB
# at the data redshifts); ln L relative differences 1e-12 (BAO), 6e-10 (Pantheon),
# 4e-11 (Pantheon+), 2e-16 (plik-lite).
RTOL = 1e-8


@pytest.fixture(scope="module")
def model(one_thread):
    from cobaya.model import get_model

    # A_planck is not given: it comes from the wrappers' own ``params`` (sampled, its prior).
    info = {"params": dict(POINT),
            "theory": {"camb": {"extra_args": dict(ci.CAMB_EXTRA_ARGS)}},
            "likelihood": {name: dict(spec, data_dir=str(DATA)) for name, spec in LIKES.items()}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pantheon+ with diagonal errors warns
        return get_model(info)


@pytest.fixture(scope="module")
def project_theory(model):
    projects = [model.likelihood[name].project for name in LIKES]
    return camb_theory(POINT, merge_requirements(*(p.requirements() for p in projects)))


def test_registry_names_give_the_classes():
    assert ci.cobaya_likelihood_class("bao") is ci.BAO
    assert ci.cobaya_likelihood_class("pantheon_plus") is ci.PantheonPlus
    assert ci.cobaya_likelihood_class("planck_2018_plik_lite") is ci.PlikLite
    assert ci.cobaya_likelihood_class("lsst_y1_shear") is ci.LSSTY1Shear
    with pytest.raises(KeyError, match="not wrapped yet"):
        ci.cobaya_likelihood_class("planck_2018_lensing")


def test_requirements_are_translated(model):
    bao = model.likelihood["bao"]
    req = bao.get_requirements()
    assert set(req) == {"angular_diameter_distance", "Hubble", "rdrag"}
    assert np.array_equal(req["Hubble"]["z"], np.unique(np.concatenate([np.atleast_1d(p.z) for p in bao.project.parts])))
    assert model.likelihood["plik_lite"].get_requirements() == {"Cl": {"tt": 2508, "te": 2508, "ee": 2508}}
    assert model.likelihood["lowl_ee"].get_requirements() == {"Cl": {"ee": 29}}
    with pytest.raises(ci.TheorySetupError, match="pk_nl"):
        ci.cobaya_requirements({"pk_nl": {"kmax": 10, "zmax": 4}})


def test_cobaya_params_declare_a_planck_prior(model):
    assert list(model.parameterization.sampled_params()) == ["A_planck"]
    for name in ("plik_lite", "lowl_tt", "lowl_ee"):
        assert "A_planck" in model.likelihood[name].input_params
    # Gaussian 1 +- 0.0025, applied once: one sigma away costs 1/2 in ln prior.
    assert model.logprior({"A_planck": 1.0025}) - model.logprior({"A_planck": 1.0}) == pytest.approx(-0.5, rel=1e-12)


def test_loglikes_equal_the_projects_own(model, project_theory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cobaya_ll = dict(zip(model.likelihood, model.loglikes({"A_planck": A_PLANCK})[0]))
    params = {"A_planck": A_PLANCK}
    for name in LIKES:
        mine = model.likelihood[name].project.loglike(project_theory, params)
        assert np.isfinite(mine) and mine < 0
        assert cobaya_ll[name] == pytest.approx(mine, rel=RTOL, abs=0), name


def test_products_match_the_projects_camb(model, project_theory):
    model.loglikes({"A_planck": A_PLANCK})
    sn = model.likelihood["pantheon_plus"]
    ours = sn.theory({})
    z = sn.project.z
    assert np.allclose(ours.angular_diameter_distance(z), project_theory.angular_diameter_distance(z), rtol=1e-9, atol=0)
    assert np.allclose(ours.hubble(z), project_theory.hubble(z), rtol=1e-11, atol=0)
    assert np.allclose(ours.comoving_distance(z), project_theory.comoving_distance(z), rtol=1e-9, atol=0)
    assert model.likelihood["bao"].theory({}).rdrag == pytest.approx(project_theory.rdrag, rel=1e-12)
    cls = model.likelihood["plik_lite"].theory({"A_planck": 1.0}).cls
    for key in ("tt", "te", "ee"):
        a, b = cls[key][2:2509], project_theory.cls[key][2:2509]
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b)), key
    with pytest.raises(ci.TheorySetupError, match="not asked of Cobaya"):
        ours.hubble(np.array([0.123456]))


def test_short_mcmc_records_the_projects_loglikes(one_thread, tmp_path):
    from cobaya.run import run

    fixed = {k: v for k, v in POINT.items() if k != "H0"}
    info = {"params": dict(fixed, H0={"prior": {"min": 60.0, "max": 80.0}, "ref": 68.0, "proposal": 1.0}),
            "theory": {"camb": {"extra_args": dict(ci.CAMB_EXTRA_ARGS)}},
            "likelihood": {"bao": dict(LIKES["bao"], data_dir=str(DATA)),
                           "pantheon": dict(LIKES["pantheon"], data_dir=str(DATA))},
            "sampler": {"mcmc": {"max_samples": 20, "learn_proposal": False, "burn_in": 0, "seed": 1}},
            "output": str(tmp_path / "chain"), "force": True}
    _, sampler = run(info)
    sample = sampler.products()["sample"]
    assert len(sample) >= 2
    h0 = np.asarray(sample["H0"])
    assert np.all((60 < h0) & (h0 < 80)) and np.unique(h0).size >= 2
    bao = ci.cobaya_likelihood_class("bao")
    projects = {name: sampler.model.likelihood[name].project for name in ("bao", "pantheon")}
    assert isinstance(sampler.model.likelihood["bao"], bao)
    req = merge_requirements(*(p.requirements() for p in projects.values()))
    for i in np.unique(np.linspace(0, len(sample) - 1, 3).astype(int)):
        theory = camb_theory(dict(fixed, H0=float(h0[i])), req)
        mine = {name: p.loglike(theory, {}) for name, p in projects.items()}
        # logposterior = ln(prior density 1/20) + sum of ln L
        logpost = -float(sample["minuslogpost"].iloc[i])
        assert logpost == pytest.approx(-math.log(20.0) + sum(mine.values()), rel=RTOL, abs=0)
        for name, value in mine.items():
            assert -0.5 * float(sample[f"chi2__{name}"].iloc[i]) == pytest.approx(value, rel=RTOL, abs=0)


def test_the_package_does_not_import_cobaya():
    import subprocess
    import sys

    code = ("import sys, cosmopipe.likelihoods, cosmopipe.likelihoods.base, cosmopipe.likelihoods.bao, "
            "cosmopipe.likelihoods.planck, cosmopipe.likelihoods.theory.resolver; print('cobaya' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "False"


def test_example_yaml_runs_with_evaluate(one_thread, monkeypatch):
    """workflows/cobaya_bao_sn.yaml as committed, with Cobaya's evaluate sampler at its
    reference point; the recorded ln L are the project's own."""
    from cobaya.run import run
    from cobaya.yaml import yaml_load_file

    monkeypatch.setenv(reg.ENV_VAR, str(DATA))
    info = yaml_load_file(str(Path(__file__).resolve().parents[1] / "workflows" / "cobaya_bao_sn.yaml"))
    assert set(info["likelihood"]) == {"bao", "pantheon"}
    info["sampler"] = {"evaluate": {"override": {"H0": 69.1, "omch2": 0.118}}}
    info.pop("output")
    _, sampler = run(info)
    row = sampler.products()["sample"]
    fixed = {k: v for k, v in info["params"].items() if isinstance(v, float)}
    point = dict(fixed, H0=69.1, omch2=0.118)
    assert float(row["H0"].iloc[0]) == 69.1 and float(row["omch2"].iloc[0]) == 0.118
    projects = {name: sampler.model.likelihood[name].project for name in ("bao", "pantheon")}
    theory = camb_theory(point, merge_requirements(*(p.requirements() for p in projects.values())))
    for name, p in projects.items():
        assert -0.5 * float(row[f"chi2__{name}"].iloc[0]) == pytest.approx(p.loglike(theory, {}), rel=RTOL, abs=0)
    assert float(row["omegam"].iloc[0]) == pytest.approx(theory.derived["Omega_m"], rel=1e-10)
