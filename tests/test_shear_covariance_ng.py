"""Non-Gaussian xi+- covariance (super-sample + connected trispectrum, CCL's halo model)
and the cached analytic covariance.

Physics on a small set-up (2 source bins, 8 angular bins, coarse halo-model tables):
the Gaussian part is exactly the Gaussian covariance; the harmonic terms are CCL's own
(element by element, both orientations); the double Hankel transform reproduces
adaptive quadrature of a separable covariance to 1e-3; cNG scales as 1/f_sky exactly
and SSC as the sigma_B^2 of the disc, which matches an independent quadrature; the total
is symmetric positive definite and the non-Gaussian share of the xi+ variance grows
toward small angles.  Caching: round trip, key, damaged files, workflow section."""
import logging

import h5py
import numpy as np
import pytest
from scipy import integrate
from scipy.special import j1

from cosmopipe.integrity import CorruptFileError
from cosmopipe.likelihoods.shear import covariance_cache
from cosmopipe.likelihoods.shear.covariance import gaussian_covariance
from cosmopipe.likelihoods.shear.covariance_cache import (CACHE_ENV, cache_directory, check_terms, read_cached,
                                                          shear_covariance)
from cosmopipe.likelihoods.shear.covariance_ng import (NGSettings, ccl_cosmology, harmonic_ng_covariance,
                                                       xi_covariance_from_harmonic)
from cosmopipe.likelihoods.shear.hankel import ARCMIN, bin_averaged_j0, bin_averaged_j4, theta_edges
from cosmopipe.likelihoods.shear.likelihood import from_config
from cosmopipe.likelihoods.shear.limber import shear_model
from cosmopipe.likelihoods.shear.survey import lsst_y1_survey
from cosmopipe.likelihoods.theory.matter_power import HMcodePower, TablePower
from cosmopipe.schema import ConfigError, Section
from cosmopipe.sims.cosmology import Cosmology

ccl = pytest.importorskip("pyccl")

EDGES = theta_edges(2.5, 250.0, 8)
SMALL = NGSettings(ell_max=2.0e4, n_ell=20, n_k=20, n_a=6)   # coarse: tests, not analyses


def toy_table():
    """BBKS with a crude boost (no CAMB): for the cache and configuration tests."""
    k = np.geomspace(1e-5, 1e4, 361)
    z = np.linspace(0.0, 4.0, 41)
    q = k / 0.21
    t = np.log(1 + 2.34 * q) / (2.34 * q) * (1 + 3.89 * q + (16.1 * q) ** 2 + (5.46 * q) ** 3 + (6.71 * q) ** 4) ** -0.25
    d = 1 / (1 + z[:, None]) ** 0.8
    return k, z, 1.9e7 * k * t**2 * d**2 * (1 + (k / (0.3 / d**1.5)) ** 1.5)


@pytest.fixture(scope="module")
def model():
    """2 bins, 8 angular bins, HMcode-2020 power: a realistic Gaussian part to compare with."""
    k = np.geomspace(1e-5, 1e4, 361)
    z = np.linspace(0.0, 4.0, 41)
    pk = np.exp(HMcodePower().log_pk(Cosmology(), k, z))
    return shear_model(lsst_y1_survey(nbins=2), TablePower(k=k, z=z, pk=pk), EDGES, fiducial={"A_IA": 0.5})


@pytest.fixture(scope="module")
def harmonic(model):
    return harmonic_ng_covariance(model, {}, ("ssc", "cng"), SMALL)


@pytest.fixture(scope="module")
def parts(model, harmonic):
    ell, cov = harmonic
    out = {t: xi_covariance_from_harmonic(model, ell, c) for t, c in cov.items()}
    out["gaussian"] = gaussian_covariance(model, {})
    return out


