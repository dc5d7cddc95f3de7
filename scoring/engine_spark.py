"""The spark engine: the same chunk function (scoring/chunk.py) in mapInPandas.

The driver loads the model once, pickles the Scorer and broadcasts the bytes; each Python
worker unpickles them once and keeps the Scorer for every batch it scores. Row ids are
the same as the local engine's (the row's position in the input, parts in name order):
parts are read one by one and unioned in that order, one pass counts the rows of each
partition, and each partition numbers its rows from its offset.

Paths are read and written by Spark, but they are resolved on the driver as local paths:
on a cluster, input and output live on a volume mounted at the same path everywhere.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from pyspark import SparkConf, StorageLevel, TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from scoring.chunk import REJECT_COLUMNS, output_schema, score_chunk
from scoring.config import ScoringConfig
from scoring.io import Layout
from scoring.model import Scorer
from scoring.output import is_csv, remove_stale_temps, temp_path
from scoring.summary import Summary

ROOT = Path(__file__).resolve().parent.parent
SPARK_TYPES = {pa.int64(): LongType(), pa.float64(): DoubleType(), pa.string(): StringType()}


def spark_session(config: ScoringConfig, master: str | None) -> SparkSession:
    # Python workers started by a local master import the project from here; on a
    # cluster the image holds it.
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # this interpreter's packages
    builder = SparkSession.builder.appName(config.spark.app_name)
    if master or not SparkConf().contains("spark.master"):  # spark-submit sets one
        builder = builder.master(master or config.spark.master)
    return (builder
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.chunk_rows))
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())


def read_input(spark: SparkSession, parts: list[Path], layout: Layout) -> DataFrame:
    """Every part as the local engine reads it (CSV as text), unioned in name order."""
    frames = []
    for part in parts:
        if layout.parquet:
            frame = spark.read.parquet(str(part))
        else:
            schema = StructType([StructField(c, StringType()) for c in layout.file_columns])
            frame = spark.read.csv(str(part), schema=schema, header=layout.header,
                                   mode="FAILFAST", quote='"', escape='"')
        frames.append(frame.select([F.col(f"`{column}`").alias(name)
                                    for name, column in layout.features]))
    return functools.reduce(DataFrame.union, frames)


def partition_offsets(frame: DataFrame) -> tuple[dict[int, int], int]:
    """The id of each partition's first row, and the number of rows."""
    counts = dict(frame.groupBy(F.spark_partition_id().alias("p")).count().collect())
    offsets, total = {}, 0
    for partition in range(frame.rdd.getNumPartitions()):
        offsets[partition] = total
        total += counts.get(partition, 0)
    return offsets, total


def combined_schema(scorer: Scorer) -> tuple[StructType, list[str]]:
    """Scored rows and rejects in one frame (mapInPandas has one output), told apart by kind."""
    fields = [StructField(f.name, SPARK_TYPES[f.type]) for f in output_schema(scorer)]
    fields += [StructField(c, StringType()) for c in REJECT_COLUMNS[1:]]
    fields.append(StructField("kind", StringType()))
    return StructType(fields), [f.name for f in output_schema(scorer)]


_SCORERS: dict[int, Scorer] = {}


def _scorer(broadcast: Any, key: str) -> Scorer:
    """Unpickled once per Python worker (Spark reuses workers across tasks)."""
    import pickle

    if key not in _SCORERS:
        _SCORERS[key] = pickle.loads(broadcast.value)
    return _SCORERS[key]


def scoring_function(broadcast: Any, offsets: dict[int, int],
                     columns: list[str]) -> Any:
    key = uuid.uuid4().hex  # this run's model, in workers that outlive a run
    names = [*columns, *REJECT_COLUMNS[1:], "kind"]
    text = [*REJECT_COLUMNS[1:], "kind", "model_name", "model_version"]

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scorer = _scorer(broadcast, key)
        next_id = offsets[TaskContext.get().partitionId()]
        for batch in batches:
            scored, rejects = score_chunk(scorer, batch, next_id)
            next_id += len(batch)
            both = pd.concat([scored.assign(kind="scored"), rejects.assign(kind="rejected")],
                             ignore_index=True).reindex(columns=names)
            # text columns as objects: an all-missing one would be float64, which Spark's
            # conversion to a string column fails on
            yield both.astype({c: object for c in text})
    return score_partition


def _publish(spark: SparkSession, frame: DataFrame, path: Path) -> None:
    """Written under a temporary name beside `path`, then renamed: whole or absent."""
    temp = temp_path(path)
    writer = frame.write.mode("overwrite")
    if is_csv(path):
        writer.csv(str(temp), header=True)
    else:
        writer.parquet(str(temp))
    jvm = spark._jvm  # Hadoop's rename: the same call on a cluster file system
    source = jvm.org.apache.hadoop.fs.Path(str(temp))
    file_system = source.getFileSystem(spark._jsc.hadoopConfiguration())
    target = jvm.org.apache.hadoop.fs.Path(str(path))
    if file_system.exists(target):
        file_system.delete(target, True)
    if not file_system.rename(source, target):
        raise OSError(f"could not rename {temp} to {path}")


def run_spark(scorer: Scorer, parts: list[Path], layout: Layout, output: Path, rejects: Path,
              config: ScoringConfig, summary: Summary, master: str | None = None) -> Summary:
    import pickle

    remove_stale_temps(output.parent)
    spark = spark_session(config, master)
    start = time.perf_counter()
    frame = read_input(spark, parts, layout)
    offsets, summary.rows = partition_offsets(frame)
    broadcast = spark.sparkContext.broadcast(pickle.dumps(scorer))  # the model, shipped once
    schema, columns = combined_schema(scorer)
    combined = frame.mapInPandas(scoring_function(broadcast, offsets, columns), schema)
    combined = combined.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        for kind, field, rule, count in combined.groupBy("kind", "field", "rule").count().collect():
            if kind == "scored":
                summary.scored += count
            else:
                summary.broken_rules[(field, rule)] += count
        rejected = combined.filter(F.col("kind") == "rejected")
        summary.rejected = rejected.select("row_id").distinct().count()
        _publish(spark, rejected.select(*REJECT_COLUMNS), rejects)
        if summary.passed:
            _publish(spark, combined.filter(F.col("kind") == "scored").select(*columns), output)
            summary.published = True
    finally:
        combined.unpersist()
        broadcast.unpersist()
    summary.seconds = time.perf_counter() - start
    summary.broken_rules = Counter(summary.broken_rules)
    return summary
