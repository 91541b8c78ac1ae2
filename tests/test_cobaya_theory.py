"""A cosmopipe emulator as a Cobaya theory (cosmopipe.likelihoods.cobaya_theory) and the
LSST-Y1 shear likelihood on it (cosmopipe.likelihoods.cobaya_shear): Cobaya's product
conventions, both parameter vocabularies, bad input, and the shear ln L equal to the
project's own with the same emulator as power source.

The emulator is made here in seconds: a boost emulator of EuclidEmulator2 boosts with an
attached linear-power emulator fitted to an analytic (Eisenstein-Hu x growth) spectrum.
It is crude, which does not matter: every comparison is between two paths through the
same emulator."""
import math
import re
from pathlib import Path

import numpy as np
import pytest

cobaya = pytest.importorskip("cobaya", reason="cobaya is not installed")

from cobaya.likelihood import Likelihood  # noqa: E402
from cobaya.log import LoggedError  # noqa: E402
from cobaya.model import get_model  # noqa: E402

from cosmopipe.likelihoods.cobaya_theory import (EmulatedMatterPower, comoving_distance, cosmology_of,  # noqa: E402
                                                 vocabulary_of)
from cosmopipe.likelihoods.theory.background import background  # noqa: E402
from cosmopipe.likelihoods.theory.contract import TheorySetupError  # noqa: E402
from cosmopipe.likelihoods.theory.matter_power import EmulatorPower  # noqa: E402
from cosmopipe.sims.cosmology import Cosmology  # noqa: E402

THEORY = "cosmopipe.likelihoods.cobaya_theory.EmulatedMatterPower"
SHEAR = "cosmopipe.likelihoods.cobaya_shear.LSSTY1Shear"
BOX = {"Omega_m": (0.28, 0.36), "Omega_b": (0.045, 0.053), "h": (0.63, 0.72), "A_s": (1.8e-9, 2.4e-9),
       "n_s": (0.93, 0.99)}
FIXED = {"w0": -1.0, "wa": 0.0, "m_nu": 0.058}
H = 0.67
# Cobaya/Planck names of a point inside the box (Omega_b h^2 with the box's Omega_b = 0.049).
PLANCK = {"ombh2": 0.049 * H * H, "omch2": 0.12, "H0": 100 * H, "As": 2.1e-9, "ns": 0.96, "mnu": 0.058}
Z = np.linspace(0.0, 4.0, 21)   # beyond the emulator's z <= 3: continued by the growth factor
# Small shear set-up: 3 bins, 8 angles; mock and covariance from the same emulator.
SHEAR_OPTIONS = {"survey": {"nbins": 3}, "theta": {"min": 5.0, "max": 250.0, "nbins": 8}}


@pytest.fixture(scope="module")
def emulator_file(tmp_path_factory):
    """A boost emulator (k 0.0105-4.8 h/Mpc, z 0-3) with a linear-power emulator
    (k 1.05e-3-4.8 h/Mpc), varying Omega_m, Omega_b, h, A_s, n_s; about 10 s."""
    from cosmopipe.emulators.boost import train_boost
    from cosmopipe.emulators.linear import LinearDataset, analytic_log_pk, latin_hypercube, train_linear
    from cosmopipe.emulators.network import TrainConfig
    from cosmopipe.emulators.params import ParameterSpace
    from cosmopipe.emulators.synthetic import ee2_dataset
    from cosmopipe.emulators.training import FitSettings

    names = tuple(BOX)
    space = ParameterSpace(names, [BOX[n][0] for n in names], [BOX[n][1] for n in names], FIXED)
    z = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    k = np.geomspace(1.05e-3, 4.8, 150)  # edges off the 1/40-dex grids: no point sits on them
    design = latin_hypercube(12, space, seed=1)
    cols = Cosmology.names()
    params = np.array([[d[n] for n in cols] for d in design])
    col = {n: params[:, i] for i, n in enumerate(cols)}
    growth = np.array([background(Cosmology.from_dict(d)).growth(z) for d in design])
    # P_lin = 8 pi^2/25 A_s (k/k_p)^(n_s-1) k (c/H0)^4 T_EH^2 (g D)^2 / Omega_m^2, g ~ 0.78
    norm = np.log(8 * np.pi**2 / 25 * 2997.92458**4 * 0.6 / col["Omega_m"] ** 2)
    lnp = (analytic_log_pk(col["A_s"], col["n_s"], col["Omega_m"], col["Omega_b"], col["h"], k)
           + norm[:, None, None] + 2 * np.log(growth)[:, :, None])
    data = LinearDataset(names=cols, params=params, z=z, k=k, pk=np.exp(lnp), species="tot",
                         seconds=np.zeros(len(design)))
    fit = FitSettings(network=TrainConfig(hidden=(8,), epochs=150), validation_fraction=0.0)
    linear = train_linear(data, space, fit)
    boosts = ee2_dataset(16, z, np.geomspace(0.0105, 4.8, 30), BOX, fixed=FIXED, seed=2)
    path = tmp_path_factory.mktemp("emulator") / "boost.h5"
    return str(train_boost(boosts, fit, linear=linear).save(path))


