"""Mass assignment and interpolation on the periodic mesh.

Independent references: particle-number conservation, the B-spline weights
of Hockney & Eastwood, the transpose relation between deposit and
interpolate, and the continuous Fourier transform of the kernel (sinc^p),
which is what a deposit gives on average over sub-cell particle positions.
"""
import numpy as np
import pytest

from cosmopipe.sims.mesh import ORDER, deposit, interpolate, set_threads, window

SCHEMES = ("ngp", "cic", "tsc", "pcs")
SIZES = (14, 27, 32)


def _random_positions(n_part, box, seed):
    return np.random.default_rng(seed).uniform(0.0, box, (n_part, 3))


def _mesh(n):
    return np.empty((n, n, n), np.float32)


def _bspline_1d(order, s):
    """Hockney & Eastwood assignment kernel of order p at distance s (cell units)."""
    s = abs(s)
    if order == 1:
        return 1.0 if s < 0.5 else 0.0
    if order == 2:
        return max(0.0, 1.0 - s)
    if order == 3:
        if s < 0.5:
            return 0.75 - s * s
        return 0.5 * (1.5 - s) ** 2 if s < 1.5 else 0.0
    if s < 1.0:
        return (4.0 - 6.0 * s * s + 3.0 * s**3) / 6.0
    return (2.0 - s) ** 3 / 6.0 if s < 2.0 else 0.0


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n", SIZES)
def test_deposit_conserves_particle_number(scheme, n):
    box = 50.0
    pos = _random_positions(3000, box, seed=n)
    rho = deposit(pos, box, _mesh(n), scheme)
    # float32 cells, ~1-100 particles each: round-off ~1e-7 per cell; 1e-5 relative.
    assert float(rho.sum(dtype=np.float64)) == pytest.approx(3000, rel=1e-5)
    assert rho.min() >= 0.0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_deposit_handles_box_edges(scheme):
    # Particles at 0, just below the box and exactly at box (wraps to 0).
    box, n = 10.0, 8
    pos = np.array([[0.0, 0.0, 0.0], [np.nextafter(box, 0), 5.0, 9.99], [box, box, box]])
    rho = deposit(pos, box, _mesh(n), scheme)
    assert float(rho.sum(dtype=np.float64)) == pytest.approx(3.0, rel=1e-6)
    assert np.all(np.isfinite(rho))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_single_particle_weights(scheme):
    """One particle: every cell weight equals the product of 1D B-splines."""
    n, box = 12, 12.0  # unit cells
    p = np.array([[3.3, 7.85, 0.6]])
    rho = deposit(p, box, _mesh(n), scheme).astype(np.float64)
    cells = np.arange(n)
    w = [np.array([sum(_bspline_1d(ORDER[scheme], c - x + m * n) for m in (-1, 0, 1)) for c in cells])
         for x in p[0]]
    expected = w[0][:, None, None] * w[1][None, :, None] * w[2][None, None, :]
    np.testing.assert_allclose(rho, expected, atol=1e-6)  # float32 mesh


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n", SIZES)
def test_interpolate_constant(scheme, n):
    box = 50.0
    field = np.full((n, n, n), 2.5, np.float32)
    values = interpolate(field, _random_positions(500, box, seed=1), box, scheme)
    # The weights sum to 1: float32 round-off only.
    np.testing.assert_allclose(values, 2.5, rtol=1e-6)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_interpolate_several_fields(scheme):
    n, box = 16, 40.0
    rng = np.random.default_rng(2)
    fields = rng.standard_normal((3, n, n, n)).astype(np.float32)
    pos = _random_positions(200, box, seed=3)
    together = interpolate(fields, pos, box, scheme)
    assert together.shape == (200, 3)
    for f in range(3):
        np.testing.assert_allclose(together[:, f], interpolate(fields[f], pos, box, scheme), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n", SIZES)
def test_deposit_is_transpose_of_interpolate(scheme, n):
    """sum_cells deposit(pos) F = sum_particles interpolate(F, pos)."""
    box = 50.0
    pos = _random_positions(2000, box, seed=4)
    F = np.random.default_rng(5).standard_normal((n, n, n)).astype(np.float32)
    lhs = np.sum(deposit(pos, box, _mesh(n), scheme).astype(np.float64) * F)
    rhs = np.sum(interpolate(F, pos, box, scheme).astype(np.float64))
    scale = np.sum(np.abs(interpolate(F, pos, box, scheme).astype(np.float64)))
    # float32 weights and mesh: ~1e-7 per term; 1e-5 of the sum of magnitudes.
    assert abs(lhs - rhs) < 1e-5 * scale


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n", (27, 32))
def test_deposit_bitwise_independent_of_threads(scheme, n):
    box = 50.0
    pos = _random_positions(20000, box, seed=6)
    try:
        set_threads(1)
        one = deposit(pos, box, _mesh(n), scheme).copy()
        set_threads(2)
        two = deposit(pos, box, _mesh(n), scheme).copy()
        shifted = deposit(pos, box, _mesh(n), scheme, shift=0.5).copy()
        set_threads(1)
        shifted_one = deposit(pos, box, _mesh(n), scheme, shift=0.5)
    finally:
        set_threads(None)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(shifted, shifted_one)


@pytest.mark.parametrize("scheme, centre_weight", [("ngp", 1.0), ("cic", 1.0), ("tsc", 0.75), ("pcs", 4.0 / 6.0)])
def test_particle_on_cell_centre(scheme, centre_weight):
    n, box = 16, 32.0
    i, j, k = 5, 0, 15
    pos = np.array([[i, j, k]], dtype=float) * (box / n)
    rho = deposit(pos, box, _mesh(n), scheme)
    # Cell c is centred on c * box / n; B-spline weight at zero distance, cubed.
    assert rho[i, j, k] == pytest.approx(centre_weight**3, rel=1e-6)
    if scheme == "cic":
        assert np.count_nonzero(rho) == 1


def test_shift_moves_by_half_a_cell():
    n, box = 16, 32.0
    pos = np.array([[3.0, 4.0, 5.0]]) * (box / n)
    rho = deposit(pos, box, _mesh(n), "cic", shift=0.5)
    # A CIC particle half a cell off a node shares equally with the next cell: 1/8 each.
    sub = rho[3:5, 4:6, 5:7]
    np.testing.assert_allclose(sub, 0.125, rtol=1e-6)
    assert float(rho.sum()) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n", (16, 15))
def test_window(scheme, n):
    w_full, w_half = window(n, scheme)
    i = np.fft.fftfreq(n) * n
    p = ORDER[scheme]
    assert w_full[0] == 1.0
    # sinc(x) = sin(pi x)/(pi x), written out.
    x = np.pi * i / n
    expected = np.ones(n)
    expected[1:] = (np.sin(x[1:]) / x[1:]) ** p
    np.testing.assert_allclose(w_full, expected, rtol=1e-12)
    np.testing.assert_array_equal(w_half, w_full[: n // 2 + 1])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_window_is_mean_transform_of_deposit(scheme):
    """Averaged over sub-cell positions u, exp(i k u) DFT[deposit(u)](k) is the
    continuous transform of the kernel, i.e. window(); midpoint rule in u."""
    n, box, m = 16, 16.0, 64
    u = (np.arange(m) + 0.5) / m  # cell units
    acc = np.zeros(n, complex)
    kx = 2.0 * np.pi * np.fft.fftfreq(n)  # per cell
    for x in u:
        rho = deposit(np.array([[x, 0.0, 0.0]]), box, _mesh(n), scheme).astype(np.float64)
        line = rho.sum(axis=(1, 2))  # the ky = kz = 0 modes
        acc += np.fft.fft(line) * np.exp(1j * kx * x)
    acc /= m
    w_full, _ = window(n, scheme)
    # The integrand is piecewise polynomial in u: midpoint error ~ (1/m)^2 / 24 ~ 1e-5;
    # float32 mesh adds 1e-7. 1e-4.
    np.testing.assert_allclose(acc.real, w_full, atol=1e-4)
    np.testing.assert_allclose(acc.imag, 0.0, atol=1e-4)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n", (6, 15, 16, 14))
def test_deposit_clears_whatever_the_mesh_held(scheme, n):
    """The slabs zero the mesh as they deposit (even and odd slab counts, and the
    wrapping last slab): stale contents never leak into the density."""
    box = 50.0
    pos = _random_positions(5000, box, seed=3)
    clean = deposit(pos, box, np.zeros((n, n, n), np.float32), scheme).copy()
    dirty = np.full((n, n, n), np.float32(1e6))
    np.testing.assert_array_equal(deposit(pos, box, dirty, scheme), clean)
    # No particles at all: an all-zero mesh.
    assert not deposit(np.empty((0, 3)), box, dirty, scheme).any()
