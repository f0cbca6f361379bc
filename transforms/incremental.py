"""Incremental nights: which person records changed since the last published night, and which
stored edges still hold.

A record's fingerprint is a hash of the match keys the model reads, so a change in a field the
model ignores (say, a new loyalty tier) does not make the record "changed". Edges between two
unchanged records are carried over as scored; every edge touching a new, changed or deleted
record is dropped, and the new and changed records are scored again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "IncrementalPlan",
    "carried_edges_sql",
    "plan_incremental",
    "FINGERPRINT_VERSION",
    "fingerprints_sql",
    "plan_sql",
    "relink_scope",
]

#: Standardised columns whose change means a record must be scored again.
MATCH_COLUMNS = (
    "first_name_std",
    "last_name_std",
    "first_name_alias",
    "email_std",
    "email_key",
    "phone_e164",
    "dob",
    "address_std",
    "postcode_std",
    "city_std",
    "country_code",
)


#: Names the fingerprint function, kept with the stored fingerprints: a night whose stored
#: fingerprints were made another way re-links everything instead of comparing them.
FINGERPRINT_VERSION = "duckdb-hash-v1"


def fingerprints_sql(table: str) -> str:
    """SELECT one row per record of `table`: unique_id and a 64-bit hash (DuckDB's `hash`, which
    tells NULL from '' and never runs two values together) of its match keys."""
    keys = ", ".join(f'"{c}"::VARCHAR' for c in MATCH_COLUMNS)
    return f"SELECT unique_id::VARCHAR AS unique_id, hash({keys}) AS fingerprint FROM {table}"


def plan_sql(current: str, previous: str) -> tuple[str, str]:
    """Two SELECTs of unique_id over fingerprint tables: the new or changed records of
    `current`, and the records of `previous` gone from it."""
    changed = (
        f"SELECT c.unique_id FROM {current} c LEFT JOIN {previous} p USING (unique_id) "
        "WHERE p.fingerprint IS DISTINCT FROM c.fingerprint"
    )
    # aliased: DuckDB cannot bind an unaliased USING column between two table functions
    deleted = f"SELECT p.unique_id FROM {previous} p ANTI JOIN {current} c USING (unique_id)"
    return changed, deleted


@dataclass(frozen=True)
class IncrementalPlan:
    """What an incremental night must do."""

    changed: frozenset[str]  # new or changed records: to be scored against everything
    deleted: frozenset[str]  # records gone from their source: their edges go
    unchanged: int

    @property
    def touched(self) -> frozenset[str]:
        return self.changed | self.deleted


def plan_incremental(con, current: str, previous: str) -> IncrementalPlan:
    """Compare tonight's fingerprints (table or view `current`) with last night's (`previous`,
    e.g. `read_parquet('…')`) on the DuckDB connection `con`."""
    changed_sql, deleted_sql = plan_sql(current, previous)
    changed = frozenset(r[0] for r in con.execute(changed_sql).fetchall())
    deleted = frozenset(r[0] for r in con.execute(deleted_sql).fetchall())
    total = con.execute(f"SELECT count(*) FROM {current}").fetchall()[0][0]
    return IncrementalPlan(changed=changed, deleted=deleted, unchanged=int(total) - len(changed))


def carried_edges_sql(edges: str, touched: str) -> str:
    """SELECT the stored edges of `edges` whose two records are both untouched (neither in the
    `unique_id` column of `touched`): the ones an incremental night keeps as scored."""
    cols = "unique_id_l, unique_id_r, match_probability, match_weight"
    return (
        f"SELECT {cols} FROM {edges} "
        f"WHERE unique_id_l NOT IN (SELECT unique_id FROM {touched}) "
        f"AND unique_id_r NOT IN (SELECT unique_id FROM {touched})"
    )


def relink_scope(
    previous_edges: pd.DataFrame,
    new_edges: pd.DataFrame,
    touched: frozenset[str] | set[str],
    threshold: float,
) -> frozenset[str]:
    """Records whose cluster an incremental night must decide again.

    The connected parts, in the graph of last night's and tonight's links at or above
    `threshold` together, that hold a touched (new, changed or deleted) record. Clustering
    (connected components, then the conflict split) is decided per component of tonight's
    accepted links, and each such component lies either wholly inside this scope or wholly
    outside it with exactly last night's records and links; so outside the scope the clusters,
    their keys and their strongest links are last night's. Deleted records are part of the
    scope only as bridges: drop them before clustering.
    """
    seeds = np.asarray(sorted(touched), dtype=object)
    parts = [
        e.loc[
            pd.to_numeric(e["match_probability"], errors="coerce").to_numpy() >= threshold,
            ["unique_id_l", "unique_id_r"],
        ]
        for e in (previous_edges, new_edges)
        if len(e)
    ]
    links = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"unique_id_l": [], "unique_id_r": []}
    )
    columns = [pd.Series(seeds, dtype="string"), links["unique_id_l"], links["unique_id_r"]]
    codes, n = _node_codes(columns)
    m = len(links)
    if n == 0:
        return frozenset()
    a = codes[len(seeds) : len(seeds) + m]
    b = codes[len(seeds) + m :]
    graph = coo_matrix((np.ones(m, dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    hit = np.isin(labels[codes], labels[codes[: len(seeds)]])
    found, start = set(), 0
    for col in columns:
        found.update(col[hit[start : start + len(col)]].tolist())
        start += len(col)
    return frozenset(found)


def _node_codes(columns: list[pd.Series]) -> tuple[np.ndarray, int]:
    """(a node number per id of the stacked `columns`, the number of nodes). Ids are grouped by
    their 64-bit hash (DuckDB's `hash`, then `pd.factorize` of the integers): at 1M people,
    factorising the id strings themselves cost 4 s a night. Two ids whose hashes collide become
    one node, which can only join two components, so the scope stays a union of whole
    components (a little larger, never smaller)."""
    import duckdb

    con = duckdb.connect()
    try:
        hashes = []
        for col in columns:
            con.register("_ids", pd.DataFrame({"id": col.reset_index(drop=True)}))
            hashes.append(np.asarray(con.execute("SELECT hash(id::VARCHAR) AS h FROM _ids").fetchnumpy()["h"]))
            con.unregister("_ids")
    finally:
        con.close()
    codes, uniques = pd.factorize(np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64))
    return codes, len(uniques)