class Probe(Likelihood):
    """Asks for every product the theory gives; ln L = 0."""

    def get_requirements(self):
        return {"Pk_interpolator": {"z": Z, "k_max": 10.0, "nonlinear": (True, False)},
                "Pk_grid": {"z": Z, "k_max": 10.0},
                "Hubble": {"z": Z}, "comoving_radial_distance": {"z": Z[1:]},
                "angular_diameter_distance": {"z": Z[1:]}, "sigma8_z": {"z": Z}, "omegam": None, "sigma8": None}

    def logp(self, **params):
        return 0.0


def _sampled(values, names):
    return {k: ({"prior": {"min": 0.5 * v, "max": 1.5 * v}, "ref": v} if k in names else v) for k, v in values.items()}


@pytest.fixture(scope="module")
def probe(emulator_file):
    info = {"params": {**_sampled(PLANCK, ("omch2", "As")), "S8": None},
            "theory": {THEORY: {"emulator": emulator_file}},
            "likelihood": {"probe": {"external": Probe}}}
    model = get_model(info)
    return model, model.theory[THEORY]


def test_products_follow_cobaya_conventions(probe, emulator_file):
    model, theory = probe
    assert isinstance(theory, EmulatedMatterPower)
    point = {"omch2": 0.125, "As": 2.2e-9}
    logps, derived = model.loglikes(point)
    assert logps[0] == 0.0
    cosmo = cosmology_of({**PLANCK, **point}, "planck", theory.defaults)
    h, provider = cosmo.h, model.provider
    # Pk_grid: k [1/Mpc], z ascending, P [Mpc^3] = the emulator power source's P [(Mpc/h)^3] / h^3
    k, z, pk = theory.get_Pk_grid(nonlinear=True)
    source = EmulatorPower(path=emulator_file)
    assert np.array_equal(z, Z) and np.array_equal(k, theory.k_grid(10.0) * h)
    assert k[0] <= 1e-5 * h and k[-1] >= 10.0 and np.allclose(np.diff(np.log10(k / h)), 1 / 40, rtol=1e-9)
    np.testing.assert_allclose(pk * h**3, np.exp(source.log_pk(cosmo, k / h, z)), rtol=1e-12)
    # the interpolator returns the grid at its nodes
    interp = provider.get_Pk_interpolator(nonlinear=True)
    np.testing.assert_allclose(interp.P(z, k[50:200:10]), pk[:, 50:200:10], rtol=1e-10)
    # linear: the attached linear-power emulator inside its ranges
    lin = provider.get_Pk_interpolator(nonlinear=False)
    k_h = np.geomspace(2e-3, 4.0, 7)
    emu = source.emulator
    expect = emu.linear.pk_lin(k_h, [0.0, 1.0, 2.0], cosmo.to_dict()) / h**3
    np.testing.assert_allclose(lin.P([0.0, 1.0, 2.0], k_h * h), expect, rtol=2e-4)  # spline between nodes
    # background: H [km/s/Mpc, or 1/Mpc], chi and D_A [Mpc]
    bg = background(cosmo)
    np.testing.assert_allclose(provider.get_Hubble(Z), 100 * h * bg.E(Z), rtol=1e-14)
    np.testing.assert_allclose(provider.get_Hubble(Z, units="1/Mpc") * 299792.458, 100 * h * bg.E(Z), rtol=1e-14)
    chi = provider.get_comoving_radial_distance(Z[1:])
    from scipy.integrate import quad

    exact = [quad(lambda x: 1 / bg.E(np.array([x]))[0], 0, zz, epsabs=0, epsrel=1e-12)[0] for zz in Z[1::4]]
    np.testing.assert_allclose(chi[::4], 2997.92458 / h * np.array(exact), rtol=1e-9)
    np.testing.assert_allclose(provider.get_angular_diameter_distance(Z[1:]), chi / (1 + Z[1:]), rtol=1e-14)
    # sigma8(z) = sigma8 D(z); derived parameters
    s8z = provider.get_sigma8_z(Z)
    sigma8 = source.sigma8(cosmo)
    assert provider.get_param("sigma8") == pytest.approx(sigma8, rel=1e-12) == pytest.approx(s8z[0], rel=1e-12)
    np.testing.assert_allclose(s8z / s8z[0], bg.growth(Z) / bg.growth(np.array([0.0]))[0], rtol=1e-12)
    assert provider.get_param("omegam") == pytest.approx(cosmo.Omega_m, rel=1e-14)
    assert derived[0] == pytest.approx(sigma8 * math.sqrt(cosmo.Omega_m / 0.3), rel=1e-12)  # S8


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_comoving_distance_is_accurate():
    from scipy.integrate import quad

    bg = background(Cosmology(Omega_m=0.3, w0=-0.9, wa=0.2, m_nu=0.1))
    z = np.array([0.01, 0.3, 1.0, 3.0, 1100.0])
    # in x = ln(1 + z): dchi/dx = (1 + z) / E
    exact = [quad(lambda x: math.exp(x) / bg.E(np.array([math.expm1(x)]))[0], 0, math.log1p(zz), epsabs=0,
                  epsrel=1e-12, limit=400)[0] for zz in z]
    # measured: 7e-12 to z = 3, 3e-9 at z = 1100 (where E(z), through the tabulated neutrino
    # density, has kinks at the 1e-7 level)
    np.testing.assert_allclose(comoving_distance(bg, z)[:-1], 2997.92458 * np.array(exact[:-1]), rtol=1e-10)
    np.testing.assert_allclose(comoving_distance(bg, z)[-1], 2997.92458 * exact[-1], rtol=1e-8)


