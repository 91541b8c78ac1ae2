"""Power spectrum estimator: shot noise, normalisation, interlacing, mode binning.

Independent references: the Poisson shot noise L^3/N of uniform random
points, and a Zel'dovich-displaced lattice at tiny amplitude D, whose
particle density is exactly D delta_L (no Poisson noise: a lattice has
none), so its spectrum is D^2 P_L averaged over the modes in each bin.
"""
import numpy as np
import pytest

from cosmopipe.sims import Cosmology
from cosmopipe.sims.ic import lattice, linear_density_k, lpt_displacements, white_noise
from cosmopipe.sims.linear import linear_power
from cosmopipe.sims.power import PowerMeter, bin_modes

N_LAT, BOX = 64, 512.0          # particle lattice of the displaced-lattice tests
D_TINY = 0.01                   # displacement rms 0.05 Mpc/h << 8 Mpc/h spacing
K_NY_P = np.pi * N_LAT / BOX    # particle Nyquist frequency
KF = 2.0 * np.pi / BOX


def _edges(kmax, box=BOX):
    kf = 2.0 * np.pi / box
    return np.arange(0.5 * kf, kmax + 1e-9, kf)


def _engine_lattice(n, box, mesh):
    """Lattice sites as run.py places them: midway between force-mesh nodes."""
    return lattice(n, box) + 0.5 * box / mesh


@pytest.fixture(scope="module")
def plin():
    return linear_power(Cosmology(), (0.0,), kmax=5.0)


@pytest.fixture(scope="module")
def displaced_lattice(plin):
    dk = linear_density_k(white_noise(N_LAT, 7), BOX, lambda k: plin(k), fixed_amplitude=True)
    psi1, _ = lpt_displacements(dk, BOX, order=1)
    return (_engine_lattice(N_LAT, BOX, 2 * N_LAT) + D_TINY * psi1) % BOX


def _expected(plin, edges):
    """D^2 times the input spectrum averaged over the lattice's modes in each bin."""
    return D_TINY**2 * bin_modes(N_LAT, BOX, edges, lambda k: plin(k))


# -- shot noise -----------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["cic", "tsc"])
def test_poisson_points_have_zero_power_after_shot_noise(scheme):
    box, n_mesh, npart = 200.0, 64, 40**3
    pos = np.random.default_rng(5).uniform(0.0, box, (npart, 3))
    kny = np.pi * n_mesh / box
    ps = PowerMeter(n_mesh, box, np.linspace(np.pi / box, 0.5 * kny, 9), scheme)(pos)
    assert ps.shot_noise == pytest.approx(box**3 / npart, rel=1e-12)
    # Each independent mode (nmodes counts k and -k) has exponential |delta_k|^2:
    # sigma_P = P_shot sqrt(2 / nmodes).
    sigma = ps.shot_noise * np.sqrt(2.0 / ps.nmodes)
    w = 1.0 / sigma**2
    mean, sigma_mean = np.sum(w * ps.pk) / np.sum(w), 1.0 / np.sqrt(np.sum(w))
    # Below half the mesh Nyquist aliasing of the shot noise is negligible
    # (measured over 8 seeds: mean within 1.5 sigma, no bin beyond 2 sigma).
    assert abs(mean) < 4.0 * sigma_mean
    assert np.all(np.abs(ps.pk) < 4.5 * sigma)


# -- normalisation: displaced lattice ---------------------------------------------------

def test_displaced_lattice_matches_linear_input(plin, displaced_lattice):
    edges = _edges(K_NY_P)
    # Pipeline defaults: P(k) mesh = force mesh = 2 N_p, CIC, interlacing.
    ps = PowerMeter(2 * N_LAT, BOX, edges, "cic", interlacing=True)(displaced_lattice, subtract_shot_noise=False)
    ratio = ps.pk / _expected(plin, edges)
    low = ps.k < 0.5 * K_NY_P
    # Fixed amplitudes remove cosmic variance; what remains is mass-assignment
    # aliasing and O(k psi) nonlinearity. 2% as the issue asks (measured <= 0.93%).
    np.testing.assert_allclose(ratio[low], 1.0, rtol=2e-2)
    # The mode-weighted k of each bin is the one bin_modes gives.
    np.testing.assert_allclose(ps.k, bin_modes(2 * N_LAT, BOX, edges, lambda k: k), rtol=1e-10)


