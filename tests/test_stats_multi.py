"""Attributes with overlapping groups (multi=True), e.g. every Monk tone an annotator chose."""

import numpy as np
import pandas as pd
import pytest

from audit.errors import StatsInputError
from audit.stats import Attribute, audit_classification, audit_ratio_metrics

# Four people, one per image.
#   person  tones voted  lighter(1-3)?  darker(8-10)?  matched
#   0       {1, 2}       yes            no             1
#   1       {2, 3, 4}    yes            no             0
#   2       {3, 8}       yes            yes            1
#   3       {}           unknown                       1
PEOPLE = pd.DataFrame({
    "tones": [[1, 2], (2, 3, 4), {3, 8}, []],
    "gender": ["f", "m", "f", "m"],
    "m": [1.0, 0.0, 1.0, 1.0],
    "t": [1.0] * 4,
})


def _audit(bins, **kw):
    attrs = [Attribute("tones", scale="monk", bins=bins, multi=True), Attribute("gender")]
    return audit_ratio_metrics(statistics=PEOPLE, metrics={"recall": [("m", "t")]}, groups=PEOPLE[["tones", "gender"]],
                               attributes=attrs, clusters=np.arange(4), n_boot=50, min_group_size=1, **kw)


def test_any_vote_groups_overlap():
    bins = {"lighter": [1, 2, 3], "middle": [4, 5, 6, 7], "darker": [8, 9, 10]}
    result = _audit(bins, intersections=[("tones", "gender")])
    v = lambda g, grouping="tones": result.value(metric="recall", grouping=grouping, group=g)  # noqa: E731
    assert v("lighter") == pytest.approx(2 / 3)  # persons 0, 1, 2: matched 1 + 0 + 1
    assert v("middle") == 0.0  # person 1 only
    assert v("darker") == 1.0  # person 2 only
    assert v("unknown") == 1.0  # person 3 voted nothing
    assert result.value(metric="recall") == pytest.approx(3 / 4)  # overall counts each person once
    sizes = result.groups.query("grouping == 'tones'").set_index("group")["n"].to_dict()
    assert sizes == {"lighter": 3, "middle": 1, "darker": 1, "unknown": 1}
    # intersections: person 2 (f) is in lighter × f and darker × f
    assert v("lighter × f", "tones × gender") == 1.0 and v("darker × f", "tones × gender") == 1.0
    assert v("lighter × m", "tones × gender") == 0.0


def test_classification_refuses_multi_attributes():
    with pytest.raises(StatsInputError, match="multi attributes"):
        audit_classification(y_true=[0, 1], y_pred=[0, 1], groups=pd.DataFrame({"a": [[1], [2]]}), classes=["x", "y"],
                             attributes=[Attribute("a", multi=True)], n_boot=0, n_perm=0)
