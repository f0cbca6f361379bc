"""`scv audience` on the demo run (CONTRACT §2): filters combine, --dry-run prints counts only,
plain and hashed files hold consenting customers only, "at risk" is never guessed."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import duckdb
import pytest
import yaml
from tests_support import copy_project

from scv_cli.main import main
from sources.config import load_config

pytestmark = pytest.mark.slow


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def scv(*args: object) -> int:
    return main([str(a) for a in args])


def query(config: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(load_config(config).warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def printed_counts(text: str) -> dict[str, int]:
    """`{label: count}` from the command's count lines ("     1,234  label")."""
    found = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(-?[\d,]+)  (.+)$", line)
        if m:
            found[m.group(2)] = int(m.group(1).replace(",", ""))
    return found


#: Independent of the code under test: the latest consent per customer for a purpose.
LATEST = """
    SELECT customer_id, granted FROM scv.consent WHERE purpose = ?
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY recorded_at DESC, granted) = 1
"""


def test_dry_run_prints_counts_only_and_writes_no_file(demo_run, tmp_path, capsys):
    out = tmp_path / "never.csv"
    rc = scv("audience", "--config", demo_run, "--stage", "at_risk", "--segment", "At Risk", "--segment",
             "Can't Lose Them", "--purpose", "email_marketing", "--dry-run", "--out", out)  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "@" not in text and not re.search(r"\+?\d{9,}", text.replace(",", ""))  # no personal data
    counts = printed_counts(text)
    matched = query(
        demo_run,
        "SELECT l.customer_id FROM scv.lifecycle AS l JOIN scv.rfm AS r USING (customer_id) "
        "WHERE l.stage = 'at_risk' AND r.segment IN ('At Risk', 'Can''t Lose Them')",
    )
    latest = dict(query(demo_run, LATEST, ["email_marketing"]))
    ids = [r[0] for r in matched]
    granted = [i for i in ids if latest.get(i) is True]
    assert counts["customers in the warehouse"] == query(demo_run, "SELECT count(*) FROM scv.customer")[0][0]
    assert counts["lifecycle stage at_risk"] == query(demo_run, "SELECT count(*) FROM scv.lifecycle WHERE stage = 'at_risk'")[0][0]
    assert counts["match every filter"] == len(ids) > 0
    assert counts["no consent decision for 'email_marketing'"] == -sum(1 for i in ids if i not in latest)
    assert counts["consent to 'email_marketing' withdrawn or refused"] == -sum(1 for i in ids if latest.get(i) is False)
    written = next(v for k, v in counts.items() if k.startswith("would be written"))
    assert 0 < written <= len(granted)
    assert "dry run: no file written" in text


@pytest.mark.parametrize(
    "option",
    [["--stage", "at risk"], ["--stage", "At Risk"], ["--segment", "at_risk"], ["--segment", "At-Risk"]],
)
def test_at_risk_without_its_dimension_is_refused_in_one_line(demo_run, tmp_path, capsys, option):
    assert scv("audience", "--config", demo_run, *option, "--purpose", "email_marketing", "--dry-run") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err
    assert "ambiguous" in err and "--stage at_risk" in err and "--segment 'At Risk'" in err


@pytest.mark.parametrize(
    ("option", "expected"),
    [(["--stage", "at_risk"], "lifecycle stage at_risk"), (["--segment", "At Risk"], "RFM segment At Risk")],
)
def test_each_at_risk_is_reached_by_naming_its_dimension(demo_run, capsys, option, expected):
    assert scv("audience", "--config", demo_run, *option, "--purpose", "email_marketing", "--dry-run") == 0
    counts = printed_counts(capsys.readouterr().out)
    table, column = ("lifecycle", "stage") if "stage" in option[0] else ("rfm", "segment")
    value = option[1]
    assert counts[expected] == query(demo_run, f"SELECT count(*) FROM scv.{table} WHERE {column} = ?", [value])[0][0]


def test_plain_and_hashed_files_hold_consenting_customers_only(demo_run, tmp_path, capsys):
    common = ["audience", "--config", demo_run, "--channel", "store", "--channel", "online",
              "--max-recency-days", "365", "--purpose", "email_marketing"]  # fmt: skip
    assert scv(*common, "--format", "plain", "--out", tmp_path / "plain.csv") == 0
    assert scv(*common, "--format", "hashed", "--out", tmp_path / "hashed.csv") == 0
    assert "@" not in capsys.readouterr().out
    with (tmp_path / "plain.csv").open(newline="") as fh:
        plain = list(csv.DictReader(fh))
    with (tmp_path / "hashed.csv").open(newline="") as fh:
        hashed = list(csv.DictReader(fh))
    assert list(plain[0]) == ["customer_id", "email", "phone", "first_name", "last_name"]
    assert list(hashed[0]) == ["Email", "Phone"]
    latest = dict(query(demo_run, LATEST, ["email_marketing"]))
    # consent always enforced: every customer written granted it last; nobody who withdrew is there
    assert plain and all(latest.get(r["customer_id"]) is True for r in plain)
    withdrawn = {c for c, g in latest.items() if g is False}
    assert not withdrawn & {r["customer_id"] for r in plain}
    expected = query(
        demo_run,
        "SELECT DISTINCT r.customer_id FROM scv.rfm AS r JOIN scv.touchpoint AS t USING (customer_id) "
        "WHERE lower(t.channel) IN ('store', 'online') AND r.recency_days <= 365",
    )
    chosen = {r[0] for r in expected if latest.get(r[0]) is True}
    assert {r["customer_id"] for r in plain} <= chosen
    assert len(plain) == len(hashed)
    assert sorted(r["Email"] for r in hashed) == sorted(sha(r["email"]) if r["email"] else "" for r in plain)


