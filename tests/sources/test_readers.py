"""sources.readers: every format read as text, and every broken file named precisely."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sources.config import SourceConfig
from sources.readers import (
    ROW_NUMBER,
    SourceReadError,
    file_fingerprint,
    read_source,
    to_canonical,
)

TEXT = pd.StringDtype()


def make_source(path: Path, content: str | bytes | None = None, **kw) -> SourceConfig:
    if content is not None:
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    kw.setdefault("kind", "person")
    kw.setdefault("id", "id")
    kw.setdefault("name", "crm")
    return SourceConfig(path=path, **kw)


def read_error(src: SourceConfig) -> SourceReadError:
    with pytest.raises(SourceReadError) as info:
        read_source(src)
    err = info.value
    assert "\n" not in str(err)
    assert str(err).startswith(f"source {src.name}: {src.path}: ")
    return err


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def test_csv_reads_every_column_as_text_in_file_order(tmp_path):
    src = make_source(
        tmp_path / "crm.csv",
        "id,first,phone,score\n007,Nan,07700 900123,1.50\n008,NA,+441234,\n009,null,,2\n",
    )
    raw = read_source(src)
    assert list(raw.columns) == ["id", "first", "phone", "score", ROW_NUMBER]
    assert all(raw[c].dtype == TEXT for c in ["id", "first", "phone", "score"])
    assert raw[ROW_NUMBER].dtype == "int64"
    assert raw[ROW_NUMBER].tolist() == [1, 2, 3]
    # No type inference: ids, phones and decimals stay exactly as written.
    assert raw["id"].tolist() == ["007", "008", "009"]
    assert raw["phone"].iloc[0] == "07700 900123"
    assert raw["score"].iloc[0] == "1.50"
    # Only an empty field is null; names that look like null markers are names.
    assert raw["first"].tolist() == ["Nan", "NA", "null"]
    assert raw["score"].isna().tolist() == [False, True, False]


def test_csv_custom_delimiter_and_quotechar(tmp_path):
    src = make_source(
        tmp_path / "pos.txt",
        "id;name\n1;'Smith; John'\n2;'O''Brien'\n",
        delimiter=";",
        quotechar="'",
    )
    raw = read_source(src)
    assert raw["name"].tolist() == ["Smith; John", "O'Brien"]


def test_tab_delimited(tmp_path):
    src = make_source(tmp_path / "pos.tsv", "id\tname\n1\tZoë\n", delimiter="tab")
    assert read_source(src)["name"].tolist() == ["Zoë"]


def test_truncated_csv_short_row_names_the_row(tmp_path):
    src = make_source(tmp_path / "crm.csv", "id,name,email\n1,a,a@x.io\n2,b,b@x.io\n3,c\n")
    err = read_error(src)
    assert err.row == 3
    assert "expected 3 fields" in err.problem and "found 2" in err.problem
    assert "row 3 (line 4)" in str(err)


def test_ragged_csv_long_row_names_the_row(tmp_path):
    src = make_source(tmp_path / "crm.csv", "id,name\n1,a\n2,b,extra\n3,c\n")
    err = read_error(src)
    assert err.row == 2
    assert "found 3" in err.problem


def test_row_numbers_count_records_not_lines(tmp_path):
    # Row 2 spans two lines; the bad row 3 starts on line 5.
    src = make_source(tmp_path / "crm.csv", 'id,name\n1,a\n2,"b\nc"\n3\n')
    err = read_error(src)
    assert (err.row, err.line) == (3, 5)


def test_unterminated_quote_at_end_of_file(tmp_path):
    src = make_source(tmp_path / "pos.csv", 'id,name\n1,a\n2,"b\n3,c\n', name="pos_loyalty")
    err = read_error(src)
    assert err.row == 2
    assert "unterminated quoted field" in str(err)
    assert str(err).startswith(f"source pos_loyalty: {src.path}: row 2 (line 3): unterminated")


def test_literal_quote_inside_unquoted_field_is_fine(tmp_path):
    src = make_source(tmp_path / "crm.csv", 'id,height\n1,5\'11"\n2,"said ""hi"""\n')
    assert read_source(src)["height"].tolist() == ["5'11\"", 'said "hi"']


def test_wrong_delimiter_single_column_header(tmp_path):
    src = make_source(tmp_path / "crm.csv", "id;name;email\n1;a;a@x.io\n")
    err = read_error(src)
    assert "';'-delimited" in err.problem and "delimiter" in err.problem


def test_configured_single_column_with_a_semicolon_in_its_name_is_not_flagged(tmp_path):
    src = make_source(tmp_path / "ids.csv", "id;legacy\n1;2\n", id="id;legacy")
    assert read_source(src)["id;legacy"].tolist() == ["1;2"]


