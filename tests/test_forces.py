"""Particle-mesh force g = -grad nabla^-2 delta against Zel'dovich displacements.

For a linear field the PM force at a particle equals its Zel'dovich
displacement D psi1.  For a single plane wave this is exact at any amplitude
before shell crossing (1D gravity: the field at a sheet is proportional to
the mass on either side of it, i.e. to x - q), so any deviation is numerical.

Particles are placed as run.py places them: on the lattice shifted by half a
force-mesh cell (midway between mesh nodes).  On the nodes themselves the CIC
weights have a kink, so the deposit is not linear in small displacements:
there the plane-wave force below is 24% rms off (a 2k harmonic of 22% of the
amplitude), and the random-field force 62% rms off.
"""
import numpy as np
import pytest
import scipy.fft as sfft

from sims import Cosmology
from sims.forces import PMForce, apply_kernel, derivative_kernel
from sims.ic import lattice, linear_density_k, lpt_displacements, white_noise
from sims.linear import linear_power


def _engine_lattice(n, box, mesh):
    """Lattice sites as run.py places them: midway between force-mesh nodes."""
    return lattice(n, box) + 0.5 * box / mesh


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _plane_wave_force(scheme, n=32, box=128.0, amp_cells=0.01, mode=2, **kw):
    """(g, psi_x, A): PM force on a lattice displaced by psi_x = A sin(k q_x)."""
    mesh = kw.pop("mesh", 2 * n)
    q = _engine_lattice(n, box, mesh)
    k = mode * 2.0 * np.pi / box
    amp = amp_cells * box / n
    psi = amp * np.sin(k * q[:, 0])
    pos = q.copy()
    pos[:, 0] = (q[:, 0] + psi) % box
    g = PMForce(mesh, box, n**3, scheme=scheme, **kw)(pos).astype(np.float64)
    return g, psi, amp


# -- the Poisson kernel alone ---------------------------------------------------------------------

@pytest.mark.parametrize("gradient", ["exact", "fd2", "fd4"])
def test_kernel_on_a_cosine(gradient):
    """delta = cos(k x) on the mesh: g_x = -(k_d(k) / k^2) sin(k x), g_y = g_z = 0."""
    n, box = 16, 64.0
    x = np.arange(n) * box / n
    k = 3 * 2.0 * np.pi / box
    delta = np.broadcast_to(np.cos(k * x)[:, None, None], (n, n, n)).astype(np.float32)
    delta_k = sfft.rfftn(delta).astype(np.complex64)
    kd = derivative_kernel(n, box, gradient)[3]
    for comp in range(3):
        out = np.empty_like(delta_k)
        apply_kernel(delta_k, out, comp, box, n, gradient=gradient)
        g = sfft.irfftn(out, s=(n, n, n))
        expected = -(kd / k**2) * np.sin(k * x)[:, None, None] if comp == 0 else 0.0
        # Closed form of the kernel; float32 round-off only.
        np.testing.assert_allclose(g, np.broadcast_to(expected, g.shape), atol=1e-5 / k)