def test_spend_bounds_name_their_currency(demo_run, tmp_path, capsys):
    base = ["--min-spend", "100", "--purpose", "email_marketing", "--dry-run"]
    # the demo converts every order into GBP (currency.reporting): the bound is in GBP, says so,
    # and cannot be put in another currency
    assert load_config(demo_run).currency.reporting == "GBP"
    assert scv("audience", "--config", demo_run, *base) == 0
    counts = printed_counts(capsys.readouterr().out)
    expected = query(
        demo_run, "SELECT count(*) FROM scv.customer_profile WHERE spend_currency = 'GBP' AND total_spend >= 100"
    )[0][0]
    assert counts["spend at least 100 GBP"] == expected > 0
    assert scv("audience", "--config", demo_run, *base, "--currency", "EUR") == 1
    assert "every spend is converted into GBP (currency.reporting)" in capsys.readouterr().err
    # without currency.reporting, spend in two currencies: which one must be said
    config = copy_project(demo_run, tmp_path / "project")
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    del settings["currency"]
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    con = duckdb.connect(str(load_config(config).warehouse))
    try:
        con.execute("UPDATE scv.customer_profile SET spend_currency = 'EUR' WHERE customer_id IN "
                    "(SELECT customer_id FROM scv.customer_profile WHERE total_spend > 0 LIMIT 10)")  # fmt: skip
    finally:
        con.close()
    assert scv("audience", "--config", config, *base) == 1
    err = capsys.readouterr().err
    assert "spend bounds need a currency: customers' spend is in EUR, GBP" in err and "--currency" in err
    assert scv("audience", "--config", config, *base, "--currency", "eur") == 0
    counts = printed_counts(capsys.readouterr().out)
    assert counts["spend at least 100 EUR"] == query(
        config, "SELECT count(*) FROM scv.customer_profile WHERE spend_currency = 'EUR' AND total_spend >= 100"
    )[0][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "carrier_pigeon", "--purpose", "email_marketing"], "channels in the warehouse: email, online"),
        (["--stage", "active", "--purpose", "newsletter"], "purposes in the warehouse: email_marketing"),
        (["--stage", "active"], "--purpose P is needed"),
        (["--purpose", "email_marketing", "--min-recency-days", "90", "--max-recency-days", "30"], "nobody matches"),
    ],
)
def test_unusable_requests_are_one_line(demo_run, tmp_path, capsys, args, message):
    assert scv("audience", "--config", demo_run, *args, "--out", tmp_path / "x.csv") == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "x.csv").exists()


def test_out_is_needed_and_never_inside_the_nights_folders(demo_run, capsys):
    base = ["audience", "--config", demo_run, "--stage", "new", "--purpose", "email_marketing"]
    assert scv(*base) == 1
    assert "--out FILE is needed (or --dry-run" in capsys.readouterr().err
    exports = load_config(demo_run).exports
    assert scv(*base, "--out", exports / "new.csv") == 1
    assert "which the night writes; choose another folder" in capsys.readouterr().err
    assert not (exports / "new.csv").exists()


def test_a_saved_audience_can_be_previewed(demo_run, tmp_path, capsys):
    config = copy_project(demo_run, tmp_path / "project")
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["audiences"] = {"lapsed": {"stage": "at_risk", "segment": "At Risk", "purpose": "email_marketing"}}
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    assert scv("audience", "--config", config, "--saved", "lapsed", "--dry-run") == 0
    saved = capsys.readouterr().out
    assert "[saved: lapsed]" in saved
    assert scv("audience", "--config", config, "--stage", "at_risk", "--segment", "At Risk",
               "--purpose", "email_marketing", "--dry-run") == 0  # fmt: skip
    same = capsys.readouterr().out
    assert printed_counts(saved) == printed_counts(same)
    assert scv("audience", "--config", config, "--saved", "lapsed", "--stage", "new", "--dry-run") == 1
    assert "takes its filters and purpose from the config" in capsys.readouterr().err
    assert scv("audience", "--config", config, "--saved", "nope", "--dry-run") == 1
    assert "no such audience in the config; saved audiences: lapsed" in capsys.readouterr().err
