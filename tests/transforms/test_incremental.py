"""Incremental planning: changed, new and deleted records; which stored edges survive."""

import duckdb
import numpy as np
import pandas as pd

from transforms.incremental import (
    MATCH_COLUMNS,
    carried_edges_sql,
    fingerprints_sql,
    plan_incremental,
    relink_scope,
)
from transforms.linkage import cluster_edges


def persons(rows):
    return pd.DataFrame(rows, columns=["unique_id", "first_name_std", "email_key", "loyalty_tier"])


def fingerprints(rows) -> pd.DataFrame:
    """The fingerprint table the person_clusters asset builds, for these records."""
    frame = persons(rows)
    for col in MATCH_COLUMNS:  # the standardised frame always has every match column
        if col not in frame.columns:
            frame[col] = pd.Series([None] * len(frame), dtype="str")
    con = duckdb.connect()
    con.register("p", frame)
    return con.sql(fingerprints_sql("p")).df()


def plan(before, after):
    con = duckdb.connect()
    con.register("prev", fingerprints(before))
    con.register("cur", fingerprints(after))
    return plan_incremental(con, "cur", "prev")


BASE = [
    ("crm:1", "anna", "anna@x.com", "gold"),
    ("crm:2", "ben", "ben@x.com", "silver"),
    ("shop:9", "anna", None, "none"),
]


def test_plan_reads_both_nights_from_parquet(tmp_path):
    """The night compares the staged fingerprint file with the stored one: two table functions."""
    con = duckdb.connect()
    files = []
    for name, rows in (("prev", BASE), ("cur", BASE[:2] + [("crm:3", "cara", None, "none")])):
        con.register("_f", fingerprints(rows))
        con.execute(f"COPY _f TO '{tmp_path / name}.parquet' (FORMAT parquet)")
        con.unregister("_f")
        files.append(f"read_parquet('{tmp_path / name}.parquet')")
    got = plan_incremental(con, files[1], files[0])
    assert (got.changed, got.deleted, got.unchanged) == ({"crm:3"}, {"shop:9"}, 2)


def test_fingerprint_ignores_fields_the_model_does_not_read():
    a = fingerprints(BASE)
    b = fingerprints([r[:3] + ("platinum",) for r in BASE])
    assert a.equals(b)
    assert fingerprints([("crm:1", "anna", "anna@y.com", "gold")])["fingerprint"][0] != a["fingerprint"][0]


def test_plan_finds_new_changed_and_deleted():
    after_rows = [
        ("crm:1", "anna", "anna@x.com", "gold"),  # unchanged
        ("crm:2", "benjamin", "ben@x.com", "silver"),  # changed
        ("crm:3", "cara", "cara@x.com", "none"),  # new
    ]  # shop:9 deleted
    got = plan(BASE, after_rows)
    assert got.changed == {"crm:2", "crm:3"}
    assert got.deleted == {"shop:9"}
    assert got.unchanged == 1


def test_null_and_empty_string_differ_and_values_do_not_run_together():
    a = fingerprints([("crm:1", "anna", None, "x")])
    b = fingerprints([("crm:1", "anna", "", "x")])
    assert a["fingerprint"][0] != b["fingerprint"][0]
    c = fingerprints([("crm:1", "ann", "a@x.com", "x")])
    d = fingerprints([("crm:1", "anna", "@x.com", "x")])
    assert c["fingerprint"][0] != d["fingerprint"][0]


def test_carried_edges_are_those_between_two_untouched_records():
    stored = pd.DataFrame(
        {
            "unique_id_l": ["crm:1", "crm:1", "crm:2"],
            "unique_id_r": ["shop:9", "crm:4", "crm:4"],
            "match_probability": [0.99, 0.5, 0.97],
            "match_weight": [8.0, 0.0, 6.0],
        }
    )
    got = plan(BASE + [("crm:4", "dan", None, "x")], BASE[:2] + [("crm:4", "dan", None, "x")])
    con = duckdb.connect()
    con.register("stored", stored)
    con.register("touched", pd.DataFrame({"unique_id": sorted(got.touched)}))
    kept = con.sql(carried_edges_sql("stored", "touched") + " ORDER BY 1, 2").fetchall()
    assert [(a, b) for a, b, *_ in kept] == [("crm:1", "crm:4"), ("crm:2", "crm:4")]


def edges(rows):
    return pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "match_probability"])


def test_relink_scope_follows_links_above_the_threshold_on_either_night():
    old = edges([("a", "b", 0.99), ("b", "c", 0.95), ("d", "e", 0.99), ("f", "g", 0.9), ("c", "h", 0.3)])
    new = edges([("c2", "f", 0.97), ("c2", "x", 0.2)])
    scope = relink_scope(old, new, {"c", "c2"}, threshold=0.8)
    # c's old component, the new record and the component its new link reaches; not d-e, and
    # not records joined only by links below the threshold (h, x)
    assert scope == {"a", "b", "c", "c2", "f", "g"}
    assert relink_scope(old, new.iloc[0:0], set(), threshold=0.8) == frozenset()


def _nodes(n, rng):
    first = rng.choice(["anna", "ben", "cara", "dan", None], n)
    dob = rng.choice(["1980-01-01", "1990-02-02", None], n)
    return pd.DataFrame(
        {
            "unique_id": [f"r{i:03d}" for i in range(n)],
            "source": "crm",
            "source_record_id": [f"{i:03d}" for i in range(n)],
            "first_name_std": first,
            "first_name_alias": first,
            "last_name_std": "smith",
            "dob": dob,
        }
    )


def _random_edges(ids, m, rng):
    a, b = rng.choice(ids, m), rng.choice(ids, m)
    keep = a != b
    return edges(list(zip(a[keep], b[keep], rng.uniform(0.5, 1.0, keep.sum()).round(3))))


def test_clustering_inside_the_scope_plus_last_nights_clusters_equals_clustering_everything():
    """The property the incremental night rests on, on random graphs with conflicts: records
    outside the relink scope keep last night's clusters, keys and strongest links."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        nodes = _nodes(120, rng)
        old_edges = _random_edges(nodes["unique_id"].to_numpy(), 90, rng)
        last_night = cluster_edges(nodes, old_edges, 0.8).set_index("unique_id")
        changed = set(rng.choice(nodes["unique_id"], 4, replace=False))
        deleted = set(rng.choice(sorted(set(nodes["unique_id"]) - changed), 3, replace=False))
        tonight = nodes[~nodes["unique_id"].isin(deleted)].copy()
        tonight.loc[tonight["unique_id"].isin(changed), "dob"] = "2001-03-03"
        carried = old_edges[
            ~old_edges["unique_id_l"].isin(changed | deleted) & ~old_edges["unique_id_r"].isin(changed | deleted)
        ]
        new_edges = _random_edges(tonight["unique_id"].to_numpy(), 8, rng)
        new_edges = new_edges[new_edges["unique_id_l"].isin(changed) | new_edges["unique_id_r"].isin(changed)]
        all_edges = pd.concat([carried, new_edges], ignore_index=True)
        everything = cluster_edges(tonight, all_edges, 0.8).set_index("unique_id")

        scope = relink_scope(old_edges, new_edges, changed | deleted, 0.8) - deleted
        inside = cluster_edges(tonight[tonight["unique_id"].isin(scope)], all_edges, 0.8)
        outside = last_night.loc[sorted(set(tonight["unique_id"]) - scope)].reset_index()
        combined = pd.concat([inside, outside]).set_index("unique_id").loc[everything.index]
        cols = ["cluster_key", "match_probability"]
        assert combined[cols].astype(str).equals(everything[cols].astype(str))