def test_both_vocabularies_give_one_cosmology(probe, emulator_file):
    model, theory = probe
    cosmo = cosmology_of(PLANCK, "planck", theory.defaults)
    assert cosmo.h == H and cosmo.Omega_b == pytest.approx(0.049, rel=1e-14) and cosmo.m_nu == 0.058
    assert (cosmo.w0, cosmo.wa) == (-1.0, 0.0)
    ee2 = {"Omega_m": cosmo.Omega_m, "Omega_b": cosmo.Omega_b, "h": H, "A_s": cosmo.A_s, "n_s": cosmo.n_s}
    assert cosmology_of(ee2, "ee2", theory.defaults) == cosmo
    assert cosmology_of({**ee2, "H0": 67.0, "h": H}, "ee2", theory.defaults).h == H
    assert cosmology_of({**PLANCK, "w": -0.9, "wa": 0.1}, "planck", theory.defaults).w0 == -0.9
    other = get_model({"params": {**_sampled(ee2, ("Omega_m",)), "S8": None},
                       "theory": {THEORY: {"emulator": emulator_file}},
                       "likelihood": {"probe": {"external": Probe}}})
    s8_planck = model.loglikes(dict(omch2=PLANCK["omch2"], As=PLANCK["As"]))[1][0]
    s8_ee2 = other.loglikes({"Omega_m": cosmo.Omega_m})[1][0]
    assert s8_ee2 == pytest.approx(s8_planck, rel=1e-12)
    np.testing.assert_allclose(other.theory[THEORY].get_Pk_grid()[2], theory.get_Pk_grid()[2], rtol=1e-12)
    assert vocabulary_of(["Omega_m", "h", "w0"]) == "ee2" and vocabulary_of(PLANCK) == "planck"
    with pytest.raises(TheorySetupError, match="mix two vocabularies"):
        vocabulary_of(["Omega_m", "omch2"])
    with pytest.raises(TheorySetupError, match=r"need As \(or logA\), H0 \(or h\)"):
        vocabulary_of(["ombh2", "omch2", "ns"])


