"""Class 4 of issue 9: rerunning a results directory's resolved spec.toml repeats the
analysis byte for byte, whatever the layout of the input rows.

The root: a model's rows are in a canonical order (stably grouped by the subgroup
order, ``ModelSpec.from_table``), so a spec with or without an explicit
``subgroups`` list is the same model with the same data hash. The tier-1 tests
check that for many layouts without sampling (same buffer, same data hash); the
tier-2 tests run ``bayes-poem run`` twice and once ``report``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from bayes_poem.backends import compiled
from bayes_poem.specfile import load_spec
from tests.helpers import run_cli

SAMPLER = "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 7\n"

ROWS = [  # study, subgroup, events, total, quality, year
    ("A", "type_iii", 18, 20, "good", 2015), ("A", "jackhammer", 4, 6, "good", 2015),
    ("B", "type_iii", 15, 15, "fair", 2016), ("C", "jackhammer", 0, 3, "good", 2017),
    ("D", "des", 7, 10, "fair", 2018), ("D", "type_iii", 9, 12, "fair", 2018),
    ("E", "jackhammer", 5, 9, "good", 2019), ("E", "des", 3, 4, "good", 2019),
    ("F", "type_iii", 11, 14, "fair", 2020),
]


def _csv(rows, *, subgroup: bool = True, covariates: bool = False,
         outcomes: tuple[str, ...] = ("cs",)) -> str:
    header = ["study", *(["subgroup"] if subgroup else []), "outcome", "events", "total",
              *(["quality", "year"] if covariates else [])]
    lines = [",".join(header)]
    for k, outcome in enumerate(outcomes):
        for study, sub, events, total, quality, year in rows:
            cells = [study, *([sub] if subgroup else []), outcome, str(max(events - k, 0)),
                     str(total), *([quality, str(year)] if covariates else [])]
            lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _interleave(rows):
    """Rows ordered so that no subgroup's rows are contiguous."""
    by_sub: dict[str, list] = {}
    for row in rows:
        by_sub.setdefault(row[1], []).append(row)
    out, queues = [], list(by_sub.values())
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


def _single_group(rows):
    seen, out = set(), []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


# name -> (csv text, spec text without [sampler]); data in "d.csv" next to the spec.
LAYOUTS = {
    "interleaved": (_csv(_interleave(ROWS)), '[data]\npath = "d.csv"\noutcome = "cs"\n'),
    "subgroups_in_other_order": (
        _csv(_interleave(ROWS)),
        '[data]\npath = "d.csv"\noutcome = "cs"\nsubgroups = ["des", "jackhammer", "type_iii"]\n'
        '[[contrasts]]\na = "jackhammer"\nb = "des"\nmargin = 0.30000000000000004\n'
        "ratio_margin = 1.1\nodds_ratio_margin = 0.7\n"),
    "no_subgroup_column": (_csv(_single_group(ROWS), subgroup=False),
                           '[data]\npath = "d.csv"\noutcome = "cs"\n'),
    "covariates_weights_sensitivity": (
        _csv(list(reversed(ROWS)), covariates=True, outcomes=("cs", "ae")),
        'title = "Rerun ü | \\"quoted\\""\n'
        '[data]\npath = "./sub/../d.csv"\noutcome = "ae"\nsubgroups = ["jackhammer", "type_iii"]\n'
        '[model]\nsubgroup_effects = "fixed"\n'
        '[priors.tau]\ndist = "HalfCauchy"\nbeta = 0.7071067811865476\n'
        '[summary]\ninterval = "eti"\nprob = 0.9\nweights = { jackhammer = 0.1, type_iii = 0.2 }\n'
        '[sensitivity]\nsubsets = [{ name = "good", column = "quality", values = ["good"] }]\n'
        'psens = false\n'),
    "dataset": ("", '[data]\ndataset = "sed_synthetic"\noutcome = "adverse_event"\n'
                '[[contrasts]]\na = "des"\nb = "type_iii"\nquantity = "p_new"\n'),
    "dataset_subgroup_subset": ("", '[data]\ndataset = "nielweise2007"\n'
                                'outcome = "catheter_infection"\nsubgroups = ["control"]\n'),
}


def _write(tmp_path: Path, layout: str) -> Path:
    csv_text, spec_text = LAYOUTS[layout]
    (tmp_path / "sub").mkdir(exist_ok=True)
    (tmp_path / "d.csv").write_text(csv_text)
    spec = tmp_path / f"{layout}.toml"
    spec.write_text(spec_text + SAMPLER)
    return spec


