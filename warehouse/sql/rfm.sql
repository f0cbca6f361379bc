-- scv.rfm: one row per customer with at least one completed order on or before $as_of.
--
-- Inputs: stage.orders, scv.customer_xref, scv.customer, and stage.rfm_segment_map (the 125-row
-- lookup table from transforms.rfm.segment_table(), written by the pipeline before this model).
-- Parameters: $as_of (DATE).
--
-- Definitions (docs/analytics.md):
--   orders counted  status = 'completed' and the order's date <= $as_of; one order per
--                   (source, source_record_id); orders whose person record resolves to no
--                   customer are not counted
--   recency_days    $as_of - date of the last counted order, in days
--   frequency       number of counted orders
--   monetary        sum of the counted amounts in one currency: amount_reporting when the config
--                   sets a reporting currency, else the orders' own amounts, but only when every
--                   counted order (of every customer) is in the same currency; each amount taken
--                   to 6 decimals and the exact sum rounded half away from zero to the cent.
--                   Orders in several currencies and no reporting currency: NULL for everyone
--                   (GBP is never added to EUR; customer_profile.spend_by_currency has the sums)
--   monetary_currency  the currency of monetary (NULL with monetary)
--   *_score         ceil(5 * c / n), where n = customers scored and c = customers whose value is
--                   as good as or worse than this customer's (frequency/monetary <= this one,
--                   recency_days >= this one): the quintile of cume_dist, so equal values always
--                   share a score and the best value always scores 5; m_score NULL with monetary
--   segment         stage.rfm_segment_map on (r_score, f_score, m_score); without an m_score on
--                   (r_score, f_score, f_score): the segment from recency and frequency alone
WITH counted AS (
    SELECT
        x.customer_id,
        CAST(o.order_date AS DATE) AS order_day,
        CASE WHEN o.reporting_currency IS NOT NULL THEN o.amount_reporting ELSE o.amount END AS amount,
        coalesce(o.reporting_currency, o.currency) AS currency
    FROM stage.orders AS o
    JOIN scv.customer_xref AS x
        ON x.source = o.person_source AND x.source_record_id = o.person_record_id
    JOIN scv.customer AS c
        ON c.customer_id = x.customer_id
    WHERE o.status = 'completed'
        AND CAST(o.order_date AS DATE) <= CAST($as_of AS DATE)
    -- an order listed twice counts once
    QUALIFY row_number() OVER (
        PARTITION BY o.source, o.source_record_id ORDER BY o._row_number
    ) = 1
),
money AS (
    -- one currency across every counted order (always so with a reporting currency); an order
    -- with no named currency counts as a currency of its own
    SELECT
        count(DISTINCT coalesce(currency, '')) <= 1 AS comparable,
        any_value(currency) AS currency
    FROM counted
),
per_customer AS (
    SELECT
        c.customer_id,
        date_diff('day', max(c.order_day), CAST($as_of AS DATE)) AS recency_days,
        count(*) AS frequency,
        -- summed in exact decimals, then rounded to the cent: a sum of doubles depends on the
        -- order DuckDB's threads add it up in, and rounding alone let 1 in 5,000 customers'
        -- figure flip by a cent between runs of the same data
        CASE WHEN m.comparable
            THEN CAST(round(coalesce(sum(CAST(c.amount AS DECIMAL(38, 6))), 0), 2) AS DOUBLE)
        END AS monetary,
        CASE WHEN m.comparable THEN m.currency END AS monetary_currency
    FROM counted AS c
    CROSS JOIN money AS m
    GROUP BY c.customer_id, m.comparable, m.currency
),
ranked AS (
    -- With ORDER BY, count(*) OVER counts the rows up to and including this row's peers: the
    -- customers as good as or worse than this one. Whole numbers, so the quintile is exact.
    SELECT
        *,
        count(*) OVER () AS n,
        count(*) OVER (ORDER BY recency_days DESC) AS c_recency,
        count(*) OVER (ORDER BY frequency) AS c_frequency,
        count(*) OVER (ORDER BY monetary) AS c_monetary
    FROM per_customer
),
scored AS (
    SELECT
        customer_id,
        recency_days,
        frequency,
        monetary,
        monetary_currency,
        CAST((5 * c_recency + n - 1) // n AS INTEGER) AS r_score,
        CAST((5 * c_frequency + n - 1) // n AS INTEGER) AS f_score,
        CASE WHEN monetary IS NOT NULL THEN CAST((5 * c_monetary + n - 1) // n AS INTEGER) END AS m_score
    FROM ranked
)
SELECT
    s.customer_id,
    CAST($as_of AS DATE) AS as_of_date,
    CAST(s.recency_days AS INTEGER) AS recency_days,
    CAST(s.frequency AS INTEGER) AS frequency,
    CAST(s.monetary AS DOUBLE) AS monetary,
    CAST(s.monetary_currency AS VARCHAR) AS monetary_currency,
    s.r_score,
    s.f_score,
    s.m_score,
    CAST(m.segment AS VARCHAR) AS segment
FROM scored AS s
LEFT JOIN stage.rfm_segment_map AS m
    ON m.r_score = s.r_score AND m.f_score = s.f_score AND m.m_score = coalesce(s.m_score, s.f_score)
ORDER BY s.customer_id
