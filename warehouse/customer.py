"""Golden records: `scv.customer` (one row per person, chosen by survivorship),
`scv.customer_field_provenance` (where each golden value came from) and `scv.person_record`
(every accepted person record as the source wrote it, with its customer_id).

Incrementally: a customer whose records (and their content) are the same as on the last
published night keeps its published golden row and provenance; only customers touched by a new,
changed, moved or deleted record are decided again (`warehouse.nightly.golden` keeps the
published night's record fingerprints). A change of the survivorship rules, the trust ranks or
the code rebuilds everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from sources.config import Config
from transforms.golden import GOLDEN_FIELDS, build_golden
from transforms.sql_text import quote_literal
from warehouse.nightly.golden import (
    golden_config_hash,
    load_golden_state,
    stage_golden_state,
)
from warehouse.schema import TABLES
from warehouse.store import (
    Warehouse,
    change_in_place,
    documented_table,
    drop_relation,
    empty_frame,
    fetch_frame,
    write_select,
)

__all__ = ["GOLDEN_RECORDS_FILE", "PERSON_RECORD_SQL", "GoldenRecords", "build_customers", "golden_records_sql"]

def _person_record_sql(where: str | None = None, ordered: bool = True) -> str:
    cols = []
    for c in TABLES["person_record"].column_names:
        cols.append('x.customer_id' if c == "customer_id" else f'p."{c}"')
    return (
        "SELECT " + ", ".join(f'{e} AS "{c}"' for e, c in zip(cols, TABLES["person_record"].column_names))
        + " FROM stage.person_records p LEFT JOIN scv.customer_xref x USING (source, source_record_id)"
        + (f" WHERE {where}" if where else "")
        + (" ORDER BY p.source, p._row_number" if ordered else "")
    )


#: The documented `scv.person_record` rows: source values as written, plus customer_id.
PERSON_RECORD_SQL = _person_record_sql()

#: Tonight's person records with their customer and a hash of everything survivorship reads
#: (every standardised column; not the row's position in its file).
#: Held in memory for the night's comparison and written once as Parquet next to the staging
#: file (`GOLDEN_RECORDS_FILE`), which the publish step hands over as the next night's state:
#: a staging table of the 2.5M fingerprints cost 4 s a night at 1M people.
GOLDEN_RECORDS_FILE = "golden_records.parquet"


def golden_records_sql() -> str:
    """Temp table `_golden_records`: tonight's person records with their customer and
    fingerprint."""
    return """
CREATE OR REPLACE TEMP TABLE _golden_records AS
SELECT x.source, x.source_record_id, x.customer_id,
       hash(*COLUMNS(p.* EXCLUDE (_row_number))) AS fingerprint