def test_wrong_delimiter_detected_from_configured_columns(tmp_path):
    # The comma inside a column name splits the header in two, but `id` only appears on ';'.
    src = make_source(tmp_path / "crm.csv", "id;name, full\n1;a b\n", columns={"full_name": "name, full"})
    err = read_error(src)
    assert "';'-delimited" in err.problem


def test_latin1_file_with_latin1_encoding(tmp_path):
    src = make_source(tmp_path / "pos.csv", "id,name\n1,Zoë Lefèvre\n".encode("latin-1"), encoding="latin-1")
    assert read_source(src)["name"].tolist() == ["Zoë Lefèvre"]


def test_cp1252_file(tmp_path):
    src = make_source(tmp_path / "pos.csv", "id,note\n1,“quoted” €5\n".encode("cp1252"), encoding="cp1252")
    assert read_source(src)["note"].tolist() == ["“quoted” €5"]


def test_latin1_bytes_read_as_utf8_name_the_line_and_the_fix(tmp_path):
    src = make_source(tmp_path / "pos.csv", "id,name\n1,Ann\n2,Zoë\n".encode("latin-1"))
    err = read_error(src)
    assert err.line == 3
    assert "line 3" in str(err)
    assert "encoding" in err.problem and "0xeb" in err.problem


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf_8", "utf-8-sig"])
def test_utf8_bom_is_stripped_whatever_the_utf8_spelling(tmp_path, encoding):
    src = make_source(tmp_path / "crm.csv", b"\xef\xbb\xbfid,name\n1,Zo\xc3\xab\n", encoding=encoding)
    raw = read_source(src)
    assert list(raw.columns)[:2] == ["id", "name"]
    assert raw["name"].tolist() == ["Zoë"]


def test_crlf_line_ends_and_embedded_newlines(tmp_path):
    src = make_source(
        tmp_path / "crm.csv",
        b'id,address\r\n1,"1 High St\r\nFlat 2"\r\n2,"Line A\nLine B"\r\n3,plain\r\n',
    )
    raw = read_source(src)
    assert raw["id"].tolist() == ["1", "2", "3"]
    assert raw["address"].tolist() == ["1 High St\r\nFlat 2", "Line A\nLine B", "plain"]


def test_missing_id_column(tmp_path):
    src = make_source(tmp_path / "crm.csv", "ContactId,name\n1,a\n", id="CustomerId")
    err = read_error(src)
    assert err.column == "CustomerId"
    assert "id column" in err.problem and "'ContactId'" in err.problem


def test_missing_mapped_column_names_field_and_column(tmp_path):
    src = make_source(
        tmp_path / "crm.csv", "id,name\n1,a\n", columns={"first_name": "name", "email": "EmailAddress"}
    )
    err = read_error(src)
    assert err.column == "EmailAddress"
    assert "canonical field email" in err.problem


def test_missing_person_key_column(tmp_path):
    src = make_source(
        tmp_path / "orders.csv",
        "order_id,when\n1,2024-01-01\n",
        kind="order",
        id="order_id",
        person={"source": "crm", "key": "customer_id"},
        columns={"order_date": "when"},
    )
    err = read_error(src)
    assert err.column == "customer_id" and "person.key" in err.problem


def test_header_only_file(tmp_path):
    err = read_error(make_source(tmp_path / "crm.csv", "id,name\n"))
    assert "no data rows" in err.problem


def test_zero_byte_file(tmp_path):
    err = read_error(make_source(tmp_path / "crm.csv", b""))
    assert "0 bytes" in err.problem


def test_missing_file(tmp_path):
    err = read_error(make_source(tmp_path / "nope.csv"))
    assert err.problem == "file not found"


def test_duplicate_header_name(tmp_path):
    err = read_error(make_source(tmp_path / "crm.csv", "id,name,name\n1,a,b\n"))
    assert err.column == "name"


def test_one_megabyte_fields(tmp_path):
    big = "x" * (1 << 20)
    src = make_source(tmp_path / "crm.csv", f'id,note\n1,{big}\n2,"{big}\n{big}"\n3,small\n')
    raw = read_source(src)
    assert raw["note"].str.len().tolist() == [1 << 20, 2 * (1 << 20) + 1, 5]


def test_hostile_and_international_text_is_read_verbatim(tmp_path):
    values = [
        '=HYPERLINK("http://evil.example","click")',
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3",
        "Robert'); DROP TABLE students;--",
        "Zoë",
        "Łukasz",
        "王芳",
        "O'Brien",
    ]
    body = "".join(f'{i},"{v.replace(chr(34), chr(34) * 2)}"\n' for i, v in enumerate(values))
    raw = read_source(make_source(tmp_path / "crm.csv", "id,name\n" + body))
    assert raw["name"].tolist() == values


