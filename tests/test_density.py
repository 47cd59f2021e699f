"""Tier 1: the compiled density equals the PyMC reference model, value and gradient."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import binom

from bayes_poem import ModelSpec, load_dataset
from bayes_poem.backends import compiled, density
from bayes_poem.dims import ROW, STUDY, SUBGROUP
from tests.helpers import pymc_logp_dlogp

PRIOR_SETS = {
    "defaults": {},
    "heavy_tails": {
        "mu": {"dist": "StudentT", "nu": 4, "mu": 0.5, "sigma": 2},
        "tau": {"dist": "HalfStudentT", "nu": 3, "sigma": 0.7},
        "sigma_subgroup": {"dist": "HalfCauchy", "beta": 0.5},
    },
    "exponential": {
        "tau": {"dist": "Exponential", "lam": 2.0},
        "sigma_subgroup": {"dist": "Exponential", "lam": 1.0},
        "alpha": {"dist": "Normal", "sigma": 0.8},
        "phi": {"dist": "Exponential", "lam": 3.0},
    },
    "turner": {
        "tau": {"dist": "LogNormalTau2", "mu": -1.69, "sigma": 1.68},
        "sigma_subgroup": {"dist": "LogNormalTau2", "mu": -1.0, "sigma": 1.0},
        "phi": {"dist": "HalfStudentT", "nu": 3, "sigma": 0.4},
    },
}
STRUCTURES = [(sg, st) for sg in ("random", "fixed", "none") for st in ("random", "common")]


def _point(spec, x):
    point, k = {}, 0
    for name, shape in compiled.unconstrained_layout(spec):
        size = int(np.prod(shape))
        point[name] = x[k:k + size].reshape(shape)
        k += size
    return point


def _check_against_pymc(spec, n_points=4, seed=0, rtol=1e-10):
    model = spec.build()
    assert [v.name for v in model.value_vars] == [n for n, _ in compiled.unconstrained_layout(spec)]
    logp_dlogp = pymc_logp_dlogp(model)
    buffer = compiled.density_buffer(spec)
    n_dim = int(buffer[density.H_NDIM])
    rng = np.random.default_rng(seed)
    arrays = spec.arrays()
    centre = np.log((arrays["events"].sum() + 0.5) / (arrays["total"] - arrays["events"]
                                                       + 0.5).sum())
    for _ in range(n_points):
        # Plausible points: at extreme ones PyMC's binomial underflows to -inf.
        x = rng.normal(scale=0.8, size=n_dim)
        x[0] += centre
        grad = np.zeros(n_dim)
        value = density.logp_grad(x, buffer, grad)
        expected, expected_grad = logp_dlogp(_point(spec, x))
        np.testing.assert_allclose(value, expected, rtol=rtol)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("structure", STRUCTURES, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("priors", PRIOR_SETS, ids=str)
def test_density_matches_pymc(sed_table, structure, priors):
    subgroup_effects, study_effects = structure
    spec = ModelSpec.from_table(sed_table, "clinical_success",
                                subgroup_effects=subgroup_effects,
                                study_effects=study_effects, priors=PRIOR_SETS[priors])
    _check_against_pymc(spec)


@pytest.mark.parametrize("subgroup_effects", ["random", "fixed", "none"])
@pytest.mark.parametrize("priors", ["defaults", "turner"])
def test_beta_binomial_density_matches_pymc(sed_table, subgroup_effects, priors):
    spec = ModelSpec.from_table(sed_table, "adverse_event", subgroup_effects=subgroup_effects,
                                likelihood="beta_binomial", priors=PRIOR_SETS[priors])
    assert spec.study_effects == "common"
    _check_against_pymc(spec)


def test_zeroed_rows_match_pymc_and_drop_out(sed_spec):
    spec = sed_spec.leave_out("SYN-06").with_options(likelihood="beta_binomial")
    assert spec.arrays()["total"][list(spec.zeroed_rows)].sum() == 0
    _check_against_pymc(spec)


def test_density_matches_pymc_with_zero_and_all_event_rows():
    table = load_dataset("nielweise2007")  # several 0-event arms
    spec = ModelSpec.from_table(table, subgroup_effects="fixed")
    assert (spec.arrays()["events"] == 0).any()
    _check_against_pymc(spec)


def test_density_matches_pymc_single_group_rat_tumors():
    spec = ModelSpec.from_table(load_dataset("rat_tumors"))
    assert spec.subgroup_effects == "none"
    _check_against_pymc(spec)


def _check_finite_differences(spec: ModelSpec, seed: int) -> None:
    """The compiled gradient against central differences (h = 1e-6) at a random point."""
    buffer = compiled.density_buffer(spec)
    n_dim = int(buffer[density.H_NDIM])
    x = np.random.default_rng(seed).normal(size=n_dim)
    grad = np.zeros(n_dim)
    density.logp_grad(x, buffer, grad)
    h = 1e-6
    for k in range(n_dim):
        e = np.zeros(n_dim)
        e[k] = h
        up = density.logp_grad(x + e, buffer, np.zeros(n_dim))
        down = density.logp_grad(x - e, buffer, np.zeros(n_dim))
        assert abs((up - down) / (2 * h) - grad[k]) < 1e-5 * max(1.0, abs(grad[k]))


def test_gradient_matches_finite_differences(sed_spec):
    _check_finite_differences(sed_spec, seed=3)


def test_zero_total_rows_contribute_nothing(sed_spec):
    """Zeroing a row's counts removes exactly its binomial term (used for leave-one-out)."""
    buffer = np.array(compiled.density_buffer(sed_spec))
    n_rows = int(buffer[density.H_ROWS])
    x = np.random.default_rng(4).normal(size=int(buffer[density.H_NDIM]))
    full = density.logp_grad(x, buffer, np.zeros(x.size))

    arrays = sed_spec.arrays()
    n_studies, n_sub = len(sed_spec.studies), len(sed_spec.subgroups)
    tau, w = np.exp(x[1]), x[2:2 + n_studies]
    alpha = np.exp(x[2 + n_studies]) * x[3 + n_studies:3 + n_studies + n_sub]
    eta = x[0] + alpha[arrays["subgroup_idx"][0]] + tau * w[arrays["study_idx"][0]]
    term = binom.logpmf(arrays["events"][0], arrays["total"][0], expit(eta))

    o = density.HEADER
    for block in range(3):  # events, total, log binomial coefficient of row 0
        buffer[o + block * n_rows] = 0.0
    dropped = density.logp_grad(x, buffer, np.zeros(x.size))
    np.testing.assert_allclose(full - dropped, term, rtol=1e-10)


