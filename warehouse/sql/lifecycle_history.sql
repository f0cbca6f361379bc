-- scv.lifecycle_history: every lifecycle stage change, kept across nights.
--
-- Inputs: scv.lifecycle (tonight's stages, built by lifecycle.sql), prev.lifecycle and
-- prev.lifecycle_history (the previously published tables; empty on the first night).
-- Parameters: $as_of (DATE).
--
-- The history is a log of observed stages, one row per change. It is rebuilt from every
-- observation known: tonight's stages, the last published night's stages and the stage each old
-- row moved to. Per customer, these are put in date order (one per date: tonight's, else the
-- published night's, else the old row's) and a row is kept wherever the stage differs from the
-- one observed before (from_stage NULL for the first).
-- - An ordinary night: the old rows come back unchanged, plus one row per customer whose stage
--   differs from the published one (or who is new).
-- - A rerun of the same night: old rows dated $as_of are ignored and recomputed, so the result is
--   the same as the first run's.
-- - A backfill ($as_of before the latest night): the stage that night is compared with the latest
--   observation before it; the next observation after it is compared with the backfilled stage,
--   so the chain of from_stage -> to_stage stays unbroken (a later row that no longer changes
--   anything disappears, and the last published night's stage is kept as an observation).
WITH params AS (
    SELECT CAST($as_of AS DATE) AS as_of_date
),
observed AS (
    SELECT customer_id, as_of_date, stage, 1 AS preference
    FROM scv.lifecycle
    UNION ALL
    SELECT l.customer_id, l.as_of_date, l.stage, 2 AS preference
    FROM prev.lifecycle AS l
    CROSS JOIN params AS p
    WHERE l.as_of_date <> p.as_of_date
    UNION ALL
    SELECT h.customer_id, h.as_of_date, h.to_stage AS stage, 3 AS preference
    FROM prev.lifecycle_history AS h
    CROSS JOIN params AS p
    WHERE h.as_of_date <> p.as_of_date
),
one_per_day AS (
    SELECT customer_id, as_of_date, stage
    FROM observed
    QUALIFY row_number() OVER (
        PARTITION BY customer_id, as_of_date ORDER BY preference
    ) = 1
),
chained AS (
    SELECT
        customer_id,
        as_of_date,
        lag(stage) OVER (PARTITION BY customer_id ORDER BY as_of_date) AS from_stage,
        stage AS to_stage
    FROM one_per_day
)
SELECT
    CAST(customer_id AS VARCHAR) AS customer_id,
    CAST(as_of_date AS DATE) AS as_of_date,
    CAST(from_stage AS VARCHAR) AS from_stage,
    CAST(to_stage AS VARCHAR) AS to_stage
FROM chained
WHERE from_stage IS DISTINCT FROM to_stage
ORDER BY customer_id, as_of_date
