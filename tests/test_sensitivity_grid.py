"""Crossed sensitivity grids, the default grid on the shipped specs, warm-started variants.

Unmarked tests build grids and render text (nothing is sampled); the ``mcmc``
ones fit: warm-started variants against cold fits (within Monte Carlo error),
and a crossed grid through the CLI.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

from bayes_poem import Prior, SpecError
from bayes_poem.cli import main
from bayes_poem.intervals import IntervalSpec
from bayes_poem.sampling import TARGET_LADDER, SamplerSettings
from bayes_poem.sensitivity import (
    CROSSED,
    MAIN,
    ROW_COLUMNS,
    WARM_TUNE,
    GridOptions,
    WarmStart,
    build_variants,
    fit_variant,
    plan_grid,
    run_sensitivity,
    spec_plan,
)
from bayes_poem.sensitivity_text import crossed_table
from bayes_poem.specfile import load_spec

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

ROOT = Path(__file__).resolve().parents[1]
TAUS = {"narrow": Prior("HalfNormal", {"sigma": 0.5}), "wide": Prior("HalfNormal", {"sigma": 2.0}),
        "cauchy": Prior("HalfCauchy", {"beta": 0.5})}
OFF = dict(turner=(), mu_priors={}, sigma_subgroup_priors={}, subgroup_effects=(),
           likelihoods=(), subsets=())
CROSS = GridOptions(tau_priors=TAUS, leave_one_out=True, cross=("tau_priors", "leave_one_out"),
                    **OFF)
SPEC_HEAD = ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
             'subgroups = ["type_iii", "des", "jackhammer", "unassigned"]\n')
OFF_TOML = ('turner = []\nmu_priors = []\nsigma_subgroup_priors = []\nsubgroup_effects = []\n'
            'likelihoods = []\nsubsets = []\n')


def test_crossing_two_axes_makes_their_product(sed_spec):
    plan = plan_grid(sed_spec, CROSS)
    variants = plan.variants
    assert len(variants) == 1 + 3 * len(sed_spec.studies)
    assert variants[0].name == MAIN and variants[0].coordinates == ()
    crossed = variants[1:]
    assert {v.group for v in crossed} == {CROSSED}
    first = crossed[0]
    assert first.name == f"narrow | without {sed_spec.studies[0]}"
    assert first.coordinates == (("tau_priors", "narrow"),
                                 ("leave_one_out", f"without {sed_spec.studies[0]}"))
    assert first.description == (f"tau ~ HalfNormal(sigma=0.5); study {sed_spec.studies[0]} "
                                 "left out (its counts zeroed)")
    # the variant is the main analysis with both changes
    expected = sed_spec.with_priors(tau=TAUS["narrow"]).leave_out(sed_spec.studies[0])
    assert first.spec.priors == expected.priors
    assert first.spec.zeroed_rows == expected.zeroed_rows
    assert plan.axes == (("tau_priors", 3), ("leave_one_out", len(sed_spec.studies)))
    assert plan.summary() == ("sensitivity grid: 25 variants: main + 24 crossed "
                              "(3 tau priors x 8 leave-one-out)")


def test_families_not_crossed_keep_their_own_variants(sed_spec):
    options = dataclasses.replace(CROSS, likelihoods=("beta_binomial",), mu_priors={
        "mu wide": Prior("Normal", {"mu": 0.0, "sigma": 3.0})})
    plan = plan_grid(sed_spec, options)
    groups = [v.group for v in plan.variants]
    assert groups.count("mu prior") == 1 and groups.count("likelihood") == 1
    assert groups.count(CROSSED) == 24 and "leave one out" not in groups
    assert plan.summary() == ("sensitivity grid: 27 variants: main + 1 mu prior + "
                              "1 likelihood + 24 crossed (3 tau priors x 8 leave-one-out)")


def test_three_axes_and_the_order_of_application(sed_spec):
    options = dataclasses.replace(
        CROSS, likelihoods=("beta_binomial",),
        cross=("leave_one_out", "likelihoods", "tau_priors"))
    variants = build_variants(sed_spec, options)[1:]
    assert len(variants) == 8 * 1 * 3
    v = variants[0]  # named in the order of `cross`, applied data last
    assert v.name == f"without {sed_spec.studies[0]} | beta-binomial | narrow"
    assert v.spec.likelihood == "beta_binomial" and v.spec.zeroed_rows


@pytest.mark.parametrize(("cross", "message"), [
    (["tau_priors"], "name at least two families to cross"),
    (["tau_priors", "tau_priors"], "'tau_priors' is listed twice"),
    (["tau_priors", "loo"], "'loo' is not a family of variants"),
    (["turner", "leave_one_out"], "'turner' presets are levels of the 'tau_priors' axis"),
    ("tau_priors", "must be a list of family names"),
    (["tau_priors", "mu_priors"], "'mu_priors' has no levels for this model"),
])
def test_bad_cross_is_one_line_at_check(tmp_path, capsys, cross, message):
    spec = tmp_path / "s.toml"
    value = f'"{cross}"' if isinstance(cross, str) else str(cross).replace("'", '"')
    spec.write_text(SPEC_HEAD + f"[sensitivity]\ncross = {value}\n"
                    'tau_priors = [{ dist = "HalfNormal", sigma = 0.5 }]\n' + OFF_TOML)
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sensitivity.cross" in err and message in err, err
    assert str(spec) in err


def test_tau_priors_cannot_be_crossed_with_the_common_effect_model(sed_spec):
    options = dataclasses.replace(CROSS, likelihoods=("common_effect",),
                                  cross=("tau_priors", "likelihoods"))
    with pytest.raises(SpecError, match="sensitivity.cross: 'tau_priors' cannot be crossed"):
        build_variants(sed_spec, options)


def test_spec_cross_builds_the_benchmark_grid():
    analysis = load_spec(ROOT / "benchmarks" / "sed_grid_24.toml")
    config, plan = spec_plan(analysis.sensitivity, analysis.model_spec(), analysis.source)
    assert config.grid.cross == ("tau_priors", "leave_one_out")
    assert plan.summary() == ("sensitivity grid: 25 variants: main + 24 crossed "
                              "(3 tau priors x 8 leave-one-out)")
    assert plan.notes == ()


def _one_outcome_specs() -> list[Path]:
    specs = []
    for path in sorted((ROOT / "models").glob("*.toml")):
        raw = tomllib.loads(path.read_text())
        if "analysis" not in raw:  # trial specs have no sensitivity grid
            specs.append(path)
    return specs


@pytest.mark.parametrize("path", _one_outcome_specs(), ids=lambda p: p.name)
def test_default_grid_of_every_shipped_spec_has_no_variant_bound_to_fail(path):
    """Every variant of every shipped spec's grid builds, and none leaves a subgroup
    without studies (such a variant is left out of the default, with a note)."""
    analysis = load_spec(path)
    if getattr(analysis, "is_joint", False):
        from bayes_poem.joint_sensitivity import build_rho_variants, parse_joint_sensitivity

        config = parse_joint_sensitivity(analysis.sensitivity, analysis.source)
        assert len(build_rho_variants(analysis.model_spec(), config)) > 1
        return
    _, plan = spec_plan(analysis.sensitivity, analysis.model_spec(), analysis.source)
    assert len(plan.variants) > 1
    for variant in plan.variants:
        if variant.spec.subgroup_effects != "none":
            assert variant.spec.subgroups_without_data() == [], variant.name
    assert not [n for n in plan.notes if "cannot be fitted" in n]


def test_default_quality_subset_is_left_out_with_a_note_on_the_sed_example():
    analysis = load_spec(ROOT / "models" / "sed_clinical_success.toml")
    _, plan = spec_plan(analysis.sensitivity, analysis.model_spec(), analysis.source)
    assert "good-quality studies only" not in {v.name for v in plan.variants}
    assert plan.notes == ("skipped the default variant 'good-quality studies only': "
                          "subgroup(s) des, jackhammer have no good-quality studies",)


def test_a_given_subset_that_cannot_be_fitted_is_said_before_sampling(sed_spec):
    options = dataclasses.replace(CROSS, cross=(), leave_one_out=False, tau_priors={},
                                  subsets=(("good only", "quality", ("good",)),))
    plan = plan_grid(sed_spec, options)
    assert plan.notes == ("variant 'good only' cannot be fitted: subgroup(s) des, "
                          "jackhammer have no studies in it (it will be a failed row)",)


def test_crossed_table_text():
    rows = []
    for tau in ("a", "b"):
        for loo in ("x", "y"):
            rows.append({"variant": f"{tau} | {loo}", "group": CROSSED, "status": "ok",
                         "quantity": "tau", "median": 0.25 if tau == "a" else 0.5,
                         "flag": "moved" if (tau, loo) == ("b", "y") else "",
                         "tau_priors": tau, "leave_one_out": loo})
    rows[0] = {**rows[0], "status": "failed", "quantity": None, "median": np.nan}
    lines = crossed_table(pd.DataFrame(rows), ["tau_priors", "leave_one_out"], "tau")
    assert lines[1:] == [
        "Median of tau over the crossed grid (tau priors x leave-one-out; * flagged, - failed)",
        "tau priors         x         y",
        "a                  -     0.250",
        "b              0.500    0.500*",
    ]


def _stand_in_main_fit(target: float | None):
    """What WarmStart.from_fit reads of a main fit (nothing sampled): a step size of
    0.4 in every chain, and the target its settings resolved to."""
    import types

    import xarray as xr

    stats = xr.Dataset({"step_size": (("chain", "draw"), np.full((2, 3), 0.4))})
    return types.SimpleNamespace(idata=types.SimpleNamespace(sample_stats=stats),
                                 settings=SamplerSettings(target_accept=target))


def test_warm_start_carries_the_main_fits_resolved_target_only_when_adaptive():
    """Adaptive settings: variants start at the target the main fit resolved to (as a
    refit does); an explicit target_accept is every variant's own, so none is carried."""
    fit = _stand_in_main_fit(0.95)
    adaptive = WarmStart.from_fit(fit, SamplerSettings())
    assert adaptive == WarmStart(initial_step=0.4, tune=WARM_TUNE, target_accept=0.95)
    explicit = WarmStart.from_fit(fit, SamplerSettings(target_accept=0.9))
    assert explicit == WarmStart(initial_step=0.4, tune=WARM_TUNE, target_accept=None)


