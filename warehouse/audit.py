"""Audits of a staged night, run before it is published. Each audit is one SQL query returning
a count that must be zero; the failures are reported by name."""

from __future__ import annotations

import duckdb

__all__ = ["AUDITS", "audit_staged_warehouse"]

#: name -> SQL returning the number of offending rows (0 = pass)
AUDITS: dict[str, str] = {
    "xref_covers_every_person_record_once": """
        SELECT (SELECT count(*) FROM stage.person_records) - count(DISTINCT (source, source_record_id))
             + (count(*) - count(DISTINCT (source, source_record_id)))
        FROM scv.customer_xref""",
    "customer_ids_unique": """
        SELECT count(*) - count(DISTINCT customer_id) FROM scv.customer""",
    "every_xref_customer_has_a_golden_record": """
        SELECT count(DISTINCT x.customer_id) FROM scv.customer_xref x
        ANTI JOIN scv.customer c USING (customer_id)""",
    "every_golden_record_has_source_records": """
        SELECT count(*) FROM scv.customer c ANTI JOIN scv.customer_xref x USING (customer_id)""",
    "rows_conserved_for_every_source": """
        SELECT count(*) FROM scv.source_run
        WHERE run_id = (SELECT arg_max(run_id, run_at) FROM scv.source_run)
          AND rows_in <> rows_accepted + rows_quarantined""",
    "profile_row_per_customer": """
        SELECT abs((SELECT count(*) FROM scv.customer_profile) - (SELECT count(*) FROM scv.customer))""",
    "lifecycle_row_per_customer": """
        SELECT abs((SELECT count(*) FROM scv.lifecycle) - (SELECT count(*) FROM scv.customer))""",
    "rfm_only_for_known_customers": """
        SELECT count(*) FROM scv.rfm r ANTI JOIN scv.customer c USING (customer_id)""",
}


def audit_staged_warehouse(con: duckdb.DuckDBPyConnection) -> tuple[list[str], dict[str, int]]:
    """Run every audit on the staging connection; returns (failure messages, figures)."""
    failures: list[str] = []
    figures: dict[str, int] = {}
    for name, sql in AUDITS.items():
        try:
            bad = int(con.execute(sql).fetchall()[0][0] or 0)
        except duckdb.Error as exc:
            failures.append(f"{name}: could not run ({str(exc).splitlines()[0]})")
            continue
        figures[name] = bad
        if bad:
            failures.append(f"{name}: {bad} offending rows")
    figures["customers"] = int(con.execute("SELECT count(*) FROM scv.customer").fetchall()[0][0])
    return failures, figures