def test_built_model_has_named_dims_only(sed_spec):
    model = sed_spec.build()
    dims = {d for var_dims in model.named_vars_to_dims.values() for d in var_dims}
    assert {STUDY, SUBGROUP, ROW} <= dims
    assert not any(d.endswith(("_dim_0", "_dim_1")) for d in dims)
    assert list(model.coords[STUDY]) == sed_spec.studies


def test_helmert_basis_is_orthonormal_and_sums_to_zero():
    for n in (2, 3, 4, 7):
        basis = density.helmert_basis(n)
        np.testing.assert_allclose(basis.T @ basis, np.eye(n - 1), atol=1e-12)
        np.testing.assert_allclose(basis.sum(axis=0), 0.0, atol=1e-12)


def test_extreme_points_give_non_finite_values_not_exceptions(sed_table):
    """A probability underflowing to 0 must not raise inside the C callback."""
    spec = ModelSpec.from_table(sed_table, "clinical_success", likelihood="beta_binomial")
    buffer = compiled.density_buffer(spec)
    x = np.zeros(int(buffer[density.H_NDIM]))
    x[0] = -800.0
    grad = np.zeros(x.size)
    value = density.logp_grad(x, buffer, grad)
    assert not np.isfinite(value) or not np.isfinite(grad).all()