class _FakeGrid:
    """A grid whose fits are stand-ins (nothing sampled): each variant needs a target
    (``needs``); a fit from ``start`` samples at the first rung of the ladder at or
    above both, as the adaptive ladder does. Records each fit's variant and start, and
    when it began and ended relative to the others."""

    def __init__(self, monkeypatch, needs: dict[str, float], main_at: float | None):
        import threading

        from bayes_poem import sensitivity_run

        self.needs, self.calls, self.events = needs, [], []
        self.lock = threading.Lock()
        main_fit = _stand_in_main_fit(main_at)

        def main_rows(variant, settings, contrasts, interval, warm):
            return self.rows(variant, main_at), main_fit

        def fit_variant(variant, settings, contrasts, interval, warm):
            with self.lock:
                self.calls.append((variant.name, warm.target_accept))
                self.events.append(("start", variant.name))
            start = warm.target_accept or 0.8
            at = next(t for t in TARGET_LADDER if t >= max(start, needs[variant.name]))
            with self.lock:
                self.events.append(("end", variant.name))
            return self.rows(variant, at)

        monkeypatch.setattr(sensitivity_run, "_fit_rows", main_rows)
        monkeypatch.setattr(sensitivity_run, "fit_variant", fit_variant)

    @staticmethod
    def rows(variant, target):
        return pd.DataFrame([{"variant": variant.name, "group": variant.group,
                              "status": "ok", "quantity": "tau", "kind": "heterogeneity",
                              "median": 0.3, "lower": 0.1, "upper": 0.6,
                              "divergences": 0, "target_accept": target, "seconds": 0.1}]
                            ).reindex(columns=ROW_COLUMNS)

    @staticmethod
    def variants(sed_spec, names):
        from bayes_poem.sensitivity import Variant

        return [Variant(name, MAIN if name == MAIN else "tau_priors", sed_spec)
                for name in [MAIN, *names]]


