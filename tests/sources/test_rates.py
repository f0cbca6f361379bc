"""Exchange rates come only from config (issue 19, item 1): the `currency` section and a dated
rates file, whose problems are one line naming file, row and field."""

from pathlib import Path

import pytest

from sources.config import ConfigError, CurrencyConfig, load_config
from sources.rates import RatesError, conversion_for, rates_fingerprint, read_rates_file

BASE = """
sources:
  crm: {kind: person, path: crm.csv, id: Id}
"""


def config(tmp_path: Path, currency: str = "") -> Path:
    p = tmp_path / "scv.yml"
    p.write_text(BASE + currency, encoding="utf-8")
    return p


def test_no_rate_is_built_in():
    default = CurrencyConfig()
    assert default.reporting is None and default.rates == {} and default.rates_file is None
    assert conversion_for(default) is None


def test_currency_section_is_validated(tmp_path):
    cfg = load_config(config(tmp_path, "currency: {reporting: usd, rates: {eur: 1.08}, rates_file: fx/rates.csv}\n"))
    assert cfg.currency.reporting == "USD" and cfg.currency.rates == {"EUR": 1.08}
    assert cfg.currency.rates_file == tmp_path / "fx" / "rates.csv"  # relative to the config
    for text, words in [
        ("currency: {rates: {EUR: 0.86}}\n", "rates need currency.reporting"),
        ("currency: {reporting: GBP, rates: {GBP: 0.9}}\n", "converts at 1"),
        ("currency: {reporting: pounds}\n", "ISO 4217"),
        ("currency: {reporting: GBP, rates: {EUR: -1}}\n", "not a positive number"),
    ]:
        with pytest.raises(ConfigError, match=words) as exc:
            load_config(config(tmp_path, text))
        assert "currency" in str(exc.value)


def rates(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rates.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_a_rates_file_is_read_with_its_dates(tmp_path):
    p = rates(tmp_path, "date,currency,rate\n2024-01-01,usd,0.79\n2024-02-01,USD,0.78\n\n2024-01-01,GBP,1\n")
    frame = read_rates_file(p, "GBP")
    assert frame["currency"].tolist() == ["USD", "USD", "GBP"]
    assert [d.date().isoformat() for d in frame["valid_from"]] == ["2024-01-01", "2024-02-01", "2024-01-01"]
    conv = conversion_for(CurrencyConfig(reporting="GBP", rates={"EUR": 0.86}, rates_file=p))
    assert conv is not None and conv.currencies == ["EUR", "GBP", "USD"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("day,currency,rate\n", "header must be date,currency,rate, found day,currency,rate"),
        ("date,currency,rate\n2024-01-01,USD\n", "row 1: expected 3 fields (date, currency, rate), found 2"),
        ("date,currency,rate\n01/02/2024,USD,0.8\n", "row 1: date '01/02/2024' is not an ISO 8601 date"),
        ("date,currency,rate\n2024-01-01,USD,0.8\n2024-01-02,XYZ,1\n", "row 2: currency 'XYZ' is not an ISO 4217 code"),
        ("date,currency,rate\n2024-01-01,USD,abc\n", "row 1: rate 'abc' is not a positive number"),
        ("date,currency,rate\n2024-01-01,USD,0\n", "row 1: rate '0' is not a positive number"),
        ("date,currency,rate\n2024-01-01,GBP,2\n", "row 1: rate of the reporting currency GBP must be 1"),
        ("date,currency,rate\n2024-01-01,USD,1\n2024-01-01,usd,2\n", "row 2: USD on 2024-01-01 is already on row 1"),
    ],
)
def test_a_bad_rates_file_is_one_line_naming_file_row_and_field(tmp_path, text, message):
    p = rates(tmp_path, text)
    with pytest.raises(RatesError) as exc:
        read_rates_file(p, "GBP")
    assert str(exc.value).startswith(f"currency.rates_file: {p}: ") and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_file_and_overlap_with_config_rates(tmp_path):
    with pytest.raises(RatesError, match="file not found"):
        read_rates_file(tmp_path / "nope.csv", "GBP")
    p = rates(tmp_path, "date,currency,rate\n2024-01-01,EUR,0.86\n")
    with pytest.raises(RatesError, match="EUR has rates both in currency.rates and in"):
        conversion_for(CurrencyConfig(reporting="GBP", rates={"EUR": 0.85}, rates_file=p))


def test_the_fingerprint_follows_the_file(tmp_path):
    p = rates(tmp_path, "date,currency,rate\n2024-01-01,EUR,0.86\n")
    cur = CurrencyConfig(reporting="GBP", rates_file=p)
    before = rates_fingerprint(cur)
    p.write_text("date,currency,rate\n2024-01-01,EUR,0.87\n", encoding="utf-8")
    assert rates_fingerprint(cur) != before
