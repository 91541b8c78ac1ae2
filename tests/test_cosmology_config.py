"""Cosmology and SimConfig: reference defaults, validation messages, derived k bins."""
import math

import numpy as np
import pytest

from cosmopipe.sims import EE2_REFERENCE, Cosmology, SimConfig
from cosmopipe.sims.cosmology import PARAMETER_RANGES

# EuclidEmulator2 reference cosmology (Knabenhans et al. 2021, table 2).
EE2_REF_VALUES = {"Omega_m": 0.319, "Omega_b": 0.049, "h": 0.67, "A_s": 2.1e-9, "n_s": 0.96,
                  "w0": -1.0, "wa": 0.0, "m_nu": 0.058}


def _outside(name):
    """Two values just outside the allowed range of ``name`` (below and above)."""
    lo, hi = PARAMETER_RANGES[name]
    span = hi - lo
    return [lo - 0.01 * span, hi + 0.01 * span]


# -- Cosmology -------------------------------------------------------------

def test_defaults_are_ee2_reference():
    c = Cosmology()
    for name, value in EE2_REF_VALUES.items():
        # Defaults are literals, so they must be equal, not just close.
        assert getattr(c, name) == value, name
    assert c == EE2_REFERENCE
    assert set(Cosmology.names()) == set(EE2_REF_VALUES)


@pytest.mark.parametrize("name", sorted(EE2_REF_VALUES))
def test_out_of_range_names_parameter_and_range(name):
    lo, hi = PARAMETER_RANGES[name]
    for bad in _outside(name):
        with pytest.raises(ValueError) as exc:
            Cosmology(**{name: bad})
        msg = str(exc.value)
        assert name in msg
        assert f"[{lo:g}, {hi:g}]" in msg


@pytest.mark.parametrize("name", sorted(EE2_REF_VALUES))
@pytest.mark.parametrize("bad", ["abc", None, True, float("nan"), [0.3]])
def test_non_numeric_names_parameter(name, bad):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        Cosmology(**{name: bad})


@pytest.mark.parametrize("name, value", [("Omega_m", "0.3"), ("h", "0.7"), ("Omega_b", b"0.049"), ("h", False)])
def test_strings_and_bools_are_not_numbers(name, value):
    # Typed as in a workflow file, where fixed: {Omega_b: "0.049"} is refused.
    with pytest.raises(ValueError, match=rf"^cosmology parameter {name}: expected a number, got "):
        Cosmology(**{name: value})


def test_numpy_and_int_values_are_numbers():
    c = Cosmology(Omega_m=np.float32(0.25), m_nu=0)
    assert isinstance(c.Omega_m, float) and c.Omega_m == pytest.approx(0.25)
    assert c.m_nu == 0.0 and isinstance(c.m_nu, float)


def test_from_dict_rejects_unknown_names():
    with pytest.raises(ValueError, match="Omega_k"):
        Cosmology.from_dict({"Omega_k": 0.0})
    with pytest.raises(ValueError, match="sigma8"):
        Cosmology.from_dict({"Omega_m": 0.3, "sigma8": 0.8})


def test_from_dict_and_replace_keep_base():
    c = Cosmology.from_dict({"h": 0.7})
    assert c.h == 0.7 and c.Omega_m == EE2_REF_VALUES["Omega_m"]
    d = c.replace(w0=-0.9)
    assert d.h == 0.7 and d.w0 == -0.9
    assert Cosmology.from_dict(c.to_dict()) == c


def test_lcdm_sets_w0_wa():
    c = Cosmology(w0=-0.8, wa=-0.4, Omega_m=0.3, m_nu=0.1)
    lc = c.lcdm()
    assert (lc.w0, lc.wa) == (-1.0, 0.0)
    # Everything else is untouched.
    assert lc.replace(w0=c.w0, wa=c.wa) == c


@pytest.mark.parametrize("kwargs", [
    {"Omega_m": 0.05, "Omega_b": 0.05},                        # Omega_b + Omega_nu = 0.0514 > Omega_m
    {"Omega_m": 0.1, "Omega_b": 0.05, "m_nu": 1.0, "h": 0.4},  # Omega_nu = 0.067: no room for CDM
])
def test_no_room_for_cdm_rejected(kwargs):
    with pytest.raises(ValueError, match="Omega_b"):
        Cosmology(**kwargs)


def test_omega_b_plus_nu_equal_to_omega_m_rejected():
    # The boundary itself (Omega_c = 0) is rejected too: ">=" in the issue.
    h, m_nu = 0.67, 0.058
    omega_nu = m_nu / (93.14 * h**2)
    with pytest.raises(ValueError, match="Omega_b"):
        Cosmology(Omega_m=0.1, Omega_b=0.1 - omega_nu, h=h, m_nu=m_nu)


@pytest.mark.parametrize("w0, wa", [(-0.5, 0.5), (-0.3, 0.3), (-1.0, 1.5)])
def test_w0_plus_wa_nonnegative_rejected(w0, wa):
    with pytest.raises(ValueError, match=r"w0 \+ wa"):
        Cosmology(w0=w0, wa=wa)