@pytest.mark.parametrize("pool", [False, True])
def test_pilots_that_all_needed_a_higher_target_start_the_other_variants_there(
        monkeypatch, sed_spec, pool):
    """Main clean at 0.8; the first two variants (pilots) both need 0.95: the other
    variants start at 0.95, and on an executor none of them starts before both pilots
    have ended. The result names the pilots and the raised start; the text says so."""
    import concurrent.futures as cf

    from bayes_poem.sensitivity import PILOTS, summarise_by_variant
    from bayes_poem.sensitivity_text import sensitivity_text

    names = ["a", "b", "c", "d", "e"]
    grid = _FakeGrid(monkeypatch, {"a": 0.95, "b": 0.99, "c": 0.8, "d": 0.95, "e": 0.99},
                     main_at=0.8)
    executor = cf.ThreadPoolExecutor(max_workers=2) if pool else None
    done = []
    try:
        result = run_sensitivity(_FakeGrid.variants(sed_spec, names), SamplerSettings(),
                                 executor=executor, progress=lambda *a: done.append(a))
    finally:
        if executor:
            executor.shutdown()
    assert PILOTS == 2 and result.pilots == ("a", "b") and result.raised_to == 0.95
    assert sorted(grid.calls) == [("a", 0.8), ("b", 0.8), ("c", 0.95), ("d", 0.95),
                                  ("e", 0.95)]
    ends = [i for i, (kind, name) in enumerate(grid.events) if kind == "end" and name in "ab"]
    starts = [i for i, (kind, name) in enumerate(grid.events)
              if kind == "start" and name not in "ab"]
    assert max(ends) < min(starts)  # the pilots first, whatever the executor
    assert [d[:2] for d in done] == [(k, 6) for k in range(1, 7)]
    by_variant = summarise_by_variant(result.table)
    assert list(by_variant["target_accept"]) == [0.8, 0.95, 0.99, 0.95, 0.95, 0.99]
    text = sensitivity_text(title="t", synthetic="", result=result, by_variant=by_variant,
                            psens=None)
    assert ("target_accept from 0.8; the first 2 variants (pilots) were all refitted higher "
            "after divergences, so the other 3 started at 0.95, the lowest target the "
            "pilots needed (1 of 3 refitted higher after divergences; variants.csv: "
            "target_accept)") in text


