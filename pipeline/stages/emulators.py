"""Workflow stages ``train`` and ``validate`` (after ``simulate``).

``train`` (all keys optional)::

    train:
      dataset: datasets/train.h5      # the simulate stage's training set
      out: emulators/boost.h5
      mode: joint                     # or per_z
      target: boost                   # or response: R = B(X)/B(X-lcdm) over the dataset's LCDM
                                      # twin pairs (emulators.response); the hybrid is then
                                      # B_EE2(theta_LCDM) * R_emu(theta)
      params: null                    # response only: the network's inputs, e.g. [Omega_m, w0, wa,
                                      # A_s, h] (default all varied; must include w0 or wa)
      k_max: null                     # train on k <= k_max [h/Mpc] only
      z_max: null
      pca: {variance: 0.999999, max_components: null}
      network: {hidden: [64, 64], activation: tanh, optimizer: lbfgs, epochs: 10000,
                learning_rate: 0.003, batch_size: 32, weight_decay: 1.0e-7, patience: 100,
                check_every: 50, seed: 0}
      validation_fraction: 0.1        # held out for early stopping and the scores
      refit: true                     # then refit on all cosmologies for the best iteration count
      restarts: 1                     # independent fits, best kept (Dask tasks)
      hybrid: false                   # also write emulators/hybrid.h5 (EE2 x COLA ratio)
      ee2_surrogate:                  # with hybrid: a PCA + MLP of EE2 on the LCDM slice, stored in
                                      # hybrid.h5 for fast sampling (emulators.ee2_lcdm); default on
                                      # ("ee2_surrogate: false" leaves it out)
        n: 3000                       # EE2 cosmologies (Latin hypercube, EE2 box ∩ dataset box)
        seed: 0
        nz: 31                        # redshifts uniform in [0, z_max], z_max = the largest z of
                                      # the dataset and the linear emulator
        pca: {variance: 0.99999999}
        n_test: 300                   # held-out EE2 cosmologies for the reported accuracy
        network: {...}                # as above (default epochs 10000)
      hmcode_tail:                    # with hybrid: HMcode-2020's response shape above the COLA k_max
                                      # (emulators.hmcode_tail; "hmcode_tail: true" takes the defaults;
                                      # default off: two CAMB runs per cosmology, ~15 core-minutes)
        n: 250                        # CAMB cosmology pairs (Latin hypercube of the COLA box)
        n_test: 50
        nz: 16                        # redshifts uniform in [0, z_max of the COLA emulator]
        nk: 30                        # k log-spaced from the COLA k_max to 10 h/Mpc
      linear:                         # optional linear-power emulator, attached to the boost
                                      # ("linear: true" takes all the defaults below)
        n: 200                        # CAMB cosmologies (Latin hypercube of the dataset's box)
        seed: 0
        z_max: 3.0                    # default: the dataset's largest z
        nz: 16                        # redshifts, uniform in ln(1 + z) from 0
        k_min: 1.0e-4
        k_max: 10.0
        nk: 250                       # log-spaced
        species: tot                  # or cb
        network: {...}                # as above (default epochs 10000)

``validate``::

    validate:
      emulator: emulators/boost.h5    # or a list; default: boost.h5 (+ hybrid.h5 if train writes it)
      test: datasets/test.h5
      out_dir: validation
      compare_ee2: true
      predict:                        # optional prediction plot against EE2
        params: {Omega_m: 0.3, w0: -0.9}   # others: the emulator's fixed values / EE2 reference
        z: [0, 0.5, 1]
        k_min: null                   # default: the emulator's k range
        k_max: null
        nk: 100

Relative paths are taken relative to the run directory.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cosmopipe.schema import (ConfigError, Section, boolean, choice, inside_path, list_of, nonnegative_number, optional, positive_int,
                             positive_number, integer, number, string)
from cosmopipe.pipeline.workflow import Stage

from cosmopipe.emulators.boost import dataset_space, train_boost
from cosmopipe.emulators.hybrid import make_hybrid
from cosmopipe.emulators.io import save
from cosmopipe.emulators.linear import (camb_linear_dataset, latin_hypercube, read_linear_dataset, train_linear,
                                        write_linear_dataset)
from cosmopipe.emulators.loader import load
from cosmopipe.emulators.network import ACTIVATIONS, TrainConfig
from cosmopipe.emulators.plots import plot_prediction
from cosmopipe.emulators.response import train_response
from cosmopipe.emulators.training import FitSettings
from cosmopipe.emulators.validate import validate
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.dataset import read_dataset

from .hybrid_parts import SURROGATE_PCA_VARIANCE, SurrogateSettings, TailSettings, ee2_surrogate, hmcode_tail

__all__ = ["STAGES", "TrainSettings", "ValidateSettings"]


@dataclass(frozen=True)
class LinearSettings:
    """The CAMB campaign (n cosmologies; nz redshifts in [0, z_max]; nk log-spaced
    k in [k_min, k_max] h/Mpc) and the fit of the linear-power emulator."""

    n: int = 200
    seed: int = 0
    z_max: float | None = None
    nz: int = 16
    k_min: float = 1e-4
    k_max: float = 10.0
    nk: int = 250
    species: str = "tot"
    fit: FitSettings = FitSettings()


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` section (paths relative to the run directory; None: default)."""

    dataset: str | None
    out: str | None
    fit: FitSettings
    k_max: float | None
    z_max: float | None
    hybrid: bool
    linear: LinearSettings | None
    ee2_surrogate: SurrogateSettings | None = None
    target: str = "boost"
    params: tuple | None = None
    hmcode_tail: TailSettings | None = None