def test_points_the_emulator_cannot_predict_have_zero_likelihood(probe, caplog):
    model, _ = probe
    assert np.isfinite(model.logpost({"omch2": 0.12, "As": 2.1e-9}))
    with caplog.at_level("WARNING"):
        # Omega_m = 0.43 is outside the training box [0.28, 0.36] (inside the prior)
        assert model.logpost({"omch2": 0.17, "As": 2.1e-9}) == -np.inf
        assert model.loglikes({"omch2": 0.17, "As": 2.1e-9})[0][0] == -np.inf
    assert "outside the training box" in caplog.text
    assert np.isfinite(model.logpost({"omch2": 0.121, "As": 2.1e-9}))  # and on it goes


def test_a_fixed_emulator_parameter_set_otherwise_has_zero_likelihood(emulator_file):
    model = get_model({"params": {**_sampled(PLANCK, ("omch2",)), "w": -0.9},
                       "theory": {THEORY: {"emulator": emulator_file}},
                       "likelihood": {"probe": {"external": Probe}}})
    assert model.logpost({"omch2": 0.12}) == -np.inf
    strict = get_model({"params": _sampled(PLANCK, ("omch2",)),
                        "theory": {THEORY: {"emulator": emulator_file, "stop_at_error": True}},
                        "likelihood": {"probe": {"external": Probe}}})
    assert np.isfinite(strict.logpost({"omch2": 0.12}))
    with pytest.raises(LoggedError, match="outside the training box"):
        strict.logpost({"omch2": 0.17})


def test_configuration_mistakes_are_one_line_errors(emulator_file, tmp_path, monkeypatch):
    monkeypatch.setenv("COSMOPIPE_MODELS", str(tmp_path))
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "MANIFEST.json").write_text("{}")

    def build(theory_options, params=PLANCK, probe=Probe):
        return get_model({"params": _sampled(params, ("omch2",)), "theory": {THEORY: theory_options},
                          "likelihood": {"probe": {"external": probe}}})

    with pytest.raises(LoggedError) as err:
        build({"emulator": "gamma"})
    message = str(err.value)
    assert "\n" not in message and "unknown emulator model 'gamma'" in message and "alpha, beta" in message
    with pytest.raises(LoggedError, match="option 'emulator' is required"):
        build({})
    with pytest.raises(LoggedError, match="mix two vocabularies"):
        build({"emulator": emulator_file}, {**PLANCK, "Omega_b": 0.049})

    class Weyl(Likelihood):
        def get_requirements(self):
            return {"Pk_interpolator": {"z": Z, "k_max": 1.0, "vars_pairs": [("Weyl", "Weyl")]}}

        def logp(self, **params):
            return 0.0

    with pytest.raises(LoggedError, match="only the total matter power"):
        build({"emulator": emulator_file}, probe=Weyl)


def test_only_implemented_products_are_offered(probe):
    _, theory = probe
    assert set(theory.get_can_provide_methods()) == {"Pk_interpolator", "Pk_grid", "Hubble",
                                                     "comoving_radial_distance", "angular_diameter_distance",
                                                     "sigma8_z"}
    assert not theory.get_allow_agnostic()
    assert {"omch2", "Omega_m", "w", "w0", "mnu", "m_nu"} <= set(theory.get_can_support_params())


