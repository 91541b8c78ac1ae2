"""Initial conditions: white noise, Gaussian modes, 1LPT and 2LPT displacements.

The 2LPT reference is analytic.  For delta(q) = A cos(k1 x) + B cos(k2 y):
nabla^2 phi1 = delta gives phi1 = -A cos(k1 x)/k1^2 - B cos(k2 y)/k2^2, so
phi1,xx = A cos(k1 x), phi1,yy = B cos(k2 y) and all other second derivatives
vanish.  The 2LPT source is S = phi1,xx phi1,yy = A B cos(k1 x) cos(k2 y), an
eigenfunction of the Laplacian with eigenvalue -(k1^2 + k2^2), so

    phi2 = -A B cos(k1 x) cos(k2 y) / (k1^2 + k2^2),   psi2 = grad phi2:
    psi2_x =  A B k1 sin(k1 x) cos(k2 y) / (k1^2 + k2^2)
    psi2_y =  A B k2 cos(k1 x) sin(k2 y) / (k1^2 + k2^2),   psi2_z = 0.
"""
import numpy as np
import pytest
import scipy.fft as sfft

from cosmopipe.sims.ic import lattice, linear_density_k, lpt_displacements, white_noise


def _kgrid(n, box):
    """Wavevector components in the r2c layout (independent of sims.ic)."""
    kf = 2.0 * np.pi / box
    k = np.fft.fftfreq(n, d=1.0 / n) * kf
    kz = np.fft.rfftfreq(n, d=1.0 / n) * kf
    return k[:, None, None], k[None, :, None], kz[None, None, :]


def _kmag(n, box):
    kx, ky, kz = _kgrid(n, box)
    return np.sqrt(kx**2 + ky**2 + kz**2)


def _toy_power(k):
    """A smooth, positive P(k) [(Mpc/h)^3] with a turnover, for closed-form checks."""
    return 2.0e4 * k / (1.0 + (k / 0.02) ** 2.5)