FROM stage.person_records p JOIN scv.customer_xref x USING (source, source_record_id)
"""


def _affected_customers(con: duckdb.DuckDBPyConnection, store: Warehouse, previous_records: Path) -> set[str]:
    """Customers whose golden record must be decided again: any record that is new, changed,
    moved between customers or gone (on either side of the move), and any customer the
    published table lacks. The differing record rows are kept in `stage.golden_changed`."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE stage.golden_changed AS
        WITH prev AS (SELECT source, source_record_id, customer_id, fingerprint
                      FROM read_parquet({quote_literal(previous_records)})),
             cur AS (SELECT source, source_record_id, customer_id, fingerprint FROM _golden_records)
        SELECT source, source_record_id, customer_id FROM (SELECT * FROM cur EXCEPT SELECT * FROM prev)
        UNION ALL
        SELECT source, source_record_id, customer_id FROM (SELECT * FROM prev EXCEPT SELECT * FROM cur)
        """
    )
    affected = {r[0] for r in con.execute("SELECT DISTINCT customer_id FROM stage.golden_changed").fetchall()}
    with store.published_attached(con) as attached:
        if not attached:
            return affected | {r[0] for r in con.execute("SELECT DISTINCT customer_id FROM scv.customer_xref").fetchall()}
        missing = con.execute(
            "SELECT DISTINCT customer_id FROM scv.customer_xref "
            "EXCEPT SELECT customer_id FROM published.scv.customer"
        ).fetchall()
    return affected | {r[0] for r in missing}


def _person_records_in_place(con: duckdb.DuckDBPyConnection) -> int | None:
    """scv.person_record changed in place: the rows of records in `stage.golden_changed`
    replaced by tonight's. None (nothing kept) when the result does not hold one row per
    person record tonight; the caller then writes the table whole."""
    changed = (
        "EXISTS (SELECT 1 FROM stage.golden_changed c "
        "WHERE c.source = {t}.source AND c.source_record_id = {t}.source_record_id)"
    )
    rows = change_in_place(
        con,
        "person_record",
        changed.format(t="scv.person_record"),
        _person_record_sql(where=changed.format(t="p"), ordered=False),
    )
    if rows != con.execute("SELECT count(*) FROM stage.person_records").fetchall()[0][0]:
        return None
    return rows


#: How a full build orders the golden tables: by customer id, provenance then by field in
#: golden-record column order.
_GOLDEN_ORDER = {
    "customer": "customer_id",
    "customer_field_provenance": "customer_id, list_position(["
    + ", ".join(f"'{f}'" for f in GOLDEN_FIELDS)
    + "], field)",
}


def _write_golden(
    con: duckdb.DuckDBPyConnection, store: Warehouse, decided: dict[str, pd.DataFrame], carry: bool
) -> str:
    """scv.customer and scv.customer_field_provenance: tonight's decided rows plus, on an
    incremental night, the published rows of every customer not decided tonight that still
    exists. When the build file still holds the published tables, they are changed in place
    (the rows of decided and vanished customers deleted, the decided ones inserted); otherwise
    each is written once, in the order of a full build. Returns how: "in place" or "rewritten"."""
    in_place = carry and store.as_published(con, list(decided))
    con.register("_decided_ids", decided["customer"][["customer_id"]])
    try:
        with store.published_attached(con) as attached:
            for name, frame in decided.items():
                cols = ", ".join(f'"{c}"' for c in TABLES[name].column_names)
                view = f"_decided_{name}"
                con.register(view, documented_table(frame, name))
                try:
                    typed = ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in TABLES[name].columns)
                    if in_place:
                        change_in_place(
                            con,
                            name,
                            "customer_id IN (SELECT customer_id FROM _decided_ids) "
                            "OR customer_id NOT IN (SELECT customer_id FROM scv.customer_xref)",
                            f"SELECT {typed} FROM {view}",
                        )
                        continue
                    parts = [f"SELECT {typed} FROM {view}"]
                    if carry and attached:
                        parts.append(
                            f"SELECT {cols} FROM published.scv.{name} "
                            "WHERE customer_id IN (SELECT customer_id FROM scv.customer_xref) "
                            "AND customer_id NOT IN (SELECT customer_id FROM _decided_ids)"
                        )
                    write_select(
                        con,
                        name,
                        f"SELECT {cols} FROM ({' UNION ALL '.join(parts)}) ORDER BY {_GOLDEN_ORDER[name]}",
                    )
                finally:
                    con.unregister(view)
    finally:
        con.unregister("_decided_ids")
    return "in place" if in_place else "rewritten"




#: Whether the published golden records and tonight's xref agree: one golden row per
#: customer_id, the same customers on both sides, and the xref's number of customers.
IDS_CHECK_SQL = """
SELECT (SELECT count(*) = count(DISTINCT customer_id) FROM scv.customer),
       (SELECT count(*) FROM (
            SELECT customer_id FROM scv.customer
            EXCEPT SELECT customer_id FROM scv.customer_xref)) = 0
       AND (SELECT count(*) FROM (
            SELECT customer_id FROM scv.customer_xref
            EXCEPT SELECT customer_id FROM scv.customer)) = 0,
       (SELECT count(DISTINCT customer_id) FROM scv.customer_xref)
