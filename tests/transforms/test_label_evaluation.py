"""`scv evaluate`'s figures on tiny hand-made frames: labelled pairs against customer ids, and
against Splink's truth-space table."""

import pandas as pd
import pytest

from transforms.linkage.label_evaluation import (
    PairCounts,
    counts_at_threshold,
    decided_counts,
    evaluation_page,
    model_columns,
    not_compared,
    pair_counts,
    usable_labels,
)
from transforms.linkage.model import LabelsError, read_labels


def labels(*rows: tuple[str, str, bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id_l": [r[0] for r in rows],
            "unique_id_r": [r[1] for r in rows],
            "is_match": [r[2] for r in rows],
        }
    )


# Records s:a, s:b, s:c are customer C1; t:d is C2; t:e is C3; t:f is C4.
XREF = pd.DataFrame(
    {
        "unique_id": ["s:a", "s:b", "s:c", "t:d", "t:e", "t:f"],
        "customer_id": ["C1", "C1", "C1", "C2", "C3", "C4"],
    }
)


def test_pair_counts_and_rates():
    c = pair_counts(
        [True, True, True, True, False, False, False], [True, True, True, False, True, True, False]
    )
    assert (c.tp, c.fp, c.fn, c.tn) == (3, 1, 2, 1)
    assert (c.pairs, c.matches, c.non_matches) == (7, 5, 2)
    assert c.precision == pytest.approx(0.75)
    assert c.recall == pytest.approx(0.6)
    assert c.f1 == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))


def test_rates_without_a_denominator_are_none():
    nothing_predicted = PairCounts(tp=0, fp=0, fn=4, tn=6)
    assert nothing_predicted.precision is None
    assert nothing_predicted.recall == 0.0
    assert nothing_predicted.f1 == 0.0
    no_matches = PairCounts(tp=0, fp=0, fn=0, tn=3)
    assert (no_matches.precision, no_matches.recall, no_matches.f1) == (None, None, None)
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        pair_counts([True, False, True], [True, False])


def test_decided_counts_read_same_customer_id_as_a_predicted_match():
    pairs = usable_labels(
        labels(
            ("s:a", "s:b", True),  # same customer, labelled match: TP
            ("s:c", "s:a", True),  # TP (either orientation)
            ("s:b", "s:c", False),  # same customer, labelled non-match: FP
            ("t:d", "t:e", True),  # different customers, labelled match: FN
            ("t:e", "t:f", True),  # FN
            ("s:a", "t:d", False),  # TN
        ),
        XREF["unique_id"],
    ).pairs
    c = decided_counts(pairs, XREF)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 2, 1)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(0.5)
    assert c.f1 == pytest.approx(4 / 7)


def test_decided_counts_refuse_a_record_without_customer():
    pairs = labels(("s:a", "x:zz", True))
    with pytest.raises(ValueError, match="pair 1 names a record without a customer_id"):
        decided_counts(pairs, XREF)


def test_usable_labels_orient_dedupe_and_set_aside_unknown_records():
    got = usable_labels(
        labels(
            ("s:b", "s:a", True),
            ("s:a", "s:b", True),  # the same pair again, same label
            ("s:c", "s:c", True),  # a record with itself
            ("s:a", "crm:404", False),
            ("crm:404", "crm:405", False),
            ("t:f", "t:d", False),
        ),
        XREF["unique_id"],
    )
    assert got.pairs.to_dict("records") == [
        {"unique_id_l": "s:a", "unique_id_r": "s:b", "is_match": True},
        {"unique_id_l": "t:d", "unique_id_r": "t:f", "is_match": False},
    ]
    assert got.unknown_ids == ["crm:404", "crm:405"]
    assert (got.unknown_pairs, got.self_pairs, got.duplicates) == (2, 1, 1)