def _full_hermitian_sum(values, n):
    """Sum over the full FFT grid of a quantity given on the r2c half grid."""
    mult = np.full(n // 2 + 1, 2.0)
    mult[0] = 1.0
    if n % 2 == 0:
        mult[-1] = 1.0
    return float(np.sum(values * mult[None, None, :]))


def _spectral_divergence(psi, n, box):
    kx, ky, kz = _kgrid(n, box)
    div = 0.0
    for d, kd in enumerate((kx, ky, kz)):
        div = div + 1j * kd * sfft.rfftn(psi[:, d].astype(np.float64).reshape(n, n, n))
    return div


# -- white noise and Gaussian modes ---------------------------------------------------

def test_white_noise_reproducible():
    a, b, c = white_noise(16, 42), white_noise(16, 42), white_noise(16, 43)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == (16, 16, 16) and a.dtype == np.float64
    # Unit variance: 4096 samples give sigma(var) = sqrt(2/4096) = 0.022; 5 sigma.
    assert abs(a.var() - 1.0) < 0.11


@pytest.mark.parametrize("n", [16, 15])
def test_nested_noise_is_unit_white_noise(n):
    a = white_noise(n, 42, "nested")
    np.testing.assert_array_equal(a, white_noise(n, 42, "nested"))
    assert not np.allclose(a, white_noise(n, 43, "nested"))
    assert a.shape == (n, n, n) and a.dtype == np.float64
    # Real by construction: its own modes come back (Hermitian planes), and they are white:
    # <|W_k|^2> = n^3 in every shell (~n^2 modes each: 6 sigma of an exponential variate).
    w = sfft.rfftn(a)
    f = np.abs(np.rint(np.fft.fftfreq(n, 1.0 / n)))
    shell = np.maximum(np.maximum(f[:, None, None], f[None, :, None]), np.arange(n // 2 + 1)[None, None, :])
    for s in range(2, (n - 1) // 2):
        p = np.abs(w[shell == s]) ** 2 / n**3
        assert abs(p.mean() - 1.0) < 6.0 / np.sqrt(p.size), s
    assert abs(a.var() - 1.0) < 5 * np.sqrt(2.0 / a.size)


def test_nested_noise_shares_large_scales_across_resolutions():
    """What a resolution study needs: 32^3 and 48^3 grids draw the same modes below 32^3's
    Nyquist shell (to round-off), where lattice noise gives unrelated fields."""
    def low_modes(kind, n, m=16):
        w = sfft.rfftn(white_noise(n, 5, kind)) / np.sqrt(n**3)
        idx = [int(v) % n for v in range(-m + 1, m)]
        return w[np.ix_(idx, idx, range(m))]
    np.testing.assert_allclose(low_modes("nested", 48), low_modes("nested", 32), rtol=0, atol=1e-12)
    lat = np.abs(low_modes("lattice", 48) - low_modes("lattice", 32))
    assert np.median(lat) > 0.5                  # independent unit modes differ by ~1.25 in median
    with pytest.raises(ValueError, match="kind must be one of lattice, nested"):
        white_noise(8, 1, "fourier")


@pytest.mark.parametrize("n, box", [(16, 100.0), (15, 80.0), (24, 300.0)])
def test_fixed_amplitude_modulus(n, box):
    noise = white_noise(n, 7)
    dk = linear_density_k(noise, box, _toy_power, fixed_amplitude=True)
    k = _kmag(n, box)
    nonzero = (k > 0) & (np.abs(sfft.rfftn(noise)) > 0)
    expected = n**6 * _toy_power(k[nonzero]) / box**3
    # |delta_k|^2 = n^3 (|W|^2 fixed to n^3) * n^3 P / V: exact up to round-off.
    np.testing.assert_allclose(np.abs(dk[nonzero]) ** 2, expected, rtol=1e-10)
    assert dk[0, 0, 0] == 0.0


def test_fixed_amplitude_keeps_phases():
    noise = white_noise(16, 8)
    dk = linear_density_k(noise, 100.0, _toy_power, fixed_amplitude=True)
    wk = sfft.rfftn(noise)
    sel = _kmag(16, 100.0) > 0
    # Fixing the modulus must not touch the phase of the white noise.
    np.testing.assert_allclose(np.angle(dk[sel]), np.angle(wk[sel]), atol=1e-10)


@pytest.mark.parametrize("fixed", [False, True])
def test_flip_is_exact_negative(fixed):
    noise = white_noise(16, 9)
    a = linear_density_k(noise, 100.0, _toy_power, fixed_amplitude=fixed)
    b = linear_density_k(noise, 100.0, _toy_power, fixed_amplitude=fixed, flip=True)
    np.testing.assert_array_equal(b, -a)


def test_random_amplitude_mean_power():
    n, box = 32, 200.0
    dk = linear_density_k(white_noise(n, 11), box, _toy_power)
    k = _kmag(n, box)
    ratio = np.abs(dk) ** 2 / (n**6 * np.where(k > 0, _toy_power(np.where(k > 0, k, 1.0)), 1.0) / box**3)
    sel = k > 0
    # |delta_k|^2 / <|delta_k|^2> is exponential with unit mean over ~16k
    # independent modes: sigma(mean) ~ 1/sqrt(16000) = 0.008; 5 sigma.
    assert abs(ratio[sel].mean() - 1.0) < 0.04


@pytest.mark.parametrize("fixed, tol", [(True, 1e-10), (False, 0.05)])
def test_real_space_variance(fixed, tol):
    n, box = 32, 200.0
    dk = linear_density_k(white_noise(n, 12), box, _toy_power, fixed_amplitude=fixed)
    delta = sfft.irfftn(dk, s=(n, n, n))
    k = _kmag(n, box)
    p = np.where(k > 0, _toy_power(np.where(k > 0, k, 1.0)), 0.0)
    # Parseval: var(delta) = sum over all modes of P(k) / V.
    expected = _full_hermitian_sum(p, n) / box**3
    # Fixed amplitudes: exact (round-off). Random: each mode's |delta_k|^2 is
    # exponential, so sigma(var)/var = sqrt(sum P^2)/sum P = 1.2% here
    # (1.4% measured over 40 seeds); 5% is about 4 sigma.
    assert delta.var() == pytest.approx(expected, rel=tol)
    assert abs(delta.mean()) < 1e-12


# -- 1LPT ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n, box", [(32, 200.0), (24, 100.0), (17, 150.0)])
def test_1lpt_divergence_is_minus_delta(n, box):
    """psi1 = -grad phi1, nabla^2 phi1 = delta  =>  div psi1 = -delta.

    Power is zero above half the Nyquist frequency, so the Nyquist planes (which
    get no derivative) carry nothing."""
    k = _kmag(n, box)
    kny = np.pi * n / box
    dk = linear_density_k(white_noise(n, 3), box, lambda kk: _toy_power(kk) * (kk < 0.5 * kny))
    psi1, psi2 = lpt_displacements(dk, box, order=1)
    assert psi1.shape == (n**3, 3) and psi1.dtype == np.float32
    assert not psi2.any()
    div = _spectral_divergence(psi1, n, box)
    rms = lambda x: np.sqrt(np.mean(np.abs(x) ** 2))  # noqa: E731
    # psi1 is stored in float32 (relative round-off 6e-8 per value); 1e-4 relative rms.
    assert rms(div + dk) / rms(dk) < 1e-4
    assert np.all(np.abs(div[k >= 0.5 * kny]) < 1e-6 * rms(dk))


def test_1lpt_plane_wave_closed_form():
    """delta = A cos(k x)  =>  psi1_x = -A sin(k x) / k (Zel'dovich)."""
    n, box, amp = 32, 100.0, 0.3
    k = 3 * 2.0 * np.pi / box
    q = lattice(n, box)
    delta = (amp * np.cos(k * q[:, 0])).reshape(n, n, n)
    psi1, _ = lpt_displacements(sfft.rfftn(delta), box, order=1)
    # float32 storage: 1e-6 of the amplitude A/k = 1.6 Mpc/h.
    np.testing.assert_allclose(psi1[:, 0], -amp / k * np.sin(k * q[:, 0]), atol=1e-6 * amp / k)
    np.testing.assert_allclose(psi1[:, 1:], 0.0, atol=1e-6 * amp / k)


# -- 2LPT ---------------------------------------------------------------------------------

@pytest.mark.parametrize("m1, m2", [(1, 1), (2, 3), (5, 1)])
def test_2lpt_two_crossed_waves(m1, m2):
    n, box = 32, 100.0
    A, B = 0.4, -0.25
    k1, k2 = m1 * 2.0 * np.pi / box, m2 * 2.0 * np.pi / box
    q = lattice(n, box)
    x, y = q[:, 0], q[:, 1]
    delta = (A * np.cos(k1 * x) + B * np.cos(k2 * y)).reshape(n, n, n)
    _, psi2 = lpt_displacements(sfft.rfftn(delta), box, order=2)
    ksq = k1**2 + k2**2
    expected = np.stack([A * B * k1 * np.sin(k1 * x) * np.cos(k2 * y) / ksq,
                         A * B * k2 * np.cos(k1 * x) * np.sin(k2 * y) / ksq,
                         np.zeros_like(x)], axis=1)
    scale = np.abs(expected).max()
    # All steps are exact for band-limited fields; the error is float32 storage
    # and FFT round-off: 1e-5 of the peak displacement.
    np.testing.assert_allclose(psi2, expected, atol=1e-5 * scale)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_2lpt_single_plane_wave_vanishes(axis):
    """A plane wave is one dimensional: every 2LPT source term is zero."""
    n, box, amp = 32, 100.0, 0.5
    k = 2 * 2.0 * np.pi / box
    q = lattice(n, box)
    delta = (amp * np.cos(k * q[:, axis])).reshape(n, n, n)
    psi1, psi2 = lpt_displacements(sfft.rfftn(delta), box, order=2)
    assert np.abs(psi2).max() <= 1e-6 * np.abs(psi1).max()


def test_2lpt_divergence_equals_source():
    """Gaussian field: div psi2 = nabla^2 phi2 = sum_{i>j} phi1,ii phi1,jj - phi1,ij^2,
    with the source built here from phi1 independently of sims.ic."""
    n, box = 24, 200.0
    dk = linear_density_k(white_noise(n, 5), box, lambda kk: _toy_power(kk) * (kk < 0.5 * np.pi * n / box))
    _, psi2 = lpt_displacements(dk, box, order=2)
    kx, ky, kz = _kgrid(n, box)
    k2 = kx**2 + ky**2 + kz**2
    k2[0, 0, 0] = 1.0
    phi_k = -dk / k2
    kk = (kx, ky, kz)
    d = {(i, j): sfft.irfftn(-kk[i] * kk[j] * phi_k, s=(n, n, n)) for i in range(3) for j in range(i, 3)}
    source = (d[0, 0] * d[1, 1] + d[0, 0] * d[2, 2] + d[1, 1] * d[2, 2]
              - d[0, 1] ** 2 - d[0, 2] ** 2 - d[1, 2] ** 2)
    div = sfft.irfftn(_spectral_divergence(psi2, n, box), s=(n, n, n))
    # Band-limited to k_N/2, the quadratic source has support below k_N, so
    # div psi2 = nabla^2 phi2 = S up to the mean; float32 storage: 1e-4 relative rms.
    src = source - source.mean()
    assert np.sqrt(np.mean((div - src) ** 2)) < 1e-4 * np.sqrt(np.mean(src**2))


def test_lattice_shape_and_order():
    n, box = 4, 10.0
    q = lattice(n, box)
    assert q.shape == (n**3, 3)
    # C order: the last (z) index runs fastest; spacing box/n from 0.
    np.testing.assert_array_equal(q[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(q[1], [0.0, 0.0, 2.5])
    np.testing.assert_array_equal(q[n], [0.0, 2.5, 0.0])
    np.testing.assert_array_equal(q[n * n], [2.5, 0.0, 0.0])
    np.testing.assert_array_equal(q[-1], [7.5, 7.5, 7.5])
    assert q.min() >= 0.0 and q.max() < box
    # Every site once.
    assert len(np.unique(np.round(q / 2.5).astype(int), axis=0)) == n**3
