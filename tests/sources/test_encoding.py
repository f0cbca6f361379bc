"""Issue 19 item 5: a UTF-8 file configured as latin-1 / cp1252 decodes without error into
mojibake ("ZoÃ«"), which was published as golden names. It now stops the source with one line
naming the file and the likely encoding; legitimate latin-1 / cp1252 files still read as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests_support import copy_project, run_scv

from sources.config import SourceConfig, load_config
from sources.encoding import find_mojibake, is_single_byte_text_encoding
from sources.readers import SourceReadError, read_source

NAMES = ["Zoë Lefèvre", "José Núñez", "Zürich", "Ångström", "Ça va", "São Paulo", "Müller"]
WIDE = ["Łukasz", "王芳", "Dvořák"]  # not encodable in latin-1


def _source(path: Path, data: bytes, encoding: str, fmt: str = "csv") -> SourceConfig:
    path.write_bytes(data)
    return SourceConfig(name="crm", kind="person", path=path, id="id", encoding=encoding, format=fmt)


def _error(src: SourceConfig) -> SourceReadError:
    with pytest.raises(SourceReadError) as info:
        read_source(src)
    err = info.value
    assert "\n" not in str(err)
    assert str(err).startswith(f"source crm: {src.path}: ")
    return err


def _csv(names: list[str]) -> str:
    return "id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names, start=1))


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "iso-8859-15"])
def test_utf8_file_read_as_a_single_byte_encoding_stops_the_source(tmp_path, encoding):
    data = ("id,name\n1,Ann\n" + "".join(f"{i},{n}\n" for i, n in enumerate(NAMES, start=2))).encode()
    assert data.decode(encoding)  # the old behaviour: it decodes without error ...
    assert "ZoÃ«" in data.decode(encoding)  # ... into mojibake
    err = _error(_source(tmp_path / "crm.csv", data, encoding))
    assert err.line == 3  # the first line with a mis-decoded letter (the header is line 1)
    assert f"decoded as {encoding} reads as mojibake" in err.problem
    assert "likely utf-8" in err.problem and "`encoding: utf-8`" in err.problem
    for name in NAMES:  # never quotes the data
        assert name not in str(err) and name.encode().decode(encoding) not in str(err)


def test_utf8_jsonl_read_as_latin1_stops_the_source(tmp_path):
    data = "".join(f'{{"id": "{i}", "name": "{n}"}}\n' for i, n in enumerate(NAMES + WIDE)).encode()
    err = _error(_source(tmp_path / "crm.jsonl", data, "latin-1", fmt="jsonl"))
    assert err.line == 1 and "likely utf-8" in err.problem


def test_utf8_file_read_as_cp1252_with_an_undefined_byte_names_utf8(tmp_path):
    # "Łukasz" in UTF-8 holds byte 0x81, which cp1252 does not define: a decode error, whose
    # hint now names the likely encoding too
    err = _error(_source(tmp_path / "crm.csv", _csv(["Ann", *WIDE]).encode(), "cp1252"))
    assert "cannot be decoded as cp1252" in err.problem and "likely utf-8" in err.problem


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_legitimate_single_byte_files_still_read(tmp_path, encoding):
    names = NAMES + (["“quoted” €5 – Œuvre"] if encoding == "cp1252" else ["© ® ± µ ÿ"])
    src = _source(tmp_path / "crm.csv", _csv(names).encode(encoding), encoding)
    assert read_source(src)["name"].tolist() == names


def test_mixed_file_names_the_mix(tmp_path):
    data = _csv(["Zoë"]).encode("latin-1") + "2,Zoë\n".encode()
    err = _error(_source(tmp_path / "crm.csv", data, "latin-1"))
    assert err.line == 3 and "mixes encodings" in err.problem


def test_find_mojibake_counts_lines():
    data = ("id,name\n" + "".join(f"{n}\n" for n in NAMES)).encode()
    found = find_mojibake(data, "latin-1")
    assert (found.first_line, found.lines, found.non_ascii_lines, found.utf8_lines) == (2, len(NAMES), len(NAMES), len(NAMES))
    assert find_mojibake(_csv(NAMES).encode("latin-1"), "latin-1") is None
    assert find_mojibake(b"id,name\n1,Ann\n", "latin-1") is None
    assert find_mojibake(_csv(NAMES).encode(), "utf-8") is None


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("latin-1", True), ("cp1252", True), ("iso-8859-15", True), ("utf-8", False), ("utf-16", False), ("nope", False)],
)
def test_which_encodings_are_checked(encoding, expected):
    assert is_single_byte_text_encoding(encoding) is expected


@pytest.mark.slow
def test_demo_crm_configured_as_latin1_stops_the_night(demo_run, tmp_path, capsys):
    """End to end: the demo's UTF-8 CRM export configured `encoding: latin-1` used to publish
    golden names like "ZoÃ«" with exit 0; now the night stops at landing/crm with one line naming
    the file and utf-8, and the published warehouse (and its row counts) stay as they were."""
    config = copy_project(demo_run, tmp_path / "project")
    cfg = load_config(config)
    crm = cfg.sources["crm"]
    assert crm.path.suffix == ".csv" and not crm.path.read_bytes().isascii()
    before = cfg.warehouse.read_bytes()
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["sources"]["crm"]["encoding"] = "latin-1"
    config.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True), encoding="utf-8")

    assert run_scv("run", "--config", config, "--as-of", "2026-11-21") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "crm" in err[0] and str(crm.path.name) in err[0]
    assert "mojibake" in err[0] and "likely utf-8" in err[0]
    assert cfg.warehouse.read_bytes() == before