@pytest.mark.parametrize("needs, main_at, n_names, pilots", [
    ({"a": 0.8, "b": 0.95}, 0.8, 4, ("a", "b")),  # one pilot clean at the start
    ({"a": 0.95, "b": 0.95}, 0.99, 4, ()),  # the main fit at the ladder's top
    ({"a": 0.95, "b": 0.95}, None, 4, ()),  # an explicit target: every variant's own
    ({"a": 0.95, "b": 0.95}, 0.8, 2, ()),  # no variant left after the pilots
])
def test_pilots_change_nothing_unless_they_all_needed_more(monkeypatch, sed_spec, needs,
                                                           main_at, n_names, pilots):
    names = list("abcd")[:n_names]
    needs = {**dict.fromkeys(names, 0.8), **needs}
    grid = _FakeGrid(monkeypatch, needs, main_at=main_at)
    settings = SamplerSettings(target_accept=None if main_at else 0.9)
    result = run_sensitivity(_FakeGrid.variants(sed_spec, names), settings)
    assert result.pilots == pilots and result.raised_to is None
    start = main_at if main_at else None
    assert grid.calls == [(name, start) for name in names]


def test_a_failed_pilot_raises_nothing():
    from bayes_poem.sensitivity_run import _raised_start

    ok = pd.DataFrame({"status": ["ok"], "target_accept": [0.95]})
    failed = pd.DataFrame({"status": ["failed"], "target_accept": [np.nan]})
    assert _raised_start(0.8, [ok, ok.assign(target_accept=0.99)]) == 0.95
    assert _raised_start(0.8, [ok, failed]) is None
    assert _raised_start(0.8, [ok, ok.assign(target_accept=0.8)]) is None
    assert _raised_start(0.95, [ok, ok]) is None
    assert _raised_start(0.8, []) is None


# ---------------------------------------------------------------------- sampling
QUICK = SamplerSettings(draws=500, tune=1000, chains=4, seed=11)