@dataclass(frozen=True)
class PredictSettings:
    """``validate.predict``: one cosmology ((name, value) pairs), redshifts, k [h/Mpc]."""

    params: tuple
    z: tuple
    k_min: float | None
    k_max: float | None
    nk: int
    out: str | None


@dataclass(frozen=True)
class ValidateSettings:
    """The ``validate`` section: emulator files, test dataset, output directory."""

    emulators: tuple
    test: str | None
    out_dir: str | None
    compare_ee2: bool
    predict: PredictSettings | None


def _fraction(v):
    x = number(v)
    if not 0.0 <= x < 0.5:
        raise ValueError(f"must be a number in [0, 0.5), got {v}")
    return x


def _unit_interval(v):
    x = number(v)
    if not 0.0 < x <= 1.0:
        raise ValueError(f"must be a number in (0, 1], got {v}")
    return x


def _network(sec: Section, default_epochs: int) -> TrainConfig:
    base = TrainConfig(hidden=(64, 64), epochs=default_epochs)
    cfg = TrainConfig(
        hidden=tuple(sec.take("hidden", list_of(positive_int), default=list(base.hidden))),
        activation=sec.take("activation", choice(*ACTIVATIONS), default=base.activation),
        optimizer=sec.take("optimizer", choice("lbfgs", "adam"), default=base.optimizer),
        epochs=sec.take("epochs", positive_int, default=base.epochs),
        learning_rate=sec.take("learning_rate", positive_number, default=base.learning_rate),
        batch_size=sec.take("batch_size", positive_int, default=base.batch_size),
        weight_decay=sec.take("weight_decay", nonnegative_number, default=base.weight_decay),
        patience=sec.take("patience", positive_int, default=base.patience),
        check_every=sec.take("check_every", positive_int, default=base.check_every),
        seed=sec.take("seed", integer, default=base.seed),
    )
    sec.finish()
    return cfg


def _fit(sec: Section, default_epochs: int = 10000, default_variance: float = 1.0 - 1e-6) -> FitSettings:
    pca = sec.sub("pca", default={})
    variance = pca.take("variance", _unit_interval, default=default_variance)
    max_components = pca.take("max_components", optional(positive_int), default=None)
    pca.finish()
    return FitSettings(
        mode=sec.take("mode", choice("joint", "per_z"), default="joint"),
        pca_variance=variance, max_components=max_components,
        network=_network(sec.sub("network", default={}), default_epochs),
        validation_fraction=sec.take("validation_fraction", _fraction, default=0.1),
        refit=sec.take("refit", boolean, default=True),
        restarts=sec.take("restarts", positive_int, default=1),
        seed=sec.take("seed", integer, default=0),
    )