# -- the shear likelihood on the emulator ----------------------------------------------------
@pytest.fixture(scope="module")
def shear(emulator_file):
    """(the project's shear likelihood with the emulator as power source, Cobaya models with
    the LSST-Y1 wrapper on EmulatedMatterPower: growth at the Limber nodes, and the default)."""
    from cosmopipe.likelihoods.shear.likelihood import from_config
    from cosmopipe.schema import Section

    options = {**SHEAR_OPTIONS, "data": {"power": {"source": "emulator", "path": emulator_file}}}
    project = from_config(Section({"power": {"source": "emulator", "path": emulator_file}, **options}, "shear"), {})
    models = {}
    for name, extra in (("limber", {"growth_redshifts": "limber"}), ("power", {}),
                        ("theory", {"comoving_distance": "theory"})):
        models[name] = get_model({"params": _sampled(PLANCK, ("omch2", "As")),
                                  "theory": {THEORY: {"emulator": emulator_file}},
                                  "likelihood": {"shear": {"class": SHEAR, **options, **extra}}})
    return project, models


POINTS = [({"omch2": 0.12, "As": 2.1e-9}, {"A_IA": 0.5}),
          ({"omch2": 0.125, "As": 2.2e-9}, {"A_IA": 0.8, "eta_IA": 0.5, "dz_1": 0.003, "m_2": 0.01}),
          ({"omch2": 0.115, "As": 2.0e-9}, {"A_IA": -0.3, "dz_3": -0.002, "m_1": -0.01})]


def test_shear_lnl_on_the_emulator_equals_the_projects(shear):
    """Same data and covariance, same emulator: the Cobaya path (P_nl from Pk_interpolator, E from
    Hubble, D from sigma8_z) gives the project's ln L to round-off with the growth asked at the
    Limber nodes (measured: relative 4e-14), and to |Delta ln L| < 1e-4 with the default growth
    interpolated from the power redshifts (measured 1.6e-5, all from the IA term).  With the
    theory's comoving distance instead of the project's trapezoid rule on H(z) (relative error
    4e-6), ln L moves by up to 0.009 at chi^2 ~ 900 (measured; tested to 0.05)."""
    project, models = shear
    nuisances = [n for n in models["limber"].parameterization.sampled_params() if n not in ("omch2", "As")]
    assert nuisances == [*(f"dz_{i}" for i in (1, 2, 3)), *(f"m_{i}" for i in (1, 2, 3)), "A_IA", "eta_IA"]
    theory = models["limber"].theory[THEORY]
    for cosmo_point, nuis in POINTS:
        point = {**cosmo_point, **dict.fromkeys(nuisances, 0.0), **nuis}
        cosmo = cosmology_of({**PLANCK, **cosmo_point}, "planck", theory.defaults)
        mine = project.loglike(None, {**cosmo.to_dict(), **point})
        assert np.isfinite(mine) and mine < 0
        assert models["limber"].loglikes(point)[0][0] == pytest.approx(mine, rel=1e-10, abs=0)
        assert models["power"].loglikes(point)[0][0] == pytest.approx(mine, rel=0, abs=1e-4)
        assert models["theory"].loglikes(point)[0][0] == pytest.approx(mine, rel=0, abs=0.05)
    assert "comoving_radial_distance" in models["theory"].likelihood["shear"].get_requirements()


def test_short_mcmc_on_the_emulator_records_the_projects_loglikes(shear, emulator_file, tmp_path):
    """cobaya-run's mcmc with LSSTY1Shear on EmulatedMatterPower: the chi^2 it records at the
    chain's points equals -2 x the project's own ln L there (to 1e-8 relative)."""
    from cobaya.run import run

    project, models = shear
    nuisances = [n for n in models["limber"].parameterization.sampled_params() if n not in ("omch2", "As")]
    params = _sampled(PLANCK, ("omch2", "As"))
    params["omch2"]["proposal"], params["As"]["proposal"] = 3e-4, 5e-12   # the posterior is narrow
    info = {"params": {**params, **dict.fromkeys(nuisances, 0.0)},
            "theory": {THEORY: {"emulator": emulator_file}},
            "likelihood": {"shear": {"class": SHEAR, "growth_redshifts": "limber", **SHEAR_OPTIONS,
                                     "data": {"power": {"source": "emulator", "path": emulator_file}}}},
            "sampler": {"mcmc": {"max_samples": 20, "learn_proposal": False, "burn_in": 0, "seed": 1}},
            "output": str(tmp_path / "chain"), "force": True}
    _, sampler = run(info)
    sample = sampler.products()["sample"]
    omch2, a_s = np.asarray(sample["omch2"], float), np.asarray(sample["As"], float)
    assert len(sample) >= 2 and np.unique(omch2).size >= 2
    theory = models["limber"].theory[THEORY]
    for i in range(len(sample)):
        point = {"omch2": float(omch2[i]), "As": float(a_s[i])}
        cosmo = cosmology_of({**PLANCK, **point}, "planck", theory.defaults)
        mine = project.loglike(None, {**cosmo.to_dict(), **dict.fromkeys(nuisances, 0.0)})
        assert -0.5 * float(sample["chi2__shear"].iloc[i]) == pytest.approx(mine, rel=1e-8, abs=0)


