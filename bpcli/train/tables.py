"""CSV tables (plain or .gz/.bz2/.zip/.xz) -> a feature matrix, raw labels and column names.

pandas reads the file (its own decompression); the first lines are read as text first to
find the delimiter (``csv.Sniffer``, restricted to , ; tab |, else whitespace) and to decide
whether line 1 is a header. Every problem names the file, the line and the column.
"""

from __future__ import annotations

import csv
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..core.fields import did_you_mean

COMPRESSED = (".gz", ".bz2", ".zip", ".xz")
SUFFIXES = (".csv", ".tsv")
_PEEK = 64  # lines read to find the delimiter
_INTEGER = re.compile(r"^[-+]?\d+$")
# pandas' default missing-value texts: bpcli reads them as text, so that a message shows the cell
# as written ('n/a' is not a number) and only an empty cell is empty
NA_TEXTS = frozenset({"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                      "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


@dataclass
class Table:
    """A table as read: ``X`` (N, F) float64, ``labels`` the raw label column (N,) (numbers or
    strings) or None, ``features`` the feature columns (names, or positions for a file without
    a header), ``target`` the label column found (name or position), ``line_of(i)`` the file
    line of data row i (1-based), for messages."""
    X: np.ndarray
    labels: np.ndarray | None
    features: list
    target: str | int | None
    line_of: object


def is_table(path: Path) -> bool:
    """A CSV-like file name: .csv or .tsv, each possibly compressed (.csv.gz, ...)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in SUFFIXES


def read_table(path: Path, cfg: dict, *, labels: str, source: str, notes: list,
               run_input=None, dtype=np.float64) -> Table:
    """The table at ``path`` read with the data options ``cfg`` (header, skip_rows, delimiter,
    target, features). ``labels``: "required", "optional" or "none" (the label column, if any, is
    then left out of the features and not read). What bpcli decided on its own (no header,
    ignored columns) is appended to ``notes``. Raises InputError naming line and column.
    ``run_input``: a trained run's input shape (eval, predict): a table with another number of
    feature columns is refused before its cells are read, as data of another kind. ``dtype``: the
    spec's, in which every number is checked (7e+38 is finite in float64, inf in float32)."""
    import pandas as pd

    lines = _peek(path, cfg["skip_rows"], source)
    decimal = cfg["decimal"]
    sep = _delimiter(cfg["delimiter"], lines, decimal)
    if sep == decimal:
        raise InputError(f"data.decimal {decimal!r} is also the field delimiter: set "
                         f"data.delimiter to the one the file uses (; or tab)", file=source)
    first = _fields(lines[0], sep)
    header = cfg["header"]
    if header == "auto":
        line = cfg["skip_rows"] + 1
        if all(is_number(f, decimal) for f in first):
            header = False
            notes.append(f"{source}: line {line} ({few(first)}) is all numbers: read as data, not "
                         f"column names (data.header: true says it is a header)")
        elif _reads_as_data(first, [_fields(text, sep) for text in lines[1:]], decimal):
            header = False
            notes.append(f"{source}: line {line} ({few(first)}) read as data, not column names: "
                         f"its text stands above columns of text and its numbers above numbers, "
                         f"as in the lines below (data.header: true says it is a header)")
        else:
            header = True
            if len(first) > 2 and sum(not is_number(f, decimal) for f in first) == 1:
                notes.append(f"{source}: line {line} ({few(first)}) read as column names, though "
                             f"all but one of its fields are numbers: if it is a row of data with "
                             f"a text label, set data.header: false")
    start = cfg["skip_rows"] + 1  # the file line of the first line read
    names = [f.strip() or str(i) for i, f in enumerate(first)] if header else None
    if names is not None:
        seen = {n for n in names if names.count(n) > 1}
        if seen:
            raise InputError(f"the header (line {start}) names column(s) {few(sorted(seen))} "
                             f"more than once", file=source, line=start)
        if len(lines) > 1 and len(_fields(lines[1], sep)) > len(names):
            raise _too_many(source, start + 1, len(_fields(lines[1], sep)), names, start, True)
    try:
        df = pd.read_csv(path, sep=r"\s+" if sep is None else sep, header=None,
                         skiprows=cfg["skip_rows"] + bool(header), skipinitialspace=True,
                         keep_default_na=False, na_values=[""], encoding="utf-8-sig",
                         decimal=decimal,
                         low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError("CSV has no data rows" + (f" after the header (line {start})" if header
                                                   else ""), file=source) from None
    except pd.errors.ParserError as e:
        raise _parser_error(e, source, names, first, start) from None
    except UnicodeDecodeError as e:
        raise InputError(f"cannot read CSV: not UTF-8 text ({e.reason} at byte {e.start})",
                         file=source) from None
    if df.empty:
        raise InputError("CSV has no data rows", file=source)
    if names is not None and df.shape[1] != len(names):
        raise InputError(f"line {start + 1} has {df.shape[1]} fields but the header (line {start}) "
                         f"has {len(names)} names ({few(names)})", file=source, line=start + 1)
    df.columns = names if names is not None else list(range(df.shape[1]))
    line_of = _LineOf(path, cfg["skip_rows"] + bool(header))
    target = _target(_last_text(df, cfg, header, labels, source, notes), list(df.columns), labels,
                     cfg["features"], source, header)
    features = _features(cfg["features"], list(df.columns), target, source, header, notes)
    size = None if run_input is None else int(np.prod(run_input))
    if size is not None and len(features) != size:
        raise InputError(f"has samples of shape ({len(features)},) (feature columns "
                         f"{few(features)}), but the run's input is {list(run_input)}, {size} "
                         f"numbers a sample: is this the data the run was trained on?",
                         file=source)
    for col in features:
        df[col] = _numbers(df[col], col, source, line_of, decimal, dtype)
    y = None
    if target is not None and labels != "none":
        declared = cfg.get("classes") if isinstance(cfg.get("classes"), list) else []
        y = _labels(df[target], target, source, line_of, declared, dtype)
    X = df[features].to_numpy(dtype=np.float64) if features else np.empty((len(df), 0))
    return Table(X, y, features, target, line_of)


# ---------------------------------------------------------------- the first lines
def _peek(path: Path, skip: int, source: str) -> list[str]:
    """The first non-blank lines after ``skip`` lines, as text (decompressed by pandas)."""
    import pandas as pd

    try:
        raw = pd.read_csv(path, sep="\x1f", header=None, names=["line"], dtype=str, nrows=_PEEK,
                          skiprows=skip, quoting=csv.QUOTE_NONE, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raw = None
    except UnicodeDecodeError as e:
        raise InputError(f"cannot read CSV: not UTF-8 text ({e.reason} at byte {e.start})",
                         file=source) from None
    except (OSError, EOFError, ValueError, pd.errors.ParserError) as e:
        raise InputError(f"cannot read CSV: {str(e).strip()}", file=source) from None
    lines = [] if raw is None else [s for s in raw["line"].tolist()
                                    if isinstance(s, str) and s.strip()]
    if not lines:
        after = f" after the {skip} skipped line(s) (data.skip_rows)" if skip else ""
        raise InputError(f"cannot read CSV: the file is empty{after}", file=source)
    return lines


def _delimiter(given, lines: list[str], decimal: str = ".") -> str | None:
    """The delimiter: the one given (None for whitespace), else sniffed from ``lines`` (never
    the ``decimal`` mark)."""
    if given is not None:
        return {"whitespace": None, "tab": "\t"}.get(given, given)
    try:
        return csv.Sniffer().sniff("\n".join(lines),
                                   delimiters=",;\t|".replace(decimal, "")).delimiter
    except csv.Error:
        # no consistent , ; tab or |: columns apart by spaces, or a single column (split by a
        # delimiter it does not hold, never the decimal mark)
        return None if len(lines[0].split()) > 1 else "," if decimal != "," else ";"


def _fields(line: str, sep: str | None) -> list[str]:
    if sep is None:
        return line.split()
    return [f.strip() for f in next(csv.reader([line], delimiter=sep, skipinitialspace=True))]


def is_number(text: str, decimal: str = ".") -> bool:
    """Whether a table cell reads as a number (float() takes it, with ``decimal`` for the
    point)."""
    try:
        float(text.replace(decimal, ".") if decimal != "." else text)
        return True
    except ValueError:
        return False


def _reads_as_data(first: list[str], rest: list[list[str]], decimal: str = ".") -> bool:
    """Whether a first line that is not all numbers is a row of data after all: the lines below
    have as many fields, it has a number, and none of its text stands above a column that is all
    numbers below (iris.data's ``5.1,3.5,1.4,0.2,Iris-setosa``; a header's names stand above
    numbers). The comparison of types csv.Sniffer.has_header makes, column by column."""
    if not rest or any(len(r) != len(first) for r in rest):
        return False
    if not any(is_number(f, decimal) for f in first):
        return False
    return not any(not is_number(f, decimal) and all(is_number(r[j], decimal) for r in rest)
                   for j, f in enumerate(first))


def _last_text(df, cfg: dict, header: bool, labels: str, source: str, notes: list):
    """The label column to look for: ``data.target``, or, in a file without a header where the
    default name ``y`` cannot be a column, the last column when it is the only one holding text
    (class names, as UCI's iris.data has them), with a note."""
    given = cfg["target"]
    if header or given != "y" or labels == "none" or df.shape[1] < 2:
        return given
    last = df.columns[-1]
    if df[last].dtype.kind in "biuf" or any(df[c].dtype.kind not in "biuf" for c in df.columns[:-1]):
        return given
    names = few(sorted({str(v).strip() for v in df[last].dropna().unique()}), 3)
    notes.append(f"{source}: no header, so no column named 'y': the last column ({last}), the only "
                 f"one holding text ({names}), read as the labels (data.target: -1 says so)")
    return -1


SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "|", None: "whitespace"}


def sniff(text: str) -> tuple[bool, str]:
    """(whether ``text``, a file's first lines, is a table of numbers, what it looks like): a
    table when its lines split by one delimiter (sniffed as :func:`read_table` does: comma,
    semicolon, tab, |, else whitespace) into as many fields each, and at least one column is all
    numbers below line 1 (which may be a header). For files whose name says nothing."""
    lines = [line for line in text.splitlines() if line.strip()][:_PEEK]
    if not lines:
        return False, "empty text"
    sep = _delimiter(None, lines)
    rows = [_fields(line, sep) for line in lines]
    how = f"{SEPARATORS.get(sep, repr(sep))}-separated text"
    counts = sorted({len(r) for r in rows})
    if len(counts) > 1:
        return False, (f"text whose lines split into {' or '.join(map(str, counts))} fields (as "
                       f"{how}): not a table")
    body = rows[1:] or rows
    numbers = sum(all(is_number(r[j]) for r in body) for j in range(counts[0]))
    if not numbers:
        return False, f"{how} with no column of numbers"
    return True, f"{how}, {counts[0]} column{'s' * (counts[0] > 1)} ({numbers} of numbers)"


def few(items, limit: int = 8) -> str:
    """The first ``limit`` items for a message, and how many there are in all."""
    items = [str(i) for i in items]
    return ", ".join(items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")


class _LineOf:
    """Data row -> file line (1-based), blank lines counted: computed only for a message."""

    def __init__(self, path: Path, before: int):
        self.path, self.before, self.lines = path, before, None

    def __call__(self, row: int) -> int:
        import pandas as pd

        if self.lines is None:
            raw = pd.read_csv(self.path, sep="\x1f", header=None, names=["line"], dtype=str,
                              skip_blank_lines=False, quoting=csv.QUOTE_NONE, encoding="utf-8-sig")
            filled = raw["line"].notna().to_numpy().copy()
            filled[:self.before] = False
            self.lines = np.flatnonzero(filled) + 1
        return int(self.lines[row]) if row < len(self.lines) else self.before + row + 1


# ---------------------------------------------------------------- columns
def _target(given, columns: list, labels: str, features, source: str, header: bool):
    """The label column: a name, or a position (negative from the end); None when absent and
    not required. Found even when labels are not wanted, so that it is not read as a feature."""
    if isinstance(given, int):
        position = given
    elif _INTEGER.match(given) and (not header or given not in columns):
        position = int(given)
    else:
        position = None
    if position is not None:
        if -len(columns) <= position < len(columns):
            return columns[position]
        if labels != "required" and features is not None and len(columns) == len(features):
            return None  # a table of the features only, as prediction reads
        raise InputError(f"data.target {given} is not a column position: the file has "
                         f"{len(columns)} columns (0..{len(columns) - 1}, or -1 for the last)",
                         file=source)
    if given in columns:
        return given
    if labels != "required":
        return None
    if header and features is not None and set(columns) == set(features):  # eval of new data
        raise InputError(f"holds the run's feature columns ({few(columns)}) but no label column "
                         f"{given!r}: eval scores the model's answers against labels; for the "
                         f"answers alone, on data without labels, use bpcli predict RUN --data "
                         f"{shlex.quote(str(source))}", file=source)
    if header:
        raise InputError(f"no label column {given!r}{did_you_mean(given, columns)}; columns are "
                         f"{few(columns, 20)} (choose one "
                         f"with --target or data.target: a name, or a position, -1 for the last)",
                         file=source)
    raise InputError(f"no label column {given!r}: the file has no header row, so its {len(columns)} "
                     f"columns are positions 0..{len(columns) - 1}; give data.target: -1 (or "
                     f"--target -1) for the last column", file=source)


def _features(given, columns: list, target, source: str, header: bool, notes: list) -> list:
    """The feature columns: every other column, or the ``given`` ones (names the run was trained
    on, matched in any order; positions for a file without a header)."""
    if given is None:
        return [c for c in columns if c != target]
    named = [f for f in given if isinstance(f, str)]
    if named and not header:
        raise InputError(f"has no header row, so its columns cannot be matched to the feature "
                         f"columns the run was trained on ({few(given)}); add their names as "
                         f"line 1", file=source)
    missing = [f for f in given if f not in columns]
    if missing:
        raise InputError(f"lacks feature column(s) {few(missing)} that the run was trained on "
                         f"(it has {few(columns, 20)})", file=source)
    extra = [c for c in columns if c not in given and c != target]
    if extra:
        notes.append(f"{source}: ignored column(s) {few(extra)}: not among the run's features")
    return list(given)


_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+$")   # 3,14 or -0,352: a number in a European table


def _numbers(column, name, source: str, line_of, decimal: str = ".", dtype=np.float64):
    """A feature column as float64; a cell that is not a number, or empty, or beyond ``dtype``'s
    range (the spec's, in which it is used) names its line."""
    import pandas as pd
    from .data import largest, too_large

    values = column if column.dtype.kind in "biuf" else pd.to_numeric(column, errors="coerce")
    # NaN where the cell is no number; 'inf', '-inf' and '1e999' read as numbers, but not finite
    numbers = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers)
    top = largest(np.float64, dtype)
    if top is not None:
        bad |= np.abs(numbers) > top
    if bad.any():
        row = int(np.argmax(bad))
        line = line_of(row)
        cell = column.iloc[row]
        if pd.isna(cell):
            what = "the cell is empty: fill it in"
        elif str(cell).strip() in NA_TEXTS:
            what = f"{cell!r} is not a number: fill in the missing value"
        elif np.isfinite(numbers[row]):
            what = too_large(numbers[row], dtype)
        elif not pd.isna(values.iloc[row]):
            what = f"{float(values.iloc[row])} is not a finite number: mend the cell"
        elif decimal == "." and _DECIMAL_COMMA.match(str(cell).strip()):
            what = (f"{cell!r} is not a number: if the file writes decimal commas, set "
                    f"data.decimal: ','; else mend the cell")
        else:
            what = f"{cell!r} is not a number: mend the cell"
        raise InputError(f"line {line}, column {name!r}: {what}, or drop the row", file=source,
                         line=line)
    return values.astype(np.float64)


def _labels(column, name, source: str, line_of, declared=(), dtype=np.float64) -> np.ndarray:
    """The label column as read; an empty cell, or one of pandas' missing-value texts (n/a, NA,
    None) that ``declared`` (data.classes) does not list as a class, is a missing label naming
    its line, as is a number that is not finite in ``dtype`` (a target is used in the spec's)."""
    import pandas as pd
    from .data import largest, too_large

    missing = column.isna().to_numpy()
    if column.dtype.kind not in "biufb":
        texts = NA_TEXTS - {str(c) for c in declared}
        missing = missing | column.astype(str).str.strip().isin(texts).to_numpy(dtype=bool)
    if missing.any():
        row = int(np.argmax(missing))
        line, cell = line_of(row), column.iloc[row]
        written = "" if pd.isna(cell) else f" ({cell!r})"
        is_class = "" if pd.isna(cell) else (f" (if {str(cell).strip()!r} is a class, list the "
                                             f"classes in data.classes)")
        raise InputError(f"line {line}, column {name!r}: the label is missing{written}; give "
                         f"every row a label, or drop the row{is_class}", file=source, line=line)
    if column.dtype.kind == "f" and not np.isfinite(column.to_numpy()).all():
        row = int(np.argmax(~np.isfinite(column.to_numpy())))
        line, value = line_of(row), float(column.iloc[row])
        raise InputError(f"line {line}, column {name!r}: the target {value} is not a finite "
                         f"number: mend the cell, or drop the row", file=source, line=line)
    top = largest(column.dtype, dtype) if column.dtype.kind == "f" else None
    if top is not None and (np.abs(column.to_numpy()) > top).any():
        row = int(np.argmax(np.abs(column.to_numpy()) > top))
        line = line_of(row)
        raise InputError(f"line {line}, column {name!r}: the target "
                         f"{too_large(column.iloc[row], dtype)}", file=source, line=line)
    return column.to_numpy()


def _too_many(source, line, fields, names, header_line, header):
    if header:
        return InputError(f"cannot read CSV: line {line} has {fields} fields, more fields than the "
                          f"header (line {header_line}) has names ({len(names)}: {few(names)}); if "
                          f"line {header_line} is not a header, set data.header: false, or skip it "
                          f"with data.skip_rows: {header_line}", file=source, line=line)
    return InputError(f"cannot read CSV: line {line} has {fields} fields but line {header_line} "
                      f"has {len(names)}; if line {header_line} is a note above the table, skip it "
                      f"with data.skip_rows: {header_line}", file=source, line=line)


def _parser_error(e, source, names, first, start):
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
    if not found:
        return InputError(f"cannot read CSV: {str(e).strip()}", file=source)
    line, fields = int(found.group(2)), int(found.group(3))
    if names is not None:
        return _too_many(source, line, fields, names, start, True)
    return _too_many(source, line, fields, first, start, False)