def _parse_linear(sec: Section) -> LinearSettings:
    fit = _fit(sec)
    out = LinearSettings(
        n=sec.take("n", positive_int, default=200),
        z_max=sec.take("z_max", optional(nonnegative_number), default=None),
        nz=sec.take("nz", positive_int, default=16),
        k_min=sec.take("k_min", positive_number, default=1e-4),
        k_max=sec.take("k_max", positive_number, default=10.0),
        nk=sec.take("nk", positive_int, default=250),
        species=sec.take("species", choice("tot", "cb"), default="tot"),
        seed=fit.seed, fit=fit,
    )
    if out.k_min >= out.k_max:
        raise sec.error("k_max", f"must exceed k_min={out.k_min:g}, got {out.k_max:g}")
    _at_least(sec, "n", out.n, 4, "cosmologies")
    _at_least(sec, "nk", out.nk, 4, "wavenumbers")
    sec.finish()
    return out


def _at_least(sec: Section, key: str, value: int, minimum: int, what: str) -> None:
    if value < minimum:
        raise sec.error(key, f"needs at least {minimum} {what}, got {value}")


def parse_hybrid_part(sec: Section, cls):
    """A SurrogateSettings or TailSettings section: cosmologies n, redshifts nz, held-out
    n_test (and wavenumbers nk for the tail), the fit; defaults from ``cls``."""
    fit = _fit(sec, default_variance=SURROGATE_PCA_VARIANCE)
    default = cls()
    values = {"n": sec.take("n", positive_int, default=default.n), "nz": sec.take("nz", positive_int, default=default.nz),
              "n_test": sec.take("n_test", integer, default=default.n_test)}
    if hasattr(default, "nk"):
        values["nk"] = sec.take("nk", positive_int, default=default.nk)
        _at_least(sec, "nk", values["nk"], 4, "wavenumbers")
    _at_least(sec, "n", values["n"], 20, "cosmologies")
    _at_least(sec, "nz", values["nz"], 4, "redshifts")
    if values["n_test"] < 0:
        raise sec.error("n_test", f"must be >= 0, got {values['n_test']}")
    sec.finish()
    return cls(seed=fit.seed, fit=fit, **values)


def parse_tail(sec: Section) -> TailSettings | None:
    value = sec.data.get("hmcode_tail")
    if value in (None, False, True):
        sec.take("hmcode_tail", default=None)
        return TailSettings() if value is True else None
    return parse_hybrid_part(sec.sub("hmcode_tail"), TailSettings)


def parse_train(sec: Section, info: dict) -> TrainSettings:
    fit = _fit(sec)
    tail = parse_tail(sec)
    surrogate_value = sec.data.get("ee2_surrogate", True)
    if surrogate_value is True:
        sec.take("ee2_surrogate", default=None)
        surrogate = SurrogateSettings()
    elif surrogate_value is False or surrogate_value is None:
        sec.take("ee2_surrogate", default=None)
        surrogate = None
    else:
        surrogate = parse_hybrid_part(sec.sub("ee2_surrogate"), SurrogateSettings)
    linear = None
    value = sec.data.get("linear")
    if value is True:  # "linear: true": the defaults
        sec.take("linear")
        linear = _parse_linear(Section({}, sec.key("linear"), sec.source))
    elif value not in (None, False):
        linear = _parse_linear(sec.sub("linear"))
    else:
        sec.take("linear", default=None)
    settings = TrainSettings(
        dataset=sec.take("dataset", string, default=None),
        out=sec.take("out", inside_path, default=None),
        fit=fit,
        k_max=sec.take("k_max", optional(positive_number), default=None),
        z_max=sec.take("z_max", optional(nonnegative_number), default=None),
        hybrid=sec.take("hybrid", boolean, default=False),
        linear=linear,
        target=sec.take("target", choice("boost", "response"), default="boost"),
    )
    if settings.target == "response" and not settings.hybrid:
        raise sec.error("target", "response needs hybrid: true (a response alone is not a boost)")
    params = sec.take("params", optional(list_of(string, unique=True)), default=None)
    if params is not None:
        if settings.target != "response":
            raise sec.error("params", "restricts the inputs of a response emulator only (target: response)")
        settings = replace(settings, params=tuple(params))
    if settings.hybrid:
        settings = replace(settings, ee2_surrogate=surrogate, hmcode_tail=tail)
    elif isinstance(surrogate_value, dict):
        raise sec.error("ee2_surrogate", "is only used with hybrid: true")
    elif tail is not None:
        raise sec.error("hmcode_tail", "is only used with hybrid: true")
    sec.finish()
    return settings


def _path(ctx, value: str | None, default: str) -> Path:
    return ctx.resolve(value, default)


def _hybrid_path(out: Path) -> Path:
    return out.with_name("hybrid.h5") if out.name != "hybrid.h5" else out.with_name("hybrid_ee2.h5")


