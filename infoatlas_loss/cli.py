"""``infoatlas`` command line: MI, independence test, conditional MI and MI matrix of files.

    infoatlas mi x.npy y.npy                       # I(X; Y) in nats
    infoatlas mi data.csv --x a,b --y c            # column groups of one CSV (names or 0-based indices)
    infoatlas test data.csv --x a --y c -p 999     # permutation test of independence
    infoatlas cmi data.csv --x a --y c --z b       # I(X; Y | Z), with --test for a p-value
    infoatlas matrix data.csv --heatmap mi.png     # MI between every pair of columns
    infoatlas mi x.npy y.npy --json                # machine-readable output

Inputs: ``.npy`` arrays (n,) or (n, d), or ``.csv`` files with a header row of column
names.  Bad input (missing file, unknown column, ragged or non-numeric rows, too few rows)
exits with status 2 and one line on stderr that names the problem.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np

from .checks import MIN_SAMPLES


class InputError(ValueError):
    """A problem with the user's files or columns: reported in one line, exit status 2."""


# ----------------------------------------------------------------------------- reading
def read_table(path: str) -> tuple[np.ndarray, list[str]]:
    """A .npy or .csv file -> (n, d) float64 array and its column names."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {path}")
    if p.suffix == ".npy":
        try:
            a = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise InputError(f"{path}: not a plain numeric .npy array ({e})") from None
        if a.dtype.kind not in "biuf":
            raise InputError(f"{path}: non-numeric array of dtype {a.dtype}")
        a = a.reshape(-1, 1) if a.ndim == 1 else a
        if a.ndim != 2:
            raise InputError(f"{path}: expected an (n,) or (n, d) array, got shape {a.shape}")
        return a.astype(np.float64), [str(i) for i in range(a.shape[1])]
    if p.suffix != ".csv":
        raise InputError(f"{path}: unsupported file type {p.suffix!r} (use .npy or .csv)")
    with p.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise InputError(f"{path}: empty file")
    names, body = [c.strip() for c in rows[0]], [r for r in rows[1:] if r]
    values = np.empty((len(body), len(names)))
    for i, row in enumerate(body, start=2):
        if len(row) != len(names):
            raise InputError(f"{path}: line {i} has {len(row)} fields, the header has {len(names)}")
        for j, cell in enumerate(row):
            try:
                values[i - 2, j] = float(cell)
            except ValueError:
                raise InputError(f"{path}: line {i}, column {names[j]!r}: {cell!r} is not a number") from None
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise InputError(f"{path}: line {i + 2}, column {names[j]!r} is NaN or infinite")
    return values, names


def column_indices(names: list[str], spec: str, path: str) -> list[int]:
    """Column ``spec`` ("a,b": names or 0-based indices) -> indices into ``names``."""
    idx = []
    for tok in (t.strip() for t in spec.split(",")):
        if tok in names:
            idx.append(names.index(tok))
        elif tok.isdigit() and int(tok) < len(names):
            idx.append(int(tok))
        else:
            raise InputError(f"{path}: unknown column {tok!r} (columns: {', '.join(names)})")
    return idx


def pick(table: np.ndarray, names: list[str], spec: str | None, path: str) -> np.ndarray:
    """Columns ``spec`` of a table (None = all)."""
    return table if spec is None else table[:, column_indices(names, spec, path)]


def variables(a, keys: tuple[str, ...]) -> list[np.ndarray]:
    """The variables named by ``keys`` from one file (``--x`` etc.) or one file each."""
    files = a.files
    if len(files) == 1:
        table, names = read_table(files[0])
        missing = [k for k in keys if getattr(a, k) is None]
        if missing:
            raise InputError(f"one input file: give the column groups with "
                             f"{' '.join('--' + k for k in missing)}")
        out = [pick(table, names, getattr(a, k), files[0]) for k in keys]
    elif len(files) == len(keys):
        out = []
        for k, f in zip(keys, files):
            table, names = read_table(f)
            out.append(pick(table, names, getattr(a, k), f))
    else:
        raise InputError(f"expected 1 file with column groups or {len(keys)} files, got {len(files)}")
    rows = {v.shape[0] for v in out}
    if len(rows) > 1:
        raise InputError(f"the inputs have different numbers of rows: {sorted(rows)}")
    if out[0].shape[0] < MIN_SAMPLES:
        raise InputError(f"too few rows: {out[0].shape[0]} (need at least {MIN_SAMPLES})")
    return out


# ----------------------------------------------------------------------------- commands
def cmd_mi(a) -> dict:
    from .functional import estimate_mi
    x, y = variables(a, ("x", "y"))
    return _record(estimate_mi(x, y, seed=a.seed))


def cmd_test(a) -> dict:
    from .independence import mi_test
    x, y = variables(a, ("x", "y"))
    return _record(mi_test(x, y, num_permutations=a.permutations, seed=a.seed))


def cmd_cmi(a) -> dict:
    from .conditional import conditional_mi, conditional_mi_test
    x, y, z = variables(a, ("x", "y", "z"))
    if a.test:
        return _record(conditional_mi_test(x, y, z, num_permutations=a.permutations, seed=a.seed))
    return _record(conditional_mi(x, y, z, seed=a.seed))


def cmd_matrix(a) -> dict:
    from .matrix import mi_matrix
    if len(a.files) != 1:
        raise InputError(f"matrix takes one file, got {len(a.files)}")
    table, names = read_table(a.files[0])
    if a.columns is not None:
        idx = column_indices(names, a.columns, a.files[0])
        table, names = table[:, idx], [names[i] for i in idx]
    if table.shape[1] < 2:
        raise InputError(f"{a.files[0]}: the MI matrix needs at least 2 columns, got {table.shape[1]}")
    if table.shape[0] < MIN_SAMPLES:
        raise InputError(f"too few rows: {table.shape[0]} (need at least {MIN_SAMPLES})")
    res = mi_matrix(table, names=names, p_values=a.p_values, seed=a.seed, progress=not a.json)
    if a.heatmap:
        import matplotlib
        matplotlib.use("Agg")
        from .plotting import plot_mi_matrix
        ax = plot_mi_matrix(res)
        ax.figure.savefig(a.heatmap, dpi=150, bbox_inches="tight")
    return _record(res)


def _record(res) -> dict:
    d = asdict(res) if is_dataclass(res) else dict(res)
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


# ----------------------------------------------------------------------------- entry point
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infoatlas", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    specs = {"mi": ("I(X; Y) in nats", cmd_mi, ("x", "y")),
             "test": ("permutation test of independence of X and Y", cmd_test, ("x", "y")),
             "cmi": ("conditional MI I(X; Y | Z) in nats", cmd_cmi, ("x", "y", "z")),
             "matrix": ("MI between every pair of columns", cmd_matrix, ())}
    for name, (helptext, fn, keys) in specs.items():
        s = sub.add_parser(name, help=helptext, description=helptext)
        s.add_argument("files", nargs="+", help=".npy or .csv files")
        for k in keys:
            s.add_argument(f"--{k}", default=None, help=f"columns of {k.upper()}: names or 0-based indices, comma-separated")
        if name in ("test", "cmi"):
            s.add_argument("-p", "--permutations", type=int, default=199)
        if name == "cmi":
            s.add_argument("--test", action="store_true", help="add a conditional-permutation p-value")
        if name == "matrix":
            s.add_argument("--columns", default=None, help="a subset of columns (default: all)")
            s.add_argument("--p-values", action="store_true", help="add permutation p-values")
            s.add_argument("--heatmap", default=None, help="write a heatmap to this image file")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--json", action="store_true", help="print the result as JSON")
        s.set_defaults(fn=fn)
    return p


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    try:
        out = a.fn(a)
    except (InputError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"infoatlas {a.command}: error: {msg}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        for k, v in out.items():
            if isinstance(v, list):
                v = np.array2string(np.asarray(v, dtype=float), precision=3, max_line_width=120)
            elif isinstance(v, float):
                v = f"{v:.4f}"
            print(f"{k}: {v}")
    return 0


def entry() -> None:
    """Console-script entry point: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