def test_interlacing_reduces_aliasing(plin, displaced_lattice):
    n_mesh = N_LAT  # mesh Nyquist = particle Nyquist, so 0.7 k_N is inside the band
    kny = np.pi * n_mesh / BOX
    edges = _edges(kny)
    expected = _expected(plin, edges)
    errors = {}
    for interlaced in (True, False):
        ps = PowerMeter(n_mesh, BOX, edges, "cic", interlacing=interlaced)(displaced_lattice,
                                                                          subtract_shot_noise=False)
        near = np.abs(ps.k - 0.7 * kny) < 2.5 * KF
        errors[interlaced] = np.max(np.abs(ps.pk[near] / expected[near] - 1.0))
    # Measured near 0.7 k_N: 2.0% interlaced vs 16% without (CIC, 64^3 mesh).
    assert errors[True] < 0.5 * errors[False]
    assert errors[True] < 0.05


# -- bin_modes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n, box", [(16, 100.0), (15, 100.0), (32, 250.0)])
def test_bin_modes_constant(n, box):
    edges = _edges(np.pi * n / box, box)
    out = bin_modes(n, box, edges, lambda k: np.full_like(k, 3.25))
    # A mean of a constant: round-off only.
    np.testing.assert_allclose(out, 3.25, rtol=1e-12)


@pytest.mark.parametrize("n, box", [(16, 100.0), (15, 100.0), (32, 250.0)])
def test_bin_modes_mean_k_inside_bins(n, box):
    edges = _edges(np.pi * n / box, box)
    kmean = bin_modes(n, box, edges, lambda k: k)
    assert np.all(kmean >= edges[:-1]) and np.all(kmean < edges[1:])


@pytest.mark.parametrize("n", [16, 15])
def test_mode_counts_match_full_grid(n):
    """PowerMeter's r2c multiplicities reproduce a direct count on the full FFT grid."""
    box = 100.0
    edges = _edges(np.pi * n / box, box)
    kf = 2.0 * np.pi / box
    k1 = np.fft.fftfreq(n, d=1.0 / n) * kf
    kk = np.sqrt(k1[:, None, None] ** 2 + k1[None, :, None] ** 2 + k1[None, None, :] ** 2).ravel()
    direct = np.histogram(kk, bins=edges)[0]
    pos = np.random.default_rng(0).uniform(0.0, box, (1000, 3))
    ps = PowerMeter(n, box, edges, "cic", interlacing=False)(pos)
    np.testing.assert_array_equal(ps.nmodes, direct)


@pytest.mark.parametrize("n, box", [(16, 100.0), (15, 100.0), (12, 70.0)])
def test_bin_modes_equals_brute_force_over_modes(n, box):
    """Evaluating the weights once per i^2 + j^2 + l^2 equals a mode-by-mode average
    over the full FFT grid (numpy, no shared code)."""
    edges = _edges(np.pi * n / box, box)
    kf = 2.0 * np.pi / box
    k1 = np.fft.fftfreq(n, d=1.0 / n) * kf
    kk = np.sqrt(k1[:, None, None] ** 2 + k1[None, :, None] ** 2 + k1[None, None, :] ** 2).ravel()
    weight = lambda k: np.exp(-k) * (1.0 + k) ** -2  # noqa: E731
    num = np.histogram(kk, bins=edges, weights=weight(kk))[0]
    den = np.histogram(kk, bins=edges)[0]
    np.testing.assert_allclose(bin_modes(n, box, edges, weight), num / den, rtol=1e-12)


def test_lent_mesh_gives_the_same_spectrum(displaced_lattice):
    """A meter on the force solver's FFTMesh measures exactly what one with its own does."""
    from cosmopipe.sims.mesh import FFTMesh

    edges = _edges(K_NY_P)
    own = PowerMeter(2 * N_LAT, BOX, edges, "cic", interlacing=True)(displaced_lattice)
    mesh = FFTMesh(2 * N_LAT)
    mesh.real.fill(np.float32(3.0))  # stale contents must not matter
    lent = PowerMeter(2 * N_LAT, BOX, edges, "cic", interlacing=True, mesh=mesh)(displaced_lattice)
    np.testing.assert_array_equal(lent.pk, own.pk)
    with pytest.raises(ValueError, match="mesh: the lent FFTMesh has n = 128, the meter needs n = 64"):
        PowerMeter(N_LAT, BOX, edges, mesh=mesh)


def test_uneven_edges_rejected():
    with pytest.raises(ValueError, match="evenly spaced"):
        PowerMeter(16, 100.0, np.array([0.01, 0.02, 0.05]))
