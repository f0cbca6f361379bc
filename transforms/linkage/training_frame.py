"""What training reads of the person records, whichever engine holds them.

`train_model` never touches the records itself: it asks a `TrainingFrame` for the figures it
needs over every record (how many, which match fields are filled enough, the guards'
look-alike pair counts) and for the prepared frame, and asks that `PreparedFrame` for its
columns, how many records fill a column, the u estimation's sample and which labelled pairs it
holds. `PandasTrainingFrame` answers from a pandas frame (the DuckDB stage, tests, the
benchmarks); `spark_training.SparkTrainingFrame` answers from a Spark DataFrame, so a Spark
night trains without gathering every record on the driver. Both give the same answers for the
same records (tests/transforms/test_spark_training.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .engine import make_db_api
from .fields import available_fields, prepare_frame
from .guards import guard_evidence
from .settings import LinkageSettings

__all__ = [
    "PandasPrepared",
    "PandasTrainingFrame",
    "PreparedFrame",
    "TrainingFrame",
    "sample_order",
    "sample_size",
]


class PreparedFrame(Protocol):
    """The records as `prepare_frame` writes them, held by the training's engine."""

    columns: Sequence[str]

    def register(self, db_api: Any, name: str) -> Any:
        """The frame registered with Splink's `db_api` (a SplinkDataFrame)."""
        ...

    def present(self, column: str) -> int:
        """How many records hold a value (not NULL) in `column`."""
        ...

    def sample(self, db_api: Any, pairs: float, seed: int) -> Any:
        """u estimation's sample registered with `db_api`: the first `sample_size` records in
        the seeded order of `sample_order`."""
        ...

    def known_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """The rows of `pairs` (unique_id_l, unique_id_r, ...) whose two ids are records here."""
        ...


class TrainingFrame(Protocol):
    """The standardised person records training reads."""

    def db_api(self, settings: LinkageSettings) -> Any:
        """Splink's database API the training runs its queries on."""
        ...

    def records(self) -> int: ...

    def fields(self) -> list[str]:
        """`fields.available_fields` of the records."""
        ...

    def guard_evidence(self) -> dict[str, dict[str, Any]]:
        """`guards.guard_evidence` of the records."""
        ...

    def prepare(self, fields: Sequence[str], keys: dict[str, tuple[str, ...]]) -> PreparedFrame:
        """`fields.prepare_frame` of the records."""
        ...


def sample_size(records: int, pairs: float) -> int:
    """How many records make about `pairs` pairs among themselves (s(s-1)/2), at most all."""
    return min(records, int((1 + math.sqrt(1 + 8 * float(pairs))) / 2))


def sample_order(ids: pd.Series, seed: int) -> np.ndarray:
    """Each id's place in the seeded order the u sample takes records in: a 64-bit hash of the
    id alone (pandas' SipHash with the seed as key), so a record keeps its place when others
    are added, and an engine can compute it per batch."""
    key = f"{seed:016d}"[-16:]
    return pd.util.hash_pandas_object(ids, index=False, hash_key=key).to_numpy()


class PandasPrepared:
    """`PreparedFrame` over a pandas frame."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.columns = list(frame.columns)

    def register(self, db_api: Any, name: str) -> Any:
        return db_api.register(self.frame, dataset_display_name=name)

    def present(self, column: str) -> int:
        return int(self.frame[column].notna().sum())

    def sample(self, db_api: Any, pairs: float, seed: int) -> Any:
        s = sample_size(len(self.frame), pairs)
        order = np.argsort(sample_order(self.frame["unique_id"], seed), kind="stable")[:s]
        rows = self.frame.iloc[np.sort(order)].reset_index(drop=True)
        return db_api.register(rows, dataset_display_name="u_sample")

    def known_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        known = set(self.frame["unique_id"])
        return pairs[pairs["unique_id_l"].isin(known) & pairs["unique_id_r"].isin(known)]


class PandasTrainingFrame:
    """`TrainingFrame` over a pandas frame of every record."""

    def __init__(self, persons: pd.DataFrame) -> None:
        self.persons = persons

    def db_api(self, settings: LinkageSettings) -> Any:
        return make_db_api(settings)

    def records(self) -> int:
        return len(self.persons)

    def fields(self) -> list[str]:
        return available_fields(self.persons)

    def guard_evidence(self) -> dict[str, dict[str, Any]]:
        return guard_evidence(self.persons)

    def prepare(self, fields: Sequence[str], keys: dict[str, tuple[str, ...]]) -> PandasPrepared:
        return PandasPrepared(prepare_frame(self.persons, list(fields), keys))
