"""Dataset statistics (audit.stats composition functions), checked against hand arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from audit.errors import StatsInputError
from audit.stats import (
    Attribute,
    box_geometry,
    build_groups,
    compare_composition,
    composition,
    composition_sentence,
    cooccurrence,
    missing_rates,
    reference_fit,
    summarise_by_group,
)

# 10 samples. gender: 6 male, 3 female, 1 missing. skin (Fitzpatrick): I, II, III lighter; IV-VI darker.
TABLE = pd.DataFrame({
    "gender": ["male", "male", "male", "male", "male", "male", "female", "female", "female", None],
    "skin":   ["I",    "II",   "III",  "I",    "V",    "VI",   "IV",     "II",     "V",      "III"],
})
ATTRS = [Attribute("gender"), Attribute("skin", scale="fitzpatrick")]
# labels (class index):  cat=0, dog=1
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 0, 1, 0])
CLASSES = ["cat", "dog"]


def row(frame, **match):
    hit = frame
    for k, v in match.items():
        hit = hit[hit[k] == v]
    assert len(hit) == 1, match
    return hit.iloc[0]


def test_composition_counts_and_shares():
    comp = composition(TABLE, ATTRS, [("gender", "skin")])
    # gender: male 6/10 = 0.6, female 3/10 = 0.3, unknown 1/10; among the 9 known: 6/9 and 3/9
    assert row(comp, grouping="gender", group="male")[["n", "share", "share_known"]].tolist() == [6, 0.6, 6 / 9]
    assert row(comp, grouping="gender", group="female")["share_known"] == pytest.approx(3 / 9)
    assert row(comp, grouping="gender", group="unknown")["n"] == 1
    assert math.isnan(row(comp, grouping="gender", group="unknown")["share_known"])
    # skin: lighter = I, II, III, I, II, III -> 6 (rows 0,1,2,3,7,9); darker = V, VI, IV, V -> 4
    assert row(comp, grouping="skin", group="lighter")["n"] == 6
    assert row(comp, grouping="skin", group="darker")["share"] == pytest.approx(0.4)
    # male x lighter: rows 0-3 -> 4; male x darker: rows 4,5 -> 2; female x lighter: row 7 -> 1;
    # female x darker: rows 6,8 -> 2; unknown x lighter: row 9 -> 1.  Known = 9.
    inter = comp[comp["grouping"] == "gender × skin"].set_index("group")
    assert inter["n"].to_dict() == {"female × lighter": 1, "female × darker": 2, "male × lighter": 4,
                                    "male × darker": 2, "unknown × lighter": 1, "unknown × darker": 0}
    assert inter.loc["male × lighter", "share_known"] == pytest.approx(4 / 9)
    # the counts are the group sizes the one grouping engine reports
    structure, _ = build_groups(TABLE, ATTRS, [("gender", "skin")])
    g = structure.grouping("gender × skin")
    cells = np.bincount(structure.cell_of_sample, minlength=structure.n_cells)
    assert inter["n"].tolist() == structure.sum_cells(cells, g, axis=0).astype(int).tolist()
    assert row(comp, grouping="overall", group="all")["n"] == 10


def test_missing_rates_and_sentence():
    miss = missing_rates(TABLE, ATTRS)
    assert miss.set_index("attribute")["n_missing"].to_dict() == {"gender": 1, "skin": 0}
    assert miss.set_index("attribute")["rate"].to_dict() == {"gender": 0.1, "skin": 0.0}
    comp = composition(TABLE, ATTRS)
    # largest known gender group: male 6/10 = 60.0%, unknown 1/10; skin: lighter 6/10
    assert composition_sentence(comp, ["gender", "skin"]) == "60.0% male (10.0% unknown), 60.0% lighter"


def test_lfw_sentence():
    # LFW: 77.5% male, 83.5% white -> 1000 faces, 775 male, 835 white
    t = pd.DataFrame({"gender": ["male"] * 775 + ["female"] * 225, "race": ["white"] * 835 + ["black"] * 165})
    comp = composition(t, [Attribute("gender"), Attribute("race")])
    assert composition_sentence(comp, ["gender", "race"]) == "77.5% male, 83.5% white"


def test_reference_fit_chi_square_by_hand():
    comp = composition(TABLE, ATTRS)
    groups, tests = reference_fit(comp, {"skin": {"lighter": 1, "darker": 1}, "gender": {"male": 0.5, "female": 0.5}})
    # skin: observed 6, 4; expected 5, 5 -> X2 = (1^2 + 1^2) / 5 = 0.4, dof 1
    skin = row(tests, grouping="skin")
    assert skin["statistic"] == pytest.approx(0.4)
    assert skin["dof"] == 1
    assert skin["p_value"] == pytest.approx(sps.chi2.sf(0.4, 1))
    # gender: the unknown sample is left out: observed 6, 3 of 9; expected 4.5, 4.5
    # X2 = (1.5^2 + 1.5^2) / 4.5 = 1.0
    assert row(tests, grouping="gender")["statistic"] == pytest.approx(1.0)
    assert row(groups, grouping="gender", group="male")["difference"] == pytest.approx(6 / 9 - 0.5)
    assert row(groups, grouping="skin", group="darker")["expected_n"] == pytest.approx(5.0)
    # Benjamini-Hochberg over the two tests
    p = sorted([sps.chi2.sf(0.4, 1), sps.chi2.sf(1.0, 1)])
    assert tests["p_adjusted"].max() == pytest.approx(p[1])


def test_reference_fit_rejects_unlisted_group():
    comp = composition(TABLE, ATTRS)
    with pytest.raises(StatsInputError) as err:
        reference_fit(comp, {"gender": {"male": 1}})
    assert str(err.value) == (
        "reference population 'gender': expected a weight for every observed group, found none for 'female'"
    )


def test_npmi_by_hand():
    cells, tests = cooccurrence(LABELS, CLASSES, TABLE, ATTRS)
    # gender, known samples only (N = 9, row 9 dropped):
    #   male:   labels 0,0,0,0,1,1 -> cat 4, dog 2;  female: labels 1,0,1 -> cat 1, dog 2
    #   p(cat, male) = 4/9, p(cat) = 5/9, p(male) = 6/9
    #   pmi = ln( (4/9) / (5/9 * 6/9) ) = ln(36/30) = ln 1.2
    #   npmi = ln 1.2 / -ln(4/9)
    c = row(cells, grouping="gender", **{"class": "cat"}, group="male")
    assert c["n"] == 4
    assert c["pmi"] == pytest.approx(math.log(1.2))
    assert c["npmi"] == pytest.approx(math.log(1.2) / -math.log(4 / 9))
    #   p(dog, female) = 2/9, p(dog) = 4/9, p(female) = 3/9 -> pmi = ln((2/9)/(12/81)) = ln 1.5
    d = row(cells, grouping="gender", **{"class": "dog"}, group="female")
    assert d["npmi"] == pytest.approx(math.log(1.5) / -math.log(2 / 9))
    # chi-square of independence on [[4, 1], [2, 2]] (cat/dog x male/female), no continuity correction:
    #   expected male col: 6*5/9 = 10/3, 6*4/9 = 8/3; female: 5/3, 4/3
    #   X2 = (4-10/3)^2/(10/3) + (2-8/3)^2/(8/3) + (1-5/3)^2/(5/3) + (2-4/3)^2/(4/3)
    #      = 0.1333 + 0.1667 + 0.2667 + 0.3333 = 0.9
    t = row(tests, grouping="gender")
    assert t["statistic"] == pytest.approx(0.9)
    assert t["dof"] == 1
    assert t["cramers_v"] == pytest.approx(math.sqrt(0.9 / 9))
    assert t["min_expected"] == pytest.approx(4 / 3)


def test_npmi_limits():
    t = pd.DataFrame({"a": ["x", "x", "y", "y"]})
    cells, _ = cooccurrence([0, 0, 1, 1], ["p", "q"], t, [Attribute("a")])
    # perfect association: p(p, x) = 1/2, p(p) = p(x) = 1/2 -> pmi = ln 2, npmi = ln 2 / ln 2 = 1
    assert row(cells, **{"class": "p"}, group="x")["npmi"] == pytest.approx(1.0)
    # never together -> -1
    assert row(cells, **{"class": "p"}, group="y")["npmi"] == -1.0
    # independence -> 0: each class equally in each group
    cells, tests = cooccurrence([0, 1, 0, 1], ["p", "q"], t, [Attribute("a")])
    assert cells["npmi"].abs().max() == pytest.approx(0.0)
    assert tests["statistic"].iloc[0] == pytest.approx(0.0)


def test_summaries_and_kruskal():
    values = pd.DataFrame({"brightness": np.arange(10, dtype=float)})
    summary, tests = summarise_by_group(values, TABLE, ATTRS)
    # male rows 0..5 -> values 0..5: mean 2.5, median 2.5, sd sqrt(17.5/5) = sqrt(3.5)
    m = row(summary, grouping="gender", group="male")
    assert (m["n"], m["mean"], m["median"]) == (6, 2.5, 2.5)
    assert m["std"] == pytest.approx(math.sqrt(3.5))
    f = row(summary, grouping="gender", group="female")  # rows 6, 7, 8
    assert (f["min"], f["max"]) == (6.0, 8.0)
    kw = row(tests, grouping="gender")
    assert kw["p_value"] == pytest.approx(sps.kruskal(np.arange(6.0), np.array([6.0, 7, 8])).pvalue)


def test_box_geometry_by_hand():
    boxes = pd.DataFrame({
        "x1": [0, 40, 0], "y1": [0, 40, 0], "x2": [100, 60, 20], "y2": [100, 60, 10],
        "image_width": [100, 100, 200], "image_height": [100, 100, 100],
    })
    g = box_geometry(boxes)
    # whole image: area 1, centred; 20x20 in the middle: area 400/10000 = 0.04, size 0.2, centred
    assert g["box_area_fraction"].tolist()[:2] == pytest.approx([1.0, 0.04])
    assert g["box_size"].iloc[1] == pytest.approx(0.2)
    assert g["centre_distance"].tolist()[:2] == pytest.approx([0.0, 0.0])
    # 20x10 box at the top-left of 200x100: centre (10, 5), image centre (100, 50)
    # distance = hypot(90, 45) / (hypot(200, 100) / 2) = 100.62 / 111.80 = 0.9
    assert g["centre_distance"].iloc[2] == pytest.approx(math.hypot(90, 45) / (math.hypot(200, 100) / 2))
    assert g["box_area_fraction"].iloc[2] == pytest.approx(200 / 20000)
    # per group, as REVISE: the summary engine takes the box table with the person's attributes
    boxes["gender"] = ["male", "female", "female"]
    summary, _ = summarise_by_group(g, boxes, [Attribute("gender")])
    assert row(summary, group="female", statistic="box_size")["n"] == 2
    with pytest.raises(StatsInputError, match=r"boxes: row 0: expected x2 > x1"):
        box_geometry(boxes.assign(x2=[0, 60, 20]))


def test_compare_composition_by_hand():
    train = pd.DataFrame({"skin": ["I"] * 9 + ["V"] * 1})   # 90% lighter
    test = pd.DataFrame({"skin": ["I"] * 5 + ["V"] * 5})    # 50% lighter
    groups, tests = compare_composition(train, test, [Attribute("skin", scale="fitzpatrick")],
                                        names=("train", "test"))
    d = row(groups, group="darker")
    assert (d["n_train"], d["share_train"], d["n_test"], d["share_test"]) == (1, 0.1, 5, 0.5)
    assert d["difference"] == pytest.approx(0.4)
    # [[9, 1], [5, 5]]: row totals 10, 10; columns 14, 6; expected 7, 3, 7, 3
    # X2 = 4/7 + 4/3 + 4/7 + 4/3 = 3.8095
    assert tests["statistic"].iloc[0] == pytest.approx(8 / 7 + 8 / 3)
