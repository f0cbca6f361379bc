"""How a linkage run is tuned: the `linkage:` block of the config, as a plain dataclass (built
from the config by `warehouse.identity.linkage_settings`; transforms read no config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["DEFAULT_THRESHOLD", "EDGE_FLOOR", "LinkageSettings", "spark_value"]

#: Match probability at or above which two records are linked. Chosen from the precision /
#: recall curve of bench/linkage.py on the demo company: an exact email and nothing else to
#: compare (a mailing-list record) scores 0.92-0.96 depending on the data, so any threshold
#: above ~0.92 silently drops every such link (recall falls from 0.96 to 0.60), while between
#: 0.5 and 0.9 precision moves by less than 0.005. 0.8 keeps a margin below that cliff.
DEFAULT_THRESHOLD = 0.8

#: Scored candidate pairs below this probability are dropped; the rest are kept as edges so an
#: incremental night can re-cluster old + new edges without rescoring old pairs.
EDGE_FLOOR = 0.01


def spark_value(value: Any) -> str:
    """A config value as Spark wants it: booleans as 'true' / 'false', the rest as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class LinkageSettings:
    """Knobs of the linkage stage.

    `engine` picks Splink's backend ('duckdb' in-process, or 'spark'); `threshold` is the match
    probability that accepts a link; `u_max_pairs` / `em_max_pairs` size the random-sampling and
    EM training passes; `seed` makes the u sampling reproducible; `labels` is an optional CSV of
    clerical labels (`unique_id_l, unique_id_r, is_match`) used to estimate m instead of EM.
    `guards` is the hard-conflict policy (`guards.GuardPolicy`): 'adaptive' (default: a
    disagreement vetoes when the trained model's evidence shows true matches rarely disagree on
    that field), 'strict' (every conflict vetoes) or 'off' (the score alone; to measure what
    the guards buy). True / False are read as 'strict' / 'off'. `threads` caps DuckDB's worker threads; `memory_limit` caps its
    memory (DuckDB spills intermediate results to `temp_directory`, or its default beside the
    database, beyond it; None keeps DuckDB's default of 80% of RAM). With engine 'spark',
    `spark_master` is the master URL and `spark_conf` extra Spark settings (`spark_session`);
    Spark's checkpoints and spill go under `temp_directory / "spark"`.
    """

    engine: Literal["duckdb", "spark"] = "duckdb"
    threshold: float = DEFAULT_THRESHOLD
    u_max_pairs: float = 1e7
    em_max_pairs: float = 5e6
    seed: int = 42
    labels: Path | None = None
    edge_floor: float = EDGE_FLOOR
    guards: str = "adaptive"
    threads: int = 2
    memory_limit: str | None = None
    temp_directory: Path | None = None
    spark_master: str = "local[*]"
    spark_conf: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.guards, bool):
            object.__setattr__(self, "guards", "strict" if self.guards else "off")
        object.__setattr__(
            self, "spark_conf", {str(k): spark_value(v) for k, v in self.spark_conf.items()}
        )
        if not self.spark_master.strip():
            raise ValueError("linkage.spark.master: must be a Spark master URL such as local[*]")
        if self.guards not in ("adaptive", "strict", "off"):
            raise ValueError(
                f"linkage.guards: must be 'adaptive', 'strict' or 'off', got {self.guards!r}"
            )
        if self.engine not in ("duckdb", "spark"):
            raise ValueError(f"linkage.engine: must be 'duckdb' or 'spark', got {self.engine!r}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"linkage.threshold: must be between 0 and 1, got {self.threshold}")
        if not 0 <= self.edge_floor <= self.threshold:
            raise ValueError(
                f"linkage.edge_floor: must be between 0 and the threshold, got {self.edge_floor}"
            )
        if self.u_max_pairs < 1 or self.em_max_pairs < 1:
            raise ValueError("linkage.u_max_pairs / em_max_pairs: must be positive")

    def training_key(self) -> dict[str, Any]:
        """The settings that change a trained model (they go into its version hash)."""
        return {
            "engine": self.engine,
            "u_max_pairs": float(self.u_max_pairs),
            "em_max_pairs": float(self.em_max_pairs),
            "seed": int(self.seed),
            "labels": self.labels.name if self.labels else None,
        }
