"""Shipped emulator models: load by name, verify, list, and write a model directory.

A model is a directory ``<root>/<name>/`` holding

    <emulator>.h5     the emulator (boost or hybrid; a hybrid carries its COLA,
                      EE2-surrogate and linear-power emulators)
    train.h5, test.h5 optional: the consolidated training and test datasets
    MANIFEST.json     format, name, the emulator file, box, k and z range, a one-line
                      accuracy, and for every file its sha256, size and format_version
    MODEL_CARD.md     box, training set and resolution, accuracy tables, speed, checksums

``root`` is the package's ``emulators/models/`` (package data, carried by a
wheel), or the directory in the environment variable COSMOPIPE_MODELS, or a
``root`` argument.  :func:`load` takes a model name or a path; a model's files
are checked against its manifest before anything is read.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cosmopipe.integrity import CorruptFileError
from cosmopipe.sims.dataset import read_dataset

from . import io as _io
from .ee2 import EE2_BOX, EE2_Z_RANGE
from .loader import load as _load_file
from .synthetic import ee2_dataset
from .validate import EE2_K, EE2_TOL, error_table, validate

__all__ = ["load", "is_model_name", "models_root", "shipped", "model_info", "model_file", "verify_model", "write_model", "predict",
           "default_grid", "write_manifest", "file_entry", "POWER_KINDS", "MODELS_ENV", "MANIFEST", "CARD", "MANIFEST_FORMAT", "MANIFEST_VERSION"]

MODELS_ENV = "COSMOPIPE_MODELS"
MANIFEST, CARD = "MANIFEST.json", "MODEL_CARD.md"
MANIFEST_FORMAT, MANIFEST_VERSION = "cosmopipe-model", 1
POWER_KINDS = ("boost", "hybrid")     # what load() returns; other kinds are loaded by their layer
# predict's k grid when none is given: this many log-spaced values over the emulator's range.
DEFAULT_NK = 30
DEFAULT_Z = (0.0,)
_CHUNK = 1 << 20


def models_root(root: str | os.PathLike | None = None) -> Path:
    """Where shipped models live: ``root``, else $COSMOPIPE_MODELS, else the package's models/."""
    if root is not None:
        return Path(root)
    env = os.environ.get(MODELS_ENV)
    return Path(env) if env else Path(__file__).resolve().parent / "models"