# ---------------------------------------------------------------------- moderators
def moderator_table():
    """SYNTHETIC sed_synthetic plus a 3-level categorical ``era`` and a row-level ``volume``."""
    from bayes_poem import load_table

    table = load_dataset("sed_synthetic")
    frame = table.frame.copy()
    year = frame["year"].astype(int)
    frame["era"] = np.where(year <= 2013, "early", np.where(year <= 2016, "mid", "late"))
    # Unscaled in MODERATOR_SETS: a small range keeps the random test points plausible.
    frame["volume"] = (frame["total"] % 5 + 0.5 * (np.arange(len(frame)) % 3)).astype(str)
    return load_table(frame, source="sed_synthetic+era", metadata=table.metadata)


MODERATOR_SETS = {  # name -> (moderators, with_moderators keyword arguments)
    "one_numeric": (["year"], {}),
    "two_numeric_categorical": (["year", "quality"], {"reference": {"quality": "good"}}),
    "categorical_3_levels_row_level": (["era", "volume"],
                                       {"reference": {"era": "mid"}, "scale": False}),
}
# Two prior sets per structure x moderator set: defaults (with another beta scale)
# and one of the other families, in turn.
MODERATOR_PRIORS = [(name, k) for k, name in enumerate(MODERATOR_SETS)]


def _moderator_spec(table, moderators, *, priors="defaults", **options):
    names, kwargs = MODERATOR_SETS[moderators]
    spec = ModelSpec.from_table(table, options.pop("outcome", "clinical_success"),
                                priors=PRIOR_SETS[priors], **options)
    return spec.with_moderators(*names, **kwargs)


@pytest.fixture(scope="module")
def mod_table():
    return moderator_table()


