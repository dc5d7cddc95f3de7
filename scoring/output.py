"""Output files that appear whole or not at all.

Each file is written under a temporary name in its own directory (same file system, so the
final rename is atomic) and renamed only when complete: a run killed at any point leaves
no output file, only a hidden temporary one, which the next run into that directory
removes once its writer is dead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")


def is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def sibling(output: Path, kind: str) -> Path:
    """scores.parquet -> scores.rejects.parquet (the output's format and directory)."""
    return output.with_name(f"{output.stem}.{kind}{output.suffix}")


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directory: Path) -> list[Path]:
    """Temporary outputs of runs that died (their process is gone)."""
    removed = []
    for path in directory.glob(".*.tmp-*"):
        match = TEMP.match(path.name)
        if match and not _alive(int(match["pid"])):
            if path.is_dir():  # a Spark run's folder
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class TableSink:
    """Arrow tables appended to a Parquet or CSV file (by extension), published on commit."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.temp = temp_path(path)
        self.schema = schema
        self.rows = 0
        if is_csv(path):
            self._writer: pacsv.CSVWriter | pq.ParquetWriter = pacsv.CSVWriter(self.temp, schema)
        else:
            self._writer = pq.ParquetWriter(self.temp, schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table.cast(self.schema))
            self.rows += table.num_rows

    def commit(self) -> None:
        self._writer.close()
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        self.temp.unlink(missing_ok=True)

    def __enter__(self) -> TableSink:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # Anything not committed by now is not published.
        if self.temp.exists():
            self.discard()


def write_text(path: Path, text: str) -> None:
    temp = temp_path(path)
    temp.write_text(text)
    os.replace(temp, path)