@pytest.mark.mcmc
def test_a_warm_started_variant_is_the_fit_with_that_tuning(sed_spec):
    """The grid's warm variant equals a direct fit with the main fit's step size and
    WARM_TUNE tuning steps (same seed): the warm start is exactly that, nothing else."""
    variants = build_variants(sed_spec, CROSS)[:2]
    result = run_sensitivity(variants, QUICK)
    warm = result.warm
    assert warm == WarmStart.from_fit(result.main_fit, QUICK)
    assert warm.tune == WARM_TUNE and 0 < warm.initial_step < 2
    assert warm.target_accept == result.main_fit.settings.target_accept
    direct = variants[1].spec.fit(dataclasses.replace(QUICK, tune=WARM_TUNE),
                                  initial_step=warm.initial_step,
                                  adapt_from=warm.target_accept)
    rows = result.table[result.table["variant"] == variants[1].name].set_index("quantity")
    assert rows.loc["tau", "median"] == float(direct.idata.posterior["tau"].median())
    assert (rows["tau_priors"] == "narrow").all()


@pytest.mark.mcmc
@pytest.mark.slow
def test_warm_started_variants_agree_with_cold_fits_within_mcse(sed_spec):
    """Posterior means of mu, tau, sigma_subgroup: warm (300 tuning steps from the main
    fit's step size) vs cold (1000 steps) fits of two crossed variants, different seeds,
    within 4 combined Monte Carlo standard errors (a 4-sigma band: 3 x 2 comparisons)."""
    settings = SamplerSettings(draws=2000, tune=1000, chains=4, seed=21)
    variants = [v for v in build_variants(sed_spec, CROSS)
                if v.name in (MAIN, "cauchy | without SYN-02", "wide | without SYN-06")]
    main_fit = run_sensitivity(variants[:1], settings).main_fit
    warm = WarmStart.from_fit(main_fit, settings)
    for variant in variants[1:]:
        warm_fit = variant.spec.fit(dataclasses.replace(settings, tune=warm.tune, seed=22),
                                    initial_step=warm.initial_step,
                                    adapt_from=warm.target_accept).idata.posterior
        cold_fit = variant.spec.fit(settings).idata.posterior
        for name in ("mu", "tau", "sigma_subgroup"):
            se = np.hypot(float(az.mcse(warm_fit[[name]])[name]),
                          float(az.mcse(cold_fit[[name]])[name]))
            diff = abs(float(warm_fit[name].mean()) - float(cold_fit[name].mean()))
            assert diff < 4 * se, (variant.name, name, diff, se)


@pytest.mark.mcmc
def test_fit_variant_cold_and_warm_both_fit(sed_spec):
    variant = build_variants(sed_spec, CROSS)[1]
    settings = SamplerSettings(draws=200, tune=200, chains=2, seed=3)
    for warm in (None, WarmStart(initial_step=0.1, tune=100)):
        frame = fit_variant(variant, settings, (), IntervalSpec(), warm)
        assert (frame["status"] != "failed").all()
        assert (frame["leave_one_out"] == f"without {sed_spec.studies[0]}").all()