def plan_train(s: TrainSettings, ctx) -> str:
    out = _path(ctx, s.out, _default_out(s))
    net = s.fit.network
    what = "ln B" if s.target == "boost" else ("ln R = ln B(X)/B(X-lcdm) over the LCDM twin pairs, inputs "
                                               + (", ".join(s.params) if s.params else "all varied parameters"))
    lines = [
        f"read the training set {_path(ctx, s.dataset, 'datasets/train.h5')}",
        f"fit {what}: {s.fit.mode} PCA keeping {s.fit.pca_variance:.10g} of the variance, MLP {list(net.hidden)} "
        f"({net.activation}, {net.optimizer}, up to {net.epochs} iterations, {s.fit.restarts} restart(s), "
        f"{s.fit.validation_fraction:.0%} held out)",
        f"write {out}",
    ]
    if s.linear is not None:
        lin = s.linear
        lines.insert(1, f"run CAMB for {lin.n} Latin-hypercube cosmologies ({lin.nz} z up to "
                        f"{'the dataset z_max' if lin.z_max is None else lin.z_max}, {lin.nk} k in "
                        f"[{lin.k_min:g}, {lin.k_max:g}] h/Mpc) on the Dask cluster, about {1.5 * lin.n:.0f} "
                        f"core-seconds, into {ctx.path('datasets', 'linear.h5')}; fit the linear-power emulator")
    if s.hybrid:
        if s.ee2_surrogate is not None:
            su = s.ee2_surrogate
            lines.append(f"run EuclidEmulator2 at {su.n} + {su.n_test} LCDM cosmologies (~{0.01 * (su.n + su.n_test):.0f}"
                         f" core-seconds) and fit its surrogate for sampling")
        if s.hmcode_tail is not None:
            tl = s.hmcode_tail
            lines.append(f"run CAMB with HMcode-2020 at {tl.n} + {tl.n_test} cosmologies and their LCDM projections "
                         f"(~{4 * (tl.n + tl.n_test):.0f} core-seconds) and fit the response above the COLA k_max")
        lines.append(f"write the hybrid EE2 x COLA emulator {_hybrid_path(out)}")
    return "\n".join(lines)


def _default_out(s: TrainSettings) -> str:
    return "emulators/boost.h5" if s.target == "boost" else "emulators/response.h5"


def _resume_ok(path: Path, dataset_hash: str, settings: dict, cuts: dict, with_linear: bool, log,
               target: str = "boost", params: tuple | None = None) -> bool:
    if not path.is_file():
        return False
    try:
        emu = load(path)
    except (OSError, ValueError) as exc:
        log.info("train: existing %s is not reusable (%s); retraining", path, exc)
        return False
    same = (emu.info.get("dataset_hash") == dataset_hash and emu.info.get("training_settings") == settings
            and emu.info.get("training_cuts") == cuts and (emu.linear is not None) == with_linear
            and emu.info.get("target", "boost") == target
            and (params is None or tuple(emu.info.get("inputs", ())) == tuple(n for n in emu.params if n in params)))
    if not same:
        log.info("train: existing %s was trained on other data or settings; retraining", path)
    return same


