"""The LSST-Y1 shear likelihood in Cobaya on Cobaya's own camb (cosmopipe.likelihoods.cobaya_shear):
against the project's CAMB provider, and in the joint shear + CMB workflow
(workflows/cobaya_joint_shear_cmb.yaml)."""
import math
import os
from pathlib import Path

import numpy as np
import pytest

cobaya = pytest.importorskip("cobaya", reason="cobaya is not installed")
pytest.importorskip("camb", reason="camb is not installed")

from cobaya.model import get_model  # noqa: E402

from cosmopipe.likelihoods import cobaya_interface as ci  # noqa: E402
from cosmopipe.likelihoods import data_registry as reg  # noqa: E402
from cosmopipe.likelihoods.theory.background import background, comoving_distance_grid  # noqa: E402
from cosmopipe.schema import Section  # noqa: E402
from cosmopipe.sims.cosmology import Cosmology  # noqa: E402

SHEAR = "cosmopipe.likelihoods.cobaya_shear.LSSTY1Shear"
# 3 bins, 8 angles, a mock from CAMB HMcode at the EE2 reference cosmology.
OPTIONS = {"survey": {"nbins": 3}, "theta": {"min": 5.0, "max": 250.0, "nbins": 8},
           "data": {"power": {"source": "hmcode"}}}


def _shared_data() -> Path | None:
    env = os.environ.get(reg.ENV_VAR)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


DATA = _shared_data()


@pytest.fixture(scope="module")
def camb_pair(one_thread):
    """(the project's shear likelihood with P_nl from its theory provider, that provider (CAMB,
    sample.theory.provider: camb), the point in Planck names, the Cobaya model on camb)."""
    from cosmopipe.likelihoods.shear.likelihood import from_config
    from cosmopipe.likelihoods.theory import make_theory
    from cosmopipe.likelihoods.theory.params import ee2_to_planck

    project = from_config(Section({"power": {"source": "theory"}, **OPTIONS}, "shear"), {})
    theory = make_theory(Section({"provider": "camb"}, "sample.theory"),
                         {"requirements": [project.requirements()], "names": ["lsst_y1_shear"]})
    point = ee2_to_planck(Cosmology().to_dict())
    point["As"] = 1e-10 * math.exp(point.pop("logA"))
    params = {k: ({"prior": {"min": 0.9 * v, "max": 1.1 * v}, "ref": v} if k in ("omch2", "As") else v)
              for k, v in point.items()}
    model = get_model({"params": params, "theory": {"camb": {"extra_args": dict(ci.CAMB_EXTRA_ARGS)}},
                       "likelihood": {"shear": {"class": SHEAR, **OPTIONS}}})
    return project, theory, point, model


def test_camb_shear_agrees_with_the_projects_camb_provider(camb_pair):
    """Same CAMB settings (one massive eigenstate, HMcode 2020) both ways.  P_nl agrees: with the
    project's background in the Cobaya kernels the data vectors differ by 2e-6 (measured).  The
    backgrounds differ (CAMB's H(z) against the project's fast background, 1.7e-4): the theory
    vectors then differ by up to 2.6e-4 (< 0.01 sigma per point) and ln L by up to 0.1 at
    chi^2 ~ 100 (measured at three points; one is tested, each costs two CAMB runs)."""
    project, theory, point, model = camb_pair
    shear = model.likelihood["shear"]
    sigma = np.sqrt(np.diag(project.cov))
    nuisances = [n for n in model.parameterization.sampled_params() if n not in ("omch2", "As")]
    sampled = {"omch2": point["omch2"] * 1.04, "As": point["As"] * 0.96}
    values = {**dict.fromkeys(nuisances, 0.0), "A_IA": 0.8, "eta_IA": 0.5, "dz_1": 0.003, "m_2": 0.01}
    cobaya_lnl = model.loglikes({**sampled, **values})[0][0]
    params = {**point, **sampled, **values}
    result = theory(params)
    mine = project.loglike(result, params)
    assert np.isfinite(mine) and mine < -10 and abs(cobaya_lnl - mine) < 0.3
    ours, theirs = shear.theory_vector(values), project._vector_from(result, params)
    assert np.max(np.abs(ours / theirs - 1)) < 5e-4
    assert np.max(np.abs(ours - theirs) / sigma) < 0.02
    # P_nl alone: the Cobaya path with the project's background
    cosmo, nuis = project.model.split({**result.params, **params}, strict=False)
    bg = background(cosmo)
    E = bg.E(project.model.z_fine)
    kern = project.model.kernels_from(E, comoving_distance_grid(project.model.z_fine, E), cosmo.Omega_m, bg.growth,
                                      nuis)
    lnp = project.model.z_interp @ shear.log_pk(cosmo.h)
    xp, xm = project.model.xi_from(None, nuis, lnp, kern)
    assert np.max(np.abs(np.concatenate([xp.ravel(), xm.ravel()]) / theirs - 1)) < 1e-5
    # Omega_m: CAMB's total matter and the project's conversion of the same Planck parameters
    assert model.provider.get_param("omegam") == pytest.approx(cosmo.Omega_m, rel=1e-7)


