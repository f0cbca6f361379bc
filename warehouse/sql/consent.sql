-- scv.consent: the latest consent decision per customer and purpose, across every source.
--
-- Inputs: stage.consents, scv.customer_xref. Parameter: $as_of (DATE): decisions recorded after
-- the end of that day are not known yet and are left out (a rerun for a past date gives that
-- date's state).
--
-- Choosing the decision, per (customer_id, purpose):
--   1. latest recorded_at (a decision without a time only counts when there is no other);
--   2. at equal recorded_at a withdrawal (granted = false) wins over an opt-in: when in doubt,
--      do not contact;
--   3. then the smallest (source, source_record_id), so reruns pick the same row.
-- Decisions whose person record resolves to no customer have no row here (they stay in
-- scv.touchpoint with a NULL customer_id).
WITH decisions AS (
    SELECT
        x.customer_id,
        c.purpose,
        c.granted,
        c.recorded_at,
        c.source,
        c.source_record_id
    FROM stage.consents AS c
    INNER JOIN scv.customer_xref AS x
        ON x.source = c.person_source AND x.source_record_id = c.person_record_id
    WHERE
        c.purpose IS NOT NULL
        AND c.granted IS NOT NULL
        AND (c.recorded_at IS NULL OR c.recorded_at < CAST($as_of AS DATE) + INTERVAL 1 DAY)
)

SELECT
    d.customer_id,
    d.purpose,
    d.granted,
    d.recorded_at,
    d.source,
    d.source_record_id
FROM decisions AS d
QUALIFY row_number() OVER (
    PARTITION BY d.customer_id, d.purpose
    ORDER BY d.recorded_at DESC NULLS LAST, d.granted ASC, d.source ASC, d.source_record_id ASC
) = 1
ORDER BY d.customer_id, d.purpose
