"""Spark DataFrames of person records shared by the Spark stage's night and its training:
reading the person records file, and `prepare_frame` on Spark (`prepare_on_spark`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .comparisons import COUNT_SUFFIX, COUNTED_COLUMNS
from .fields import BLOCK_KEY_MAX_RECORDS, GUARD_COLUMNS, MATCH_FIELDS, prepare_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["prepare_on_spark", "prepared_schema", "read_persons"]


def read_persons(
    session: SparkSession, path: Path, columns: Sequence[str], *, fill: Sequence[str] = ()
) -> DataFrame:
    """The person records in the Parquet file `path`: those of `columns` the file has, as text,
    plus each column of `fill` the file lacks, as NULL (in `columns` order)."""
    from pyspark.sql import functions as F

    raw = session.read.parquet(path.resolve().as_uri())
    have = set(raw.columns)
    return raw.select(
        *(
            (F.col(c).cast("string") if c in have else F.lit(None).cast("string")).alias(c)
            for c in columns
            if c in have or c in fill
        )
    )


def _prepared_columns(
    fields: Sequence[str], blocking_keys: dict[str, Sequence[str]]
) -> tuple[list[str], list[str], list[str]]:
    """(text columns, blocking key columns, counted columns) of `prepare_frame`'s output, in
    its order."""
    wanted = {c for f in fields for c in MATCH_FIELDS[f]} | set(GUARD_COLUMNS)
    wanted |= {
        c for parts in blocking_keys.values() for c in parts if not c.startswith("_")
    }
    text = ["unique_id", *sorted(wanted)]
    counted = [c for c in COUNTED_COLUMNS if c in wanted]
    return text, list(blocking_keys), counted


def prepared_schema(
    fields: Sequence[str], blocking_keys: dict[str, Sequence[str]]
) -> StructType:
    """The Spark schema of `prepare_frame(persons, fields, blocking_keys)`."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    text, keys, counted = _prepared_columns(fields, blocking_keys)
    return StructType(
        [StructField(c, StringType()) for c in (*text, *keys)]
        + [StructField(c + COUNT_SUFFIX, LongType()) for c in counted]
    )


def prepare_on_spark(
    persons: DataFrame,
    fields: Sequence[str],
    blocking_keys: dict[str, Sequence[str]],
    *,
    max_key_records: int = BLOCK_KEY_MAX_RECORDS,
) -> DataFrame:
    """`prepare_frame` on Spark: the same columns and values.

    `prepare_frame` is row-local except for three things computed over the whole frame, done
    here in Spark instead: a blocking key value held by more than `max_key_records` records is
    set to NULL (a window count per key), each counted column's `_count` is the number of
    records holding the same value (a window count, exact where pandas groups 64-bit hashes),
    and a repeated unique_id is an error (a group count). The rest (trimming, empty to NULL,
    derived key parts, joined keys) runs per Arrow batch through `mapInPandas`, with the cap
    off and the per-batch counts replaced."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = {k: tuple(v) for k, v in blocking_keys.items()}
    schema = prepared_schema(fields, keys)
    names = schema.names
    _, key_cols, counted = _prepared_columns(fields, keys)

    def per_batch(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch):
                yield prepare_frame(batch, fields, keys, max_key_records=sys.maxsize)[
                    names
                ]

    empty_ids = persons.filter(F.col("unique_id").isNull()).limit(1).count()
    if empty_ids:
        raise ValueError("persons: field 'unique_id' is empty in some record")
    repeated = (
        persons.groupBy("unique_id").count().filter("count > 1").limit(1).collect()
    )
    if repeated:
        raise ValueError(
            f"persons: field 'unique_id' repeats: {repeated[0]['unique_id']!r}"
        )

    out = persons.mapInPandas(per_batch, schema)
    for key in key_cols:
        crowded = F.count(F.lit(1)).over(Window.partitionBy(key)) > max_key_records
        out = out.withColumn(
            key, F.when(crowded, F.lit(None).cast("string")).otherwise(F.col(key))
        )
    for col in counted:
        holders = F.count(F.col(col)).over(Window.partitionBy(col))
        out = out.withColumn(
            col + COUNT_SUFFIX,
            F.when(F.col(col).isNull(), F.lit(0)).otherwise(holders).cast("long"),
        )
    return out.select(*names)