# -- the double Hankel transform --------------------------------------------------
def test_double_transform_matches_quadrature_of_separable_covariance():
    # Cov(C_l^p, C_l'^q) = a_p a_q A(l) A(l'): then Cov(xi_x, xi_y) = X_x X_y with X the single
    # transform of A, computed here by adaptive quadrature of the exact bin-averaged kernels.
    from types import SimpleNamespace

    A = lambda l: l**-1.0 * (1 + l / 500.0) ** -1.5 * np.exp(-(l / 1e4) ** 2)
    ell = np.geomspace(2.0, 3.0e4, 24)
    amp = np.array([1.0, -0.5])
    edges = theta_edges(2.5, 900.0, 6)
    fake = SimpleNamespace(theta_edges=edges, size=2 * 2 * 6)
    cov = xi_covariance_from_harmonic(fake, ell, np.einsum("p,q,m,n->pqmn", amp, amp, A(ell), A(ell)))
    pieces = np.concatenate([np.arange(2.0, 3000.0, 25.0), np.geomspace(3000.0, 3.0e4, 150)])
    X = []
    for kern in (bin_averaged_j0, bin_averaged_j4):
        single = []
        for lo, hi in zip(edges[:-1] * ARCMIN, edges[1:] * ARCMIN):
            g = lambda l: l / (2 * np.pi) * kern(np.array([l]), lo, hi)[0] * A(l)
            single.append(sum(integrate.quad(g, a, b, epsrel=1e-10, limit=200)[0]
                              for a, b in zip(pieces[:-1], pieces[1:])))
        X.append(np.outer(amp, single).ravel())   # data-vector order: pair, then theta
    X = np.concatenate(X)
    ref = np.outer(X, X)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert np.max(np.abs(cov - ref) / scale) < 1e-3


# -- harmonic terms against CCL itself ----------------------------------------------
def test_harmonic_terms_are_ccls_own(model, harmonic):
    ell, cov = harmonic
    cosmo, nuis = model.split({})
    cc = ccl_cosmology(cosmo)
    from cosmopipe.likelihoods.shear.covariance_ng import halo_model_trispectra, shear_tracers

    tr = shear_tracers(cc, model, nuis)
    tks = halo_model_trispectra(cosmo, "three_degenerate", ("ssc", "cng"), SMALL)   # the fixture's (memoised)
    tk = tks["cng"]
    # pair (0,0) at l, pair (0,1) at l' (in Limber the four kernels do not depend on l, so the
    # shear covariance is symmetric under l <-> l' whatever the pairs)
    i, j = 6, 13
    direct = ccl.angular_cl_cov_cNG(cc, tr[0], tr[0], ell=ell[i], ell2=ell[j], t_of_kk_a=tk, tracer3=tr[0],
                                    tracer4=tr[1], fsky=model.survey.f_sky)
    assert cov["cng"][0, 1, i, j] == pytest.approx(float(direct), rel=1e-6, abs=0)
    assert cov["cng"][1, 0, j, i] == pytest.approx(float(direct), rel=1e-6, abs=0)
    assert cov["cng"][0, 1, j, i] == pytest.approx(float(direct), rel=1e-6, abs=0)
    # SSC with a disc of the same area on a plain, dense a-grid of sigma_B^2 (ours is 96
    # points, denser toward z = 0; CCL's own default of 50 is 7 % off at l ~ 40)
    tk = tks["ssc"]
    a_b = np.linspace(0.2, 1.0, 256)
    s2b = (a_b, ccl.sigma2_B_disc(cc, a_arr=a_b, fsky=model.survey.f_sky))
    for i, j in ((6, 13), (9, 9), (12, 17)):   # l ~ 40 x 1100, 170 x 170, 700 x 8000
        direct = ccl.angular_cl_cov_SSC(cc, tr[0], tr[0], ell=ell[i], ell2=ell[j], t_of_kk_a=tk, tracer3=tr[0],
                                        tracer4=tr[1], sigma2_B=s2b)
        assert cov["ssc"][0, 1, i, j] == pytest.approx(float(direct), rel=1e-3, abs=0)


def test_sigma2_B_of_the_disc_against_quadrature(model):
    # sigma_B^2(z) = int k dk / 2pi P_L(k, z) [2 J_1(k R) / (k R)]^2, R = chi(z) arccos(1 - 2 f_sky):
    # Simpson in ln k below 1/R, then in k with 40 points per period of J_1 up to 1/Mpc (the tail
    # beyond changes it by < 1e-6).  CCL's adaptive integral agrees to 4e-5 at z = 0.3, 2e-3 at z = 2.
    cc = ccl_cosmology(model.split({})[0])
    fsky = model.survey.f_sky
    for z in (0.3, 1.0, 2.0):
        a = 1 / (1 + z)
        R = ccl.comoving_radial_distance(cc, a) * np.arccos(1 - 2 * fsky)
        f = lambda k: k / (2 * np.pi) * ccl.linear_matter_power(cc, k, a) * (2 * j1(k * R) / (k * R)) ** 2
        lo = np.geomspace(1e-7, 1 / R, 2001)
        hi = np.linspace(1 / R, 1.0, int((1.0 - 1 / R) * R / (2 * np.pi) * 40) | 1)
        ref = integrate.simpson(f(lo) * lo, x=np.log(lo)) + integrate.simpson(f(hi), x=hi)
        assert ccl.sigma2_B_disc(cc, a_arr=np.array([a]), fsky=fsky)[0] == pytest.approx(ref, rel=2.5e-3, abs=0)