def run_train(s: TrainSettings, ctx) -> None:
    dataset_path = _path(ctx, s.dataset, "datasets/train.h5")
    out = _path(ctx, s.out, _default_out(s))
    ds = read_dataset(dataset_path)
    ctx.log.info("train: %d simulations, varied %s, %d z x %d k", len(ds), ", ".join(ds.varied), len(ds.z), len(ds.k))
    settings_dict = s.fit.to_dict()
    cuts = {"k_max": s.k_max, "z_max": s.z_max}
    if ctx.resume and _resume_ok(out, ds.hash, settings_dict, cuts, s.linear is not None, ctx.log, s.target,
                                 s.params):
        ctx.log.info("train: %s is up to date (same dataset hash and settings); skipped", out)
        emu = load(out)
    else:
        client = ctx.client() if (s.fit.restarts > 1 or s.fit.mode == "per_z" or s.linear is not None) else None
        linear = _train_linear(s, ds, dataset_space(ds), ctx, client) if s.linear is not None else None
        if s.target == "response":
            try:
                emu = train_response(ds, s.fit, params=s.params, k_max=s.k_max, z_max=s.z_max, linear=linear,
                                     client=client)
            except ValueError as exc:  # no twin pairs, a broken pair, an input not varied
                raise ConfigError(ctx.workflow.source, "train.dataset",
                                  f"{dataset_path}: {exc}") from None
            ctx.log.info("train: response over %d twin pairs (%d unpaired skipped), inputs %s; max |R_emu - 1| "
                         "at the LCDM twins %.2g", emu.info["n_pairs"], emu.info["n_unpaired"],
                         ", ".join(emu.inputs), emu.info["lcdm_check"]["max_abs_R_minus_1"])
        else:
            emu = train_boost(ds, s.fit, client=client, k_max=s.k_max, z_max=s.z_max, linear=linear)
        emu.info["dataset_path"] = str(dataset_path)
        save(emu, out)
        v = emu.info["validation"]
        ctx.log.info("train: wrote %s (%.1f s; held-out p95 of max |dB/B| for k<=1: %s)", out,
                     emu.info["training_seconds"],
                     f"{100 * v['max_k_le_1_p95']:.3f} %" if "max_k_le_1_p95" in v else "n/a")
    if s.hybrid:
        path = _hybrid_path(out)
        surrogate = ee2_surrogate(s.ee2_surrogate, emu, path, ctx) if s.ee2_surrogate is not None else None
        tail = hmcode_tail(s.hmcode_tail, emu, path, ctx) if s.hmcode_tail is not None else None
        save(make_hybrid(emu, surrogate, tail), path)
        ctx.log.info("train: wrote %s", path)


def _train_linear(s: TrainSettings, ds, space, ctx, client):
    lin = s.linear
    z_max = lin.z_max if lin.z_max is not None else float(np.max(ds.z))
    z = np.expm1(np.linspace(0.0, np.log1p(z_max), lin.nz)) if lin.nz > 1 else np.array([0.0])
    k = np.geomspace(lin.k_min, lin.k_max, lin.nk)
    design = latin_hypercube(lin.n, space, seed=lin.seed)
    path = ctx.path("datasets", "linear.h5")
    data = None
    if path.is_file():
        try:
            cached = read_linear_dataset(path)
            params = np.array([[d[n] for n in cached.names] for d in design])
            if (cached.species == lin.species and cached.pk.shape == (lin.n, z.size, k.size)
                    and np.allclose(cached.params, params, rtol=1e-12) and np.allclose(cached.z, z)
                    and np.allclose(cached.k, k)):
                data = cached
                ctx.log.info("train: reusing the CAMB campaign in %s", path)
        except (OSError, ValueError) as exc:
            ctx.log.info("train: %s not reusable (%s)", path, exc)
    if data is None:
        t0 = time.perf_counter()
        ctx.log.info("train: running CAMB for %d cosmologies", lin.n)
        data = camb_linear_dataset(design, z, k, client=client, species=lin.species)
        write_linear_dataset(path, data)
        ctx.log.info("train: CAMB campaign done in %.1f s wall (%.1f CPU-s)", time.perf_counter() - t0,
                     float(np.sum(data.seconds)))
    emu = train_linear(data, space, lin.fit, client=client)
    v = emu.info["validation"]
    ctx.log.info("train: linear-power emulator fitted (held-out p95 |dP/P| %s)",
                 f"{100 * v['pointwise_p95']:.4f} %" if "pointwise_p95" in v else "n/a")
    return emu


# -- validate -------------------------------------------------------------------------
def _parse_predict(sec: Section) -> PredictSettings:
    params_sec = sec.sub("params", default={})
    params = {}
    for name in list(params_sec.keys()):
        if name not in Cosmology.names():
            raise params_sec.error(str(name), f"unknown cosmology parameter; allowed: {', '.join(Cosmology.names())}")
        params[name] = params_sec.take(name, number)
    params_sec.finish()
    z = sec.take("z", list_of(nonnegative_number, unique=True), default=[0.0, 0.5, 1.0])
    out = PredictSettings(params=tuple(params.items()), z=tuple(sorted(z)),
                          k_min=sec.take("k_min", optional(positive_number), default=None),
                          k_max=sec.take("k_max", optional(positive_number), default=None),
                          nk=sec.take("nk", positive_int, default=100),
                          out=sec.take("out", inside_path, default=None))
    if out.k_min is not None and out.k_max is not None and out.k_min >= out.k_max:
        raise sec.error("k_max", f"must exceed k_min={out.k_min:g}")
    sec.finish()
    return out


