"""RFM segment map: which named segment each (R, F, M) score combination belongs to.

The scores themselves are computed in SQL (`warehouse/sql/rfm.sql`); this module owns the map
from scores to segment names, as data:

- `DEFAULT_SEGMENT_MAP` is the documented default (docs/analytics.md): the 11-segment
  Recency x FM grid popularised by Putler, where FM is the average of the F and M scores;
- `segment_rules(config)` picks the config's rules (`rfm.segments`) or the default;
- `validate_segment_map(rules)` checks the rules give every one of the 125 score combinations
  exactly one segment;
- `segment_table(rules)` expands the rules into a 125-row lookup table. The pipeline writes it to
  the staging database as `stage.rfm_segment_map` (columns `r_score, f_score, m_score, segment`)
  before running `rfm.sql`, which joins it: segment names reach SQL as data, never as SQL text.

A rule is a mapping (or `sources.config.SegmentRule`) with a `name` and inclusive score ranges
`r`, `f`, `m` (each `[lo, hi]`, default `[1, 5]`) and an optional `fm` range on the FM score.
A combination matches a rule when every range given contains its score. Several rules may share
a name (a segment need not be a rectangle of the grid).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = [
    "DEFAULT_SEGMENT_MAP",
    "SCORES",
    "SEGMENT_MAP_COLUMNS",
    "SEGMENT_MAP_TABLE",
    "SegmentMapError",
    "default_segment_rules",
    "fm_score",
    "segment_grid_markdown",
    "segment_rules",
    "segment_table",
    "validate_segment_map",
]

SCORES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: Where the pipeline puts `segment_table(...)` before running rfm.sql, and its columns.
#: The published map's segment names, best first (reports list them in this order).
SEGMENT_NAMES: tuple[str, ...] = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)
SEGMENT_MAP_TABLE = "stage.rfm_segment_map"
SEGMENT_MAP_COLUMNS = ("r_score", "f_score", "m_score", "segment")

#: The default map: Putler's 11-segment R x FM grid. Putler publishes each segment as ranges on a
#: 0-5 scale ("R 4-5, FM 4-5"), which overlap at their edges; a range `lo-hi` there is read as the
#: scores `lo+1 .. hi`, and where two segments still claim a cell the more specific one keeps it
#: (Champions over Loyal Customers, Can't Lose Them over At Risk, Hibernating over Lost).
#: "Recent Customers" and "Customers Needing Attention" are called New Customers and Need Attention.
DEFAULT_SEGMENT_MAP: tuple[dict[str, Any], ...] = (
    {"name": "Champions", "r": (5, 5), "fm": (5, 5)},
    {"name": "Loyal Customers", "r": (3, 4), "fm": (4, 5)},
    {"name": "Loyal Customers", "r": (5, 5), "fm": (4, 4)},
    {"name": "Potential Loyalist", "r": (4, 5), "fm": (2, 3)},
    {"name": "New Customers", "r": (5, 5), "fm": (1, 1)},
    {"name": "Promising", "r": (4, 4), "fm": (1, 1)},
    {"name": "Need Attention", "r": (3, 3), "fm": (3, 3)},
    {"name": "About To Sleep", "r": (3, 3), "fm": (1, 2)},
    {"name": "At Risk", "r": (1, 1), "fm": (3, 4)},
    {"name": "At Risk", "r": (2, 2), "fm": (3, 5)},
    {"name": "Can't Lose Them", "r": (1, 1), "fm": (5, 5)},
    {"name": "Hibernating", "r": (2, 2), "fm": (2, 2)},
    {"name": "Lost", "r": (1, 1), "fm": (1, 2)},
    {"name": "Lost", "r": (2, 2), "fm": (1, 1)},
)


class SegmentMapError(ValueError):
    """An RFM segment map that leaves a score combination without a segment, or gives it two."""


@dataclass(frozen=True)
class _Rule:
    name: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]
    fm: tuple[int, int] | None

    def matches(self, r: int, f: int, m: int) -> bool:
        ranges = [(self.r, r), (self.f, f), (self.m, m)]
        if self.fm is not None:
            ranges.append((self.fm, fm_score(f, m)))
        return all(lo <= v <= hi for (lo, hi), v in ranges)


def fm_score(f: int, m: int) -> int:
    """The FM score: the mean of the F and M scores, halves rounded up ((f + m + 1) // 2)."""
    return (f + m + 1) // 2


def _get(rule: Any, key: str, default: Any = None) -> Any:
    if isinstance(rule, Mapping):
        return rule.get(key, default)
    return getattr(rule, key, default)


def _range(where: str, key: str, value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise SegmentMapError(
            f"{where}: {key} must be [lo, hi] with whole-number scores, got {value!r}"
        )
    lo, hi = value
    if not 1 <= lo <= hi <= 5:
        raise SegmentMapError(
            f"{where}: {key} must satisfy 1 <= lo <= hi <= 5, got [{lo}, {hi}]"
        )
    return (lo, hi)


def _normalise(rules: Iterable[Any]) -> list[_Rule]:
    out = []
    for i, rule in enumerate(rules, start=1):
        name = _get(rule, "name")
        where = f"rfm.segments[{i}]"
        if not isinstance(name, str) or not name.strip():
            raise SegmentMapError(
                f"{where}: name must be a non-empty text, got {name!r}"
            )
        where = f"rfm.segments[{i}] ({name!r})"
        if _get(rule, "r") is None:
            raise SegmentMapError(f"{where}: r (the recency score range) is required")
        fm = _get(rule, "fm")
        out.append(
            _Rule(
                name=name.strip(),
                r=_range(where, "r", _get(rule, "r")),
                f=_range(where, "f", _get(rule, "f") or (1, 5)),
                m=_range(where, "m", _get(rule, "m") or (1, 5)),
                fm=None if fm is None else _range(where, "fm", fm),
            )
        )
    if not out:
        raise SegmentMapError("rfm.segments: the segment map has no rules")
    return out


def _describe(combos: list[tuple[int, int, int]], limit: int = 5) -> str:
    shown = ", ".join(f"(r={r}, f={f}, m={m})" for r, f, m in combos[:limit])
    return shown + (f" and {len(combos) - limit} more" if len(combos) > limit else "")


def validate_segment_map(rules: Iterable[Any]) -> dict[tuple[int, int, int], str]:
    """Check that `rules` give each of the 125 (r, f, m) score combinations exactly one segment.

    Returns the map {(r_score, f_score, m_score): segment name}. Raises `SegmentMapError` naming
    the rule for a malformed rule, and listing the combinations left without a segment (gaps) and
    those claimed by more than one rule (overlaps, with the rules' positions and names).
    """
    normalised = _normalise(rules)
    mapping: dict[tuple[int, int, int], str] = {}
    gaps: list[tuple[int, int, int]] = []
    overlaps: list[str] = []
    for r in SCORES:
        for f in SCORES:
            for m in SCORES:
                hits = [
                    (i, rule)
                    for i, rule in enumerate(normalised, 1)
                    if rule.matches(r, f, m)
                ]
                if not hits:
                    gaps.append((r, f, m))
                elif len(hits) > 1:
                    claimants = ", ".join(f"#{i} {rule.name!r}" for i, rule in hits)
                    overlaps.append(f"(r={r}, f={f}, m={m}) by rules {claimants}")
                else:
                    mapping[(r, f, m)] = hits[0][1].name
    problems = []
    if gaps:
        problems.append(
            f"{len(gaps)} score combination(s) match no rule: {_describe(gaps)}"
        )
    if overlaps:
        shown = "; ".join(overlaps[:5])
        more = f"; and {len(overlaps) - 5} more" if len(overlaps) > 5 else ""
        problems.append(
            f"{len(overlaps)} score combination(s) match several rules: {shown}{more}"
        )
    if problems:
        raise SegmentMapError(
            "rfm.segments: every (r, f, m) score combination must match exactly one rule; "
            + "; ".join(problems)
        )
    return mapping


def default_segment_rules() -> list[dict[str, Any]]:
    """A fresh copy of `DEFAULT_SEGMENT_MAP` as a list of rule dicts."""
    return [dict(rule) for rule in DEFAULT_SEGMENT_MAP]


def segment_rules(config: Any = None) -> list[Any]:
    """The segment rules in force: `config.segments` (an `RfmConfig`) if set, else the default."""
    segments = None if config is None else _get(config, "segments")
    return list(segments) if segments else default_segment_rules()


def segment_table(rules: Iterable[Any] | None = None) -> pd.DataFrame:
    """The segment map as a 125-row lookup table: `r_score, f_score, m_score, segment`.

    `rules` defaults to `DEFAULT_SEGMENT_MAP`; they are validated first (`SegmentMapError`).
    The pipeline stores this frame as `stage.rfm_segment_map`, which `rfm.sql` joins on the three
    scores.
    """
    mapping = validate_segment_map(DEFAULT_SEGMENT_MAP if rules is None else rules)
    rows = [(r, f, m, name) for (r, f, m), name in sorted(mapping.items())]
    frame = pd.DataFrame(rows, columns=list(SEGMENT_MAP_COLUMNS))
    return frame.astype({"r_score": "int32", "f_score": "int32", "m_score": "int32"})


def segment_grid_markdown(rules: Iterable[Any] | None = None) -> str:
    """The map as a markdown table, FM score down (5 at the top) and R score across.

    Only for maps where the segment depends on R and FM alone (like the default); raises
    `SegmentMapError` otherwise.
    """
    mapping = validate_segment_map(DEFAULT_SEGMENT_MAP if rules is None else rules)
    grid: dict[tuple[int, int], set[str]] = {}
    for (r, f, m), name in mapping.items():
        grid.setdefault((fm_score(f, m), r), set()).add(name)
    mixed = sorted(k for k, names in grid.items() if len(names) > 1)
    if mixed:
        raise SegmentMapError(
            f"rfm.segments: the segment is not a function of R and FM alone at (fm, r) = {mixed[:5]}"
        )
    lines = ["| FM \\ R | " + " | ".join(f"R = {r}" for r in SCORES) + " |"]
    lines.append("|---" * (len(SCORES) + 1) + "|")
    for fm in reversed(SCORES):
        cells = [next(iter(grid[(fm, r)])) for r in SCORES]
        lines.append(f"| **FM = {fm}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)
