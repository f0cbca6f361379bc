"""Incremental planning: changed, new and deleted records; which stored edges survive."""

import pandas as pd

from transforms.incremental import carry_edges, plan_incremental, record_fingerprints


def persons(rows):
    return pd.DataFrame(rows, columns=["unique_id", "first_name_std", "email_key", "loyalty_tier"])


BASE = [
    ("crm:1", "anna", "anna@x.com", "gold"),
    ("crm:2", "ben", "ben@x.com", "silver"),
    ("shop:9", "anna", None, "none"),
]


def test_fingerprint_ignores_fields_the_model_does_not_read():
    a = record_fingerprints(persons(BASE))
    b = record_fingerprints(persons([r[:3] + ("platinum",) for r in BASE]))
    assert a.equals(b)


def test_plan_finds_new_changed_and_deleted():
    before = record_fingerprints(persons(BASE))
    after_rows = [
        ("crm:1", "anna", "anna@x.com", "gold"),  # unchanged
        ("crm:2", "benjamin", "ben@x.com", "silver"),  # changed
        ("crm:3", "cara", "cara@x.com", "none"),  # new
    ]  # shop:9 deleted
    plan = plan_incremental(before, record_fingerprints(persons(after_rows)))
    assert plan.changed == {"crm:2", "crm:3"}
    assert plan.deleted == {"shop:9"}
    assert plan.unchanged == 1


def test_null_and_empty_string_differ():
    a = record_fingerprints(persons([("crm:1", "anna", None, "x")]))
    b = record_fingerprints(persons([("crm:1", "anna", "", "x")]))
    assert a["fingerprint"][0] != b["fingerprint"][0]


def test_carry_edges_drops_every_edge_touching_a_changed_or_deleted_record():
    edges = pd.DataFrame(
        {
            "unique_id_l": ["crm:1", "crm:1", "crm:2"],
            "unique_id_r": ["shop:9", "crm:4", "crm:4"],
            "match_probability": [0.99, 0.5, 0.97],
        }
    )
    before = record_fingerprints(persons(BASE + [("crm:4", "dan", None, "x")]))
    after = record_fingerprints(persons(BASE[:2] + [("crm:4", "dan", None, "x")]))
    kept = carry_edges(edges, plan_incremental(before, after))
    assert list(zip(kept.unique_id_l, kept.unique_id_r)) == [("crm:1", "crm:4"), ("crm:2", "crm:4")]