def test_derived_densities():
    c = Cosmology()
    # Omega_nu h^2 = sum m_nu / 93.14 eV (EE2 convention).
    assert math.isclose(c.Omega_nu, 0.058 / 93.14 / 0.67**2, rel_tol=1e-14)
    assert math.isclose(c.Omega_cb + c.Omega_nu, c.Omega_m, rel_tol=1e-14)
    assert math.isclose(c.Omega_c + c.Omega_b + c.Omega_nu, c.Omega_m, rel_tol=1e-14)
    assert math.isclose(c.f_nu, c.Omega_nu / c.Omega_m, rel_tol=1e-14)


# -- SimConfig ---------------------------------------------------------------

def test_mesh_smaller_than_particles():
    with pytest.raises(ValueError, match=r"\bmesh\b"):
        SimConfig(particles=64, mesh=32)
    assert SimConfig(particles=64, mesh=64).mesh == 64
    assert SimConfig(particles=64).mesh == 128


@pytest.mark.parametrize("z_out", [(0.0, 1.0), (1.0, 1.0), (2.0, 0.5, 1.0), (), (-0.5,), ("a",)])
def test_bad_z_out(z_out):
    with pytest.raises(ValueError, match="z_out"):
        SimConfig(z_out=z_out)


@pytest.mark.parametrize("z_out", [(19.0,), (25.0, 1.0)])
def test_z_out_not_below_z_init(z_out):
    with pytest.raises(ValueError, match="z_out.*z_init"):
        SimConfig(z_init=19.0, z_out=z_out)


def test_z_out_scalar_and_list():
    assert SimConfig(z_out=0.5).z_out == (0.5,)
    assert SimConfig(z_out=[2, 1, 0]).z_out == (2.0, 1.0, 0.0)


@pytest.mark.parametrize("name, value", [
    ("assignment", "cloud"), ("assignment", 2), ("pk_assignment", "xyz"),
    ("step_spacing", "cubic"), ("gradient", "fd8"), ("noise", "fourier"),
])
def test_bad_choice(name, value):
    with pytest.raises(ValueError, match=name):
        SimConfig(**{name: value})


def test_assignment_case_insensitive():
    assert SimConfig(assignment="TSC").assignment == "tsc"


@pytest.mark.parametrize("name, value", [
    ("steps", -1), ("steps", 0), ("particles", 64.5), ("particles", "64.5"), ("particles", True),
    ("particles", 1), ("mesh", 100.5), ("lpt_order", 3), ("seed", -1), ("threads", 0),
    ("box", -10.0), ("box", 0.0), ("z_init", 0.0),
])
def test_bad_numbers(name, value):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        SimConfig(**{name: value})


@pytest.mark.parametrize("name, value", [("particles", "32"), ("particles", 64.0), ("steps", "10"),
                                         ("seed", True), ("mesh", 128.0)])
def test_integer_settings_take_integers_only(name, value):
    # Typed as in a workflow file, where positive_int refuses "32", 64.0 and true alike.
    with pytest.raises(ValueError, match=rf"^simulation setting {name}: expected an integer, got "):
        SimConfig(**{name: value})


@pytest.mark.parametrize("name, value", [("box", "256"), ("z_init", True), ("z_out", ("1", 0.0)),
                                         ("z_out", "0")])
def test_float_settings_refuse_strings_and_bools(name, value):
    with pytest.raises(ValueError, match=rf"^simulation setting {name}: expected "):
        SimConfig(**{name: value})


def test_numpy_integers_are_integers():
    c = SimConfig(particles=np.int64(32), box=np.float64(128), z_out=np.array([1.0, 0.0]))
    assert c.particles == 32 and type(c.particles) is int
    assert c.box == 128.0 and c.z_out == (1.0, 0.0)


def test_flags_must_be_bool():
    with pytest.raises(ValueError, match="paired"):
        SimConfig(paired=1)


def test_from_dict_rejects_unknown():
    with pytest.raises(ValueError, match="ncells"):
        SimConfig.from_dict({"ncells": 64})


@pytest.mark.parametrize("box, particles", [(256.0, 64), (100.0, 32), (1000.0, 128), (500.0, 17)])
def test_k_bins_default(box, particles):
    cfg = SimConfig(box=box, particles=particles)
    edges = cfg.k_bins()
    kf = 2.0 * np.pi / box
    # Edges are computed in double precision from closed forms: 1e-12 relative.
    assert math.isclose(edges[0], 0.5 * kf, rel_tol=1e-12)
    assert math.isclose(edges[-1], np.pi * particles / box, rel_tol=1e-12)
    assert math.isclose(cfg.k_nyquist, np.pi * particles / box, rel_tol=1e-12)
    d = np.diff(edges)
    np.testing.assert_allclose(d, d[0], rtol=1e-10)
    # About one bin per fundamental mode (the count is rounded, so the width
    # is k_f up to a factor (nk +- 1/2) / nk).
    nk = len(edges) - 1
    assert abs(d[0] / kf - 1.0) <= 0.5 / nk + 1e-12


def test_k_bins_explicit():
    cfg = SimConfig(box=200.0, particles=32, k_max=0.3, nk=10)
    edges = cfg.k_bins()
    assert len(edges) == 11
    assert math.isclose(edges[-1], 0.3, rel_tol=1e-12)
    assert math.isclose(edges[0], 0.5 * 2 * np.pi / 200.0, rel_tol=1e-12)
    # k_max beyond the P(k)-mesh Nyquist is an error naming k_max.
    with pytest.raises(ValueError, match="k_max"):
        SimConfig(box=200.0, particles=32, k_max=10.0)
