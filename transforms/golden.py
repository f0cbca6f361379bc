"""Golden records: stable customer ids over nightly clusters, and field-by-field survivorship.

Two pure functions (docs/architecture.md §6):

`assign_customer_ids(clusters, previous_xref, run_at)` turns this night's clusters (whose keys
mean nothing from one night to the next) into customer ids that stay put.

- Ids are minted once, never derived from a record key: by default `C` + a 9-digit counter
  (`C000000001`) continuing after the highest id seen before (in `previous_xref` and, when given,
  `previous_history`). The counter makes ids deterministic (same inputs, same ids: no clock, no
  randomness) and orderable by mint time: of two ids the shorter, then the alphabetically
  smaller, was minted first (`id_age_key`). A custom `mint` must keep that property for "older
  id survives" to mean what it says.
- Each previous customer has one heir: the new cluster holding most of its records (ties: the
  cluster where those records are the largest share of the previous records it holds, then the
  cluster with the smallest record key). A cluster that is heir to one or more previous customers
  takes the OLDEST of their ids; the others are merged into it (`merge` rows in the id history).
  A cluster heir to nobody gets a new id; records it holds from previous customers moved out of
  them (`split` rows, also when records move into another surviving customer). New clusters are
  minted for in the order of their smallest (source, source_record_id), so row order never matters.
- Consequences: the same data twice gives the same ids, however linkage numbered its clusters; a
  new record changes at most the id of the cluster it joins (a bridging record merges two
  customers into the older id); a record corrected at the source moves on its own; deleted
  records just disappear (a customer whose records are all gone disappears with them).
- Known limit: an id is never reused while it appears in `previous_xref` or `previous_history`;
  the highest id ever minted could be minted again only if all its records were deleted and no
  history row names it.

`build_golden(persons, xref, rules, default_rules, trust)` picks, per customer and field, one
value among the customer's records. Rules narrow the candidates in order until one distinct value
is left: `validity` (the field's match key is non-null: a parseable phone, a non-placeholder
email), `trust` (the source's rank, higher wins), `recency` (latest `updated_at`), `frequency`
(most records sharing the match key among the remaining candidates, then its most common
spelling); a deterministic tie-break by (source, source_record_id) ends it. For names, street
line and city, the chosen value is then shown in the best-cased spelling of the same letters any
of the customer's records holds (`Geraldine Stephens` over `geraldine stephens` or `GERALDINE
STEPHENS`, whatever rule chose the lower-case one); provenance names that record. Provenance names the
rule after which one distinct value was left (`only` when the candidates agreed from the start,
`tiebreak` when no rule separated them). Names, address, postcode and city keep their original spelling
(accents, case); email, phone, date of birth and country are the standardised values, so for those
fields an invalid candidate is never chosen whatever the rule list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CLUSTER_COLUMNS",
    "DEFAULT_RULES",
    "GOLDEN_FIELDS",
    "RULES",
    "assign_customer_ids",
    "build_golden",
    "id_age_key",
]

CLUSTER_COLUMNS = (
    "unique_id",
    "source",
    "source_record_id",
    "cluster_key",
    "match_probability",
)
XREF_COLUMNS = [
    "source",
    "source_record_id",
    "customer_id",
    "match_probability",
    "cluster_key",
]
HISTORY_COLUMNS = [
    "run_at",
    "old_customer_id",
    "new_customer_id",
    "change",
    "records_moved",
    "reason",
]
CUSTOMER_COLUMNS = [
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "address_line",
    "postcode",
    "city",
    "country",
    "first_seen_at",
    "last_seen_at",
    "record_count",
    "sources",
]
PROVENANCE_COLUMNS = [
    "customer_id",
    "field",
    "value",
    "source",
    "source_record_id",
    "rule",
    "candidates",
]

RULES = ("validity", "trust", "recency", "frequency")
DEFAULT_RULES = list(RULES)
#: Trust of a source missing from the `trust` mapping.
UNKNOWN_TRUST = 0

ID_PREFIX = "C"
ID_DIGITS = 9


@dataclass(frozen=True)
class _Field:
    original: str  # column holding the value as the source wrote it
    key: str  # match key: non-null = valid; compared for frequency
    output: str  # column the golden value is taken from
    freq_key: str | None = (
        None  # finer key for frequency, when the match key is not the best one
    )


#: Golden-record field -> where its candidates come from in the standardised persons frame.
GOLDEN_FIELDS: dict[str, _Field] = {
    "first_name": _Field("first_name", "first_name_std", "first_name"),
    "last_name": _Field("last_name", "last_name_std", "last_name"),
    "email": _Field("email", "email_std", "email_std", freq_key="email_key"),
    "phone": _Field("phone", "phone_e164", "phone_e164"),
    "date_of_birth": _Field("date_of_birth", "dob", "dob"),
    "address_line": _Field("address_line", "address_std", "address_line"),
    "postcode": _Field("postcode", "postcode_std", "postcode"),
    "city": _Field("city", "city_std", "city"),
    "country": _Field("country", "country_code", "country_code"),
}


# --------------------------------------------------------------------------------------------
# Stable customer ids
# --------------------------------------------------------------------------------------------


def id_age_key(customer_id: str) -> tuple[int, str]:
    """Sort key putting ids in mint order (older first) for counter ids of any width."""
    return (len(customer_id), customer_id)


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; has {list(df.columns)}")


def _as_text(s: pd.Series) -> pd.Series:
    return s.astype("str")


def _check_unique(df: pd.DataFrame, what: str) -> None:
    dup = df.duplicated(["source", "source_record_id"], keep=False)
    if dup.any():
        row = df.index[dup.to_numpy()][0]
        raise ValueError(
            f"{what}: (source, source_record_id) must be unique; row {row} "
            f"(source {df.at[row, 'source']!r}) appears {int(dup.sum())} times with its duplicates"
        )


def _counter_minter(top: int) -> Callable[[], str]:
    """Ids `C<n>` counting on from `top`, the highest n in use."""
    state = {"n": top}

    def mint() -> str:
        state["n"] += 1
        return f"{ID_PREFIX}{state['n']:0{ID_DIGITS}d}"

    return mint


def _top_counter(ids: pd.Series) -> int:
    """The highest number n of an id `C<n>` among `ids` (0 if none). In Arrow: the ids of every
    customer go through here each night, and a Python loop over a million of them cost 1.6 s."""
    arr = pa.array(ids.astype("string"), type=pa.large_string())
    digits = pc.drop_null(
        pc.struct_field(pc.extract_regex(arr, rf"^{ID_PREFIX}(?P<n>[0-9]+)$"), [0])
    )
    if len(digits) == 0:
        return 0
    if pc.max(pc.utf8_length(digits)).as_py() <= 18:  # fits an int64
        return int(pc.max(pc.cast(digits, pa.int64())).as_py())
    return max(int(d) for d in digits.to_pylist())


def _naive_utc(run_at: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(run_at)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def assign_customer_ids(
    clusters: pd.DataFrame,
    previous_xref: pd.DataFrame | None,
    run_at: datetime,
    mint: Callable[[], str] | None = None,
    *,
    previous_history: pd.DataFrame | None = None,
    reserved_ids: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every cluster a stable customer id; return `(xref, id_history)`.

    `clusters`: `unique_id, source, source_record_id, cluster_key, match_probability`, one row per
    accepted person record. `previous_xref`: last published `scv.customer_xref` (None or empty on
    the first night). `previous_history`: last published `scv.customer_id_history`, optional; its
    ids are never minted again. `mint`: returns a fresh id per call (default: the `C` counter).
`reserved_ids`: ids held by customers outside this call (an incremental night passes only the
records whose clusters it decided again, with every other id in use here), never minted.

    Returns `xref` with the columns of `scv.customer_xref` (sorted by source, source_record_id)
    and `id_history` with those of `scv.customer_id_history`: one row per (old id, new id) pair
    whose records moved this run, `merge` when the old id was absorbed by the new one, `split`
    when part of its records went to another id. See the module docstring for the rules.
    """
    _require(clusters, CLUSTER_COLUMNS, "clusters")
    cur = pd.DataFrame(
        {
            "source": _as_text(clusters["source"]),
            "source_record_id": _as_text(clusters["source_record_id"]),
            "cluster_key": _as_text(clusters["cluster_key"]),
            "match_probability": clusters["match_probability"].astype("float64"),
        }
    )
    for col in ("source", "source_record_id", "cluster_key"):
        if cur[col].isna().any():
            row = int(np.flatnonzero(cur[col].isna().to_numpy())[0])
            raise ValueError(f"clusters: row {row}: {col} is empty")
    _check_unique(cur, "clusters")

    # Records ranked by their key: the basis of every deterministic choice below.
    cur = cur.sort_values(
        ["source", "source_record_id"], kind="stable", ignore_index=True
    )
    cur["_rank"] = np.arange(len(cur), dtype=np.int64)
    # A cluster is named by its smallest record, whatever key linkage gave it.
    cur["_cj"] = cur.groupby("cluster_key", sort=False)["_rank"].transform("min")

    if previous_xref is None:
        prev = pd.DataFrame(
            {"source": [], "source_record_id": [], "customer_id": []}, dtype="str"
        )
    else:
        _require(
            previous_xref,
            ["source", "source_record_id", "customer_id"],
            "previous_xref",
        )
        prev = pd.DataFrame(
            {
                "source": _as_text(previous_xref["source"]),
                "source_record_id": _as_text(previous_xref["source_record_id"]),
                "customer_id": _as_text(previous_xref["customer_id"]),
            }
        ).dropna(subset=["customer_id"])
        _check_unique(prev, "previous_xref")

    # Every id in use, kept in pandas: a million of them are reserved on a partial night.
    used_parts = [prev["customer_id"]]
    if previous_history is not None and len(previous_history):
        for col in ("old_customer_id", "new_customer_id"):
            if col in previous_history.columns:
                used_parts.append(previous_history[col].dropna())
    if reserved_ids is not None:
        reserved = (
            reserved_ids if isinstance(reserved_ids, pd.Series) else pd.Series(list(reserved_ids), dtype="object")
        )
        used_parts.append(reserved.dropna())
    # repeats do no harm: only the highest counter and membership are asked of it
    used = pd.concat([p.astype("string") for p in used_parts], ignore_index=True)

    # Overlap of previous customers (i) with new clusters (j), over records present in both.
    both = cur[["source", "source_record_id", "_rank", "_cj"]].merge(
        prev, on=["source", "source_record_id"], how="inner"
    )
    pairs = (
        both.groupby(["customer_id", "_cj"], sort=True)
        .agg(n=("_rank", "size"), first=("_rank", "min"))
        .reset_index()
    )
    pairs["share"] = pairs["n"] / pairs.groupby("_cj")["n"].transform("sum")
    heirs = pairs.sort_values(
        ["customer_id", "n", "share", "first"],
        ascending=[True, False, False, True],
        kind="stable",
    ).drop_duplicates("customer_id")
    heirs = heirs.assign(_len=heirs["customer_id"].str.len())
    winners = heirs.sort_values(
        ["_cj", "_len", "customer_id"], kind="stable"
    ).drop_duplicates("_cj")
    cluster_id = dict(
        zip(winners["_cj"].tolist(), winners["customer_id"].tolist(), strict=True)
    )

    mint = mint or _counter_minter(_top_counter(used))
    minted: list[str] = []
    for cj in sorted(set(cur["_cj"].unique()) - set(cluster_id)):
        new_id = mint()
        if not isinstance(new_id, str) or not new_id:
            raise ValueError(f"mint: returned {new_id!r}, which is empty or already in use")
        minted.append(new_id)
        cluster_id[cj] = new_id
    if minted:
        # the few minted ids looked up in the many used ones, not the other way round
        in_use = pa.array(used, type=pa.large_string())
        hits = pc.is_in(in_use, value_set=pa.array(minted, type=pa.large_string()))
        taken = set(pc.filter(in_use, hits).to_pylist())
        repeated = pd.Series(minted).duplicated().to_numpy()
        clash = [i for i, m in enumerate(minted) if repeated[i] or m in taken]
        if clash:
            raise ValueError(f"mint: returned {minted[clash[0]]!r}, which is empty or already in use")

    cur["customer_id"] = cur["_cj"].map(cluster_id).astype("str")
    xref = cur[XREF_COLUMNS].reset_index(drop=True)

    pairs["new_customer_id"] = pairs["_cj"].map(cluster_id)
    moved = pairs[pairs["customer_id"] != pairs["new_customer_id"]]
    heir_pairs = set(zip(heirs["customer_id"], heirs["_cj"], strict=True))
    is_heir = [
        (o, j) in heir_pairs
        for o, j in zip(moved["customer_id"], moved["_cj"], strict=True)
    ]
    history = pd.DataFrame(
        {
            "run_at": pd.Series(
                [_naive_utc(run_at)] * len(moved), dtype="datetime64[us]"
            ),
            "old_customer_id": moved["customer_id"].to_numpy(dtype=object),
            "new_customer_id": moved["new_customer_id"].to_numpy(dtype=object),
            "change": np.where(np.array(is_heir, dtype=bool), "merge", "split").astype(
                object
            ),
            "records_moved": moved["n"].to_numpy(dtype=np.int32),
            # The steward's overrides are named by the caller (`linkage.explain_history`).
            "reason": np.full(len(moved), "linkage", dtype=object),
        }
    )
    if len(history):
        order = sorted(
            range(len(history)),
            key=lambda k: (
                id_age_key(history.at[k, "old_customer_id"]),
                id_age_key(history.at[k, "new_customer_id"]),
            ),
        )
        history = history.iloc[order].reset_index(drop=True)
    return xref, history