def test_a_pair_labelled_both_ways_is_an_error_naming_its_rows():
    with pytest.raises(
        LabelsError, match=r"^my\.csv: rows 2 and 4: the same pair is labelled both"
    ):
        usable_labels(
            labels(
                ("s:a", "t:d", False),
                ("s:a", "s:b", True),
                ("s:c", "t:e", False),
                ("s:b", "s:a", False),
            ),
            XREF["unique_id"],
            source="my.csv",
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unique_id_l,unique_id_r\ns:a,s:b\n", r"missing column\(s\) \['is_match'\]"),
        (
            "unique_id_l,unique_id_r,is_match\ns:a,s:b,1\ns:a, ,0\n",
            r"row 2: field 'unique_id_r' is empty",
        ),
        ("unique_id_l,unique_id_r,is_match\ns:a,s:b,maybe\n", r"row 1: field 'is_match' must be"),
    ],
)
def test_bad_labels_files_name_file_row_and_field(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(LabelsError, match=message) as err:
        read_labels(path)
    assert str(err.value).startswith(str(path))


# A truth-space table as Splink's accuracy analysis returns it: one row per match weight that
# some compared pair got, tp / fp = labelled matches / non-matches scored at or above it.
# Here 6 labelled matches and 5 non-matches: one match and one non-match no blocking rule
# generates (so absent from every row); weights 2**w / (1 + 2**w) are the probabilities.
TRUTH_SPACE = pd.DataFrame(
    {
        "truth_threshold": [5.0, -3.0, 0.0, 2.5],  # unsorted on purpose
        "p": [6.0] * 4,
        "n": [5.0] * 4,
        "tp": [2.0, 5.0, 4.0, 3.0],
        "fp": [0.0, 4.0, 2.0, 1.0],
    }
)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.8, (3, 1, 3, 4)),  # weight 2.0: the first row at or above it is 2.5
        (0.5, (4, 2, 2, 3)),  # weight 0.0 exactly: that row counts (at or above)
        (2**-4 / (1 + 2**-4), (5, 4, 1, 1)),  # below every score: every compared pair
        (0.99, (0, 0, 6, 5)),  # above every score: nothing predicted
    ],
)
def test_counts_at_threshold_from_the_truth_space(threshold, expected):
    c = counts_at_threshold(TRUTH_SPACE, threshold, matches=6, non_matches=5)
    assert (c.tp, c.fp, c.fn, c.tn) == expected


def test_counts_at_threshold_checks_the_totals_and_reads_an_empty_table():
    assert counts_at_threshold(TRUTH_SPACE.iloc[:0], 0.8, 3, 2) == PairCounts(0, 0, 3, 2)
    with pytest.raises(ValueError, match="4 true and 2 false positives for 3 labelled matches"):
        counts_at_threshold(TRUTH_SPACE, 0.5, matches=3, non_matches=5)


def test_pairs_no_blocking_rule_generates():
    assert not_compared(TRUTH_SPACE, 6, 5) == (1, 1)
    assert not_compared(TRUTH_SPACE.iloc[:0], 6, 5) == (6, 5)


def test_model_columns_come_from_the_model_fields_and_keys():
    model = {
        "scv": {
            "format": "scv-linkage-model",
            "fields": ["email", "dob"],
            "blocking_keys": {"bk_email": ["email_key"], "bk_email_user": ["_email_user"]},
        }
    }
    cols = model_columns(model)
    assert {"email_key", "dob", "first_name_std", "last_name_std"} <= set(cols)
    assert "_email_user" not in cols and "phone_e164" not in cols


def test_evaluation_page_puts_the_figures_before_the_chart_and_escapes_text():
    chart = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Splink chart</title>'
        "</head><body><div id='chart'></div><script>vegaEmbed()</script></body></html>"
    )
    page = evaluation_page(
        chart,
        [("warehouse <xref>", PairCounts(3, 1, 2, 1)), ("model", PairCounts(0, 0, 4, 6))],
        notes=["labels & <notes>"],
    )
    assert "<title>How far to trust the matching</title>" in page
    assert page.index("warehouse &lt;xref&gt;") < page.index("<div id='chart'>")
    assert "<td>0.750</td><td>0.600</td><td>0.667</td>" in page
    assert "<td>n/a</td><td>0.000</td><td>0.000</td>" in page
    assert "labels &amp; &lt;notes&gt;" in page
    bare = evaluation_page(None, [("model", PairCounts(1, 0, 0, 1))])
    assert bare.startswith("<!DOCTYPE html>") and "<script" not in bare
