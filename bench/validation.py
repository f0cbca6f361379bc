"""Benchmark of reading and validating a source: read_source + to_canonical + validate_source.

    .venv/bin/python bench/validation.py [--rows 1000000] [--kinds person,order] [--seed 1]

Writes a synthetic CSV per kind (a CRM-like person export and a shop-like order export, about
1 % bad rows: missing and duplicate ids, bad dates and amounts, unknown currencies and
customers) to a temporary folder, then times each phase in a fresh process per kind so the
peak resident memory belongs to that kind alone. Prints one table row per kind.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sources.config import SourceConfig

AS_OF = date(2025, 6, 30)
FIRST = ["James", "Mary", "Robert", "Zoë", "Łukasz", "王芳", "Siobhán", "Priya", "Wei", "Renée"]
LAST = ["Smith", "O'Brien", "Nowak", "Müller", "Khan", "Wang", "Lefèvre", "Jones", "Patel", "Kowalski"]


def _pick(rng: np.random.Generator, pool, n: int) -> np.ndarray:
    return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), n)]


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), 8)).astype(object)


def _spoil(rng: np.random.Generator, values: np.ndarray, share: float, bad) -> np.ndarray:
    out = values.copy()
    hit = rng.random(len(out)) < share
    out[hit] = bad if not callable(bad) else bad(int(hit.sum()))
    return out


def write_people(path: Path, rows: int, seed: int) -> SourceConfig:
    rng = np.random.default_rng(seed)
    ids = _ids("C", rows)
    ids = _spoil(rng, ids, 0.002, None)
    dup = rng.random(rows) < 0.002
    ids[dup] = _ids("C", rows)[rng.integers(0, rows, int(dup.sum()))]
    first, last = _pick(rng, FIRST, rows), _pick(rng, LAST, rows)
    days = rng.integers(1, 28, rows).astype(str)
    months = rng.integers(1, 13, rows).astype(str)
    years = rng.integers(1940, 2006, rows).astype(str)
    dob = np.char.add(np.char.add(np.char.add(days, "/"), np.char.add(months, "/")), years)
    table = pa.table(
        {
            "ContactId": ids,
            "FirstName": first,
            "LastName": last,
            "Email": np.char.add(np.arange(rows).astype(str), "@example.com").astype(object),
            "Phone": np.char.add("07700 9", np.char.zfill((np.arange(rows) % 100000).astype(str), 5)),
            "DOB": dob,
            "Street": _pick(rng, ["1 High St", "22 Mill Road", "3 Rue de la Paix"], rows),
            "Zip": _pick(rng, ["SW1A 1AA", "M1 1AE", "75002"], rows),
            "City": _pick(rng, ["London", "Manchester", "Paris"], rows),
            "Country": _pick(rng, ["GB", "United Kingdom", "FR", None], rows),
            "ModifiedAt": _pick(rng, ["2024-03-01 10:00:00", "2025-01-02T08:30:00Z"], rows),
        }
    )
    pacsv.write_csv(table, path)
    return people_source(path)


def people_source(path: Path) -> SourceConfig:
    return SourceConfig(
        name="crm",
        kind="person",
        path=path,
        id="ContactId",
        date_format="%d/%m/%Y",
        columns={
            "first_name": "FirstName",
            "last_name": "LastName",
            "email": "Email",
            "phone": "Phone",
            "date_of_birth": "DOB",
            "address_line": "Street",
            "postcode": "Zip",
            "city": "City",
            "country": "Country",
            "updated_at": "ModifiedAt",
        },
    )


def write_orders(path: Path, rows: int, seed: int) -> tuple[SourceConfig, set[str]]:
    rng = np.random.default_rng(seed + 1)
    customers = _ids("C", max(1, rows // 2))
    ids = _spoil(rng, _ids("O", rows), 0.002, None)
    created = (
        np.datetime64("2023-01-01T00:00:00") + rng.integers(0, 900 * 86400, rows).astype("m8[s]")
    ).astype(str)
    created = _spoil(rng, created.astype(object), 0.002, "31/02/2024")
    created = _spoil(rng, created, 0.001, "2031-01-01T00:00:00")
    totals = np.char.mod("%.2f", rng.gamma(2.0, 30.0, rows)).astype(object)
    totals = _spoil(rng, totals, 0.002, "n/a")
    totals = _spoil(rng, totals, 0.001, "-5.00")
    cust = customers[rng.integers(0, len(customers), rows)]
    cust = _spoil(rng, cust, 0.002, "C99999999")
    table = pa.table(
        {
            "order_id": ids,
            "customer_id": cust,
            "created_at": created,
            "total": totals,
            "currency": _spoil(rng, _pick(rng, ["GBP", "EUR", "usd"], rows), 0.001, "XYZ"),
            "status": _pick(rng, ["C", "C", "C", "X", "R"], rows),
            "channel": _pick(rng, ["web", "app", "store"], rows),
            "coupon": _spoil(rng, np.full(rows, None, dtype=object), 0.1, "SPRING10"),
        }
    )
    pacsv.write_csv(table, path)
    return order_source(path), set(customers.tolist())


def order_source(path: Path) -> SourceConfig:
    return SourceConfig(
        name="shop_orders",
        kind="order",
        path=path,
        id="order_id",
        person={"source": "crm", "key": "customer_id"},
        columns={
            "order_date": "created_at",
            "amount": "total",
            "currency": "currency",
            "status": "status",
            "channel": "channel",
        },
        value_map={"status": {"C": "completed", "X": "cancelled", "R": "returned"}},
    )


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write(kind: str, rows: int, seed: int, folder: Path) -> None:
    if kind == "person":
        write_people(folder / "crm.csv", rows, seed)
    else:
        write_orders(folder / "orders.csv", rows, seed)


def run_one(kind: str, rows: int, folder: Path) -> dict:
    """Time the three phases for one kind on a written file (run in its own process)."""
    from quality.validate import validate_source
    from sources.readers import read_source, to_canonical

    known = None
    if kind == "person":
        src = people_source(folder / "crm.csv")
    else:
        src = order_source(folder / "orders.csv")
        known = set(_ids("C", max(1, rows // 2)).tolist())
    size = src.path.stat().st_size
    import great_expectations  # noqa: F401  (import cost is not the validation's)

    base = _peak_mib()  # interpreter + pandas + GX imported
    t0 = time.perf_counter()
    raw = read_source(src)
    t1 = time.perf_counter()
    canon = to_canonical(raw, src)
    t2 = time.perf_counter()
    outcome = validate_source(
        raw,
        canon,
        src,
        as_of=AS_OF,
        known_person_ids=known,
        currency_rates={"GBP": 1.0, "EUR": 0.86, "USD": 0.79},
    )
    t3 = time.perf_counter()
    assert outcome.rows_in == outcome.rows_accepted + outcome.rows_quarantined
    return {
        "kind": kind,
        "rows": len(raw),
        "mb": size / 1e6,
        "read": t1 - t0,
        "canonical": t2 - t1,
        "validate": t3 - t2,
        "quarantined": outcome.rows_quarantined,
        "peak_mib": _peak_mib(),
        "base_mib": base,
        "rules": outcome.quarantine_by_rule,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--kinds", default="person,order")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--write", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        write(args.write, args.rows, args.seed, Path(args.dir))
        return 0
    if args.one:
        print(json.dumps(run_one(args.one, args.rows, Path(args.dir))))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="scv-bench-") as tmp:
        for kind in args.kinds.split(","):
            # Writing and timing run in separate processes: a child inherits its parent's peak
            # RSS, so the timed process must not be forked from one that held the data.
            common = ["--rows", str(args.rows), "--seed", str(args.seed), "--dir", tmp]
            for mode in ("--write", "--one"):
                proc = subprocess.run(
                    [sys.executable, __file__, mode, kind, *common],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    print(proc.stderr, file=sys.stderr)
                    return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    header = (
        f"{'kind':<7} {'rows':>9} {'MB':>6} {'read s':>7} {'canon s':>8} {'validate s':>10} "
        f"{'total s':>8} {'rows/s':>9} {'quarant.':>8} {'peak RSS MiB':>12} {'at start':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        total = r["read"] + r["canonical"] + r["validate"]
        print(
            f"{r['kind']:<7} {r['rows']:>9,} {r['mb']:>6.0f} {r['read']:>7.2f} {r['canonical']:>8.2f} "
            f"{r['validate']:>10.2f} {total:>8.2f} {r['rows'] / total:>9,.0f} "
            f"{r['quarantined']:>8,} {r['peak_mib']:>12,.0f} {r['base_mib']:>8,.0f}"
        )
    for r in results:
        print(f"{r['kind']} quarantined by rule: {r['rules']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