@pytest.mark.parametrize("structure", STRUCTURES, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("moderators", MODERATOR_SETS, ids=str)
@pytest.mark.parametrize("prior_kind", ["defaults", "other"])
def test_density_with_moderators_matches_pymc(mod_table, structure, moderators, prior_kind):
    subgroup_effects, study_effects = structure
    others = ["heavy_tails", "exponential", "turner"]
    k = list(MODERATOR_SETS).index(moderators) + STRUCTURES.index(structure)
    priors = "defaults" if prior_kind == "defaults" else others[k % 3]
    spec = _moderator_spec(mod_table, moderators, priors=priors,
                           subgroup_effects=subgroup_effects, study_effects=study_effects)
    if prior_kind == "defaults":
        spec = spec.with_priors(beta={"dist": "Normal", "sigma": 0.7})
    assert compiled.unconstrained_layout(spec)[-1] == ("beta", (len(spec.moderator_terms),))
    _check_against_pymc(spec)


@pytest.mark.parametrize("subgroup_effects", ["random", "fixed", "none"])
@pytest.mark.parametrize("moderators", MODERATOR_SETS, ids=str)
def test_beta_binomial_density_with_moderators_matches_pymc(mod_table, subgroup_effects,
                                                            moderators):
    priors = "turner" if moderators == "one_numeric" else "defaults"
    spec = _moderator_spec(mod_table, moderators, priors=priors, outcome="adverse_event",
                           subgroup_effects=subgroup_effects, likelihood="beta_binomial")
    _check_against_pymc(spec)


def test_moderators_with_zeroed_rows_match_pymc(mod_table):
    spec = _moderator_spec(mod_table, "two_numeric_categorical").leave_out("SYN-06")
    np.testing.assert_array_equal(spec.design(), _moderator_spec(
        mod_table, "two_numeric_categorical").design())  # the design is fixed at creation
    _check_against_pymc(spec)
    _check_against_pymc(spec.only_where("quality", ["good"]))


@pytest.mark.parametrize("moderators", MODERATOR_SETS, ids=str)
def test_moderator_gradient_matches_finite_differences(mod_table, moderators):
    spec = _moderator_spec(mod_table, moderators)
    _check_finite_differences(spec, seed=5)


def test_moderator_expand_appends_beta(mod_table):
    spec = _moderator_spec(mod_table, "two_numeric_categorical")
    buffer = compiled.density_buffer(spec)
    x = np.random.default_rng(6).normal(size=int(buffer[density.H_NDIM]))
    out = np.zeros(int(buffer[density.H_NEXPANDED]))
    assert density.expand(x, buffer, out) == out.size
    n_terms = len(spec.moderator_terms)
    np.testing.assert_array_equal(out[-n_terms:], x[-n_terms:])
    assert compiled.expanded_layout(spec)[-1] == ("beta", (n_terms,), ("moderator",))


# ---------------------------------------------------------------------- tau[subgroup]
@pytest.mark.parametrize("subgroup_effects", ["random", "fixed"])
@pytest.mark.parametrize("priors", PRIOR_SETS, ids=str)
def test_by_subgroup_heterogeneity_matches_pymc(sed_table, subgroup_effects, priors):
    spec = ModelSpec.from_table(sed_table, "clinical_success", subgroup_effects=subgroup_effects,
                                priors=PRIOR_SETS[priors], study_heterogeneity="by_subgroup")
    assert compiled.unconstrained_layout(spec)[1] == ("tau_log__", (len(spec.subgroups),))
    assert compiled.density_buffer(spec)[density.H_STUDY_MODE] == density.STUDY_BY_SUBGROUP
    # PyMC's HalfStudentT log-density is off by ~2e-8 per term (scipy agrees with the
    # kernel to 1e-15); with D such terms the value tolerance is 1e-9.
    _check_against_pymc(spec, rtol=1e-9)


@pytest.mark.parametrize("moderators", MODERATOR_SETS, ids=str)
def test_by_subgroup_heterogeneity_with_moderators_matches_pymc(mod_table, moderators):
    spec = _moderator_spec(mod_table, moderators, priors="turner",
                           study_heterogeneity="by_subgroup")
    _check_against_pymc(spec)
    _check_against_pymc(spec.leave_out("SYN-06"))


def test_by_subgroup_gradient_matches_finite_differences(mod_table):
    spec = _moderator_spec(mod_table, "one_numeric", study_heterogeneity="by_subgroup",
                           subgroup_effects="fixed")
    _check_finite_differences(spec, seed=7)


def test_by_subgroup_expand_stores_tau_per_subgroup_and_no_u(sed_table):
    spec = ModelSpec.from_table(sed_table, "clinical_success", study_heterogeneity="by_subgroup")
    buffer = compiled.density_buffer(spec)
    x = np.random.default_rng(8).normal(size=int(buffer[density.H_NDIM]))
    out = np.zeros(int(buffer[density.H_NEXPANDED]))
    assert density.expand(x, buffer, out) == out.size
    n_d, n_s = len(spec.subgroups), len(spec.studies)
    assert [n for n, _, _ in compiled.expanded_layout(spec)][:3] == ["mu", "tau", "w"]
    np.testing.assert_allclose(out[1:1 + n_d], np.exp(x[1:1 + n_d]))
    np.testing.assert_array_equal(out[1 + n_d:1 + n_d + n_s], x[1 + n_d:1 + n_d + n_s])
    assert "u" not in [n for n, _, _ in compiled.expanded_layout(spec)]


def test_common_heterogeneity_leaves_the_buffer_unchanged(sed_table, mod_table):
    """Option off: the buffer is byte-identical to the one built without the option."""
    for table, outcome in ((sed_table, "clinical_success"), (mod_table, "clinical_success")):
        spec = ModelSpec.from_table(table, outcome)
        same = ModelSpec.from_table(table, outcome, study_heterogeneity="common")
        assert compiled.density_buffer(spec).tobytes() == compiled.density_buffer(same).tobytes()
        assert compiled.density_buffer(spec)[density.H_STUDY_MODE] == density.STUDY_RANDOM
        assert (compiled.density_buffer(spec.with_options(study_heterogeneity="by_subgroup")
                .with_options(study_heterogeneity="common")).tobytes()
                == compiled.density_buffer(spec).tobytes())


@pytest.mark.parametrize("options", [
    {"likelihood": "beta_binomial"}, {"study_effects": "common"},
    {"subgroup_effects": "none"}, {"study_heterogeneity_value": "per_study"}])
def test_by_subgroup_heterogeneity_is_validated(sed_table, options):
    from bayes_poem.errors import SpecError

    value = options.pop("study_heterogeneity_value", "by_subgroup")
    with pytest.raises(SpecError, match="model.study_heterogeneity"):
        ModelSpec.from_table(sed_table, "clinical_success", study_heterogeneity=value, **options)


# ---------------------------------------------------------------------- cell effects
TAU_CELL_PRIORS = {  # every scale family the tau_cell prior allows
    "HalfNormal": {"dist": "HalfNormal", "sigma": 0.5},
    "HalfCauchy": {"dist": "HalfCauchy", "beta": 0.3},
    "HalfStudentT": {"dist": "HalfStudentT", "nu": 3, "sigma": 0.4},
    "Exponential": {"dist": "Exponential", "lam": 2.5},
    "LogNormalTau2": {"dist": "LogNormalTau2", "mu": -2.0, "sigma": 1.5},
}
# Every structure the kernel allows cell effects in: subgroups random/fixed x one tau or
# tau[subgroup] x without/with moderators. Each is checked with two tau_cell families in
# turn (16 PyMC graphs; every family in at least three structures), the defaults for the
# other priors, and the first family also with the other priors of PRIOR_SETS.
CELL_STRUCTURES = [(sg, het, mods) for sg in ("random", "fixed")
                   for het in ("common", "by_subgroup")
                   for mods in (None, "two_numeric_categorical")]
CELL_CASES = [(structure, family)
              for k, structure in enumerate(CELL_STRUCTURES)
              for family in (list(TAU_CELL_PRIORS)[k % 5], list(TAU_CELL_PRIORS)[(k + 2) % 5])]


def _cell_spec(table, subgroup_effects, heterogeneity, moderators, family="HalfNormal",
               priors="defaults"):
    merged = {**PRIOR_SETS[priors], "tau_cell": TAU_CELL_PRIORS[family]}
    spec = ModelSpec.from_table(table, "clinical_success", subgroup_effects=subgroup_effects,
                                study_heterogeneity=heterogeneity, cell_effects="random",
                                priors=merged)
    if moderators:
        names, kwargs = MODERATOR_SETS[moderators]
        spec = spec.with_moderators(*names, **kwargs)
    return spec


@pytest.mark.parametrize("case", CELL_CASES,
                         ids=lambda c: "-".join([*map(str, c[0]), c[1]]))
def test_cell_effects_match_pymc(mod_table, case):
    (subgroup_effects, heterogeneity, moderators), family = case
    spec = _cell_spec(mod_table, subgroup_effects, heterogeneity, moderators, family)
    layout = compiled.unconstrained_layout(spec)
    assert layout[-2:] == [("tau_cell_log__", ()), ("v", (len(spec.cell_labels),))]
    buffer = compiled.density_buffer(spec)
    assert buffer[density.H_CELLS] == len(spec.cell_labels)
    assert buffer[density.H_TAU_CELL_FAMILY] == density.SCALE_CODES[family]
    _check_against_pymc(spec, rtol=1e-9)  # PyMC's HalfStudentT: see tau[subgroup] above


@pytest.mark.parametrize("priors", ["heavy_tails", "exponential", "turner"])
def test_cell_effects_with_other_priors_match_pymc(mod_table, priors):
    _check_against_pymc(_cell_spec(mod_table, "random", "common", None, priors=priors),
                        rtol=1e-9)


@pytest.mark.parametrize("structure", CELL_STRUCTURES, ids=lambda s: "-".join(map(str, s)))
def test_cell_effects_gradient_matches_finite_differences(mod_table, structure):
    k = CELL_STRUCTURES.index(structure)
    spec = _cell_spec(mod_table, *structure, family=list(TAU_CELL_PRIORS)[k % 5])
    _check_finite_differences(spec, seed=10 + k)


def test_cell_effects_with_zeroed_rows_match_pymc(mod_table):
    """Zeroed rows keep their cells (the shape never changes); only v's prior remains."""
    spec = _cell_spec(mod_table, "random", "common", "two_numeric_categorical")
    left = spec.leave_out("SYN-06")
    assert left.cell_labels == spec.cell_labels
    _check_against_pymc(left)
    _check_against_pymc(spec.only_where("quality", ["good"]))


def test_cell_effects_expand_appends_tau_cell_v_and_u_cell(mod_table):
    spec = _cell_spec(mod_table, "fixed", "by_subgroup", "two_numeric_categorical")
    buffer = compiled.density_buffer(spec)
    x = np.random.default_rng(9).normal(size=int(buffer[density.H_NDIM]))
    out = np.zeros(int(buffer[density.H_NEXPANDED]))
    assert density.expand(x, buffer, out) == out.size
    n_c, n_terms = len(spec.cell_labels), len(spec.moderator_terms)
    names = [n for n, _, _ in compiled.expanded_layout(spec)]
    assert names[-4:] == ["beta", "tau_cell", "v", "u_cell"]
    assert compiled.expanded_layout(spec)[-1] == ("u_cell", (n_c,), ("cell",))
    tau_cell, v = np.exp(x[-n_c - 1]), x[-n_c:]
    np.testing.assert_array_equal(out[-2 * n_c - 1 - n_terms:-2 * n_c - 1],
                                  x[-n_c - 1 - n_terms:-n_c - 1])  # beta before the cells
    np.testing.assert_allclose(out[-2 * n_c - 1], tau_cell)
    np.testing.assert_array_equal(out[-2 * n_c:-n_c], v)
    np.testing.assert_allclose(out[-n_c:], tau_cell * v)
    # the PyMC model's stored variables in the same order and dims
    model = spec.build()
    assert model.named_vars_to_dims["u_cell"] == ("cell",)
    assert model.named_vars_to_dims["v"] == ("cell",)


def test_cell_labels_are_study_subgroup_pairs(sed_table):
    spec = ModelSpec.from_table(sed_table, "clinical_success", cell_effects="random")
    frame = spec.table.frame
    keys = [f"{s}:{d}" for s, d in zip(frame["study"], frame["subgroup"], strict=True)]
    expected = list(dict.fromkeys(keys))
    assert spec.cell_labels == expected and spec.coords["cell"] == expected
    idx = spec.arrays()["cell_idx"]
    assert [spec.cell_labels[c] for c in idx] == keys


def test_no_cell_effects_leave_the_buffer_body_unchanged(sed_table, mod_table):
    """Option off: no cell index, C = 0, and turning it on and off gives the same bytes."""
    for table in (sed_table, mod_table):
        spec = ModelSpec.from_table(table, "clinical_success")
        buffer = compiled.density_buffer(spec)
        assert buffer[density.H_CELLS] == 0 and "cell" not in spec.coords
        assert "tau_cell" not in spec.parameter_names()
        n_rows = int(buffer[density.H_ROWS])
        n_sub = int(buffer[density.H_SUBGROUPS])
        assert buffer.size == density.HEADER + 5 * n_rows + n_sub * (n_sub - 1)
        on = spec.with_options(cell_effects="random")
        assert compiled.density_buffer(on).size == buffer.size + n_rows
        assert (compiled.density_buffer(on.with_options(cell_effects="none")).tobytes()
                == buffer.tobytes())


@pytest.mark.parametrize("options", [
    {"likelihood": "beta_binomial"}, {"study_effects": "common"},
    {"subgroup_effects": "none"}, {"cell_effects_value": "fixed"}])
def test_cell_effects_are_validated(sed_table, options):
    from bayes_poem.errors import SpecError

    value = options.pop("cell_effects_value", "random")
    with pytest.raises(SpecError, match=r"^model\.cell_effects"):
        ModelSpec.from_table(sed_table, "clinical_success", cell_effects=value, **options)


def test_cell_effects_need_a_study_with_two_subgroups():
    from bayes_poem import load_table
    from bayes_poem.errors import SpecError

    table = load_dataset("sed_synthetic")
    frame = table.frame[table.frame["outcome"] == "clinical_success"].drop_duplicates(
        "study")  # one row (one subgroup) per study
    one = load_table(frame, source="one-subgroup-per-study")
    with pytest.raises(SpecError, match="model.cell_effects = 'random' needs a study with rows "
                                        "in two or more subgroups"):
        ModelSpec.from_table(one, "clinical_success", subgroup_effects="fixed",
                             cell_effects="random")