def shipped(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the models under the root (directories with a manifest), sorted."""
    base = models_root(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / MANIFEST).is_file())


def is_model_name(value: str) -> bool:
    """A bare name (no directory, no .h5) that is not a file here: a shipped model's name."""
    path = Path(value)
    return not path.exists() and "/" not in value and os.sep not in value and path.suffix not in (".h5", ".hdf5")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _resolve(name: str | os.PathLike, root) -> tuple[Path, Path | None]:
    """(emulator file, model directory or None) for a name or a path."""
    path = Path(name)
    if path.is_file():
        return path, None
    if path.is_dir() and (path / MANIFEST).is_file():
        return path / _manifest(path)["emulator"], path
    as_name = str(name)
    if os.sep in as_name or "/" in as_name or path.suffix in (".h5", ".hdf5"):
        raise FileNotFoundError(f"{path}: no such emulator file")
    base = models_root(root)
    if not (base / as_name / MANIFEST).is_file():
        names = shipped(root)
        raise ValueError(f"unknown emulator model {as_name!r}; shipped models: {', '.join(names) or 'none'} "
                         f"(in {base}); or give the path of an emulator file")
    model_dir = base / as_name
    return model_dir / _manifest(model_dir)["emulator"], model_dir


def _manifest(model_dir: Path) -> dict:
    path = model_dir / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(path, f"not a readable model manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise CorruptFileError(path, f"not a model manifest (format {data.get('format') if isinstance(data, dict) else None!r}, "
                                     f"expected {MANIFEST_FORMAT!r})")
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CorruptFileError(path, f"manifest format_version {version!r} is not valid")
    if version > MANIFEST_VERSION:
        raise CorruptFileError(path, f"manifest format_version {version} was written by a newer cosmopipe; this "
                                     f"version reads up to {MANIFEST_VERSION} (upgrade cosmopipe)")
    files = data.get("files")
    if not isinstance(files, dict) or data.get("emulator") not in files:
        raise CorruptFileError(path, "manifest lists no files, or not its emulator file")
    return data


def verify_model(model_dir: str | os.PathLike) -> dict:
    """Check every file of a model directory against its manifest; returns the manifest.

    A missing, resized or altered file, or one of a newer emulator format, is a
    CorruptFileError naming the file (and the checksum it should have)."""
    model_dir = Path(model_dir)
    data = _manifest(model_dir)
    for name, entry in data["files"].items():
        path = model_dir / name
        if not path.is_file():
            raise CorruptFileError(path, f"missing: {MANIFEST} lists it with sha256 {entry['sha256']}")
        version = entry.get("format_version")
        # The P(k) emulator format is checked here; other kinds (the EDE observables emulator)
        # are checked by their own loader.
        if (name == data["emulator"] and data.get("kind") in POWER_KINDS and isinstance(version, int)
                and version > _io.FORMAT_VERSION):
            raise CorruptFileError(path, f"emulator format_version {version} was written by a newer cosmopipe; this "
                                         f"version reads up to {_io.FORMAT_VERSION} (upgrade cosmopipe)")
        digest = sha256(path)
        if digest != entry["sha256"] or path.stat().st_size != entry["size"]:
            raise CorruptFileError(path, f"damaged: sha256 {digest} ({path.stat().st_size} bytes), but {MANIFEST} "
                                         f"says it should be sha256 {entry['sha256']} ({entry['size']} bytes)")
    return data


def load(name: str | os.PathLike, root: str | os.PathLike | None = None):
    """An emulator by shipped model name (verified against its manifest) or by file path.

    Unknown names raise ValueError listing the shipped models; damaged files and
    files of a newer format raise CorruptFileError (a ValueError) naming the file."""
    path, model_dir = _resolve(name, root)
    manifest = verify_model(model_dir) if model_dir is not None else None
    if manifest is not None and manifest.get("kind") not in POWER_KINDS:
        raise ValueError(f"model {manifest['name']!r} is an {manifest.get('kind')} emulator, not a P(k) emulator: "
                         f"name it as a theory provider (theory: {{provider: emulator, path: {manifest['name']}}}) "
                         f"or load it with cosmopipe.likelihoods.theory.observables.load_observables")
    emulator = _load_file(path)
    if manifest is not None:
        # Not fields: the short repr shows them (emulators.core.summary).
        object.__setattr__(emulator, "_model_name", manifest["name"])
        object.__setattr__(emulator, "_accuracy", manifest.get("accuracy", ""))
    return emulator


def model_file(name: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The emulator file of a shipped model (checked against its manifest) or of a path."""
    path, model_dir = _resolve(name, root)
    if model_dir is not None:
        verify_model(model_dir)
    return path


def model_info(root: str | os.PathLike | None = None) -> list[dict]:
    """One dict per shipped model: name, kind, box, k and z range, accuracy (from the manifests)."""
    return [{"name": name, **{key: value for key, value in _manifest(models_root(root) / name).items()
                              if key in ("kind", "mode", "box", "k_range", "z_range", "accuracy", "provides", "lmax", "tail_k_max")}}
            for name in shipped(root)]


# -- predictions ------------------------------------------------------------------------
def default_grid(emulator, z=None, k=None, nk: int = DEFAULT_NK) -> tuple[np.ndarray, np.ndarray]:
    """(z, k [h/Mpc]) with the defaults the command line and Python share: z = 0, and
    ``nk`` log-spaced k over the emulator's range."""
    z = np.sort(np.atleast_1d(np.asarray(DEFAULT_Z if z is None else z, dtype=float)))
    if k is None:
        lo, hi = emulator.k_range
        k = np.geomspace(lo, hi, nk) if nk > 1 else np.array([lo])
    return z, np.atleast_1d(np.asarray(k, dtype=float))


def predict(emulator, params: Any, z=None, k=None, nk: int = DEFAULT_NK, extrapolate: bool = False,
            pnl: bool = False) -> dict:
    """Boost (and P_nl) of one cosmology or a table, with the shared defaults.

    emulator  an emulator object, a shipped model name or a file path
    params    a dict of values or of columns (a table); varied parameters left out
              take the EE2 reference values (:meth:`ParameterSpace.complete`)
    z, k      grids (default: :func:`default_grid`)
    Returns {"params": the completed columns, "z", "k", "boost": (n, nz, nk) and,
    with ``pnl`` and a linear emulator attached, "pnl" [(Mpc/h)^3]}."""
    emu = load(emulator) if isinstance(emulator, (str, os.PathLike)) else emulator
    if emu.kind not in ("boost", "hybrid"):
        raise ValueError(f"predict: a {emu.kind} emulator has no boost; give a boost or hybrid emulator")
    z, k = default_grid(emu, z, k, nk)
    columns = emu.space.complete(params)
    out = {"params": columns, "z": z, "k": k, "boost": emu.boost(k, z, columns, extrapolate=extrapolate)}
    if pnl and emu.linear is not None:
        out["pnl"] = emu.pnl(k, z, columns, extrapolate=extrapolate)
    return out


# -- writing a model directory -------------------------------------------------------------
def write_model(emulator_path: str | os.PathLike, out_dir: str | os.PathLike, name: str | None = None,
                train=None, test=None, compare_ee2: bool = True, description: str = "",
                ee2_points: int = 0) -> Path:
    """Make the model directory ``out_dir`` (named ``name``, default its folder name) for an
    emulator file: copies the emulator and the datasets (paths of SimDataset files),
    validates against ``test`` (and EE2), and with ``ee2_points`` > 0 against EE2 at that
    many Latin-hypercube cosmologies over the box it shares with EE2 (seed 0), times
    predictions, and writes MODEL_CARD.md and MANIFEST.json.  Returns the directory."""
    out_dir = Path(out_dir)
    name = name or out_dir.name
    src = Path(emulator_path)
    emulator = _load_file(src)
    if emulator.kind not in ("boost", "hybrid"):
        raise ValueError(f"{src}: a model ships a boost or hybrid emulator, not a {emulator.kind} emulator")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {f"{emulator.kind}.h5": src}
    datasets = {}
    for role, ds_path in (("train", train), ("test", test)):
        if ds_path is not None:
            files[f"{role}.h5"] = Path(ds_path)
            datasets[role] = read_dataset(ds_path)
    for target, source in files.items():
        if source.resolve() != (out_dir / target).resolve():
            shutil.copyfile(source, out_dir / target)
    validation, tables = None, ""
    if "test" in datasets:
        scratch = out_dir / ".validation"
        validation = validate(emulator, datasets["test"], scratch, compare_ee2=compare_ee2, plot=False)
        tables = Path(validation.files["markdown"]).read_text()
        # Next to the emulator, where the sample stage's guard looks for the validate report.
        report = f"{emulator.kind}.validation.json"
        shutil.copyfile(validation.files["json"], out_dir / report)
        files[report] = out_dir / report
        shutil.rmtree(scratch, ignore_errors=True)
    box_table, box_summary = "", None
    if ee2_points:
        box_table, box_summary = _ee2_box_check(emulator, ee2_points)
        tables = (tables + "\n" if tables else "") + box_table
        report = out_dir / f"{emulator.kind}.validation.json"
        if report.is_file():
            # The guard's figure: the larger EE2 sample over the box, where the test set is small.
            data = json.loads(report.read_text())
            data["summary"]["ee2_box"] = box_summary
            report.write_text(json.dumps(data, indent=1))
    speed = measure_speed(emulator)
    entries = {target: file_entry(out_dir / target) for target in files}
    accuracy = _accuracy_line(validation, box_summary)
    (out_dir / CARD).write_text(card_text(name, emulator, datasets, tables, speed, entries, description))
    return write_manifest(out_dir, name, f"{emulator.kind}.h5", emulator.kind, entries,
                          mode=getattr(emulator, "mode", None), box=emulator.space.box, fixed=emulator.space.fixed,
                          k_range=list(emulator.k_range), z_range=list(emulator.z_range), accuracy=accuracy,
                          speed=speed, **_tail_field(emulator))


def _tail_field(emulator) -> dict:
    """{'tail_k_max': k [h/Mpc]} where a hybrid continues R above its k range with HMcode's shape."""
    tail = getattr(emulator, "hmcode_tail", None)
    return {} if tail is None else {"tail_k_max": float(tail.k_range[1])}


def write_manifest(out_dir: Path, name: str, main_file: str, kind: str, entries: dict, **fields) -> Path:
    """Write MANIFEST.json of a model directory whose files (``entries``: name ->
    :func:`file_entry`) and MODEL_CARD.md are already there; ``fields`` (box, accuracy, ...)
    are listed by ``cosmopipe models``.  Returns the directory."""
    out_dir = Path(out_dir)
    entries = {**entries, CARD: file_entry(out_dir / CARD)}
    manifest = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "name": name,
                "emulator": main_file, "kind": kind, **fields,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": entries}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out_dir


def file_entry(path: Path) -> dict:
    """A manifest entry: sha256, size and (HDF5) format_version of a file."""
    entry = {"sha256": sha256(path), "size": path.stat().st_size}
    if path.suffix == ".h5":
        with h5py.File(path, "r") as f:
            version = f.attrs.get("format_version")
        entry["format_version"] = int(version) if version is not None else None
    return entry


def _ee2_box_check(emulator, n: int) -> tuple[str, dict]:
    """(markdown, summary) of the emulator against EuclidEmulator2 at ``n`` Latin-hypercube
    cosmologies over the box the two share (seed 0): the statistic of emulators.validate
    (per-cosmology max error in each z and k range), on a sample large enough for its
    percentiles where the held-out simulations are few."""
    box = {p: (max(lo, EE2_BOX[p][0]), min(hi, EE2_BOX[p][1])) for p, (lo, hi) in emulator.space.box.items()
           if p in EE2_BOX}
    z_lo, z_hi = emulator.z_range
    z = np.linspace(z_lo, min(z_hi, EE2_Z_RANGE[1], 2.0), 5)
    k_lo, k_hi = emulator.k_range
    ds = ee2_dataset(n, z, np.geomspace(k_lo, k_hi, 40), box, fixed=dict(emulator.space.fixed), seed=0)
    table = {name: ds.column(name) for name in ds.names}
    err = np.abs(emulator.boost(ds.k, ds.z, table) / ds.boost - 1.0)   # (n, nz, nk)
    order = np.argsort(ds.z)
    err, zs = err[:, order], np.asarray(ds.z)[order]
    worst = err[:, :, ds.k <= EE2_K].reshape(n, -1).max(axis=1)
    summary = {"n_box": n, "z_max": float(zs.max()), "fraction_within_1pct": float(np.mean(worst <= EE2_TOL)),
               "p50": float(np.median(worst)), "p95": float(np.percentile(worst, 95)), "max": float(worst.max())}
    out = [f"## Against EuclidEmulator2 over the box ({n} Latin-hypercube cosmologies, seed 0)", "",
           f"Fraction within 1 % for all k <= {EE2_K:g} h/Mpc and z <= {zs.max():g}: "
           f"**{summary['fraction_within_1pct']:.1%}**; over the cosmologies the max error has median "
           f"{100 * summary['p50']:.2f} %, p95 {100 * summary['p95']:.2f} %, max {100 * summary['max']:.2f} %.", "",
           "| z | k range [h/Mpc] | n | p50 % | p68 % | p95 % | max % |", "|---|---|---|---|---|---|---|"]
    for r in error_table(err, zs, np.asarray(ds.k), "EuclidEmulator2"):
        out.append(f"| {r['z']:g} | {r['k_min']:.3g} - {r['k_max']:.3g} | {r['n']} | "
                   + " | ".join(f"{100 * r[c]:.3f}" for c in ("p50", "p68", "p95", "max")) + " |")
    return "\n".join(out) + "\n", summary


def _accuracy_line(validation, box: dict | None = None) -> str:
    parts = []
    if box is not None:
        parts.append(f"vs EE2 over the box ({box['n_box']} cosmologies): {box['fraction_within_1pct']:.0%} within 1 %, "
                     f"p95 {100 * box['p95']:.2f} % (k <= 1, z <= {box['z_max']:g})")
    if validation is None:
        return "; ".join(parts) or "not validated (no test set)"
    s = validation.summary
    parts.append(f"{s['n_used']} test simulations")
    if "ee2_p95_max_error_k_le_1_z_le_2" in s:
        parts.append(f"vs EE2 p95 {100 * s['ee2_p95_max_error_k_le_1_z_le_2']:.2f} % (k <= 1, z <= 2)")
    if "p95_max_error_k_le_1_z_le_3" in s:
        what = "dR/R" if "response" in s.get("simulation_reference", "") else "dB/B"
        parts.append(f"p95 of max |{what}| vs simulations (k <= 1 h/Mpc, z <= 3) "
                     f"{100 * s['p95_max_error_k_le_1_z_le_3']:.2f} %")
    return "; ".join(parts)


# -- the model card ---------------------------------------------------------------------
def measure_speed(emulator, nz: int = 40, nk: int = 200, batch: int = 1000, seconds: float = 0.3) -> dict:
    """Measured prediction times [s]: one cosmology on nz x nk, and a batch on the training grid.
    A hybrid is timed with its EE2 surrogate when it carries one (else EuclidEmulator2 itself)."""
    space = emulator.space
    centre = dict(zip(space.names, map(float, 0.5 * (space.lower + space.upper))))
    (k_lo, k_hi), (z_lo, z_hi) = emulator.k_range, emulator.z_range
    z, k = np.linspace(z_lo, z_hi, nz), np.geomspace(k_lo, k_hi, nk)
    extra = {}
    if emulator.kind == "hybrid":
        extra = {"ee2": "surrogate" if emulator.ee2_lcdm is not None else "exact"}
        if extra["ee2"] == "surrogate":
            s_lo, s_hi = emulator.ee2_lcdm.z_range
            z = np.linspace(max(z_lo, s_lo), min(z_hi, s_hi), nz)
    rng = np.random.default_rng(0)
    inner = getattr(emulator, "cola", emulator)
    if extra.get("ee2") == "exact":
        batch = min(batch, 20)  # EuclidEmulator2 itself: ~15 ms a cosmology
    lower, upper = np.array(space.lower, float), np.array(space.upper, float)
    if emulator.kind == "hybrid":
        # theta_LCDM must lie in EE2's box, which a widened training box overhangs
        for i, name in enumerate(space.names):
            if name in EE2_BOX:
                lower[i], upper[i] = max(lower[i], EE2_BOX[name][0]), min(upper[i], EE2_BOX[name][1])
    table = lower + rng.random((batch, len(space.names))) * (upper - lower)
    z_t, k_t = inner.model.z, inner.model.k
    # One BLAS thread, as the card says: on a busy machine a multi-threaded BLAS makes these
    # small products tens of times slower (threads wait for cores), and the pipeline's own
    # parallelism is across processes.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        one = _best_time(lambda: emulator.boost(k, z, centre, **extra), seconds)
        many = _best_time(lambda: emulator.boost(k_t, z_t, table, **extra), seconds, number=1)
    return {"one_cosmology_s": one, "grid": [nz, nk], "batch_per_s": batch / many,
            "batch_grid": [int(z_t.size), int(k_t.size)], "ee2": extra.get("ee2")}


def _best_time(fn, seconds: float, number: int | None = None) -> float:
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    number = number or max(1, int(seconds / 5 / once))
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return float(best)


def _training_text(emulator, datasets: dict) -> list[str]:
    inner = getattr(emulator, "cola", emulator)
    info = inner.info or {}
    lines = [f"- COLA part: {inner.kind} emulator"
             + (f" of the twin response R = B(theta)/B(theta_LCDM) over {info.get('n_pairs')} pairs, inputs "
                f"{', '.join(info.get('inputs', []))}" if inner.kind == "response" else " of ln B")
             + f", trained on {info.get('n_cosmologies', '?')} simulations (dataset sha {info.get('dataset_hash', '?')[:16]})"]
    settings = info.get("training_settings", {})
    if settings:
        net = settings.get("network", {})
        lines.append(f"- network: {settings.get('mode')} PCA + MLP {net.get('hidden')} ({net.get('activation')}), "
                     f"training grid {inner.model.z.size} z x {inner.model.k.size} k")
    if emulator.kind == "hybrid":
        lines.append("- LCDM boost: EuclidEmulator2 at theta_LCDM"
                     + (" (a PCA + MLP surrogate of it is stored for sampling)" if emulator.ee2_lcdm is not None else ""))
        tail = getattr(emulator, "hmcode_tail", None)
        if tail is not None:
            v = tail.info.get("validation", {}).get("max_abs_dR_over_R", {})
            lines.append(f"- above the COLA k_max ({tail.info.get('k_c', float('nan')):.3g} h/Mpc) R continues with "
                         f"HMcode-2020's response shape (emulators.hmcode_tail: {tail.info.get('n_cosmologies')} "
                         "CAMB cosmology pairs"
                         + (f"; held-out max |dR/R| p50 {100 * v['p50']:.2f} %, p95 {100 * v['p95']:.2f} %" if v else "")
                         + ")")
    for role, ds in datasets.items():
        config = ds.attrs.get("sim_config", "")
        try:
            config = json.loads(config) if isinstance(config, str) and config else config
        except json.JSONDecodeError:
            pass
        if isinstance(config, dict):
            keys = [k for k in ("particles", "box", "mesh", "steps", "z_init", "paired", "fixed_amplitude")
                    if k in config]
            units = {"particles": "^3", "box": " Mpc/h", "mesh": "^3"}
            config = ", ".join(f"{k} = {config[k]}{units.get(k, '')}" for k in keys) or json.dumps(config)[:200]
        lines.append(f"- {role} set: {len(ds)} simulations, design {ds.attrs.get('design', '?')!s}; resolution: "
                     f"{config or 'not recorded'}")
    return lines


def card_text(name: str, emulator, datasets: dict, tables: str, speed: dict, entries: dict,
              description: str = "") -> str:
    """MODEL_CARD.md: box, training set and resolution, accuracy tables (those of
    emulators.validate), speed, format version and the sha256 of every file."""
    space = emulator.space
    out = [f"# Model `{name}`", "", description or f"A {emulator.kind} emulator of the nonlinear boost "
           "B(k, z) = P_nl / P_lin.", "", "Load it with `cosmopipe.emulators.load(\"" + name + "\")` or "
           f"`cosmopipe predict --emulator {name} ...`.", "", "## Parameter box", "",
           "| parameter | lower | upper |", "|---|---|---|"]
    out += [f"| {n} | {lo:.6g} | {hi:.6g} |" for n, (lo, hi) in space.box.items()]
    if space.fixed:
        out += ["", "Fixed: " + ", ".join(f"{n} = {v:.6g}" for n, v in space.fixed.items()) + "."]
    (k_lo, k_hi), (z_lo, z_hi) = emulator.k_range, emulator.z_range
    out += ["", f"Range: k {k_lo:.4g} - {k_hi:.4g} h/Mpc, z {z_lo:.4g} - {z_hi:.4g}.", "",
            "## Training set and resolution", "", *_training_text(emulator, datasets), "", "## Accuracy", ""]
    if tables:
        body = tables.split("\n", 1)[1] if tables.startswith("# ") else tables
        out += [body.replace("\n## ", "\n### ").strip(), ""]
    else:
        out += ["No test set was given: not validated.", ""]
    out += ["## Speed", "", f"Measured on this machine when the card was written, best of 5, one thread per call "
            f"(hybrid: EE2 {speed.get('ee2') or '-'}):", "",
            f"- one cosmology on {speed['grid'][0]} z x {speed['grid'][1]} k: {1e6 * speed['one_cosmology_s']:.0f} us",
            f"- batch on the training grid ({speed['batch_grid'][0]} z x {speed['batch_grid'][1]} k): "
            f"{speed['batch_per_s']:,.0f} cosmologies/s", "", "## Format and files", "",
            f"Emulator format `{_io.FORMAT}` version {_io.FORMAT_VERSION}; this card's own checksum is in {MANIFEST}.",
            "", "| file | bytes | sha256 |", "|---|---|---|"]
    out += [f"| {f} | {e['size']} | `{e['sha256']}` |" for f, e in entries.items()]
    return "\n".join(out) + "\n"