# -- properties of the xi covariance ---------------------------------------------------
def test_gaussian_part_is_the_gaussian_covariance(model, parts, tmp_path, monkeypatch):
    monkeypatch.setattr(covariance_cache, "non_gaussian_covariance",
                        lambda m, p, terms, s: {t: parts[t] for t in terms})
    result = shear_covariance(model, {}, ("gaussian", "ssc", "cng"), SMALL, tmp_path)
    np.testing.assert_array_equal(result.parts["gaussian"], gaussian_covariance(model, {}))
    np.testing.assert_allclose(result.total, parts["gaussian"] + parts["ssc"] + parts["cng"], rtol=1e-14, atol=0)
    only = shear_covariance(model, {}, ("gaussian",), cache_dir=None, use_cache=False)
    np.testing.assert_array_equal(only.total, gaussian_covariance(model, {}))


def test_total_is_symmetric_positive_definite(parts):
    total = parts["gaussian"] + parts["ssc"] + parts["cng"]
    for part in parts.values():
        np.testing.assert_allclose(part, part.T, rtol=0, atol=1e-12 * np.abs(part).max())
    np.linalg.cholesky(total)
    # SSC = int dchi sigma_B^2 v v^T is positive semi-definite up to the spline interpolation
    lam = np.linalg.eigvalsh(parts["ssc"])
    assert lam[0] > -1e-4 * lam[-1]
    # and nearly of rank one: one coherent amplitude mode carries most of it
    assert lam[-1] > 0.8 * lam.sum()
    # the non-Gaussian terms make the total variance larger, never smaller, on the diagonal
    assert np.all(np.diag(parts["ssc"]) > 0) and np.all(np.diag(total) >= np.diag(parts["gaussian"]) * 0.999)


def test_non_gaussian_share_of_xi_plus_grows_toward_small_angles(model, parts):
    nt, p = model.ntheta, model.pairs.index((1, 1))
    idx = p * nt + np.arange(nt)  # xi+ of the high-redshift auto pair
    ng = np.diag(parts["ssc"] + parts["cng"])[idx] / np.diag(parts["gaussian"])[idx]
    assert ng[:3].min() > 3 * ng[-2:].max()   # 2.5-10 arcmin against 100-250 arcmin
    assert ng.max() > 0.02                     # a few per cent of the variance at least


def test_area_scaling(model, harmonic):
    # cNG is 1/Omega_s exactly.  SSC = int dchi w(chi) sigma_B^2(chi; A) with w >= 0 on the diagonal,
    # so a 4x smaller cap changes it by a weighted mean of sigma_B^2(A/4) / sigma_B^2(A) over the
    # redshifts of the kernels: between the extremes of that ratio (it tends to 1 as z -> 0, where
    # the disc shrinks to nothing, and to ~8 at high z, where the disc is wider than 1/k_eq and P_L
    # falls toward large scales: sigma_B^2 then grows faster than 1/area).
    ell, base = harmonic
    fsky = model.survey.f_sky
    _, quarter = harmonic_ng_covariance(model, {}, ("ssc", "cng"), SMALL, f_sky=fsky / 4)
    np.testing.assert_allclose(quarter["cng"], 4 * base["cng"], rtol=1e-10)
    cc = ccl_cosmology(model.split({})[0])
    a = np.concatenate([np.linspace(0.2, 0.9, 32, endpoint=False), np.linspace(0.9, 1.0, 64)])
    ratio = ccl.sigma2_B_disc(cc, a_arr=a, fsky=fsky / 4) / ccl.sigma2_B_disc(cc, a_arr=a, fsky=fsky)
    diag = np.einsum("ppmm->pm", quarter["ssc"]) / np.einsum("ppmm->pm", base["ssc"])
    assert ratio.min() * 0.999 < diag.min() and diag.max() < ratio.max() * 1.001
    # where SSC matters (l > 300) it grows faster than 1/area
    assert diag[:, ell > 300].min() > 4.0


# -- the terms, the cache and the workflow section ------------------------------------------
@pytest.fixture(scope="module")
def toy_model():
    k, z, pk = toy_table()
    return shear_model(lsst_y1_survey(nbins=2), TablePower(k=k, z=z, pk=pk), EDGES)