def parse_validate(sec: Section, info: dict) -> ValidateSettings:
    raw = sec.take("emulator", default=None)
    if raw is None:
        train = info.get("stages", {}).get("train")
        emus = ["emulators/boost.h5"]
        if train is not None:
            out = train.out or _default_out(train)
            # A response emulator alone has no boost to compare: only its hybrid is validated.
            emus = ([out] if train.target == "boost" else []) + \
                ([str(_hybrid_path(Path(out)))] if train.hybrid else [])
    elif isinstance(raw, str) and raw:
        emus = [raw]
    else:
        try:
            emus = list_of(string, unique=True)(raw)
        except ValueError as exc:
            raise sec.error("emulator", f"must be a path or a list of paths: {exc}") from None
    predict = _parse_predict(sec.sub("predict")) if sec.has("predict") else None
    out = ValidateSettings(emulators=tuple(emus), test=sec.take("test", string, default=None),
                           out_dir=sec.take("out_dir", inside_path, default=None),
                           compare_ee2=sec.take("compare_ee2", boolean, default=True), predict=predict)
    sec.finish()
    return out


def _out_dirs(s: ValidateSettings, ctx) -> list[tuple[Path, Path]]:
    base = _path(ctx, s.out_dir, "validation")
    paths = [_path(ctx, e, e) for e in s.emulators]
    if len(paths) == 1:
        return [(paths[0], base)]
    return [(p, base / p.stem) for p in paths]


def plan_validate(s: ValidateSettings, ctx) -> str:
    lines = [f"validate {emu} against {_path(ctx, s.test, 'datasets/test.h5')} -> {out}/validation.(csv|md|png|json)"
             + (" (and against EuclidEmulator2)" if s.compare_ee2 else "") for emu, out in _out_dirs(s, ctx)]
    if s.predict is not None:
        lines.append(f"plot a prediction at z = {', '.join(f'{z:g}' for z in s.predict.z)} for "
                     f"{dict(s.predict.params) or 'the reference cosmology'}")
    return "\n".join(lines)


def run_validate(s: ValidateSettings, ctx) -> None:
    test = read_dataset(_path(ctx, s.test, "datasets/test.h5"))
    for emu_path, out_dir in _out_dirs(s, ctx):
        emu = load(emu_path)
        result = validate(emu, test, out_dir, compare_ee2=s.compare_ee2)
        sm = result.summary
        parts = []
        if "fraction_within_0.5pct_k_le_1_z_le_3" in sm:
            parts.append(f"{sm['fraction_within_0.5pct_k_le_1_z_le_3']:.1%} within 0.5 % of the simulations "
                         "(k <= 1, z <= 3)")
        if "ee2_fraction_within_1pct_k_le_1_z_le_2" in sm:
            parts.append(f"{sm['ee2_fraction_within_1pct_k_le_1_z_le_2']:.1%} within 1 % of EE2 (k <= 1, z <= 2)")
        ctx.log.info("validate: %s (%s), %d test cosmologies: %s; report in %s", emu_path.name, emu.kind,
                     sm["n_used"], "; ".join(parts) or "no headline figures", out_dir)
        if s.predict is not None:
            _predict_plot(s.predict, emu, out_dir, ctx)


def _predict_plot(p: PredictSettings, emu, out_dir: Path, ctx) -> None:
    reference = Cosmology().to_dict()
    params = {n: (dict(p.params)[n] if n in dict(p.params) else reference[n]) for n in emu.params}
    params.update({n: v for n, v in p.params if n not in emu.params})
    k_lo, k_hi = emu.k_range
    k = np.geomspace(p.k_min or k_lo, p.k_max or k_hi, p.nk)
    path = _path(ctx, p.out, str(out_dir / "prediction.png")) if p.out else out_dir / "prediction.png"
    try:
        written, note = plot_prediction(emu, params, k, np.asarray(p.z), path)
    except ValueError as exc:
        raise ConfigError(ctx.workflow.source, "validate.predict", str(exc)) from None
    ctx.log.info("validate: prediction plot %s%s", written, f" ({note})" if note else "")


STAGES = [
    Stage("train", parse_train, run_train, plan_train,
          help="fit the boost emulator (PCA + MLP of ln B) to the simulated training set"),
    Stage("validate", parse_validate, run_validate, plan_validate,
          help="error percentiles of the emulator against held-out simulations and EE2, plots"),
]