# --------------------------------------------------------------------------------------------
# JSON lines
# --------------------------------------------------------------------------------------------


def test_jsonl_nested_values_kept_as_json_text(tmp_path):
    lines = [
        (
            '{"id": "007", "amount": 19.90, "qty": 3, "vip": true, "tags": ["a", "b"], '
            '"address": {"city": "Łódź", "zip": "90-001"}}'
        ),
        "",
        '{"id": 8, "extra": null}',
    ]
    raw = read_source(make_source(tmp_path / "web.jsonl", "\n".join(lines) + "\n"))
    assert list(raw.columns) == ["id", "amount", "qty", "vip", "tags", "address", "extra", ROW_NUMBER]
    first = raw.iloc[0]
    assert first["id"] == "007"
    assert first["amount"] == "19.90"  # the number's own text, not a float round trip
    assert first["qty"] == "3"
    assert first["vip"] == "true"
    assert json.loads(first["tags"]) == ["a", "b"]
    assert json.loads(first["address"]) == {"city": "Łódź", "zip": "90-001"}
    assert raw["id"].tolist() == ["007", "8"]
    assert raw["tags"].isna().tolist() == [False, True]
    assert raw[ROW_NUMBER].tolist() == [1, 2]


def test_jsonl_bad_line_names_row_and_line(tmp_path):
    src = make_source(tmp_path / "web.jsonl", '{"id": "1"}\n\n{"id": "2",\n')
    err = read_error(src)
    assert (err.row, err.line) == (2, 3)
    assert "not valid JSON" in err.problem


def test_jsonl_non_object_line(tmp_path):
    err = read_error(make_source(tmp_path / "web.ndjson", '{"id": "1"}\n[1, 2]\n'))
    assert err.row == 2 and "JSON object" in err.problem


# --------------------------------------------------------------------------------------------
# Parquet and database tables
# --------------------------------------------------------------------------------------------


def test_parquet_every_type_as_text(tmp_path):
    path = tmp_path / "shop.parquet"
    table = pa.table(
        {
            "id": pa.array(["007", "008"]),
            "n": pa.array([5, None], pa.int64()),
            "amount": pa.array([19.9, 0.5]),
            "created": pa.array([pd.Timestamp("2024-01-02 10:00"), None], pa.timestamp("us")),
            "meta": pa.array([{"a": 1, "b": "x"}, None]),
            "tags": pa.array([["x", "y"], []]),
        }
    )
    pq.write_table(table, path)
    raw = read_source(make_source(path))
    assert all(raw[c].dtype == TEXT for c in ["id", "n", "amount", "created", "meta", "tags"])
    assert raw["id"].tolist() == ["007", "008"]
    assert raw["n"].iloc[0] == "5" and pd.isna(raw["n"].iloc[1])
    assert raw["amount"].tolist() == ["19.9", "0.5"]
    assert raw["created"].iloc[0].startswith("2024-01-02 10:00:00")
    assert json.loads(raw["meta"].iloc[0]) == {"a": 1, "b": "x"}
    assert json.loads(raw["tags"].iloc[0]) == ["x", "y"]


def test_parquet_that_fails_to_open(tmp_path):
    err = read_error(make_source(tmp_path / "shop.parquet", b"PAR1 not really parquet"))
    assert "Parquet" in err.problem


def test_duckdb_table_read_only(tmp_path):
    path = tmp_path / "erp.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE customers (id VARCHAR, n INTEGER, amount DECIMAL(10,2), ts TIMESTAMP, "
        "info STRUCT(city VARCHAR), tags VARCHAR[])"
    )
    con.execute(
        "INSERT INTO customers VALUES ('007', 1, 19.90, '2024-01-02 10:00:00', {'city': 'Köln'}, "
        "['a']), ('002', NULL, NULL, NULL, NULL, NULL), ('003', 3, 1.00, NULL, NULL, NULL)"
    )
    con.close()
    before = file_fingerprint(path)
    raw = read_source(make_source(path, table="customers"))
    assert file_fingerprint(path) == before
    assert raw["id"].tolist() == ["007", "002", "003"]  # insertion order
    assert raw["n"].iloc[0] == "1" and pd.isna(raw["n"].iloc[1])
    assert raw["amount"].iloc[0] == "19.90"
    assert raw["ts"].iloc[0] == "2024-01-02 10:00:00"
    assert json.loads(raw["info"].iloc[0]) == {"city": "Köln"}
    assert json.loads(raw["tags"].iloc[0]) == ["a"]
    assert raw[ROW_NUMBER].tolist() == [1, 2, 3]


def test_duckdb_missing_table_lists_tables(tmp_path):
    path = tmp_path / "erp.duckdb"
    duckdb.connect(str(path)).execute("CREATE TABLE customers (id VARCHAR)").close()
    err = read_error(make_source(path, table="clients"))
    assert "'clients' not found" in err.problem and "'customers'" in err.problem


