"""Experimental designs over a parameter box: space-filling Latin hypercubes and explicit tables."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["ParameterBox", "widen_box", "latin_hypercube", "read_table", "write_table"]


@dataclass(frozen=True)
class ParameterBox:
    """Ranges of the varied parameters, in a fixed order."""

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def __post_init__(self):
        for n, lo, hi in zip(self.names, self.lower, self.upper):
            if not lo < hi:
                raise ValueError(f"parameter {n}: range must have min < max, got [{lo}, {hi}]")

    @classmethod
    def from_mapping(cls, box: Mapping[str, tuple[float, float]]) -> "ParameterBox":
        """From name -> (lower, upper), in the mapping's order."""
        names = tuple(box)
        return cls(names, tuple(float(box[k][0]) for k in names), tuple(float(box[k][1]) for k in names))

    def scale(self, unit: np.ndarray) -> np.ndarray:
        """Points in [0, 1]^d -> parameter values."""
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        return lo + np.asarray(unit) * (hi - lo)

    def contains(self, values: np.ndarray) -> np.ndarray:
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        return np.all((values >= lo) & (values <= hi), axis=-1)


def widen_box(box: ParameterBox, fraction: float, limits: Mapping[str, tuple[float, float]] | None = None) -> ParameterBox:
    """Widen every range by ``fraction`` of its width (half on each side).

    A 10% widening of EuclidEmulator2's Omega_m range [0.24, 0.40] gives
    [0.232, 0.408].  ``limits`` (physical validity ranges) clip the result.
    """
    lower, upper = [], []
    for n, lo, hi in zip(box.names, box.lower, box.upper):
        pad = 0.5 * fraction * (hi - lo)
        a, b = lo - pad, hi + pad
        if limits and n in limits:
            a, b = max(a, limits[n][0]), min(b, limits[n][1])
        lower.append(a)
        upper.append(b)
    return ParameterBox(box.names, tuple(lower), tuple(upper))


def latin_hypercube(box: ParameterBox | Mapping[str, tuple[float, float]], n: int, *, seed=None, rng=None,
                    optimization: str | None = None) -> np.ndarray:
    """(n, d) Latin-hypercube points in ``box`` (a ParameterBox or name -> (lower, upper)).

    The one design sampler of the project.  The two ways of seeding give different streams
    and both are kept, so that stored designs stay reproducible: ``rng`` (an int for
    ``np.random.default_rng``) for simulation campaigns, ``seed`` (scipy's own integer
    seeding) for the emulators' training sets.  ``optimization='random-cd'`` swaps
    coordinates to lower the centred L2 discrepancy while keeping the Latin-hypercube
    property; the result is fully determined by the seed.
    """
    from scipy.stats import qmc  # scipy.stats costs ~0.3 s to import

    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"latin_hypercube: n must be a positive integer, got {n!r}")
    if not isinstance(box, ParameterBox):
        box = ParameterBox.from_mapping(box)
    if rng is not None:
        sampler = qmc.LatinHypercube(d=len(box.names), optimization=optimization, rng=np.random.default_rng(rng))
    else:
        sampler = qmc.LatinHypercube(d=len(box.names), optimization=optimization, seed=seed)
    return box.scale(sampler.random(int(n)))


# A design of a million points is far beyond any simulation campaign; a bigger file
# is not a design table (and is not read into memory).
MAX_TABLE_BYTES = 50_000_000


def read_table(path: str | Path, names: Sequence[str]) -> np.ndarray:
    """A CSV design table with a header naming (at least) ``names`` -> (n, d) array.

    Errors name the file and the line, never its content (a table may be any file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: design table not found")
    size = path.stat().st_size
    if size > MAX_TABLE_BYTES:
        raise ValueError(f"{path}: design table of {size} bytes; at most {MAX_TABLE_BYTES} bytes are allowed")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(line for line in fh if not line.lstrip().startswith("#")))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text CSV file (undecodable byte at offset {exc.start})") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: not a CSV file ({exc})") from None
    if not rows:
        raise ValueError(f"{path}: empty design table")
    header = [h.strip() for h in rows[0]]
    missing = [n for n in names if n not in header]
    if missing:
        raise ValueError(f"{path}: the header line lacks column(s) {', '.join(missing)}; it must name "
                         f"{', '.join(names)}")
    idx = [header.index(n) for n in names]
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            out.append([float(row[j]) for j in idx])
        except (ValueError, IndexError):
            raise ValueError(f"{path}: line {i}: expected numbers in columns {', '.join(names)}") from None
    if not out:
        raise ValueError(f"{path}: design table has no rows")
    values = np.asarray(out, dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"{path}: design table holds non-finite values (nan or inf)")
    return values


def write_table(path: str | Path, names: Sequence[str], values: np.ndarray, ids: Sequence[str]) -> Path:
    """Write a design as CSV (``id`` then one column per parameter, full precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", *names])
        for sid, row in zip(ids, values):
            w.writerow([sid, *(repr(float(v)) for v in row)])
    tmp.replace(path)
    return path