@pytest.fixture
def fake_ng(monkeypatch):
    """Cheap stand-in for the halo model: SSC = 0.1 G, cNG = 0.05 G; counts its calls."""
    calls = []

    def fake(model, params, terms, settings):
        calls.append(tuple(terms))
        g = gaussian_covariance(model, params)
        return {t: (0.1 if t == "ssc" else 0.05) * g for t in terms}

    monkeypatch.setattr(covariance_cache, "non_gaussian_covariance", fake)
    covariance_cache._MEMORY.clear()
    return calls


def test_terms_are_checked():
    assert check_terms(["cng", "gaussian"]) == ("gaussian", "cng")
    with pytest.raises(ValueError, match=r"unknown covariance term 'ng'; allowed: gaussian, ssc, cng"):
        check_terms(["gaussian", "ng"])
    with pytest.raises(ValueError, match="must include gaussian"):
        check_terms(["ssc", "cng"])


def test_cache_round_trip_and_key(toy_model, tmp_path, fake_ng):
    first = shear_covariance(toy_model, {}, ("gaussian", "ssc", "cng"), SMALL, tmp_path)
    assert not first.from_cache and first.path.parent == tmp_path and len(fake_ng) == 1
    again = shear_covariance(toy_model, {}, ("gaussian", "ssc", "cng"), SMALL, tmp_path)
    assert again.from_cache and len(fake_ng) == 1
    np.testing.assert_array_equal(again.total, first.total)
    assert again.terms == ("gaussian", "ssc", "cng") and again.key == first.key
    # anything the covariance depends on changes the key (and the file)
    keys = {first.key}
    for kwargs in ({"terms": ("gaussian", "ssc")}, {"params": {"Omega_m": 0.3}},
                   {"settings": NGSettings(ell_max=2.0e4, n_ell=20, n_k=20, n_a=8)}):
        args = {"params": {}, "terms": ("gaussian", "ssc", "cng"), "settings": SMALL, **kwargs}
        r = shear_covariance(toy_model, args["params"], args["terms"], args["settings"], tmp_path)
        assert not r.from_cache
        keys.add(r.key)
    k, z, pk = toy_table()
    other = shear_model(lsst_y1_survey(nbins=2), TablePower(k=k, z=z, pk=1.01 * pk), EDGES)  # same name, other table
    keys.add(shear_covariance(other, {}, ("gaussian", "ssc", "cng"), SMALL, tmp_path).key)
    assert len(keys) == 5 and len(list(tmp_path.glob("shear_covariance_*.h5"))) == 5


def test_damaged_cache_is_detected_and_recomputed(toy_model, tmp_path, fake_ng, caplog):
    first = shear_covariance(toy_model, {}, ("gaussian", "ssc"), SMALL, tmp_path)
    with h5py.File(first.path, "r+") as f:     # one changed number, the seal left as it was
        f["ssc"][3, 5] *= 1.0001
    with pytest.raises(CorruptFileError, match=r"array 'ssc' fails its sha256 check"):
        read_cached(first.path, first.key, toy_model.size)
    with caplog.at_level(logging.WARNING, logger="cosmopipe.shear"):
        again = shear_covariance(toy_model, {}, ("gaussian", "ssc"), SMALL, tmp_path)
    assert not again.from_cache and len(fake_ng) == 2
    assert "fails its sha256 check" in caplog.text
    np.testing.assert_array_equal(again.total, first.total)
    assert read_cached(first.path, first.key, toy_model.size) is not None   # rewritten, sound again
    # a truncated file, and one whose total is not the sum of its sealed terms
    data = first.path.read_bytes()
    first.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError):
        read_cached(first.path, first.key, toy_model.size)
    assert not shear_covariance(toy_model, {}, ("gaussian", "ssc"), SMALL, tmp_path).from_cache
    from cosmopipe.integrity import seal

    with h5py.File(first.path, "r+") as f:
        f["covariance"][0, 0] *= 2.0
        seal(f)
    with pytest.raises(CorruptFileError, match="not the sum of its terms"):
        read_cached(first.path, first.key, toy_model.size)


def test_cache_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_directory(None, None) is None
    assert cache_directory(None, tmp_path) == tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert cache_directory(None, tmp_path) == tmp_path / "env"
    assert cache_directory(str(tmp_path / "cfg"), tmp_path) == tmp_path / "cfg"