# --------------------------------------------------------------------------------------------
# Survivorship
# --------------------------------------------------------------------------------------------


def _codes(series: pd.Series | None, n: int) -> tuple[np.ndarray, pd.Index]:
    """Text stripped, blanks as missing, factorised: (codes with -1 for missing, values)."""
    if series is None:
        return np.full(n, -1, dtype=np.int64), pd.Index([], dtype="str")
    text = series.astype("str").str.strip()
    text = text.where(text != "")
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    return codes.astype(np.int64), pd.Index(uniques)


def _group_bounds(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets and sizes of the runs of equal values in a sorted int array."""
    if not len(g):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return starts, np.diff(np.r_[starts, len(g)])


def _broadcast(
    values: np.ndarray, starts: np.ndarray, sizes: np.ndarray, ufunc
) -> np.ndarray:
    """`ufunc` reduced over each group, repeated back onto the group's rows."""
    if not len(values):
        return values
    return np.repeat(ufunc.reduceat(values, starts), sizes)


def _pair_ids(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense ids of (a, b) pairs of non-negative ints."""
    return pd.factorize(a * (int(b.max(initial=0)) + 1) + b)[0]


def _pick(
    g: np.ndarray,
    value: np.ndarray,
    scores: Mapping[str, np.ndarray | Callable[[np.ndarray], np.ndarray]],
    rules: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Winning row of each group and the rule that decided it.

    Rows are sorted by group `g` and, within a group, in tie-break order. `value` holds
    non-negative value codes; a group is decided once its remaining rows share one value.
    `scores[rule]` is a per-row score (higher wins) or a function of the remaining-rows mask.
    """
    starts, sizes = _group_bounds(g)
    alive = np.ones(len(g), dtype=bool)
    rule = np.full(len(starts), "", dtype=object)
    lowest, highest = np.iinfo(np.int64).min, np.iinfo(np.int64).max

    def settle(name: str) -> None:
        lo = (
            np.minimum.reduceat(np.where(alive, value, highest), starts)
            if len(g)
            else value
        )
        hi = (
            np.maximum.reduceat(np.where(alive, value, lowest), starts)
            if len(g)
            else value
        )
        rule[(lo == hi) & (rule == "")] = name

    settle("only")
    for name in rules:
        score = scores[name]
        score = score(alive) if callable(score) else score
        masked = np.where(alive, score, lowest)
        alive &= masked == _broadcast(masked, starts, sizes, np.maximum)
        settle(name)
    rule[rule == ""] = "tiebreak"
    live = np.flatnonzero(alive)
    first = live[np.r_[True, g[live][1:] != g[live][:-1]]] if len(live) else live
    return first, rule


def build_golden(
    persons: pd.DataFrame,
    xref: pd.DataFrame,
    rules: Mapping[str, Sequence[str]] | None = None,
    default_rules: Sequence[str] = DEFAULT_RULES,
    trust: Mapping[str, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Golden record per customer; return `(customer, field_provenance)`.

    `persons`: the standardised persons frame (docs/architecture.md §4), every accepted person
    record once. `xref`: from `assign_customer_ids`, the same records. `rules`: field -> rule list
    (survivorship `fields` in config), else `default_rules`. `trust`: source -> rank (higher
    wins; a source not listed counts as 0).

    `customer` has the columns of `scv.customer`, one row per customer id in `xref`, sorted by id.
    `field_provenance` has the columns of `scv.customer_field_provenance`: one row per customer and
    field that has a value, with the record it came from, the rule that decided (`only` when all
    candidates agreed, `tiebreak` when no rule separated them) and the number of distinct
    candidate values.
    """
    rules = dict(rules or {})
    trust = dict(trust or {})
    unknown = sorted(set(rules) - set(GOLDEN_FIELDS))
    if unknown:
        raise ValueError(
            f"rules: unknown field(s) {unknown}; fields: {list(GOLDEN_FIELDS)}"
        )
    for field, lst in [("default", default_rules), *rules.items()]:
        bad = [r for r in lst if r not in RULES]
        if bad:
            raise ValueError(
                f"rules.{field}: unknown rule(s) {bad}; rules: {list(RULES)}"
            )
    _require(persons, ["source", "source_record_id"], "persons")
    _require(xref, ["source", "source_record_id", "customer_id"], "xref")

    persons = persons.reset_index(drop=True)
    base = pd.DataFrame(
        {
            "source": persons["source"].astype("str"),
            "source_record_id": persons["source_record_id"].astype("str"),
            "_pos": np.arange(len(persons)),
        }
    )
    _check_unique(base, "persons")
    xr = pd.DataFrame(
        {
            "source": xref["source"].astype("str"),
            "source_record_id": xref["source_record_id"].astype("str"),
            "customer_id": xref["customer_id"].astype("str"),
        }
    )
    _check_unique(xr, "xref")
    rec = base.merge(xr, on=["source", "source_record_id"], how="outer", indicator=True)
    orphans = rec[rec["_merge"] != "both"]
    if len(orphans):
        side = "persons" if orphans["_merge"].iloc[0] == "left_only" else "xref"
        raise ValueError(
            f"build_golden: {len(orphans)} record(s) in only one of persons and xref; first in "
            f"{side}: source {orphans['source'].iloc[0]!r}, source_record_id "
            f"{orphans['source_record_id'].iloc[0]!r}"
        )
    # Rows by customer, then in tie-break order: (source, source_record_id) ascending.
    rec = rec.drop(columns="_merge").sort_values(
        ["customer_id", "source", "source_record_id"], kind="stable", ignore_index=True
    )
    n = len(rec)
    pos = rec["_pos"].to_numpy()
    g, customer_ids = pd.factorize(rec["customer_id"])
    g = g.astype(np.int64)

    updated = pd.to_datetime(persons["updated_at"]) if "updated_at" in persons else None
    if updated is None:
        updated = pd.Series(pd.NaT, index=persons.index, dtype="datetime64[us]")
    elif updated.dt.tz is not None:
        updated = updated.dt.tz_convert("UTC").dt.tz_localize(None)
    updated = updated.to_numpy(dtype="datetime64[us]")[pos]
    # NaT is the smallest int64, so a record without updated_at is the least recent.
    recency = updated.view(np.int64)
    trust_rank = rec["source"].map(trust).fillna(UNKNOWN_TRUST).to_numpy(dtype=np.int64)

    coded: dict[str, tuple[np.ndarray, pd.Index]] = {}

    def codes(col: str | None) -> tuple[np.ndarray, pd.Index]:
        if col is None:
            return np.full(n, -1, dtype=np.int64), pd.Index([], dtype="str")
        if col not in coded:
            c, u = _codes(persons.get(col), len(persons))
            coded[col] = (c[pos], u)
        return coded[col]

    customer = _customer_frame(rec, g, customer_ids, updated)
    sources = rec["source"].to_numpy()
    record_ids = rec["source_record_id"].to_numpy()
    prov_parts = []
    for field, spec in GOLDEN_FIELDS.items():
        original, _ = codes(spec.original)
        key, _ = codes(spec.key)
        out, out_values = codes(spec.output)
        fkey = codes(spec.freq_key)[0] if spec.freq_key else key
        std_output = spec.output != spec.original
        field_rules = list(rules.get(field, default_rules))
        if std_output and "validity" not in field_rules:
            # The golden value is the standardised one: an invalid candidate has none to give.
            field_rules.insert(0, "validity")

        rows = np.flatnonzero((original >= 0) | (out >= 0))
        cg = g[rows]
        # A candidate without an output value (an unparseable phone, a placeholder email) takes
        # part with its own code so the validity rule can report that it lost; it never wins.
        value = np.where(out[rows] >= 0, out[rows], len(out_values))
        f = np.where(fkey[rows] >= 0, fkey[rows], -1)
        freq_key = np.where(f >= 0, f, int(f.max(initial=0)) + 1 + value)

        def frequency(
            alive: np.ndarray, cg=cg, freq_key=freq_key, value=value
        ) -> np.ndarray:
            # Most records sharing the match key; within it, the most common spelling.
            by_key, by_value = _pair_ids(cg, freq_key), _pair_ids(cg, value)
            key_n = np.bincount(
                by_key[alive], minlength=int(by_key.max(initial=-1)) + 1
            )
            value_n = np.bincount(
                by_value[alive], minlength=int(by_value.max(initial=-1)) + 1
            )
            return key_n[by_key] * (len(cg) + 1) + value_n[by_value]

        scores = {
            "validity": (key[rows] >= 0).astype(np.int64),
            "trust": trust_rank[rows],
            "recency": recency[rows],
            "frequency": frequency,
        }
        first, rule = _pick(cg, value, scores, field_rules)
        win = rows[first]
        has_value = out[win] >= 0
        win, rule = win[has_value], rule[has_value]
        if field in CASED_FIELDS and len(win):
            win = _best_cased(win, rows[out[rows] >= 0], g, out, out_values)

        valued = rows[out[rows] >= 0]
        distinct = np.bincount(
            g[valued][
                np.unique(_pair_ids(g[valued], out[valued]), return_index=True)[1]
            ],
            minlength=len(customer_ids),
        )
        per_customer = np.full(len(customer_ids), -1, dtype=np.int64)
        per_customer[g[win]] = out[win]
        column = out_values.take(per_customer, allow_fill=True, fill_value=None)
        customer[field] = pd.Series(column, dtype="str")
        prov_parts.append(
            pd.DataFrame(
                {
                    "customer_id": customer_ids.take(g[win]),
                    "field": field,
                    "value": out_values.take(out[win]),
                    "source": sources[win],
                    "source_record_id": record_ids[win],
                    "rule": rule,
                    "candidates": distinct[g[win]].astype(np.int32),
                    "_g": g[win],
                    "_f": len(prov_parts),
                }
            )
        )

    dob = pd.to_datetime(customer["date_of_birth"], format="%Y-%m-%d", errors="coerce")
    customer["date_of_birth"] = pd.Series(
        pa.array(dob.to_numpy(dtype="datetime64[s]"), from_pandas=True).cast(
            pa.date32()
        ),
        dtype=pd.ArrowDtype(pa.date32()),
    )
    prov = pd.concat(prov_parts, ignore_index=True)
    prov = prov.sort_values(["_g", "_f"], kind="stable", ignore_index=True)[
        PROVENANCE_COLUMNS
    ]
    return customer[CUSTOMER_COLUMNS], prov


#: Fields kept in their original spelling, where the chosen value is shown in the best-cased
#: spelling any of the customer's records has for the same letters.
CASED_FIELDS = ("first_name", "last_name", "address_line", "city")


def _case_quality(text: str) -> int:
    """2: upper and lower case letters both (Geraldine, McDonald, van Dijk); 1: no cased
    letters at all (王芳, 12); 0: all lower or all upper case (geraldine, GERALDINE)."""
    upper = any(ch.isupper() for ch in text)
    lower = any(ch.islower() for ch in text)
    if upper and lower:
        return 2
    return 0 if (upper or lower) else 1


def _best_cased(
    win: np.ndarray, candidates: np.ndarray, g: np.ndarray, out: np.ndarray, values: pd.Index
) -> np.ndarray:
    """The casing-quality rule: each winning row replaced by the customer's record whose value
    is the same letters in better case ("Geraldine Stephens" over "geraldine stephens"), the
    first such record in tie-break order; a winner with no better-cased twin stays. The letters
    never change: only a spelling that casefolds equal to the winner's can replace it."""
    text = values.take(out[candidates]).astype(str)
    cand = pd.DataFrame(
        {
            "g": g[candidates],
            "fold": [t.casefold() for t in text],
            "q": [_case_quality(t) for t in text],
            "row": candidates,
        }
    )
    best = (
        cand.sort_values(["g", "fold", "q", "row"], ascending=[True, True, False, True])
        .drop_duplicates(["g", "fold"])
        .set_index(["g", "fold"])
    )
    wtext = values.take(out[win]).astype(str)
    keys = pd.MultiIndex.from_arrays([g[win], [t.casefold() for t in wtext]])
    better = best.reindex(keys)
    wq = np.array([_case_quality(t) for t in wtext])
    swap = better["q"].to_numpy(dtype=float) > wq
    return np.where(swap, better["row"].to_numpy(dtype=float), win).astype(win.dtype)


def _customer_frame(
    rec: pd.DataFrame, g: np.ndarray, customer_ids: pd.Index, updated: np.ndarray
) -> pd.DataFrame:
    """Per-customer columns that need no survivorship: seen dates, record count, sources."""
    starts, sizes = _group_bounds(g)
    not_seen = np.isnat(updated)
    first = np.where(not_seen, np.datetime64("9999-12-31", "us"), updated)
    last = np.where(not_seen, np.datetime64("NaT", "us"), updated)
    if len(g):
        first_seen = np.minimum.reduceat(first, starts)
        first_seen[first_seen == np.datetime64("9999-12-31", "us")] = np.datetime64(
            "NaT"
        )
        last_seen = np.fmax.reduceat(last, starts)
    else:
        first_seen = last_seen = np.zeros(0, dtype="datetime64[us]")
    pairs = pd.DataFrame(
        {"_g": g, "source": rec["source"].to_numpy()}
    ).drop_duplicates()
    pairs = pairs.sort_values(["_g", "source"], kind="stable")
    p_starts, p_sizes = _group_bounds(pairs["_g"].to_numpy())
    srcs = pairs["source"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "customer_id": pd.Series(customer_ids, dtype="str"),
            "first_seen_at": first_seen,
            "last_seen_at": last_seen,
            "record_count": sizes.astype(np.int32),
            "sources": [
                list(srcs[s : s + k]) for s, k in zip(p_starts, p_sizes, strict=True)
            ],
        }
    )