NEEDED = ("planck_2018_plik_lite", "planck_2018_lowl_tt_2bins", "planck_sroll2_lowE", "sn_pantheon_binned",
          "bao_sixdf_2011", "bao_sdss_mgs", "bao_boss_dr12")
needs_planck = pytest.mark.skipif(DATA is None or not all(reg.available(n, DATA) for n in NEEDED),
                                  reason="Planck data not found: set COSMOPIPE_DATA or provide ../shared/data")


def _joint_workflow(monkeypatch, **shear_changes):
    from cobaya.yaml import yaml_load_file

    monkeypatch.setenv(reg.ENV_VAR, str(DATA))
    info = yaml_load_file(str(Path(__file__).resolve().parents[1] / "workflows" / "cobaya_joint_shear_cmb.yaml"))
    assert info["likelihood"]["lsst_y1_shear"]["class"] == SHEAR and "camb" in info["theory"]
    assert set(info["likelihood"]) == {"lsst_y1_shear", "planck_plik_lite", "planck_lowl_tt", "planck_lowl_ee",
                                       "bao", "pantheon"}
    info["likelihood"]["lsst_y1_shear"].update(shear_changes)
    info.pop("output")
    info.pop("sampler")
    return get_model(info)


def _evaluates_at_the_reference(model):
    sampled = list(model.parameterization.sampled_params())
    assert {"logA", "ns", "H0", "ombh2", "omch2", "tau", "A_planck", "dz_5", "m_5", "A_IA", "eta_IA"} <= set(sampled)
    point = model.prior.reference(random_state=1)
    result = model.logposterior(point)
    assert np.isfinite(result.logpost) and np.all(np.isfinite(result.loglikes))
    lnl = dict(zip(model.likelihood, result.loglikes))
    assert -200 < lnl["lsst_y1_shear"] < 0   # a mock at a Planck-like point: a fair fit
    derived = dict(zip(model.parameterization.derived_params(), result.derived))
    assert 0.6 < derived["sigma8"] < 1.0
    assert derived["S8"] == pytest.approx(derived["sigma8"] * math.sqrt(derived["omegam"] / 0.3), rel=1e-12)


@needs_planck
def test_joint_shear_cmb_workflow_evaluates(one_thread, monkeypatch):
    """workflows/cobaya_joint_shear_cmb.yaml, its shear angles cut to 8 bins (the curved-sky xi
    matrices of 26 bins take 10 s to build here): a Cobaya model, finite at its reference point."""
    _evaluates_at_the_reference(_joint_workflow(monkeypatch, theta={"min": 5.0, "max": 250.0, "nbins": 8}))


@pytest.mark.slow
@needs_planck
def test_joint_shear_cmb_workflow_as_committed(one_thread, monkeypatch):
    _evaluates_at_the_reference(_joint_workflow(monkeypatch))
