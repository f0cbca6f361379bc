"""The published warehouse, documented: every `scv` table and column with its type and COMMENT.

This is the one description of the warehouse surface (CONTRACT §4). The DDL, the COMMENTs that
`duckdb_columns()` shows, the exports manifest and the sqlglot checks of the SQL models are all
derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MONEY_COLUMNS", "SCHEMA", "TABLES", "Column", "Table", "comment_statements", "create_statement"]

SCHEMA = "scv"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class Table:
    name: str
    comment: str
    columns: tuple[Column, ...]
    #: kept across runs (appended to, never rebuilt from sources alone)
    history: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _t(name: str, comment: str, *cols: tuple[str, str, str], history: bool = False) -> Table:
    return Table(name, comment, tuple(Column(*c) for c in cols), history)


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        _t(
            "customer",
            "Golden record: one row per real person, fields chosen by the survivorship rules.",
            ("customer_id", "VARCHAR", "Stable customer id (minted once, kept across nights)."),
            ("first_name", "VARCHAR", "First name as spelt at the winning source."),
            ("last_name", "VARCHAR", "Last name as spelt at the winning source."),
            ("email", "VARCHAR", "Best email address (lower-cased, valid, not a placeholder)."),
            ("phone", "VARCHAR", "Best phone number in E.164 (+447700900123)."),
            ("date_of_birth", "DATE", "Date of birth."),
            ("address_line", "VARCHAR", "Street address line as written at the winning source."),
            ("postcode", "VARCHAR", "Postcode / ZIP."),
            ("city", "VARCHAR", "City."),
            ("country", "VARCHAR", "ISO 3166-1 alpha-2 country code."),
            ("first_seen_at", "TIMESTAMP", "Earliest updated_at or activity seen for this person."),
            ("last_seen_at", "TIMESTAMP", "Latest updated_at or activity seen for this person."),
            ("record_count", "INTEGER", "Number of source person records linked to this customer."),
            ("sources", "VARCHAR[]", "Source systems holding a record of this person."),
        ),
        _t(
            "customer_field_provenance",
            "Where each golden-record value came from: one row per customer x field.",
            ("customer_id", "VARCHAR", "Customer id."),
            ("field", "VARCHAR", "Golden-record column name."),
            ("value", "VARCHAR", "Chosen value, as text."),
            ("source", "VARCHAR", "Source system the value was taken from."),
            ("source_record_id", "VARCHAR", "Record id in that source."),
            ("rule", "VARCHAR", "Survivorship rule that decided (validity, trust, recency, frequency, tiebreak, only)."),
            ("candidates", "INTEGER", "Number of distinct non-null candidate values."),
        ),
        _t(
            "customer_xref",
            "Cross-reference: one row per accepted source person record, with its customer id.",
            ("source", "VARCHAR", "Source system name (config key)."),
            ("source_record_id", "VARCHAR", "The record's own id in its source."),
            ("customer_id", "VARCHAR", "Customer the record belongs to."),
            ("match_probability", "DOUBLE", "Probability of the record's strongest link (1.0 alone)."),
            ("cluster_key", "VARCHAR", "This night's cluster key from linkage (not stable; use customer_id)."),
        ),
        _t(
            "person_record",
            "Every accepted source person record as its source wrote it, with its customer id.",
            ("source", "VARCHAR", "Source system name (config key)."),
            ("source_record_id", "VARCHAR", "The record's own id in its source."),
            ("customer_id", "VARCHAR", "Customer the record belongs to."),
            ("first_name", "VARCHAR", "First name as written in the source."),
            ("last_name", "VARCHAR", "Last name as written in the source."),
            ("email", "VARCHAR", "Email as written in the source."),
            ("phone", "VARCHAR", "Phone as written in the source."),
            ("date_of_birth", "VARCHAR", "Date of birth as written in the source."),
            ("address_line", "VARCHAR", "Street address as written in the source."),
            ("postcode", "VARCHAR", "Postcode as written in the source."),
            ("city", "VARCHAR", "City as written in the source."),
            ("country", "VARCHAR", "Country as written in the source."),
            ("updated_at", "TIMESTAMP", "When the source last changed the record."),
            ("field_issues", "VARCHAR[]", "Invalid optional fields treated as missing (field:rule)."),
        ),
        _t(
            "customer_id_history",
            "Every change of a customer id between runs (merges and splits).",
            ("run_at", "TIMESTAMP", "When the run that made the change started (UTC)."),
            ("old_customer_id", "VARCHAR", "Customer id before the change."),
            ("new_customer_id", "VARCHAR", "Customer id after the change."),
            ("change", "VARCHAR", "merge (old id absorbed into new) or split (records moved to a new id)."),
            ("records_moved", "INTEGER", "Number of source records that moved from old to new id."),
            ("reason", "VARCHAR", "What made the change: 'linkage' (the model and guards), or the steward's override (must-/cannot-link, who, why)."),
            history=True,
        ),
        _t(
            "review_queue",
            "Tonight's pairs for a data steward to look at: scored near the threshold, vetoed by a guard or an override, kept apart when a cluster was split, or joined by a must-link.",
            ("pair_key", "VARCHAR", "Stable key of the pair (hash of the two record names, smaller first): the same pair has the same key every night."),
            ("left_record", "VARCHAR", "One record, named SOURCE:SOURCE_RECORD_ID (the smaller name)."),
            ("right_record", "VARCHAR", "The other record, named SOURCE:SOURCE_RECORD_ID."),
            ("left_customer_id", "VARCHAR", "Customer the left record belongs to tonight."),
            ("right_customer_id", "VARCHAR", "Customer the right record belongs to tonight."),
            ("match_probability", "DOUBLE", "The model's match probability for the pair (1.0 for a must-link)."),
            ("reason", "VARCHAR", "Why the pair is in the queue (near the threshold, vetoed: different first name …)."),
            ("run_at", "TIMESTAMP", "When tonight's run started (UTC)."),
        ),
        _t(
            "touchpoint",
            "Unified timeline: one row per order, event or consent change, attributed to a customer.",
            ("touchpoint_id", "VARCHAR", "Unique id: <source>:<source_record_id>."),
            ("customer_id", "VARCHAR", "Customer, or NULL when the touchpoint resolves to nobody."),
            ("occurred_at", "TIMESTAMP", "When it happened (UTC)."),
            ("source", "VARCHAR", "Source system."),
            ("source_record_id", "VARCHAR", "Id in the source system."),
            ("kind", "VARCHAR", "order, event or consent."),
            ("event_type", "VARCHAR", "Order status, event type (page_view, email_open …) or consent purpose."),
            ("channel", "VARCHAR", "online, store, app, email, support …"),
            ("amount", "DOUBLE", "Order amount in `currency` (orders only): converted into currency.reporting when the config sets one, else as the source wrote it."),
            ("currency", "VARCHAR", "ISO 4217 currency of `amount`: the reporting currency, else the order's own (NULL when the source names none)."),
            ("source_amount", "DOUBLE", "Order amount as the source wrote it, in `source_currency` (orders only)."),
            ("source_currency", "VARCHAR", "The order's own currency as the source wrote it (ISO 4217; NULL when the source names none)."),
            ("session_id", "VARCHAR", "Web/app session id, when known."),
            ("stitched", "BOOLEAN", "True when attributed through a session that logged in, not directly."),
            ("attributes", "VARCHAR", "Other source columns, as JSON text."),
        ),
        _t(
            "consent",
            "Latest consent decision per customer and purpose across all sources.",
            ("customer_id", "VARCHAR", "Customer id."),
            ("purpose", "VARCHAR", "Processing purpose (email_marketing, sms_marketing, profiling …)."),
            ("granted", "BOOLEAN", "True if the latest decision is an opt-in."),
            ("recorded_at", "TIMESTAMP", "When the latest decision was recorded."),
            ("source", "VARCHAR", "Source system of the latest decision."),
            ("source_record_id", "VARCHAR", "Record id of the latest decision."),
        ),
        _t(
            "customer_profile",
            "Customer 360: one row per customer with identity, orders, engagement, consent and segments.",
            ("customer_id", "VARCHAR", "Customer id."),
            ("first_name", "VARCHAR", "Golden first name."),
            ("last_name", "VARCHAR", "Golden last name."),
            ("email", "VARCHAR", "Golden email."),
            ("phone", "VARCHAR", "Golden phone (E.164)."),
            ("city", "VARCHAR", "Golden city."),
            ("country", "VARCHAR", "Golden country code."),
            ("orders_count", "INTEGER", "Completed orders up to the as-of date, all channels."),
            ("total_spend", "DOUBLE", "Sum of completed order amounts, in `spend_currency`; NULL when those orders are in several currencies and no reporting currency is set (see spend_by_currency)."),
            ("online_orders", "INTEGER", "Completed online orders."),
            ("online_spend", "DOUBLE", "Completed online spend, in `spend_currency` (NULL as total_spend)."),
            ("store_orders", "INTEGER", "Completed in-store orders."),
            ("store_spend", "DOUBLE", "Completed in-store spend, in `spend_currency` (NULL as total_spend)."),
            ("spend_currency", "VARCHAR", "ISO 4217 currency of total/online/store_spend: the reporting currency, else the one currency of the customer's completed orders (NULL when several, or none)."),
            ("spend_by_currency", "VARCHAR", "Completed spend per currency the orders were placed in, as JSON text ({\"EUR\": 120.5, \"GBP\": 45.0}; \"unnamed\" for orders with no currency); {} without orders."),
            ("first_order_date", "DATE", "Date of the first completed order."),
            ("last_order_date", "DATE", "Date of the last completed order."),
            ("channels", "VARCHAR[]", "Channels the customer has been seen on."),
            ("last_seen_online", "TIMESTAMP", "Latest online/app touchpoint."),
            ("last_seen_store", "TIMESTAMP", "Latest in-store touchpoint."),
            ("emails_sent_90d", "INTEGER", "Marketing emails sent in the 90 days to the as-of date."),
            ("emails_opened_90d", "INTEGER", "Marketing emails opened in those 90 days."),
            ("emails_clicked_90d", "INTEGER", "Marketing emails clicked in those 90 days."),
            ("open_tickets", "INTEGER", "Support tickets opened and not closed."),
            ("consent", "MAP(VARCHAR, BOOLEAN)", "Latest consent per purpose: consent['email_marketing']."),
            ("rfm_segment", "VARCHAR", "RFM segment name (NULL without completed orders)."),
            ("lifecycle_stage", "VARCHAR", "Lifecycle stage on the as-of date."),
            ("as_of_date", "DATE", "Date the profile was computed for."),
        ),
        _t(
            "rfm",
            "RFM scores: one row per customer with at least one completed order up to the as-of date.",
            ("customer_id", "VARCHAR", "Customer id."),
            ("as_of_date", "DATE", "Date the scores are computed for."),
            ("recency_days", "INTEGER", "Days from the last completed order to the as-of date."),
            ("frequency", "INTEGER", "Distinct completed orders."),
            ("monetary", "DOUBLE", "Sum of completed order amounts, in `monetary_currency`; NULL (and m_score NULL) when orders come in several currencies and no reporting currency is set."),
            ("monetary_currency", "VARCHAR", "ISO 4217 currency of `monetary`: the reporting currency, else the one currency of every counted order."),
            ("r_score", "INTEGER", "Recency score 1-5 (5 = most recent); ties share a score."),
            ("f_score", "INTEGER", "Frequency score 1-5 (5 = most orders); ties share a score."),
            ("m_score", "INTEGER", "Monetary score 1-5 (5 = highest spend); ties share a score."),
            ("segment", "VARCHAR", "Named segment from the RFM segment map in config."),
        ),
        _t(
            "lifecycle",
            "Lifecycle stage: one row per customer on the as-of date.",
            ("customer_id", "VARCHAR", "Customer id."),
            ("as_of_date", "DATE", "Date the stage is computed for."),
            ("stage", "VARCHAR", "prospect, new, active, at_risk, lost or reactivated."),
            ("stage_since", "DATE", "Date the customer entered this stage."),
        ),
        _t(
            "lifecycle_history",
            "Every lifecycle stage change, kept across runs.",
            ("customer_id", "VARCHAR", "Customer id."),
            ("as_of_date", "DATE", "Run date on which the change was observed."),
            ("from_stage", "VARCHAR", "Stage before (NULL for a customer seen for the first time)."),
            ("to_stage", "VARCHAR", "Stage after."),
            history=True,
        ),
        _t(
            "quarantine",
            "Rejected source rows: one row per row that failed a row-level rule, with the raw row.",
            ("source", "VARCHAR", "Source system."),
            ("row_number", "BIGINT", "Data row number in the source file (1 = first data row)."),
            ("source_record_id", "VARCHAR", "Id value of the row, if any."),
            ("rule", "VARCHAR", "Rule that rejected the row (missing_id, duplicate_id, …)."),
            ("detail", "VARCHAR", "Human-readable reason naming the field and value."),
            ("raw", "VARCHAR", "The original row as JSON text."),
            ("run_at", "TIMESTAMP", "Run that quarantined the row."),
        ),
        _t(
            "source_run",
            "One row per source and run: conservation of rows (rows_in = accepted + quarantined).",
            ("run_at", "TIMESTAMP", "When the run started (UTC)."),
            ("run_id", "VARCHAR", "Dagster run id."),
            ("source", "VARCHAR", "Source system."),
            ("path", "VARCHAR", "File or table read."),
            ("fingerprint", "VARCHAR", "SHA-256 of the file read."),
            ("rows_in", "BIGINT", "Rows read."),
            ("rows_accepted", "BIGINT", "Rows accepted."),
            ("rows_quarantined", "BIGINT", "Rows quarantined."),
            ("field_findings", "BIGINT", "Invalid optional fields treated as missing (records kept)."),
            history=True,
        ),
    ]
}


#: Every money column of the warehouse and its exports, with the column that names its currency
#: (CONTRACT §5: money columns name their currency; the exports manifest lists them).
MONEY_COLUMNS: dict[tuple[str, str], str] = {
    ("touchpoint", "amount"): "currency",
    ("touchpoint", "source_amount"): "source_currency",
    ("customer_profile", "total_spend"): "spend_currency",
    ("customer_profile", "online_spend"): "spend_currency",
    ("customer_profile", "store_spend"): "spend_currency",
    ("rfm", "monetary"): "monetary_currency",
}


def create_statement(table: Table, schema: str = SCHEMA) -> str:
    """`CREATE TABLE IF NOT EXISTS` for an empty table of the documented shape."""
    cols = ", ".join(f'"{c.name}" {c.type}' for c in table.columns)
    return f"CREATE TABLE IF NOT EXISTS {schema}.{table.name} ({cols})"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comment_statements(table: Table, schema: str = SCHEMA) -> list[str]:
    """COMMENT ON statements for a table and its documented columns."""
    stmts = [f"COMMENT ON TABLE {schema}.{table.name} IS {_quote(table.comment)}"]
    stmts += [
        f'COMMENT ON COLUMN {schema}.{table.name}."{c.name}" IS {_quote(c.comment)}'
        for c in table.columns
    ]
    return stmts