def _rerun_spec(tmp_path: Path, spec: Path) -> Path:
    """The resolved spec.toml of ``spec``, written without fitting (as 'run' writes it)."""
    analysis = load_spec(spec)
    resolved = tmp_path / "resolved" / "spec.toml"
    resolved.parent.mkdir(exist_ok=True)
    resolved.write_text(analysis.resolved_toml(analysis.model_spec()))
    return resolved


# ---------------------------------------------------------------------- tier 1: no sampling
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_class4_resolved_spec_is_the_same_model(tmp_path, layout):
    spec_path = _write(tmp_path, layout)
    original = load_spec(spec_path)
    model = original.model_spec()
    rerun = load_spec(_rerun_spec(tmp_path, spec_path))
    again = rerun.model_spec()
    assert again.table.data_hash() == model.table.data_hash()
    assert again.row_labels == model.row_labels
    np.testing.assert_array_equal(compiled.density_buffer(again), compiled.density_buffer(model))
    assert rerun.resolved_toml(again) == original.resolved_toml(model)  # a fixed point
    assert rerun.contrasts == original.contrasts and rerun.weights == original.weights
    assert rerun.sampler == original.sampler and rerun.interval == original.interval
    assert rerun.sensitivity == original.sensitivity


@pytest.mark.parametrize("seed", range(12))
def test_class4_row_order_is_canonical_for_any_input_order(tmp_path, seed):
    """Shuffled rows: with and without an explicit subgroup list, the same model."""
    rng = np.random.default_rng(seed)
    rows = [ROWS[i] for i in rng.permutation(len(ROWS))]
    (tmp_path / "d.csv").write_text(_csv(rows, covariates=bool(seed % 2)))
    implicit = tmp_path / "implicit.toml"
    implicit.write_text('[data]\npath = "d.csv"\noutcome = "cs"\n')
    model = load_spec(implicit).model_spec()
    order = list(model.subgroups)
    frame = model.table.frame
    positions = [order.index(s) for s in frame["subgroup"]]
    assert positions == sorted(positions)  # grouped by subgroup, in the subgroup order
    explicit = tmp_path / "explicit.toml"
    explicit.write_text(f'[data]\npath = "d.csv"\noutcome = "cs"\nsubgroups = {order!r}\n'
                        .replace("'", '"'))
    same = load_spec(explicit).model_spec()
    assert same.table.data_hash() == model.table.data_hash()
    np.testing.assert_array_equal(compiled.density_buffer(same), compiled.density_buffer(model))
    rerun = load_spec(_rerun_spec(tmp_path, implicit)).model_spec()
    np.testing.assert_array_equal(compiled.density_buffer(rerun), compiled.density_buffer(model))


def test_class4_resolved_spec_writes_every_setting(tmp_path):
    spec_path = _write(tmp_path, "covariates_weights_sensitivity")
    analysis = load_spec(spec_path)
    resolved = tomllib.loads(analysis.resolved_toml(analysis.model_spec()))
    settings = analysis.sampler.to_dict()
    settings.pop("progress")
    # target_accept unset (adaptive) stays unset before a fit; `run` writes the
    # target its fit used (tests/test_adaptive_target.py)
    assert settings.pop("target_accept") is None
    assert resolved["sampler"] == settings
    assert Path(resolved["data"]["path"]).is_absolute()
    assert resolved["data"]["subgroups"] == ["jackhammer", "type_iii"]
    assert resolved["priors"]["tau"] == {"dist": "HalfCauchy", "beta": 0.7071067811865476}
    assert resolved["summary"] == {"interval": "eti", "prob": 0.9,
                                   "weights": {"jackhammer": 0.1, "type_iii": 0.2}}
    assert resolved["sensitivity"] == analysis.sensitivity


# ---------------------------------------------------------------------- tier 2: the CLI
@pytest.mark.mcmc
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_class4_rerun_of_results_spec_repeats_byte_for_byte(tmp_path, layout, capsys):
    spec = _write(tmp_path, layout)
    first, second = tmp_path / "first", tmp_path / "second"
    code, _, err = run_cli(["run", spec, "--out", first, "--quiet"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["run", first / "spec.toml", "--out", second, "--quiet"], capsys)
    assert code == 0, err
    for name in ("summary.csv", "contrasts.csv", "heterogeneity.csv", "study_estimates.csv",
                 "spec.toml"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.mcmc
def test_class4_report_accepts_the_untouched_results_of_an_interleaved_csv(tmp_path, capsys):
    spec = _write(tmp_path, "interleaved")
    results = tmp_path / "results"
    code, _, err = run_cli(["run", spec, "--out", results, "--quiet"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["report", results, "--out", tmp_path / "rep", "--quiet"],
                             capsys)
    assert code == 0, err
    assert (tmp_path / "rep" / "report.html").is_file()