def test_sqlite_table(tmp_path):
    path = tmp_path / "legacy.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE members (id TEXT, name TEXT, points INTEGER, balance REAL)")
    con.executemany(
        "INSERT INTO members VALUES (?, ?, ?, ?)",
        [("007", "Zoë", 10, 2.5), ("008", None, None, None), ("009", "王芳", 0, -1.0)],
    )
    con.commit()
    con.close()
    before = file_fingerprint(path)
    raw = read_source(make_source(path, table="members"))
    assert file_fingerprint(path) == before
    assert raw["id"].tolist() == ["007", "008", "009"]
    assert raw["name"].tolist()[0] == "Zoë" and raw["name"].tolist()[2] == "王芳"
    assert raw["points"].iloc[0] == "10" and raw["balance"].iloc[0] == "2.5"
    assert all(raw[c].dtype == TEXT for c in ["id", "name", "points", "balance"])


def test_sqlite_format_on_a_file_that_is_not_a_database(tmp_path):
    src = make_source(tmp_path / "legacy.db", "id,name\n1,a\n" * 50, table="members")
    err = read_error(src)
    assert "SQLite" in err.problem


# --------------------------------------------------------------------------------------------
# Canonical frame and fingerprint
# --------------------------------------------------------------------------------------------


def test_to_canonical_person(tmp_path):
    src = make_source(
        tmp_path / "crm.csv",
        "ContactId,First,Last,Email\n  C1 ,Zoë,O'Brien,zoe@x.io\n,Ann,,\n",
        id="ContactId",
        columns={"first_name": "First", "last_name": "Last", "email": "Email"},
        constants={"country": "GB"},
    )
    canon = to_canonical(read_source(src), src)
    assert list(canon.columns) == [
        "source",
        ROW_NUMBER,
        "source_record_id",
        "first_name",
        "last_name",
        "email",
        "country",
    ]
    assert canon["source"].tolist() == ["crm", "crm"]
    assert canon["source_record_id"].iloc[0] == "C1"  # ids are trimmed
    assert pd.isna(canon["source_record_id"].iloc[1])  # empty id -> null
    assert canon["first_name"].tolist() == ["Zoë", "Ann"]
    assert canon["last_name"].iloc[0] == "O'Brien"
    assert canon["country"].tolist() == ["GB", "GB"]
    assert canon[ROW_NUMBER].tolist() == [1, 2]


def test_to_canonical_order_attributes_and_constants(tmp_path):
    src = make_source(
        tmp_path / "orders.csv",
        "order_id,cust,when,total,coupon,note,channel\n"
        "1, C1 ,2024-01-01,10,SPRING,\"say \"\"hi\"\"\",\n"
        "2,,2024-01-02,5,,,store\n",
        kind="order",
        id="order_id",
        person={"source": "crm", "key": "cust"},
        columns={"order_date": "when", "amount": "total", "channel": "channel"},
        constants={"channel": "online", "currency": "GBP"},
    )
    canon = to_canonical(read_source(src), src)
    assert canon["person_record_id"].iloc[0] == "C1"
    assert pd.isna(canon["person_record_id"].iloc[1])
    # A mapped column wins; the constant fills its empty cells.
    assert canon["channel"].tolist() == ["online", "store"]
    assert canon["currency"].tolist() == ["GBP", "GBP"]
    assert json.loads(canon["attributes"].iloc[0]) == {"coupon": "SPRING", "note": 'say "hi"'}
    assert json.loads(canon["attributes"].iloc[1]) == {}
    assert canon["attributes"].dtype == TEXT


def test_to_canonical_raises_for_missing_mapped_column(tmp_path):
    src = make_source(tmp_path / "crm.csv", "id,a\n1,x\n")
    raw = read_source(src)
    bad = src.model_copy(update={"columns": {"email": "Email"}})
    with pytest.raises(SourceReadError, match="canonical field email"):
        to_canonical(raw, bad)


def test_file_fingerprint_is_streamed_sha256(tmp_path):
    path = tmp_path / "f.bin"
    data = b"abc" * 500_000
    path.write_bytes(data)
    assert file_fingerprint(path, chunk_size=4096) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data + b"!")
    assert file_fingerprint(path) != hashlib.sha256(data).hexdigest()


def test_error_message_format():
    err = SourceReadError("pos_loyalty", "data/sources/pos.csv", "unterminated quoted field", row=1042)
    assert str(err) == "source pos_loyalty: data/sources/pos.csv: row 1042: unterminated quoted field"
    err = SourceReadError("crm", "c.csv", "bad", column="Email")
    assert str(err) == "source crm: c.csv: column Email: bad"
