"""Training on Spark without gathering the records: `SparkTrainingFrame` is the
`training_frame.TrainingFrame` of a Spark DataFrame.

Every figure `train_model` needs over all records is computed by Spark, with the pandas rule
applied per Arrow batch (`mapInPandas`) so the answers equal `PandasTrainingFrame`'s:

- **records and filled fields** (`available_fields`): one pass, each batch counting the values
  that are not blank (`fields.count_not_blank`), summed;
- **guard evidence** (`guards.guard_evidence`): each record keyed by its anchor group
  (`guards.guard_group_keys`), the records repartitioned by that key so that every group is
  whole in one partition (at least `spark.sql.shuffle.partitions` of them, and enough that
  a partition holds about `PARTITION_RECORDS` records on average), and each partition counted by
  `guards.guard_pair_counts`; the counts add up;
- **the prepared frame**: `spark_frames.prepare_on_spark`, written once under the job's
  checkpoint folder and read back (Splink's queries read it many times);
- **u estimation's sample**: each prepared record's place in the seeded order
  (`training_frame.sample_order`, per batch), the first `sample_size` records taken by Spark;
- **labelled pairs**: the label ids looked up among the records by a join.

What reaches the driver: a handful of counts, and the label ids found (no more than the labels
file holds). Splink's training queries (prior, u, EM) run on Spark through the job's SparkAPI.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .fields import MATCH_FIELDS, count_not_blank, fields_filled_enough
from .guards import (
    GUARD_ANCHOR_COLUMNS,
    GUARD_EVIDENCE_COLUMNS,
    evidence_from_counts,
    guard_anchors,
    guard_group_keys,
    guard_pair_counts,
)
from .settings import LinkageSettings
from .spark_frames import prepare_on_spark
from .training_frame import sample_order, sample_size

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from .spark_session import SparkJob

__all__ = ["SparkPrepared", "SparkTrainingFrame"]

#: Column names this module adds to Spark frames (never a person record column).
_GROUP = "_scv_guard_group"
_ORDER = "_scv_sample_order"

#: Records per partition the guards' evidence aims at (each partition is counted as one pandas
#: frame): more partitions than `spark.sql.shuffle.partitions` when the records need them.
PARTITION_RECORDS = 500_000

#: Flips the sign bit: an unsigned 64-bit order kept by a signed one (Spark's LongType).
_SIGN = np.uint64(1 << 63)


def _save(job: SparkJob, df: DataFrame, name: str) -> DataFrame:
    """`df` computed once, written under the job's checkpoint folder and read back."""
    path = f"{job.checkpoint_dir}/train-{name}"
    df.write.mode("overwrite").parquet(path)
    return job.session.read.parquet(path)


