-- scv.lifecycle: one row per customer of scv.customer, with the stage on $as_of.
--
-- Inputs: stage.orders, scv.customer_xref, scv.customer, prev.lifecycle (the previously published
-- scv.lifecycle; empty on the first night).
-- Parameters: $as_of (DATE), $new_days, $active_days, $at_risk_days, $lost_days (whole days;
-- checked by transforms.lifecycle.lifecycle_params: new <= active <= at_risk <= lost).
--
-- The stage depends only on the completed orders dated on or before $as_of, so any date can be
-- recomputed and gives the same answer as on that night. With d = days since the last order day,
-- lost_after = at_risk_days for a customer who has ordered on one day only, else lost_days
-- (docs/analytics.md), the first rule that holds wins:
--   prospect     no completed order
--   lost         d > lost_after
--   at_risk      d > active_days
--   new          first order day at most new_days before $as_of
--   reactivated  on the eve of the last order day the customer was lost (see `comeback`)
--   active       otherwise (d <= active_days)
-- stage_since is the first day of the current unbroken run of this stage, derived from the
-- orders as well (prospect: carried over from prev.lifecycle, else the day first seen).
WITH params AS (
    SELECT
        CAST($as_of AS DATE) AS as_of_date,
        CAST($new_days AS INTEGER) AS new_days,
        CAST($active_days AS INTEGER) AS active_days,
        CAST($at_risk_days AS INTEGER) AS at_risk_days,
        CAST($lost_days AS INTEGER) AS lost_days
),
order_days AS (
    SELECT DISTINCT
        x.customer_id,
        CAST(o.order_date AS DATE) AS order_day
    FROM stage.orders AS o
    JOIN scv.customer_xref AS x
        ON x.source = o.person_source AND x.source_record_id = o.person_record_id
    CROSS JOIN params AS p
    WHERE o.status = 'completed'
        AND CAST(o.order_date AS DATE) <= p.as_of_date
),
sequenced AS (
    SELECT
        customer_id,
        order_day,
        row_number() OVER (PARTITION BY customer_id ORDER BY order_day) AS day_number,
        -- days since the previous order day, counted on the eve of this one: what the stage
        -- rules saw the day before this order arrived
        date_diff('day', lag(order_day) OVER (PARTITION BY customer_id ORDER BY order_day), order_day)
            - 1 AS eve_days_since_previous
    FROM order_days
),
flagged AS (
    SELECT
        s.customer_id,
        s.order_day,
        -- lost on the eve: the lost threshold then depended on how many order days came before
        coalesce(
            s.eve_days_since_previous
                > CASE WHEN s.day_number = 2 THEN p.at_risk_days ELSE p.lost_days END,
            FALSE
        ) AS comeback,
        -- at risk or lost on the eve: this order made the customer active (or reactivated) again
        coalesce(s.eve_days_since_previous > p.active_days, FALSE) AS after_lapse
    FROM sequenced AS s
    CROSS JOIN params AS p
),
flagged_runs AS (
    SELECT
        *,
        coalesce(
            lag(comeback) OVER (PARTITION BY customer_id ORDER BY order_day), FALSE
        ) AS follows_comeback
    FROM flagged
),
per_customer AS (
    SELECT
        customer_id,
        min(order_day) AS first_day,
        max(order_day) AS last_day,
        count(*) AS order_day_count,
        arg_max(comeback, order_day) AS last_is_comeback,
        -- latest order day on which an active run can have begun (after a lapse, or the order
        -- after a comeback, which turns reactivated into active)
        max(order_day) FILTER (WHERE after_lapse OR follows_comeback) AS active_entry_day
    FROM flagged_runs
    GROUP BY customer_id
),
measured AS (
    SELECT
        c.customer_id,
        CAST(c.first_seen_at AS DATE) AS first_seen_day,
        pc.first_day,
        pc.last_day,
        pc.last_is_comeback,
        pc.active_entry_day,
        date_diff('day', pc.first_day, p.as_of_date) AS days_since_first,
        date_diff('day', pc.last_day, p.as_of_date) AS days_since_last,
        CASE WHEN pc.order_day_count = 1 THEN p.at_risk_days ELSE p.lost_days END AS lost_after,
        p.as_of_date,
        p.new_days,
        p.active_days
    FROM scv.customer AS c
    CROSS JOIN params AS p
    LEFT JOIN per_customer AS pc
        ON pc.customer_id = c.customer_id
),
staged AS (
    SELECT
        *,
        CASE
            WHEN last_day IS NULL THEN 'prospect'
            WHEN days_since_last > lost_after THEN 'lost'
            WHEN days_since_last > active_days THEN 'at_risk'
            WHEN days_since_first <= new_days THEN 'new'
            WHEN last_is_comeback THEN 'reactivated'
            ELSE 'active'
        END AS stage
    FROM measured
)
SELECT
    s.customer_id,
    s.as_of_date,
    s.stage,
    CASE s.stage
        WHEN 'lost' THEN s.last_day + s.lost_after + 1
        WHEN 'at_risk' THEN s.last_day + s.active_days + 1
        WHEN 'new' THEN s.first_day
        WHEN 'reactivated' THEN s.last_day
        -- greatest() skips NULL: no lapse since the first order means active since `new` ended
        WHEN 'active' THEN greatest(s.first_day + s.new_days + 1, s.active_entry_day)
        ELSE coalesce(earlier.stage_since, least(s.first_seen_day, s.as_of_date), s.as_of_date)
    END AS stage_since
FROM staged AS s
LEFT JOIN prev.lifecycle AS earlier
    ON earlier.customer_id = s.customer_id
    AND earlier.stage = 'prospect'
    AND earlier.as_of_date <= s.as_of_date
ORDER BY s.customer_id
