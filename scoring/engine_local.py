"""The local engine: chunks streamed through a process pool, written in input order.

The main process reads chunks and writes results; worker processes (one per core by
default) each unpickle the model once and score chunks. At most `workers x
in_flight_per_worker` chunks are in flight, so memory does not grow with the input.
"""

from __future__ import annotations

import itertools
import os
import pickle
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scoring.chunk import REJECTS_SCHEMA, output_schema, score_chunk, to_table
from scoring.config import ScoringConfig
from scoring.io import Layout, ReadProgress, count_rows, iter_chunks
from scoring.model import Scorer
from scoring.output import TableSink, remove_stale_temps
from scoring.summary import Summary

Result = tuple[pa.Table, pa.Table, int]  # scored, rejects, input rows

_WORKER_SCORER: Scorer | None = None


def _start_worker(scorer_bytes: bytes) -> None:
    """Once per worker process: the model, and one thread per process (the pool already
    uses every core; BLAS/OpenMP threads on top would only contend)."""
    global _WORKER_SCORER
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _WORKER_SCORER = pickle.loads(scorer_bytes)


def _score(scorer: Scorer, chunk: pa.Table, first_row_id: int) -> Result:
    scored, rejects = score_chunk(scorer, chunk, first_row_id)
    return (to_table(scored, output_schema(scorer)), to_table(rejects, REJECTS_SCHEMA),
            chunk.num_rows)


def _score_in_worker(chunk: pa.Table, first_row_id: int) -> Result:
    assert _WORKER_SCORER is not None, "worker started without a model"
    return _score(_WORKER_SCORER, chunk, first_row_id)


def _numbered(chunks: Iterator[pa.Table]) -> Iterator[tuple[pa.Table, int]]:
    first = 0
    for chunk in chunks:
        yield chunk, first
        first += chunk.num_rows


def _results(scorer: Scorer, chunks: Iterator[pa.Table], workers: int,
             in_flight: int) -> Iterator[Result]:
    """Results in input order; at most workers x in_flight chunks submitted ahead."""
    numbered = _numbered(chunks)
    head = list(itertools.islice(numbered, 2))
    if workers == 1 or len(head) < 2:  # one chunk: not worth starting processes for
        for chunk, first in itertools.chain(head, numbered):
            yield _score(scorer, chunk, first)
        return
    # spawn, not fork: the parent runs pyarrow's thread pools, which a fork would copy
    # mid-state.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_start_worker,
                             initargs=(pickle.dumps(scorer),)) as pool:
        pending: deque[Future[Result]] = deque()
        for chunk, first in itertools.chain(head, numbered):
            pending.append(pool.submit(_score_in_worker, chunk, first))
            if len(pending) >= workers * in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn(),
                    console=console, transient=True)


def run_local(scorer: Scorer, parts: list[Path], layout: Layout, output: Path,
              rejects: Path, config: ScoringConfig, summary: Summary,
              console: Console) -> Summary:
    remove_stale_temps(output.parent)
    workers = config.workers or os.cpu_count() or 1
    total_rows = count_rows(parts, layout)
    read = ReadProgress()
    # Parquet: rows from the footers; CSV: bytes read of all parts' sizes.
    total = total_rows if total_rows is not None else sum(p.stat().st_size for p in parts)
    start = time.perf_counter()
    chunks = iter_chunks(parts, layout, config.chunk_rows, read)
    with TableSink(output, output_schema(scorer)) as scored_sink, \
            TableSink(rejects, REJECTS_SCHEMA) as rejects_sink, _progress(console) as bar:
        task = bar.add_task("scoring", total=total, rows=0)
        for scored, rejected, rows in _results(scorer, chunks, workers,
                                               config.in_flight_per_worker):
            scored_sink.write(scored)
            rejects_sink.write(rejected)
            summary.rows += rows
            summary.scored += scored.num_rows
            ids = rejected.column("row_id").to_numpy()
            summary.rejected += len(set(ids.tolist()))
            fields = rejected.column("field").to_pylist()
            summary.broken_rules.update(zip(fields, rejected.column("rule").to_pylist(),
                                            strict=True))
            done = summary.rows if total_rows is not None else read.bytes_read
            bar.update(task, completed=min(done, total), rows=summary.rows)
        summary.seconds = time.perf_counter() - start
        rejects_sink.commit()
        if summary.passed:
            scored_sink.commit()
            summary.published = True
    return summary