def _section(tmp_path, covariance):
    k, z, pk = toy_table()
    np.savez(tmp_path / "table.npz", k=k, z=z, pk=pk)
    table = {"source": "table", "path": str(tmp_path / "table.npz")}
    cfg = {"power": table, "survey": {"nbins": 2}, "theta": {"min": 2.5, "max": 250.0, "nbins": 8},
           "data": {"power": table}, "covariance": covariance}
    return Section(cfg, "sample.likelihoods.lsst_y1_shear", source="w.yaml")


def test_workflow_section_selects_the_terms(tmp_path, fake_ng, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    run = tmp_path / "run"
    lk = from_config(_section(tmp_path, {"terms": ["gaussian", "ssc", "cng"]}), {"run_dir": str(run)})
    assert lk.provenance["covariance"] == "gaussian + ssc + cng analytic at the fiducial"
    stored = lk.provenance["covariance_settings"]
    assert stored["file"].startswith(str(run / "cache")) and fake_ng == [("ssc", "cng")]
    np.testing.assert_allclose(lk.cov, 1.15 * gaussian_covariance(lk.model, {}), rtol=1e-12)
    # the next analysis with the same settings reads the file
    lk2 = from_config(_section(tmp_path, {"terms": ["gaussian", "ssc", "cng"]}), {"run_dir": str(run)})
    assert len(fake_ng) == 1
    np.testing.assert_array_equal(lk2.cov, lk.cov)
    # default: Gaussian only, nothing cached
    lk3 = from_config(_section(tmp_path, {}), {"run_dir": str(tmp_path / "run3")})
    assert lk3.provenance["covariance"] == "gaussian analytic at the fiducial"
    np.testing.assert_array_equal(lk3.cov, gaussian_covariance(lk3.model, {}))
    assert not (tmp_path / "run3" / "cache").exists()


def test_dry_run_skips_the_non_gaussian_terms(tmp_path, fake_ng, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    lk = from_config(_section(tmp_path, {"terms": ["gaussian", "ssc", "cng"]}),
                     {"run_dir": str(tmp_path / "run"), "dry_run": True})
    assert fake_ng == [] and lk.provenance["covariance"] == "gaussian analytic at the fiducial"


@pytest.mark.parametrize("covariance, message", [
    ({"terms": ["gaussian", "sscc"]},
     r"w.yaml: sample.likelihoods.lsst_y1_shear.covariance.terms: item 1: must be one of gaussian, ssc, cng; got 'sscc'"),
    ({"terms": ["ssc"]}, r"covariance.terms: must include gaussian .*; allowed: gaussian, ssc, cng"),
    ({"terms": "gaussian"}, r"covariance.terms: must be a list"),
    ({"terms": ["gaussian", "gaussian"]}, r"covariance.terms: must not repeat items"),
    ({"file": "c.npy", "terms": ["gaussian"]}, r"covariance.terms: applies to a computed covariance, not with covariance.file"),
    ({"terms": ["gaussian"], "non_gaussian": {"n_ell": 20}}, r"covariance.non_gaussian: sets the numerics of the terms ssc, cng"),
    ({"terms": ["gaussian", "ssc"], "non_gaussian": {"n_ell": 3}}, r"covariance.non_gaussian.n_ell: .*n_ell >= 8"),
    ({"terms": ["gaussian"], "extra": 1}, r"covariance.extra: unknown key; allowed keys here: cache, file, non_gaussian, terms"),
])
def test_workflow_section_errors(tmp_path, covariance, message):
    with pytest.raises(ConfigError, match=message):
        from_config(_section(tmp_path, covariance), {"run_dir": str(tmp_path)})


@pytest.mark.slow
def test_lsst_y1_full_size(tmp_path):
    """5 bins x 26 angular bins with the default numerics (about 2 min of CPU)."""
    k = np.geomspace(1e-5, 1e4, 361)
    z = np.linspace(0.0, 4.0, 41)
    pk = np.exp(HMcodePower().log_pk(Cosmology(), k, z))
    full = shear_model(lsst_y1_survey(), TablePower(k=k, z=z, pk=pk), fiducial={"A_IA": 0.5})
    result = shear_covariance(full, {}, ("gaussian", "ssc", "cng"), cache_dir=tmp_path)
    np.linalg.cholesky(result.total)
    g = np.diag(result.parts["gaussian"])
    ng = (np.diag(result.parts["ssc"]) + np.diag(result.parts["cng"])) / g
    idx = full.pairs.index((4, 4)) * 26 + np.arange(26)
    assert ng[idx][:8].max() > 3 * ng[idx][-6:].max()
    assert shear_covariance(full, {}, ("gaussian", "ssc", "cng"), cache_dir=tmp_path).from_cache
