"""Input files: a CSV or Parquet file or a folder of parts, read in chunks with pyarrow.

A file is either in the data set's source format (the spec's `source`: a headerless CSV
with `source.columns`, or source column names that `source.rename` maps, as
training.data.read_raw reads it) or has the spec's feature names as columns. Columns that
are not features (the target, an id) are ignored. CSV is text: every column is read as
text and typed by the validation (scoring/validate.py), so a bad value rejects one row
instead of failing the whole read.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from contract.spec import DatasetSpec

PARQUET_SUFFIXES = (".parquet", ".pq")
# Marker and checksum files that Spark and Hadoop put beside the parts of a folder.
SKIPPED_PREFIXES = (".", "_")


class InputError(ValueError):
    """An input that cannot be scored at all (no file, no parts, columns missing)."""


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def list_parts(path: str | Path) -> list[Path]:
    """The file itself, or a folder's part files in name order (one format for all)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder")
    parts = sorted(p for p in path.iterdir()
                   if p.is_file() and not p.name.startswith(SKIPPED_PREFIXES))
    if not parts:
        raise InputError(f"{path}: the folder holds no part files")
    if len({is_parquet(p) for p in parts}) > 1:
        raise InputError(f"{path}: the folder mixes Parquet and CSV parts")
    return parts


def spec_name(spec: DatasetSpec, column: str) -> str:
    """A source column's name in the spec: `source.rename`, then spaces as underscores (the
    sklearn bundles' spelling), as read_raw names them."""
    renamed = spec.source.rename.get(column, column)
    return str(renamed).strip().replace(" ", "_")


@dataclass(frozen=True)
class Layout:
    """How the parts are read: the format, whether CSV parts have a header row, and which
    file column holds each feature (spec order)."""

    parquet: bool
    header: bool
    file_columns: tuple[str, ...]  # every column of the file, in file order
    features: tuple[tuple[str, str], ...]  # (spec name, file column)

    @property
    def selected(self) -> list[str]:
        return [column for _, column in self.features]


def detect_layout(spec: DatasetSpec, first: Path) -> Layout:
    """Header row with feature (or source) names, else the source's headerless columns."""
    if is_parquet(first):
        columns = pq.read_schema(first).names
        return Layout(True, True, tuple(columns), _features(spec, columns, first))
    with first.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    names = {spec_name(spec, h) for h in header}
    source_columns = spec.source.columns
    if set(spec.feature_names) <= names or not source_columns:
        return Layout(False, True, tuple(header), _features(spec, header, first))
    if len(header) != len(source_columns):
        raise InputError(
            f"{first}: neither a header row with the feature names nor the source format "
            f"({len(source_columns)} columns without a header: {', '.join(source_columns)}); "
            f"the first row has {len(header)} field(s)")
    return Layout(False, False, tuple(source_columns), _features(spec, source_columns, first))


def _features(spec: DatasetSpec, columns: list[str], path: Path) -> tuple[tuple[str, str], ...]:
    by_name = {spec_name(spec, c): c for c in columns}
    absent = [f for f in spec.feature_names if f not in by_name]
    if absent:
        raise InputError(f"{path}: missing feature column(s) {absent}; the file has: "
                         f"{', '.join(columns[:20])}")
    return tuple((name, by_name[name]) for name in spec.feature_names)


def count_rows(parts: list[Path], layout: Layout) -> int | None:
    """Rows in Parquet parts from their footers; None for CSV (it would need a full read)."""
    if not layout.parquet:
        return None
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


@dataclass
class ReadProgress:
    """How far the reading is, for a progress bar: bytes of CSV parts, rows of Parquet."""

    finished_bytes: int = 0
    handle: BinaryIO | None = None

    @property
    def bytes_read(self) -> int:
        # pyarrow reads ahead of the batch it hands out: close enough for a progress bar.
        open_part = self.handle is not None and not self.handle.closed
        return self.finished_bytes + (self.handle.tell() if open_part else 0)  # type: ignore[union-attr]


def _csv_batches(path: Path, layout: Layout, progress: ReadProgress) -> Iterator[pa.RecordBatch]:
    read = pacsv.ReadOptions(
        column_names=None if layout.header else list(layout.file_columns),
        block_size=1 << 22,
    )
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in layout.file_columns},
        include_columns=layout.selected,
        # Empty fields stay text here; the validation decides what counts as missing.
        strings_can_be_null=False,
    )
    with path.open("rb") as handle:
        progress.handle = handle
        yield from pacsv.open_csv(handle, read_options=read, convert_options=convert)
    progress.handle = None
    progress.finished_bytes += path.stat().st_size


def _part_batches(path: Path, layout: Layout, chunk_rows: int,
                  progress: ReadProgress) -> Iterator[pa.RecordBatch]:
    if layout.parquet:
        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_rows,
                                                     columns=layout.selected)
    else:
        yield from _csv_batches(path, layout, progress)


def iter_chunks(parts: list[Path], layout: Layout, chunk_rows: int,
                progress: ReadProgress | None = None) -> Iterator[pa.Table]:
    """Tables of `chunk_rows` rows (the last may be shorter) with the spec's column names,
    in input order across parts."""
    progress = progress or ReadProgress()
    names = [name for name, _ in layout.features]
    pending: list[pa.RecordBatch] = []
    held = 0
    for part in parts:
        for batch in _part_batches(part, layout, chunk_rows, progress):
            pending.append(batch.select(layout.selected).rename_columns(names))
            held += batch.num_rows
            while held >= chunk_rows:
                table = pa.Table.from_batches(pending).combine_chunks()
                yield table.slice(0, chunk_rows)
                rest = table.slice(chunk_rows)
                pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks()