@pytest.mark.parametrize("gradient, expected", [
    ("exact", lambda k, h: k),
    ("fd2", lambda k, h: np.sin(k * h) / h),
    ("fd4", lambda k, h: (8 * np.sin(k * h) - np.sin(2 * k * h)) / (6 * h)),
])
def test_derivative_kernels(gradient, expected):
    n, box = 16, 32.0
    h = box / n
    k = np.fft.fftfreq(n, d=1.0 / n) * 2.0 * np.pi / box
    kd = derivative_kernel(n, box, gradient)
    ref = expected(k, h)
    if gradient == "exact":
        ref[n // 2] = 0.0
    np.testing.assert_allclose(kd, ref, atol=1e-12)
    # Long waves: the finite differences approach i k (fd2 to O(kh)^2, fd4 to O(kh)^4).
    assert kd[1] == pytest.approx(k[1], rel={"exact": 1e-12, "fd2": 2e-2, "fd4": 1e-3}[gradient])


# -- particles ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["cic", "tsc"])
@pytest.mark.parametrize("gradient", ["fd4", "fd2", "exact"])
def test_unperturbed_lattice_feels_no_force(scheme, gradient):
    n, box = 16, 64.0
    g = PMForce(2 * n, box, n**3, scheme=scheme, gradient=gradient)(_engine_lattice(n, box, 2 * n))
    # The lattice's density lives on the mesh Nyquist planes, where every
    # gradient kernel is zero: round-off only (1e-6 of the spacing).
    assert np.abs(g).max() < 1e-6 * box / n


@pytest.mark.parametrize("scheme", ["cic", "tsc"])
def test_plane_wave_force_equals_displacement(scheme):
    """Defaults (fd4 gradient, capped deconvolution, mesh = 2 N_p), A = 0.01 spacing.

    Measured rms |g_x - psi_x| / rms psi_x: CIC 1.10%, TSC 1.67% (fundamental
    1.011 and 1.016 times psi).  Without deconvolution (deconvolve=False): 0.095%
    and 0.15%; with fd2 and deconvolution 0.065% and 0.50%.  The excess comes
    from the lattice's Nyquist-plane sidebands, which the capped window
    correction amplifies and which alias onto the lattice sites."""
    g, psi, amp = _plane_wave_force(scheme)
    # 1% as the issue asks.
    np.testing.assert_allclose(g[:, 0], psi, atol=1e-2 * amp)


@pytest.mark.parametrize("scheme", ["cic", "tsc"])
def test_plane_wave_force_is_longitudinal(scheme):
    g, psi, amp = _plane_wave_force(scheme)
    # By symmetry every x-plane is uniform: no transverse force at all.
    assert np.abs(g[:, 1:]).max() <= 1e-6 * amp


@pytest.mark.parametrize("scheme", ["cic", "tsc"])
def test_plane_wave_force_without_deconvolution(scheme):
    """Same as above with deconvolve=False: isolates the Poisson solve and the
    linear response of deposit + interpolation (measured 0.095% / 0.15% rms)."""
    g, psi, amp = _plane_wave_force(scheme, deconvolve=False)
    np.testing.assert_allclose(g[:, 0], psi, atol=1e-2 * amp)


@pytest.mark.parametrize("scheme", ["cic", "tsc"])
def test_force_is_odd_in_small_displacements(scheme):
    """g(-psi) = -g(psi) to first order.  Off the nodes the deposit is linear in
    small displacements; on them (no half-cell shift) CIC's kink makes the even
    part 20% of the amplitude.  Measured even part: CIC 0.06%, TSC 0.5%."""
    g_plus, psi, amp = _plane_wave_force(scheme)
    g_minus, _, _ = _plane_wave_force(scheme, amp_cells=-0.01)
    assert _rms(g_plus[:, 0] + g_minus[:, 0]) < 1e-2 * _rms(psi)


# -- random Gaussian field --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plin():
    return linear_power(Cosmology(), (0.0,), kmax=5.0)


def _zeldovich_force_error(plin, band_limit, scheme="cic", n=32, box=256.0, D=0.01, seed=3):
    """rms |g - D psi1| / rms |D psi1| for a lattice displaced by D psi1."""
    kny = np.pi * n / box
    power = (lambda k: plin(k)) if band_limit is None else (lambda k: plin(k) * (k < band_limit * kny))
    psi1, _ = lpt_displacements(linear_density_k(white_noise(n, seed), box, power), box, order=1)
    pos = (_engine_lattice(n, box, 2 * n) + D * psi1) % box
    g = PMForce(2 * n, box, n**3, scheme=scheme)(pos).astype(np.float64)
    return _rms(g - D * psi1) / _rms(D * psi1)


@pytest.mark.parametrize("scheme", ["cic", "tsc"])
def test_random_field_force_resolved_modes(plin, scheme):
    """Input power only below half the particle Nyquist frequency (the modes the
    PM force resolves); D psi1 rms 0.05 Mpc/h vs 8 Mpc/h spacing.

    Measured rms error: CIC 2.8%, TSC 4.4%."""
    # 5% as the issue asks.
    assert _zeldovich_force_error(plin, band_limit=0.5, scheme=scheme) < 0.05


def test_random_field_force_full_spectrum(plin):
    """The same with the full linear spectrum, up to the lattice's corner mode.

    Measured rms error 8.7% (CIC defaults): per shell in k / k_Ny,particle,
    the force/displacement transfer is 1.003 (< 0.25), 1.026 (0.25-0.5), 1.08
    (0.5-0.75), 1.14 (0.75-1) with 0.9%, 6%, 17%, 29% rms error; those shells
    hold 71%, 17%, 7%, 3.5% of the displacement variance.  Near the particle
    Nyquist frequency a lattice does not respond like a fluid even with exact
    forces, so part of this is discreteness rather than PM error."""
    # 5% as the issue asks; this currently fails (8.7%).
    assert _zeldovich_force_error(plin, band_limit=None) < 0.05
