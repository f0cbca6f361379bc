-- scv.touchpoint: one row per accepted order, event and consent decision, attributed to a customer.
--
-- Inputs: stage.orders, stage.events, stage.consents (warehouse.models.STAGE_TABLES),
-- scv.customer_xref. No parameters: the timeline holds everything accepted; models that look at
-- a date window (customer_profile) apply $as_of themselves.
--
-- Attribution:
--   direct      (person_source, person_record_id) = xref (source, source_record_id)
--   stitched    an event with no direct customer whose session (same source and session_id)
--               holds an event with one: it gets that customer, for events before the login
--               too, and stitched = true. When a session holds events of two or more customers
--               (a shared device), anonymous events go to the customer of the session's FIRST
--               identified event (earliest event_time, then smallest source_record_id); events
--               that name their own customer always keep it.
--   nobody      customer_id NULL (anonymous sessions that never log in, unknown person ids):
--               kept, so counts of the timeline add up to the accepted rows.
-- kind/event_type: order/status, event/event_type, consent/purpose (granted is in attributes).
-- amount/currency: orders only; converted into the reporting currency when the config sets one
-- (stage.orders.amount_reporting, reporting_currency), else the order's own amount and currency.
-- source_amount/source_currency: the order's own, always (CONTRACT §7: no rate is built in).
WITH orders AS (
    SELECT
        o.source,
        o.source_record_id,
        x.customer_id,
        o.order_date AS occurred_at,
        'order' AS kind,
        o.status AS event_type,
        o.channel,
        CASE WHEN o.reporting_currency IS NOT NULL THEN o.amount_reporting ELSE o.amount END AS amount,
        coalesce(o.reporting_currency, o.currency) AS currency,
        o.amount AS source_amount,
        o.currency AS source_currency,
        CAST(NULL AS VARCHAR) AS session_id,
        FALSE AS stitched,
        o.attributes
    FROM stage.orders AS o
    LEFT JOIN scv.customer_xref AS x
        ON x.source = o.person_source AND x.source_record_id = o.person_record_id
),

events_direct AS (
    SELECT
        e.source,
        e.source_record_id,
        x.customer_id AS direct_customer_id,
        e.event_time,
        e.event_type,
        e.channel,
        e.session_id,
        e.attributes
    FROM stage.events AS e
    LEFT JOIN scv.customer_xref AS x
        ON x.source = e.person_source AND x.source_record_id = e.person_record_id
),

session_owner AS (
    SELECT
        source,
        session_id,
        direct_customer_id AS customer_id
    FROM events_direct
    WHERE session_id IS NOT NULL AND direct_customer_id IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY source, session_id ORDER BY event_time NULLS LAST, source_record_id
    ) = 1
),

events AS (
    SELECT
        e.source,
        e.source_record_id,
        coalesce(e.direct_customer_id, s.customer_id) AS customer_id,
        e.event_time AS occurred_at,
        'event' AS kind,
        e.event_type,
        e.channel,
        CAST(NULL AS DOUBLE) AS amount,
        CAST(NULL AS VARCHAR) AS currency,
        CAST(NULL AS DOUBLE) AS source_amount,
        CAST(NULL AS VARCHAR) AS source_currency,
        e.session_id,
        (e.direct_customer_id IS NULL AND s.customer_id IS NOT NULL) AS stitched,
        e.attributes
    FROM events_direct AS e
    LEFT JOIN session_owner AS s
        ON s.source = e.source AND s.session_id = e.session_id
),

consents AS (
    SELECT
        c.source,
        c.source_record_id,
        x.customer_id,
        c.recorded_at AS occurred_at,
        'consent' AS kind,
        c.purpose AS event_type,
        CAST(NULL AS VARCHAR) AS channel,
        CAST(NULL AS DOUBLE) AS amount,
        CAST(NULL AS VARCHAR) AS currency,
        CAST(NULL AS DOUBLE) AS source_amount,
        CAST(NULL AS VARCHAR) AS source_currency,
        CAST(NULL AS VARCHAR) AS session_id,
        FALSE AS stitched,
        CAST(json_object('granted', c.granted) AS VARCHAR) AS attributes
    FROM stage.consents AS c
    LEFT JOIN scv.customer_xref AS x
        ON x.source = c.person_source AND x.source_record_id = c.person_record_id
),

timeline AS (
    SELECT * FROM orders
    UNION ALL
    SELECT * FROM events
    UNION ALL
    SELECT * FROM consents
)

SELECT
    t.source || ':' || t.source_record_id AS touchpoint_id,
    t.customer_id,
    t.occurred_at,
    t.source,
    t.source_record_id,
    t.kind,
    t.event_type,
    t.channel,
    t.amount,
    t.currency,
    t.source_amount,
    t.source_currency,
    t.session_id,
    t.stitched,
    t.attributes
FROM timeline AS t
ORDER BY t.occurred_at NULLS LAST, touchpoint_id
