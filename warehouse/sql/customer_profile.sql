-- scv.customer_profile: the customer 360, one row per customer of scv.customer (also those with
-- no orders or activity).
--
-- Inputs: scv.customer, scv.touchpoint, scv.consent, scv.rfm, scv.lifecycle (the last two may be
-- empty: their columns are then NULL). Parameter: $as_of (DATE). Only touchpoints that happened
-- on or before $as_of count.
--
-- Definitions:
--   orders       touchpoints of kind 'order' with status (event_type) 'completed'; figures summed
--                exactly (each amount to 6 decimals) and rounded half away from zero to the cent,
--                so a figure never depends on the order DuckDB's threads add it up in. Channel
--                groups (lower-cased): online = online, web, app, mobile, ecommerce; store =
--                store, pos, in_store, instore, retail.
--   spend        total/online/store_spend are in spend_currency: touchpoint.currency (the
--                reporting currency when the config sets one, else the order's own) when all the
--                customer's completed orders share it; when they do not, the three are NULL, as
--                is spend_currency: amounts in different currencies are never added up.
--                spend_by_currency: JSON text, the completed spend per currency the orders were
--                placed in (touchpoint.source_currency; "unnamed" when the source names none).
--   channels     distinct non-null channels of the customer's touchpoints, sorted.
--   last_seen_*  latest touchpoint on an online-group channel / a store-group channel.
--   emails_*_90d events on channel 'email' dated in the 90 days ending on $as_of (inclusive),
--                by event_type: sent = sent, send, delivered, email_sent, email_send,
--                email_delivered; opened = open, opened, email_open, email_opened; clicked =
--                click, clicked, email_click, email_clicked.
--   open_tickets support tickets (events on channel 'support') whose latest status is open. A
--                ticket is attributes.ticket_id, else the event's own id; its status is
--                attributes.status (a ticket export's current status) when present, else closed
--                when attributes.closed_at is set, else the event_type (ticket_opened, opened,
--                open, reopened, ticket_reopened, new, pending, in_progress count as open).
--   consent      MAP purpose -> granted from scv.consent (empty map when none).
WITH tp AS (
    SELECT
        t.customer_id,
        t.occurred_at,
        t.source,
        t.source_record_id,
        t.kind,
        lower(t.event_type) AS event_type,
        lower(t.channel) AS channel,
        t.amount,
        t.currency,
        t.source_amount,
        t.source_currency,
        t.attributes,
        lower(t.channel) IN ('online', 'web', 'app', 'mobile', 'ecommerce') AS is_online,
        lower(t.channel) IN ('store', 'pos', 'in_store', 'instore', 'retail') AS is_store
    FROM scv.touchpoint AS t
    WHERE t.customer_id IS NOT NULL AND CAST(t.occurred_at AS DATE) <= CAST($as_of AS DATE)
),

orders AS (
    SELECT
        customer_id,
        count(DISTINCT coalesce(currency, '')) = 1 AS one_currency,
        any_value(currency) AS spend_currency,
        count(*) AS orders_count,
        CAST(round(sum(CAST(amount AS DECIMAL(38, 6))), 2) AS DOUBLE) AS total_spend,
        count(*) FILTER (WHERE is_online) AS online_orders,
        CAST(round(coalesce(sum(CAST(amount AS DECIMAL(38, 6))) FILTER (WHERE is_online), 0), 2) AS DOUBLE) AS online_spend,
        count(*) FILTER (WHERE is_store) AS store_orders,
        CAST(round(coalesce(sum(CAST(amount AS DECIMAL(38, 6))) FILTER (WHERE is_store), 0), 2) AS DOUBLE) AS store_spend,
        min(CAST(occurred_at AS DATE)) AS first_order_date,
        max(CAST(occurred_at AS DATE)) AS last_order_date
    FROM tp
    WHERE kind = 'order' AND event_type = 'completed'
    GROUP BY customer_id
),

spend_by_currency AS (
    SELECT
        customer_id,
        CAST(to_json(map_from_entries(list({'key': currency, 'value': spend} ORDER BY currency))) AS VARCHAR)
            AS spend_by_currency
    FROM (
        SELECT
            customer_id,
            coalesce(source_currency, 'unnamed') AS currency,
            CAST(round(sum(CAST(source_amount AS DECIMAL(38, 6))), 2) AS DOUBLE) AS spend
        FROM tp
        WHERE kind = 'order' AND event_type = 'completed'
        GROUP BY ALL
    ) AS per_currency
    GROUP BY customer_id
),

channel_list AS (
    -- distinct first, then one sorted list per customer (cheaper than list(DISTINCT ... ORDER BY))
    SELECT
        customer_id,
        list(channel ORDER BY channel) AS channels
    FROM (SELECT DISTINCT customer_id, channel FROM tp WHERE channel IS NOT NULL) AS pairs
    GROUP BY customer_id
),

seen AS (
    SELECT
        customer_id,
        max(occurred_at) FILTER (WHERE is_online) AS last_seen_online,
        max(occurred_at) FILTER (WHERE is_store) AS last_seen_store
    FROM tp
    GROUP BY customer_id
),

email AS (
    SELECT
        customer_id,
        count(*) FILTER (
            WHERE event_type IN (
                'sent', 'send', 'delivered', 'email_sent', 'email_send', 'email_delivered'
            )
        ) AS emails_sent_90d,
        count(*) FILTER (
            WHERE event_type IN ('open', 'opened', 'email_open', 'email_opened')
        ) AS emails_opened_90d,
        count(*) FILTER (
            WHERE event_type IN ('click', 'clicked', 'email_click', 'email_clicked')
        ) AS emails_clicked_90d
    FROM tp
    WHERE
        kind = 'event'
        AND channel = 'email'
        AND CAST(occurred_at AS DATE) > CAST($as_of AS DATE) - 90
    GROUP BY customer_id
),

ticket_events AS (
    SELECT
        customer_id,
        source,
        coalesce(json_extract_string(attributes, '$.ticket_id'), source_record_id) AS ticket,
        occurred_at,
        source_record_id,
        lower(
            coalesce(
                json_extract_string(attributes, '$.status'),
                CASE WHEN json_extract_string(attributes, '$.closed_at') <> '' THEN 'closed' END,
                event_type
            )
        ) AS status
    FROM tp
    WHERE kind = 'event' AND channel = 'support'
),

tickets AS (
    SELECT
        customer_id,
        count(*) FILTER (
            WHERE status IN (
                'ticket_opened', 'opened', 'open', 'reopened', 'ticket_reopened', 'new',
                'pending', 'in_progress'
            )
        ) AS open_tickets
    FROM (
        SELECT
            customer_id,
            status
        FROM ticket_events
        QUALIFY row_number() OVER (
            PARTITION BY source, ticket ORDER BY occurred_at DESC, source_record_id DESC
        ) = 1
    ) AS latest
    GROUP BY customer_id
),

consents AS (
    SELECT
        customer_id,
        -- purposes are unique per customer, so sorting the entries sorts them by purpose
        map_from_entries(list_sort(list({'key': purpose, 'value': granted}))) AS consent
    FROM scv.consent
    GROUP BY customer_id
)

SELECT
    c.customer_id,
    c.first_name,
    c.last_name,
    c.email,
    c.phone,
    c.city,
    c.country,
    coalesce(o.orders_count, 0) AS orders_count,
    CASE WHEN o.customer_id IS NULL THEN 0 WHEN o.one_currency THEN o.total_spend END AS total_spend,
    coalesce(o.online_orders, 0) AS online_orders,
    CASE WHEN o.customer_id IS NULL THEN 0 WHEN o.one_currency THEN o.online_spend END AS online_spend,
    coalesce(o.store_orders, 0) AS store_orders,
    CASE WHEN o.customer_id IS NULL THEN 0 WHEN o.one_currency THEN o.store_spend END AS store_spend,
    CASE WHEN o.one_currency THEN o.spend_currency END AS spend_currency,
    coalesce(sc.spend_by_currency, '{}') AS spend_by_currency,
    o.first_order_date,
    o.last_order_date,
    coalesce(cl.channels, CAST([] AS VARCHAR[])) AS channels,
    s.last_seen_online,
    s.last_seen_store,
    coalesce(e.emails_sent_90d, 0) AS emails_sent_90d,
    coalesce(e.emails_opened_90d, 0) AS emails_opened_90d,
    coalesce(e.emails_clicked_90d, 0) AS emails_clicked_90d,
    coalesce(tk.open_tickets, 0) AS open_tickets,
    coalesce(cs.consent, CAST(MAP() AS MAP(VARCHAR, BOOLEAN))) AS consent,
    r.segment AS rfm_segment,
    l.stage AS lifecycle_stage,
    CAST($as_of AS DATE) AS as_of_date
FROM scv.customer AS c
LEFT JOIN orders AS o ON o.customer_id = c.customer_id
LEFT JOIN spend_by_currency AS sc ON sc.customer_id = c.customer_id
LEFT JOIN channel_list AS cl ON cl.customer_id = c.customer_id
LEFT JOIN seen AS s ON s.customer_id = c.customer_id
LEFT JOIN email AS e ON e.customer_id = c.customer_id
LEFT JOIN tickets AS tk ON tk.customer_id = c.customer_id
LEFT JOIN consents AS cs ON cs.customer_id = c.customer_id
LEFT JOIN scv.rfm AS r ON r.customer_id = c.customer_id
LEFT JOIN scv.lifecycle AS l ON l.customer_id = c.customer_id
ORDER BY c.customer_id