"""


@dataclass(frozen=True)
class GoldenRecords:
    """What `build_customers` wrote, and the figures of its tables and check."""

    mode: str
    written: str
    decided: int
    customers: int
    with_email: int
    with_phone: int
    multi_source: int
    provenance_rows: int
    decided_by_rule: dict[str, int]
    ids_unique: bool
    ids_match: bool
    xref_customers: int
    person_records: int
    person_records_written: str
    with_field_issues: int


def _decide_scope(
    cfg: Config, con: duckdb.DuckDBPyConnection, store: Warehouse, full_requested: bool
) -> tuple[str, set[str] | None]:
    """(mode, customers to decide tonight; None: every customer). Stages tonight's record
    fingerprints and config hash for the publish step to commit."""
    config_hash = golden_config_hash(cfg)
    con.execute(golden_records_sql())
    store.write_staged(con, GOLDEN_RECORDS_FILE, "SELECT * FROM _golden_records")
    previous = load_golden_state(cfg)
    if full_requested:
        mode, affected = "full (requested)", None
    elif previous is None or previous["config_hash"] != config_hash:
        mode = "full (" + ("no stored state" if previous is None else "rules or code changed") + ")"
        affected = None
    else:
        mode = "incremental"
        affected = _affected_customers(con, store, previous["records"])
    stage_golden_state(cfg, store.staged_file(GOLDEN_RECORDS_FILE), config_hash)
    return mode, affected


def _records_to_decide(
    con: duckdb.DuckDBPyConnection, affected: set[str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(person records, their xref rows) of the customers to decide (all when None)."""
    if affected is None:
        persons = fetch_frame(con, "SELECT * FROM stage.person_records")
        xref = fetch_frame(con, "SELECT source, source_record_id, customer_id FROM scv.customer_xref")
        return persons, xref
    con.register("_affected", pd.DataFrame({"customer_id": sorted(affected)}, dtype="str"))
    persons = fetch_frame(
        con,
        "SELECT p.* FROM stage.person_records p JOIN scv.customer_xref x "
        "USING (source, source_record_id) WHERE x.customer_id IN (SELECT customer_id FROM _affected)",
    )
    xref = fetch_frame(
        con,
        "SELECT source, source_record_id, customer_id FROM scv.customer_xref "
        "WHERE customer_id IN (SELECT customer_id FROM _affected)",
    )
    return persons, xref


def build_customers(cfg: Config, store: Warehouse, full_requested: bool = False) -> GoldenRecords:
    """Write scv.customer, scv.customer_field_provenance and scv.person_record for tonight's
    xref: the golden records of the customers touched since the published night decided again
    (every customer on a full night), the others carried."""
    trust = {n: s.trust for n, s in cfg.sources.items()}
    with store.stage() as con:
        mode, affected = _decide_scope(cfg, con, store, full_requested)
        persons, xref = _records_to_decide(con, affected)
    if len(xref):
        golden, provenance = build_golden(
            persons,
            xref,
            rules=dict(cfg.survivorship.fields),
            default_rules=list(cfg.survivorship.default),
            trust=trust,
        )
    else:  # nobody to decide tonight (or no person records at all)
        golden, provenance = empty_frame("customer"), empty_frame("customer_field_provenance")
    with store.stage() as con:
        written = _write_golden(
            con,
            store,
            {"customer": golden, "customer_field_provenance": provenance},
            carry=affected is not None,
        )
        customers, with_email, with_phone, multi = con.execute(
            "SELECT count(*), count(email), count(phone), count(*) FILTER (record_count > 1) "
            "FROM scv.customer"
        ).fetchall()[0]
        n_prov = con.execute("SELECT count(*) FROM scv.customer_field_provenance").fetchall()[0][0]
        rules_used = dict(
            con.execute(
                "SELECT rule, count(*) FROM scv.customer_field_provenance GROUP BY ALL ORDER BY 2 DESC"
            ).fetchall()
        )
        ids_unique, ids_match, xref_customers = con.execute(IDS_CHECK_SQL).fetchall()[0]
        records = None
        if affected is not None and store.as_published(con, ["person_record"]):
            records = _person_records_in_place(con)
        records_written = "in place" if records is not None else "rewritten"
        if records is None:
            records = write_select(con, "person_record", PERSON_RECORD_SQL)
        with_issues = con.execute(
            "SELECT count(*) FROM scv.person_record WHERE len(field_issues) > 0"
        ).fetchall()[0][0]
    return GoldenRecords(
        mode=mode,
        written=written,
        decided=len(golden),
        customers=int(customers),
        with_email=int(with_email),
        with_phone=int(with_phone),
        multi_source=int(multi),
        provenance_rows=int(n_prov),
        decided_by_rule={k: int(v) for k, v in rules_used.items()},
        ids_unique=bool(ids_unique),
        ids_match=bool(ids_match),
        xref_customers=int(xref_customers),
        person_records=int(records),
        person_records_written=records_written,
        with_field_issues=int(with_issues),
    )
