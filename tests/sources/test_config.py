"""Config loading: validation errors name the file, the key and the problem; paths resolve."""

from pathlib import Path

import pytest

from sources.config import ConfigError, load_config

BASE = """
warehouse: wh/warehouse.duckdb
sources:
  crm:
    kind: person
    path: files/crm.csv
    id: ContactId
    date_format: "%d/%m/%Y"
    default_country: gb
    columns: {first_name: FirstName, email: Email}
  shop_orders:
    kind: order
    path: files/orders.parquet
    id: order_id
    person: {source: crm, key: contact}
    columns: {order_date: created_at, amount: total}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "scv.yml"
    p.write_text(text, encoding="utf-8")
    return p


def test_valid_config_resolves_paths_against_config_folder(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.sources["crm"].path == tmp_path / "files" / "crm.csv"
    assert cfg.warehouse == tmp_path / "wh" / "warehouse.duckdb"
    assert cfg.sources["crm"].default_country == "GB"
    assert cfg.sources["crm"].name == "crm"
    assert cfg.sources["shop_orders"].resolved_format == "parquet"
    assert cfg.data_dir == tmp_path / "data"
    assert cfg.model_dir == tmp_path / "data" / "models"


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (("first_name: FirstName", "nickname: Nick"), "sources.crm", "unknown canonical field"),
        (("kind: person", "kind: persn"), "sources.crm.kind", "Input should be"),
        (("person: {source: crm, key: contact}", "person: {source: nope, key: contact}"),
         "shop_orders.person.source", "not a person source"),
        (("    person: {source: crm, key: contact}\n", ""), "sources.shop_orders", "person: required"),
        (("wh/warehouse.duckdb", "wh/scv.duckdb"), "warehouse", "clash"),
        (("default_country: gb", "default_country: Britain"), "sources.crm.default_country", "2-letter"),
        (("id: ContactId", "id: ContactId\n    colour: red"), "sources.crm.colour", "Extra inputs"),
        (("files/orders.parquet", "files/orders.xlsx"), "sources.shop_orders", "cannot infer"),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path, edit, key, words):
    old, new = edit
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert key in msg
    assert words in msg


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "sources: [unclosed"))


def test_source_names_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"\[a-z0-9_\]"):
        load_config(write(tmp_path, BASE.replace("  crm:\n", "  CRM-Main:\n", 1)
                          .replace("source: crm", "source: CRM-Main")))


def test_linkage_memory_limit_defaults_to_4gb_and_is_checked(tmp_path):
    assert load_config(write(tmp_path, BASE)).linkage.memory_limit == "4GB"
    ok = load_config(write(tmp_path, BASE + "linkage: {memory_limit: 512MiB}\n"))
    assert ok.linkage.memory_limit == "512MiB"
    assert load_config(write(tmp_path, BASE + "linkage: {memory_limit: null}\n")).linkage.memory_limit is None
    with pytest.raises(ConfigError, match="linkage.memory_limit") as exc:
        load_config(write(tmp_path, BASE + "linkage: {memory_limit: lots}\n"))
    assert "4GB" in str(exc.value)
