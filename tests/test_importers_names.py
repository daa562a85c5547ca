"""Property tests of the UTKFace file-name parser (Hypothesis; skipped, saying why, where it is not installed)."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the property tests of the UTKFace name parser need hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from audit.importers.utkface import MalformedName, parse_name  # noqa: E402


@given(age=st.integers(0, 130), gender=st.sampled_from([0, 1]), race=st.integers(0, 4),
       when=st.from_regex(r"\A[0-9]{17}\Z"), chip=st.booleans())
def test_utkface_name_parser_round_trips(age, gender, race, when, chip):
    name = f"{age}_{gender}_{race}_{when}.jpg" + (".chip.jpg" if chip else "")
    face = parse_name(name)
    assert (face.age, face.gender, face.race, face.datetime) == (
        age, ["Male", "Female"][gender], ["White", "Black", "Asian", "Indian", "Others"][race], when)


@given(fields=st.lists(st.from_regex(r"\A[0-9]{1,4}\Z"), min_size=1, max_size=6).filter(lambda f: len(f) != 4))
def test_utkface_name_parser_rejects_a_wrong_field_count(fields):
    with pytest.raises(MalformedName, match=f"expected 4 fields age_gender_race_datetime, found {len(fields)}"):
        parse_name("_".join(fields) + ".jpg.chip.jpg")