@pytest.mark.mcmc
def test_cli_runs_a_crossed_grid_and_says_its_size_first(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC_HEAD + '[sampler]\ndraws = 200\ntune = 300\nchains = 2\nseed = 2\n'
                    '[[contrasts]]\na = "type_iii"\nb = "jackhammer"\n'
                    '[sensitivity]\ncross = ["tau_priors", "leave_one_out"]\npsens = false\n'
                    'tau_priors = [{ dist = "HalfNormal", sigma = 0.5 }, '
                    '{ dist = "HalfCauchy", beta = 0.5 }]\n' + OFF_TOML)
    out = tmp_path / "res"
    assert main(["sensitivity", str(spec), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    first = captured.err.splitlines()[0]
    assert first == ("[bayes-poem] sensitivity grid: 17 variants: main + 16 crossed "
                     f"(2 tau priors x 8 leave-one-out) of {spec}")
    table = pd.read_csv(out / "sensitivity.csv")
    crossed = table[table["group"] == CROSSED]
    assert set(crossed["tau_priors"]) == {"tau HalfNormal(sigma=0.5)", "tau HalfCauchy(beta=0.5)"}
    assert crossed["leave_one_out"].nunique() == 8
    assert table.loc[table["variant"] == MAIN, "tau_priors"].isna().all()
    assert (out / "sensitivity_grid.png").stat().st_size > 0
    assert "Median of difference[type_iii vs jackhammer] over the crossed grid" in captured.out


def _crossed_frame() -> pd.DataFrame:
    """A SYNTHETIC crossed table (2 x 3 variants and main, two quantities), no fit."""
    rng = np.random.default_rng(5)
    rows = []
    cells = [(MAIN, "main", None, None)] + [
        (f"{t} | {s}", CROSSED, t, s) for t in ("t1", "t2") for s in ("s1", "s2", "s3")]
    for name, group, tau, study in cells:
        for quantity, kind in (("p_pooled[a]", "probability"), ("tau", "heterogeneity")):
            median = rng.uniform(0.3, 0.7)
            rows.append({"variant": name, "group": group, "status": "ok", "quantity": quantity,
                         "kind": kind, "median": median, "lower": median - 0.2,
                         "upper": median + 0.2, "flag": "moved" if name == "t2 | s3" else "",
                         "tau_priors": tau, "leave_one_out": study})
    return pd.DataFrame(rows)


def test_grid_figures_drawn_by_a_worker_are_the_bytes_drawn_here():
    """figure_png draws from the table alone: a forked worker's PNG is this process's."""
    import concurrent.futures as cf

    from bayes_poem.figure_style import to_png
    from bayes_poem.plots import sensitivity_forest
    from bayes_poem.sensitivity_plots import (
        FOREST,
        HEAT_MAPS,
        crossed_grid_plot,
        figure_names,
        figure_png,
    )

    frame, axes = _crossed_frame(), ["tau_priors", "leave_one_out"]
    assert figure_names(axes) == (FOREST, HEAT_MAPS) and figure_names(axes[:1]) == (FOREST,)
    here = {name: figure_png(name, frame, axes, "SYNTHETIC") for name in figure_names(axes)}
    assert here[FOREST] == to_png(sensitivity_forest(frame=frame, title="SYNTHETIC"))
    assert here[HEAT_MAPS] == to_png(crossed_grid_plot(frame=frame, axes=axes,
                                                       title="SYNTHETIC"))
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        drawn = {name: pool.submit(figure_png, name, frame, axes, "SYNTHETIC")
                 for name in here}
        assert {name: future.result() for name, future in drawn.items()} == here
    with pytest.raises(ValueError, match="no sensitivity figure named 'x.png'"):
        figure_png("x.png", frame, axes)


def test_forest_labels_each_row_of_panels_once_in_the_variants_order():
    """The forest: one panel per quantity, two to a row; the left panel of a row is
    labelled with every drawn variant, top to bottom in the table's order (failed rows
    not drawn), and the right panel has neither labels nor y ticks."""
    from matplotlib.collections import LineCollection

    from bayes_poem.plots import sensitivity_forest

    frame = _crossed_frame()
    frame.loc[frame["variant"] == "t1 | s2", "status"] = "failed"
    fig = sensitivity_forest(frame=frame, title="SYNTHETIC")
    left, right = fig.axes
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["p_pooled[a]", "tau"]
    drawn = [v for v in dict.fromkeys(frame["variant"]) if v != "t1 | s2"]
    labels = sorted(left.texts, key=lambda text: -text.get_position()[1])
    assert [text.get_text() for text in labels] == drawn
    assert [text.get_position()[1] for text in labels] == list(range(len(drawn), 0, -1))
    assert len(right.texts) == 0 and list(right.get_yticks()) == []
    assert list(left.get_yticks()) == []
    # every drawn variant has its interval: the collections hold one segment each
    segments = [s for c in left.collections if isinstance(c, LineCollection)
                for s in c.get_segments()]
    assert len(segments) == len(drawn)


def test_heat_maps_write_the_medians_outline_flags_and_leave_failed_cells_blank():
    """The crossed grid's heat maps: one panel per quantity (no colour bars), a row
    per level of the first axis, each cell's text its median, the flagged cell outlined
    in red, a failed cell neither coloured nor written."""
    from matplotlib.colors import to_hex
    from matplotlib.patches import Rectangle

    from bayes_poem.sensitivity_plots import FLAGGED, crossed_grid_plot

    frame = _crossed_frame()
    frame.loc[frame["variant"] == "t1 | s2", "status"] = "failed"
    fig = crossed_grid_plot(frame=frame, axes=["tau_priors", "leave_one_out"])
    assert len(fig.axes) == 2  # a panel per quantity, nothing else
    for ax, quantity in zip(fig.axes, ["p_pooled[a]", "tau"], strict=True):
        part = frame[(frame["quantity"] == quantity) & (frame["group"] == CROSSED)
                     & (frame["status"] != "failed")]
        written = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
                   for t in ax.texts}
        want = {(["t1", "t2"].index(r.tau_priors), ["s1", "s2", "s3"].index(r.leave_one_out)):
                f"{r.median:.2f}" for r in part.itertuples()}
        assert written == want and (0, 1) not in written
        (mesh,) = ax.collections
        assert mesh.get_array().mask.reshape(2, 3)[0, 1]  # the failed cell: not coloured
        outlines = [p for p in ax.patches if isinstance(p, Rectangle)
                    and to_hex(p.get_edgecolor()) == FLAGGED]
        assert [(p.get_x() + 0.5, p.get_y() + 0.5) for p in outlines] == [(2.0, 1.0)]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["t1", "t2"]
        assert ax.get_ylim() == (1.5, -0.5)  # the first level on top


def test_a_figure_of_a_lost_worker_is_drawn_here():
    """A pool lost while drawing (a worker killed) costs no figure: it is drawn in the
    command's own process, the same bytes."""
    import concurrent.futures as cf
    from concurrent.futures.process import BrokenProcessPool

    from bayes_poem.cli_sensitivity import _drawn
    from bayes_poem.sensitivity_plots import FOREST, figure_png

    frame, axes = _crossed_frame(), ["tau_priors", "leave_one_out"]
    lost = cf.Future()
    lost.set_exception(BrokenProcessPool("a worker was killed"))
    want = figure_png(FOREST, frame, axes, "SYNTHETIC")
    assert _drawn(lost, FOREST, frame, axes, "SYNTHETIC") == want
    assert _drawn(None, FOREST, frame, axes, "SYNTHETIC") == want
    failed = cf.Future()
    failed.set_exception(ValueError("a drawing error"))  # not the pool's: raised
    with pytest.raises(ValueError, match="a drawing error"):
        _drawn(failed, FOREST, frame, axes, "SYNTHETIC")


@pytest.mark.mcmc
def test_cli_grid_with_two_jobs_writes_what_one_job_writes(tmp_path):
    """--jobs 2 (variants and figures on worker processes) gives the same tables and the
    same figure bytes as --jobs 1 (same seed); only the seconds differ."""
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC_HEAD + '[sampler]\ndraws = 200\ntune = 300\nchains = 2\nseed = 4\n'
                    '[sensitivity]\ncross = ["tau_priors", "leave_one_out"]\npsens = false\n'
                    'tau_priors = [{ dist = "HalfNormal", sigma = 0.5 }, '
                    '{ dist = "HalfCauchy", beta = 0.5 }]\n' + OFF_TOML)
    for jobs in ("1", "2"):
        assert main(["sensitivity", str(spec), "--out", str(tmp_path / jobs), "--quiet",
                     "--jobs", jobs]) == 0
    one, two = (pd.read_csv(tmp_path / jobs / "sensitivity.csv").drop(columns="seconds")
                for jobs in ("1", "2"))
    pd.testing.assert_frame_equal(one, two)
    variants = pd.read_csv(tmp_path / "1" / "variants.csv").set_index("variant")
    start = variants.loc[MAIN, "target_accept"]  # the variants start at the main fit's
    assert start in (0.8, 0.95, 0.99) and (variants["target_accept"] >= start).all()
    text = (tmp_path / "1" / "sensitivity.txt").read_text()
    pilots = variants["target_accept"].iloc[1:3]  # the grid's first two variants
    if start < 0.99 and (pilots > start).all():  # they raised the others' start
        raised, others = pilots.min(), variants["target_accept"].iloc[3:]
        assert (others >= raised).all()
        assert (f"target_accept from {start:g}; the first 2 variants (pilots) were all "
                f"refitted higher after divergences, so the other {len(others)} started at "
                f"{raised:g}, the lowest target the pilots needed "
                f"({int((others > raised).sum())} of {len(others)} refitted higher") in text
    else:
        higher = int((variants["target_accept"] > start).sum())
        assert (f"target_accept from {start:g} ({higher} of {len(variants) - 1} refitted "
                "higher after divergences; variants.csv: target_accept)") in text
    for name in ("sensitivity.png", "sensitivity_grid.png"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()
