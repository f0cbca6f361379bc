"""Values and names written into SQL text, quoted as DuckDB (and standard SQL) reads them.

Bind values as parameters wherever DuckDB takes them; these are for the few places that cannot
(ATTACH of a file path, COMMENT ON, a column name from a config).
"""

from __future__ import annotations

__all__ = ["quote_ident", "quote_literal"]


def quote_literal(text: object) -> str:
    """`text` as an SQL string literal: in single quotes, each inner `'` doubled."""
    return "'" + str(text).replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """`name` as an SQL identifier: in double quotes, each inner `"` doubled."""
    return '"' + name.replace('"', '""') + '"'