class SparkPrepared:
    """`training_frame.PreparedFrame` over a (saved) Spark DataFrame."""

    def __init__(self, job: SparkJob, frame: DataFrame) -> None:
        self.job = job
        self.frame = frame
        self.columns = list(frame.columns)
        self._present: dict[str, int] | None = None

    def register(self, db_api: Any, name: str) -> Any:
        return db_api.register(self.frame, dataset_display_name=name)

    def present(self, column: str) -> int:
        if self._present is None:
            from pyspark.sql import functions as F

            row = self.frame.agg(*(F.count(F.col(c)).alias(c) for c in self.columns)).first()
            self._present = {c: int(row[c]) for c in self.columns}
        return self._present[column]

    def sample(self, db_api: Any, pairs: float, seed: int) -> Any:
        from pyspark.sql.types import LongType, StructField, StructType

        s = sample_size(self.records(), pairs)
        schema = StructType([*self.frame.schema.fields, StructField(_ORDER, LongType())])

        def ordered(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                order = sample_order(batch["unique_id"], seed) ^ _SIGN
                yield batch.assign(**{_ORDER: order.view(np.int64)})

        rows = (
            self.frame.mapInPandas(ordered, schema)
            .orderBy(_ORDER, "unique_id")
            .limit(s)
            .drop(_ORDER)
        )
        return db_api.register(_save(self.job, rows, "u-sample"), dataset_display_name="u_sample")

    def records(self) -> int:
        return self.present("unique_id")

    def known_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        from pyspark.sql import functions as F

        ids = pd.unique(pd.concat([pairs["unique_id_l"], pairs["unique_id_r"]]).astype(str))
        if not len(ids):
            return pairs.iloc[0:0]
        wanted = self.job.session.createDataFrame(
            pd.DataFrame({"unique_id": ids}), "unique_id string"
        )
        found = {
            r["unique_id"]
            for r in self.frame.select("unique_id")
            .join(F.broadcast(wanted), "unique_id")
            .collect()
        }
        return pairs[pairs["unique_id_l"].isin(found) & pairs["unique_id_r"].isin(found)]


class SparkTrainingFrame:
    """`training_frame.TrainingFrame` over the person records as a Spark DataFrame of text
    columns (`spark_frames.read_persons`) on the job `job`."""

    def __init__(self, job: SparkJob, persons: DataFrame) -> None:
        self.job = job
        self.persons = persons
        self.columns = list(persons.columns)
        self._api: Any = None
        self._counts: dict[str, int] | None = None

    def db_api(self, settings: LinkageSettings) -> Any:
        if self._api is None:
            self._api = self.job.db_api()
        return self._api

    def _filled(self) -> dict[str, int]:
        """Records (key '') and, per match field's main column and guard anchor the records
        have, how many hold a value that is not blank: one pass over the records."""
        if self._counts is None:
            from pyspark.sql import functions as F

            wanted = [cols[0] for cols in MATCH_FIELDS.values()] + list(GUARD_ANCHOR_COLUMNS)
            counted = [c for c in dict.fromkeys(wanted) if c in self.columns]
            names = ["", *counted]
            schema = "records long" + "".join(f", c{i} long" for i in range(len(counted)))

            def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
                for batch in batches:
                    row = {"records": [len(batch)]}
                    for i, c in enumerate(counted):
                        row[f"c{i}"] = [count_not_blank(batch[c])]
                    yield pd.DataFrame(row)

            sums = [F.sum("records").alias("records")]
            sums += [F.sum(f"c{i}").alias(f"c{i}") for i in range(len(counted))]
            row = (
                self.persons.select(*(["unique_id"] + counted))
                .mapInPandas(count, schema)
                .agg(*sums)
                .first()
            )
            values = [row["records"], *(row[f"c{i}"] for i in range(len(counted)))]
            self._counts = {n: int(v or 0) for n, v in zip(names, values, strict=True)}
        return self._counts

    def records(self) -> int:
        return self._filled()[""]

    def fields(self) -> list[str]:
        counts = self._filled()
        mains = {cols[0] for cols in MATCH_FIELDS.values()}
        return fields_filled_enough(
            self.records(), {c: n for c, n in counts.items() if c in mains}
        )

    def guard_evidence(self) -> dict[str, dict[str, Any]]:
        counts = self._filled()
        filled = {c: counts[c] > 0 for c in GUARD_ANCHOR_COLUMNS if c in counts}
        anchors = guard_anchors(filled, self.columns)
        pairs = {
            fld: self._pair_counts(fld, present)
            for fld, present in anchors.items()
            if present is not None
        }
        return evidence_from_counts(filled, anchors, pairs)

    def _pair_counts(self, fld: str, present: Sequence[str]) -> tuple[int, int]:
        """`guards.guard_pair_counts` over every record: records keyed by anchor group,
        repartitioned by the key (a group is never split), counted per partition, summed."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import LongType, StructField, StructType

        cols = [c for c in GUARD_EVIDENCE_COLUMNS if c in self.columns]
        records = self.persons.select(*cols)
        keyed_schema = StructType([*records.schema.fields, StructField(_GROUP, LongType())])

        def keyed(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                keys = guard_group_keys(batch, fld, present)
                grouped = keys.notna()
                if grouped.any():
                    yield batch[grouped].assign(**{_GROUP: keys[grouped].astype("int64")})

        def counted(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            frames = [b.drop(columns=[_GROUP]) for b in batches if len(b)]
            n = k = 0
            if frames:
                n, k = guard_pair_counts(pd.concat(frames, ignore_index=True), fld, present)
            yield pd.DataFrame({"pairs": [n], "disagree": [k]})

        row = (
            records.mapInPandas(keyed, keyed_schema)
            .repartition(self._partitions(), _GROUP)
            .mapInPandas(counted, "pairs long, disagree long")
            .agg(F.sum("pairs").alias("pairs"), F.sum("disagree").alias("disagree"))
            .first()
        )
        return int(row["pairs"] or 0), int(row["disagree"] or 0)

    def _partitions(self) -> int:
        """`spark.sql.shuffle.partitions`, or more: about `PARTITION_RECORDS` records each."""
        default = int(self.job.session.conf.get("spark.sql.shuffle.partitions") or 200)
        return max(default, -(-self.records() // PARTITION_RECORDS))

    def prepare(
        self, fields: Sequence[str], keys: dict[str, tuple[str, ...]]
    ) -> SparkPrepared:
        frame = _save(self.job, prepare_on_spark(self.persons, fields, keys), "prepared")
        return SparkPrepared(self.job, frame)
