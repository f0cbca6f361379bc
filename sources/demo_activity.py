"""What the demo company's customers do: orders, till receipts, web sessions, e-mail campaign
events and consent changes. Each function takes the person records it refers to (their source
ids and dates) and returns the finished table, sorted the way the source system exports it.

All vectorised with numpy / pandas; times are numpy datetime64[s] and stay before `end`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sources import demo_names as N

__all__ = [
    "consent_records",
    "email_events",
    "fmt_time",
    "pos_receipts",
    "shop_orders",
    "web_events",
]

_DAY = np.timedelta64(86_400, "s")
CONSENT_PURPOSES: tuple[tuple[str, float, float], ...] = (
    # purpose, share of consenting customers asked, share of those who grant it
    ("email_marketing", 0.90, 0.75),
    ("sms_marketing", 0.35, 0.45),
    ("profiling", 0.50, 0.55),
    ("third_party", 0.20, 0.25),
)


def fmt_time(t: np.ndarray, fmt: str) -> np.ndarray:
    """Format datetime64 values with strftime (NaT -> None), vectorised by Arrow."""
    unit = "D" if np.datetime_data(t.dtype)[0] == "D" else "s"
    arr = pa.array(t, type=pa.date32() if unit == "D" else pa.timestamp("s"))
    return pc.strftime(arr, format=fmt).to_numpy(zero_copy_only=False).astype(object)


def _uniform_after(rng, start: np.ndarray, end: np.datetime64) -> np.ndarray:
    span = np.maximum((end - start).astype("int64"), 1)
    return start + (rng.random(len(start)) * span).astype("int64").astype("timedelta64[s]")


def _amounts(rng, n: int, median: float, currency: np.ndarray) -> np.ndarray:
    factor = np.select(
        [currency == "PLN", currency == "USD", currency == "EUR"], [4.6, 1.25, 1.15], 1.0
    )
    return np.round(rng.lognormal(np.log(median), 0.7, n) * factor, 2)


def _sequence_ids(prefix: str, n: int, width: int, start: int = 1) -> np.ndarray:
    nums = pd.Series(np.arange(start, start + n), dtype="int64").astype(str).str.zfill(width)
    return (prefix + nums).to_numpy(dtype=object)


def shop_orders(
    rng, customer_id: np.ndarray, created_at: np.ndarray, country: np.ndarray, end
) -> pd.DataFrame:
    """One row per web-shop order; order ids follow order time."""
    k = len(customer_id)
    buyer = rng.random(k) < 0.75
    counts = np.where(buyer, rng.geometric(0.35, k), 0)
    idx = np.repeat(np.arange(k), counts)
    created = _uniform_after(rng, created_at[idx], end)
    cur = pd.Series(country[idx], dtype=object).map(N.CURRENCY).fillna("GBP")
    currency = cur.to_numpy(dtype=object)
    n = len(idx)
    status = np.array(["completed", "cancelled", "returned"], dtype=object)[
        rng.choice(3, size=n, p=[0.88, 0.07, 0.05])
    ]
    coupon = np.array(N.COUPONS, dtype=object)[rng.integers(0, len(N.COUPONS), n)]
    coupon[rng.random(n) >= 0.15] = None
    order = np.argsort(created, kind="stable")
    return pd.DataFrame(
        {
            "order_id": np.arange(500_001, 500_001 + n, dtype=np.int64),
            "customer_id": customer_id[idx][order],
            "created_at": created[order],
            "total": _amounts(rng, n, 48.0, currency)[order],
            "currency": currency[order],
            "status": status[order],
            "items": (1 + rng.geometric(0.5, n))[order].astype(np.int64),
            "coupon": coupon[order],
        }
    )


def pos_receipts(
    rng, card_no: np.ndarray, joined: np.ndarray, home_store: np.ndarray, end
) -> pd.DataFrame:
    """One row per till receipt of a loyalty card holder (day-first dates, POS status codes)."""
    k = len(card_no)
    counts = np.where(rng.random(k) < 0.85, rng.geometric(0.3, k), 0)
    idx = np.repeat(np.arange(k), counts)
    n = len(idx)
    when = _uniform_after(rng, joined[idx], end)
    store = home_store[idx].copy()
    away = rng.random(n) < 0.2
    store[away] = np.array(N.GB_STORES)[rng.integers(0, len(N.GB_STORES), away.sum())]
    currency = np.where(np.isin(store, N.IE_STORES), "EUR", "GBP").astype(object)
    status = np.array(["SALE", "VOID", "RETURN"], dtype=object)[
        rng.choice(3, size=n, p=[0.92, 0.03, 0.05])
    ]
    order = np.argsort(when, kind="stable")
    store = store[order]
    receipt = (
        pd.Series(store, dtype="int64").astype(str)
        + "-"
        + pd.Series(np.arange(1, n + 1), dtype="int64").astype(str).str.zfill(8)
    )
    return pd.DataFrame(
        {
            "ReceiptNo": receipt.to_numpy(dtype=object),
            "CardNo": card_no[idx][order],
            "PurchaseDate": fmt_time(when[order], "%d/%m/%Y %H:%M"),
            "StoreId": store,
            "Amount": _amounts(rng, n, 32.0, currency)[order],
            "Currency": currency[order],
            "Status": status[order],
        }
    )


def web_events(rng, customer_id: np.ndarray, created_at: np.ndarray, end) -> pd.DataFrame:
    """Click-stream events. Sessions of logged-in customers (logging in at the start, half way
    through - earlier events anonymous - or remembered), and anonymous sessions that never log
    in. customer_key is the shop customer_id once known, else null."""
    k = len(customer_id)
    per_account = rng.poisson(0.7, k)
    acc = np.repeat(np.arange(k), per_account)
    n_logged = len(acc)
    n_anon = round(0.3 * n_logged)
    s = n_logged + n_anon
    start = np.empty(s, dtype="datetime64[s]")
    start[:n_logged] = _uniform_after(rng, created_at[acc], end - _DAY)
    start[n_logged:] = _uniform_after(
        rng, np.full(n_anon, end - 730 * _DAY, dtype="datetime64[s]"), end - _DAY
    )
    key = np.full(s, -1, dtype=np.int64)
    key[:n_logged] = customer_id[acc]
    # mode: 0 login first, 1 login half way, 2 remembered (no login event), 3 never
    mode = np.full(s, 3)
    mode[:n_logged] = rng.choice(3, size=n_logged, p=[0.4, 0.35, 0.25])
    n_ev = 1 + rng.poisson(2.3, s)
    n_ev[mode == 1] = np.maximum(n_ev[mode == 1], 2)
    login_pos = np.where(mode == 0, 0, np.where(mode == 2, 0, n_ev))
    mid = mode == 1
    login_pos[mid] = 1 + (rng.random(mid.sum()) * (n_ev[mid] - 1)).astype(np.int64)
    outcome = rng.choice(3, size=s, p=[0.55, 0.25, 0.20])  # browse, purchase, abandon
    outcome[(mode == 3) & (outcome == 1)] = 2  # anonymous visitors cannot check out
    device = np.array(N.DEVICES, dtype=object)[rng.choice(3, size=s, p=[0.6, 0.32, 0.08])]
    session_id = "sess-" + pd.Series(rng.permutation(s) + 1, dtype="int64").astype(str).str.zfill(
        8
    ).to_numpy(dtype=object)

    sess = np.repeat(np.arange(s), n_ev)
    m = len(sess)
    first_of = np.r_[0, np.cumsum(n_ev)[:-1]]
    pos = np.arange(m) - np.repeat(first_of, n_ev)
    gaps = rng.integers(5, 240, m)
    gaps[pos == 0] = 0
    csum = np.cumsum(gaps)
    offset = csum - np.repeat(csum[first_of], n_ev)
    ts = start[sess] + offset.astype("timedelta64[s]")
    known = pos >= login_pos[sess]
    etype = np.where(rng.random(m) < 0.15, "add_to_cart", "page_view").astype(object)
    last = pos == n_ev[sess] - 1
    oc = outcome[sess]
    etype[(pos == n_ev[sess] - 2) & (oc > 0)] = "add_to_cart"
    etype[last & (oc == 1)] = "purchase"
    etype[last & (oc == 2)] = "abandoned_cart"
    is_login = (pos == login_pos[sess]) & np.isin(mode[sess], (0, 1))
    etype[is_login] = "login"
    etype[(etype == "purchase") & ~known] = "abandoned_cart"

    sku = np.array(N.PRODUCTS, dtype=object)[rng.integers(0, len(N.PRODUCTS), m)]
    browse = rng.random(m)
    page = np.where(browse < 0.2, "/", "/p/").astype(object)
    product = np.where(browse < 0.2, None, sku).astype(object)
    page[browse >= 0.2] = "/p/" + sku[browse >= 0.2]
    for kind, path, keep_product in (
        ("add_to_cart", "/cart", True),
        ("abandoned_cart", "/cart", True),
        ("login", "/account/login", False),
        ("purchase", "/checkout/complete", False),
    ):
        sel = etype == kind
        page[sel] = path
        product[sel] = sku[sel] if keep_product else None

    order = np.argsort(ts, kind="stable")
    customer_key = pd.array(np.where(known, key[sess], 0), dtype="Int64")
    customer_key[~known] = pd.NA
    return pd.DataFrame(
        {
            "event_id": _sequence_ids("ev-", m, 9),
            "session_id": session_id[sess][order],
            "customer_key": customer_key[order],
            "ts": fmt_time(ts[order], "%Y-%m-%dT%H:%M:%SZ"),
            "type": etype[order],
            "page": page[order],
            "product_id": product[order],
            "device": device[sess][order],
        }
    )


def campaigns(end) -> tuple[np.ndarray, np.ndarray]:
    """Weekly campaigns over the last three years: send times and names."""
    weeks = np.arange(156, 0, -1)
    sent = (end - weeks * 7 * _DAY).astype("datetime64[D]").astype(
        "datetime64[s]"
    ) + np.timedelta64(9 * 3600, "s")
    themes = np.array(N.CAMPAIGN_THEMES, dtype=object)[
        np.arange(len(weeks)) % len(N.CAMPAIGN_THEMES)
    ]
    names = fmt_time(sent.astype("datetime64[D]"), "%Y-%m-%d") + " " + themes
    return sent, names


def email_events(rng, subscriber_id: np.ndarray, subscribed_at: np.ndarray, end) -> pd.DataFrame:
    """sent / open / click events of the weekly campaigns each subscriber was on the list for."""
    sent_at, names = campaigns(end)
    c = len(sent_at)
    first = np.searchsorted(sent_at, subscribed_at, side="left")
    k = np.where(first < c, rng.poisson(2.5, len(subscriber_id)), 0)
    idx = np.repeat(np.arange(len(subscriber_id)), k)
    camp = first[idx] + (rng.random(len(idx)) * (c - first[idx])).astype(np.int64)
    pairs = pd.DataFrame({"s": idx, "c": camp}).drop_duplicates()
    idx, camp = pairs["s"].to_numpy(), pairs["c"].to_numpy()
    n = len(idx)
    send_ts = sent_at[camp] + rng.integers(0, 3_600, n).astype("timedelta64[s]")
    opened = rng.random(n) < 0.35
    open_ts = send_ts[opened] + rng.integers(600, 3 * 86_400, opened.sum()).astype("timedelta64[s]")
    clicked = rng.random(len(open_ts)) < 0.3
    click_ts = open_ts[clicked] + rng.integers(5, 1_800, clicked.sum()).astype("timedelta64[s]")
    sub = np.concatenate([idx, idx[opened], idx[opened][clicked]])
    cam = np.concatenate([camp, camp[opened], camp[opened][clicked]])
    ts = np.concatenate([send_ts, open_ts, click_ts])
    etype = np.repeat(
        np.array(["sent", "open", "click"], dtype=object), [n, len(open_ts), len(click_ts)]
    )
    keep = ts < end
    sub, cam, ts, etype = sub[keep], cam[keep], ts[keep], etype[keep]
    order = np.lexsort((sub, ts))
    return pd.DataFrame(
        {
            "event_id": np.arange(1, len(order) + 1, dtype=np.int64),
            "subscriber_id": subscriber_id[sub][order],
            "type": etype[order],
            "timestamp": fmt_time(ts[order], "%Y-%m-%d %H:%M:%S"),
            "campaign": names[cam][order],
        }
    )


def consent_records(
    rng, customer_id: np.ndarray, created_at: np.ndarray, end
) -> tuple[pd.DataFrame, dict]:
    """Consent given at sign-up, some withdrawn later, a few contradictory rows recorded at the
    same second. Returns the table and counts of withdrawals and conflicts."""
    k = len(customer_id)
    asked = rng.random(k) < 0.6
    yes_no = rng.random(k) < 0.2  # the call centre records yes / no, the web opt-in / opt-out
    parts = []
    for purpose, share, grant in CONSENT_PURPOSES:
        who = np.flatnonzero(asked & (rng.random(k) < share))
        granted = rng.random(len(who)) < grant
        when = created_at[who] + rng.integers(0, 120, len(who)).astype("timedelta64[s]")
        parts.append(pd.DataFrame({"c": who, "purpose": purpose, "granted": granted, "t": when}))
        withdraw = granted & (rng.random(len(who)) < 0.15)
        later = _uniform_after(rng, when[withdraw], end)
        parts.append(
            pd.DataFrame({"c": who[withdraw], "purpose": purpose, "granted": False, "t": later})
        )
    rows = pd.concat(parts, ignore_index=True)
    withdrawn = int(sum(len(p) for p in parts[1::2]))
    conflict = rng.random(len(rows)) < 0.01
    dup = rows[conflict].copy()
    dup["granted"] = ~dup["granted"]
    rows = pd.concat([rows, dup], ignore_index=True)
    rows = rows.iloc[np.lexsort((rows["c"].to_numpy(), rows["t"].to_numpy()))]
    c = rows["c"].to_numpy()
    g = rows["granted"].to_numpy(dtype=bool)
    yn = yes_no[c]
    granted_text = np.where(yn, np.where(g, "yes", "no"), np.where(g, "opt-in", "opt-out"))
    method = np.array(N.CONSENT_METHODS, dtype=object)[
        rng.integers(0, len(N.CONSENT_METHODS), len(c))
    ]
    method[yn] = "call_centre"
    n = len(rows)
    table = pd.DataFrame(
        {
            "consent_id": np.arange(1, n + 1, dtype=np.int64),
            "customer_id": customer_id[c],
            "purpose": rows["purpose"].to_numpy(dtype=object),
            "granted": granted_text.astype(object),
            "recorded_at": fmt_time(rows["t"].to_numpy(), "%Y-%m-%d %H:%M:%S"),
            "method": method,
        }
    )
    return table, {"withdrawals": withdrawn, "same_time_conflicts": int(conflict.sum())}