def test_shear_nuisances_and_their_priors(shear):
    _, models = shear
    model = models["power"]
    params = model.parameterization.sampled_params()
    base = {**{n: 0.0 for n in params}, "omch2": 0.12, "As": 2.1e-9}
    # Gaussian dz_i (sigma 0.002), m_i (0.005); flat A_IA in [-5, 5]
    assert model.logprior({**base, "dz_2": 0.002}) - model.logprior(base) == pytest.approx(-0.5, rel=1e-12)
    assert model.logprior({**base, "m_3": 0.01}) - model.logprior(base) == pytest.approx(-2.0, rel=1e-12)
    assert model.logprior({**base, "A_IA": 5.5}) == -np.inf
    assert model.loglikes({**base, "m_1": -1.0})[0][0] == -np.inf      # m <= -1: no ln L, no crash
    assert model.loglikes({**base, "dz_1": 0.6})[0][0] == -np.inf      # |dz| > 0.5
    shear_like = model.likelihood["shear"]
    req = shear_like.get_requirements()
    assert req["Pk_interpolator"]["nonlinear"] is True and req["Pk_interpolator"]["k_max"] == 20.0
    assert set(req) == {"Pk_interpolator", "Hubble", "sigma8_z", "H0", "omegam"}


def test_emulator_beside_camb_splits_the_products(emulator_file):
    """CAMB gives C_ell, the emulator P_nl and the background (``provides``); both read the
    cosmological parameters."""
    pytest.importorskip("camb")

    class LowTT(Likelihood):
        def get_requirements(self):
            return {"Cl": {"tt": 30}}

        def logp(self, **params):
            return -1e-3 * float(np.sum(self.provider.get_Cl()["tt"][2:31]))

    options = {"survey": {"nbins": 2}, "theta": {"min": 10.0, "max": 200.0, "nbins": 5},
               "data": {"power": {"source": "emulator", "path": emulator_file}}}
    model = get_model({
        "params": {**_sampled(PLANCK, ("omch2",)), "tau": 0.055},
        "theory": {"camb": {"extra_args": {"lens_potential_accuracy": 0}},
                   THEORY: {"emulator": emulator_file, "provides": ["Pk_interpolator", "Hubble", "sigma8_z",
                                                                    "omegam"]}},
        "likelihood": {"tt": {"external": LowTT}, "shear": {"class": SHEAR, **options}}})
    inputs = {c.get_name(): set(c.input_params) for c in model.theory.values()}
    assert {"omch2", "ombh2", "H0", "As", "ns", "mnu"} <= inputs[THEORY]
    assert "tau" not in inputs[THEORY]
    lnl = model.loglikes({n: (0.12 if n == "omch2" else 0.0) for n in model.parameterization.sampled_params()})[0]
    assert np.all(np.isfinite(lnl))


# -- the documented example --------------------------------------------------------------------
def test_docs_example_parses_and_evaluates(emulator_file):
    """The first YAML block of docs/cobaya.md, with this test's emulator file."""
    from cobaya.yaml import yaml_load

    text = (Path(__file__).resolve().parents[1] / "docs" / "cobaya.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    info = yaml_load(block.replace("my_emulator.h5", emulator_file))
    assert THEORY in info["theory"] and info["likelihood"]["lsst_y1_shear"]["class"] == SHEAR
    info.pop("output", None)
    info.pop("sampler", None)
    model = get_model(info)
    reference = {p: v["ref"] for p, v in model.parameterization.sampled_params_info().items()}
    assert np.isfinite(model.logpost(reference))
