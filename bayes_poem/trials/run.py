"""Running a prepared trial analysis: computation, text, tables, figures.

:func:`run_analysis` (``PreparedAnalysis.run()``) calls the analysis' runner
with the inputs :mod:`bayes_poem.trials.prepare` validated, and returns a
:class:`~bayes_poem.trials.report.TrialReport`: the text (with the SYNTHETIC
banner of :mod:`bayes_poem.banner` when the data are), the tables, figures and
posterior files that ``bayes-poem trial`` writes as one bundle
(:func:`bayes_poem.bundle.write_bundle`). Nothing here parses or validates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from bayes_poem.trials import report as rep

if TYPE_CHECKING:
    from bayes_poem.trials.prepare import PreparedAnalysis
    from bayes_poem.trials.specfile import TrialSpec

__all__ = ["run_analysis"]


def run_analysis(prepared: PreparedAnalysis) -> rep.TrialReport:
    """Compute ``prepared``'s analysis; the report without its resolved spec."""
    runner = {"binary": _binary, "continuous": _continuous, "meta": _meta,
              "meta_continuous": _meta_continuous, "assurance": _assurance,
              "interim": _interim}[prepared.spec.analysis]
    return runner(prepared.spec, prepared.synthetic, **prepared.inputs)


def _binary(spec: TrialSpec, banner: str, **inputs: Any) -> rep.TrialReport:
    from bayes_poem.trials.binary import analyse_binary
    from bayes_poem.trials.plots import difference_histogram

    result = analyse_binary(**inputs, interval=spec.interval)
    figure = difference_histogram(
        draws=result.draws["risk_difference"].values, margin=inputs["margin"],
        favourable="above" if inputs["kind"] == "benefit" else "below",
        xlabel="p_posterior - p_anterior", title=f"{inputs['trial']}: {inputs['outcome']}")
    return rep.TrialReport(
        text=rep.binary_text(result, spec.title),
        tables={"summary": result.summary(), "noninferiority": result.noninferiority()},
        figures={"difference": figure}, results=(result,))


def _continuous(spec: TrialSpec, banner: str, *, method: str,
                **inputs: Any) -> rep.TrialReport:
    from bayes_poem.trials import continuous as cont
    from bayes_poem.trials.plots import difference_histogram

    if method == "summaries":
        result = cont.analyse_arm_summaries(**inputs)
    else:
        result = cont.analyse_patient_level(inputs.pop("frame"), **inputs, warn=False)
    outcome = inputs["outcome"]
    figure = difference_histogram(
        draws=result.draws["improvement_difference"].values, margin=inputs["margin"],
        favourable="above", xlabel=f"improvement in {outcome}, posterior - anterior",
        title=f"{outcome}{' (SYNTHETIC data)' if inputs['synthetic'] else ''}")
    files = {}
    if result.idata is not None:
        files["posterior.nc"] = rep.netcdf(result.idata)
    return rep.TrialReport(
        text=rep.continuous_text(result, spec.title, banner),
        tables={"summary": result.summary(), "noninferiority": result.noninferiority(),
                "arms": result.arms},
        figures={"difference": figure}, files=files, results=(result,))


def _meta(spec: TrialSpec, banner: str, *, outcomes: list[str], counts, priors, settings,
          kinds, margin, source) -> rep.TrialReport:
    from bayes_poem.trials.meta import binomial_meta
    from bayes_poem.trials.plots import odds_ratio_plot

    results = [binomial_meta(counts[o], outcome=o, priors=priors, settings=settings,
                             interval=spec.interval, kind=kinds[o], margin=margin,
                             source=source, warn=False) for o in outcomes]
    tables = {
        "summary": pd.concat([r.summary() for r in results], ignore_index=True),
        "studies": pd.concat([r.study_summary() for r in results], ignore_index=True),
        "published_comparison": pd.concat([r.published_comparison() for r in results],
                                          ignore_index=True),
        "notes": pd.DataFrame([{"outcome": r.outcome, "note": n} for r in results
                               for n in r.notes]),
        "diagnostics": pd.concat([r.diagnostics.table.reset_index().assign(outcome=r.outcome)
                                  for r in results], ignore_index=True),
    }
    if margin is not None:
        tables["noninferiority"] = pd.concat([r.noninferiority() for r in results],
                                             ignore_index=True)
    figures, files = {}, {}
    for r in results:
        summary = r.summary().set_index("quantity")
        pooled = pd.DataFrame([
            {"label": "pooled OR (ours)", **summary.loc["odds_ratio"].to_dict()},
            {"label": "new-trial OR (ours, predictive)",
             **summary.loc["odds_ratio_new"].to_dict()},
            {"label": "RR at pooled anterior rate (ours)",
             **summary.loc["risk_ratio"].to_dict()}])
        published = r.published_comparison()
        figures[f"forest_{r.outcome}"] = odds_ratio_plot(
            studies=r.study_summary(), pooled=pooled,
            published=published if not published.empty else None,
            title=f"{r.outcome}: anterior vs posterior myotomy")
        files[f"posterior_{r.outcome}.nc"] = rep.netcdf(r.idata)
    return rep.TrialReport(text=rep.meta_text(results, spec.title), tables=tables,
                           figures=figures, files=files, results=tuple(results))


def _meta_continuous(spec: TrialSpec, banner: str, *, estimates, ses,
                     **inputs: Any) -> rep.TrialReport:
    from bayes_poem.trials.meta import random_effects_meta

    result = random_effects_meta(estimates, ses, **inputs, interval=spec.interval, warn=False)
    return rep.TrialReport(
        text=rep.normal_meta_text(result, spec.title, banner),
        tables={"summary": result.summary(), "studies": result.data,
                "diagnostics": result.diagnostics.table.reset_index()},
        files={"posterior.nc": rep.netcdf(result.idata)}, results=(result,))


def _assurance(spec: TrialSpec, banner: str, *, counts, outcome, priors, settings, kind,
               margin, source, sizes, baseline, threshold, prior, simulations,
               seed) -> rep.TrialReport:
    from bayes_poem.trials.design import assurance_from_meta
    from bayes_poem.trials.meta import binomial_meta
    from bayes_poem.trials.plots import assurance_curve

    meta = binomial_meta(counts, outcome=outcome, priors=priors, settings=settings,
                         interval=spec.interval, kind=kind, margin=margin, source=source,
                         warn=False)
    result = assurance_from_meta(meta, n_per_arm=sizes, margin=margin, kind=kind,
                                 baseline=None if baseline == "pooled" else baseline,
                                 threshold=threshold, analysis_prior=prior,
                                 simulations=simulations, seed=seed)
    figure = assurance_curve(curve=result.curve, reference=(0.8,),
                             title=f"Assurance: {result.rule.statement}")
    return rep.TrialReport(
        text=rep.assurance_text(result, meta, spec.title),
        tables={"assurance": result.summary(), "meta_summary": meta.summary(),
                "diagnostics": meta.diagnostics.table.reset_index()},
        figures={"assurance": figure}, files={"posterior.nc": rep.netcdf(meta.idata)},
        results=(result, meta))


def _interim(spec: TrialSpec, banner: str, **inputs: Any) -> rep.TrialReport:
    from bayes_poem.trials.design import interim_predictive_probability

    result = interim_predictive_probability(**inputs)
    return rep.TrialReport(text=rep.interim_text(result, spec.title),
                           tables={"interim": result.summary()}, results=(result,))
