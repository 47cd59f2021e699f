"""The subgroup-effects structure: the rule that picks it and the line that states it.

Unit tier: specs only, and hand-made draws (no sampling).
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from bayes_poem.spec import ModelSpec
from bayes_poem.structure import (
    default_subgroup_effects,
    recorded_line,
    structure_line,
)
from bayes_poem.table import load_table
from tests.helpers import fake_moderator_fit


def _table(n_subgroups: int):
    rows = []
    for s in range(6):
        for d in range(n_subgroups):
            rows.append({"study": f"S{s}", "subgroup": f"g{d}", "outcome": "cs",
                         "events": 3 + (s + d) % 4, "total": 10})
    return load_table(pd.DataFrame(rows), source="<structure test>")


@pytest.mark.parametrize(("n", "expected"), [(1, "none"), (2, "fixed"), (3, "random"),
                                             (5, "random")])
def test_the_rule_by_number_of_subgroups(n, expected):
    spec = ModelSpec.from_table(_table(n), "cs")
    assert default_subgroup_effects(n) == expected == spec.subgroup_effects
    assert spec.subgroup_effects_by_default


def test_the_line_states_structure_and_reason():
    spec = ModelSpec.from_table(_table(3), "cs")
    assert structure_line(spec) == (
        "Subgroup effects: random (partially pooled), chosen because 3 subgroups >= 3; "
        "set [model] subgroup_effects to change | study effects: random, one tau for all "
        "subgroups")
    two = structure_line(ModelSpec.from_table(_table(2), "cs"))
    assert two.startswith("Subgroup effects: fixed (unpooled, sum-to-zero), chosen because "
                          "2 subgroups < 3;")
    by_subgroup = ModelSpec.from_table(_table(3), "cs", study_heterogeneity="by_subgroup")
    assert structure_line(by_subgroup).endswith("study effects: random, a tau per subgroup")


def test_a_structure_set_by_the_spec_says_so():
    spec = ModelSpec.from_table(_table(3), "cs", subgroup_effects="fixed")
    assert not spec.subgroup_effects_by_default
    assert structure_line(spec).startswith(
        "Subgroup effects: fixed (unpooled, sum-to-zero), as set by [model] subgroup_effects |")
    assert "as set by" in structure_line(ModelSpec.from_table(_table(3), "cs").with_options(
        subgroup_effects="fixed"))


def test_the_reason_is_no_part_of_the_model():
    chosen = ModelSpec.from_table(_table(3), "cs")
    given = ModelSpec.from_table(_table(3), "cs", subgroup_effects="random")
    assert chosen.subgroup_effects_by_default and not given.subgroup_effects_by_default
    flag = {f.name: f for f in dataclasses.fields(ModelSpec)}["subgroup_effects_by_default"]
    assert not flag.compare and not flag.repr
    # variants that keep the structure keep its reason
    assert chosen.without_study("S0").subgroup_effects_by_default
    assert chosen.with_options(study_effects="common").subgroup_effects_by_default
    # ... unless the rule would not pick it for the variant's data
    two = chosen.with_table(_table(3).with_subgroups(["g0", "g1"]))
    assert two.subgroup_effects == "random"
    assert "random (partially pooled), as set by" in structure_line(two)


def test_the_summary_prints_the_line_and_a_stored_line_wins():
    spec = ModelSpec.from_table(_table(3), "cs")
    fit = fake_moderator_fit(spec)
    assert structure_line(spec) in fit.summary().splitlines()
    stored = "Subgroup effects: random (partially pooled), chosen because 9 subgroups >= 3"
    assert recorded_line(spec, {"structure": stored}) == stored
    assert recorded_line(spec, {}) == structure_line(spec)
