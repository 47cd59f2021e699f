"""The report's footer: seed, data hash, package versions and the resolved spec."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import pandas as pd

from bayes_poem.predictive import likelihood_of
from bayes_poem.report.document import Section

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.specfile import AnalysisSpec

PACKAGES = ("bayes-poem", "pymc", "arviz", "nutpie", "numpy")


def _package_version(name: str) -> str:
    if name == "bayes-poem":
        from bayes_poem import __version__

        return __version__
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _spec_toml(fit: FitResult, analysis: AnalysisSpec | None) -> str:
    if analysis is not None:
        return analysis.resolved_toml(fit.spec)
    import tomli_w

    spec = fit.spec
    data = {"source": spec.table.source, "outcome": spec.outcome,
            "subgroups": list(spec.subgroups)}
    model = {"subgroup_effects": spec.subgroup_effects, "study_effects": spec.study_effects,
             "likelihood": likelihood_of(spec)}
    if spec.study_heterogeneity != "common":
        model["study_heterogeneity"] = spec.study_heterogeneity
    if spec.cell_effects != "none":
        model["cell_effects"] = spec.cell_effects
    if spec.moderators:
        from bayes_poem.specfile import _resolved_moderators

        model.update(_resolved_moderators(spec))
    settings = fit.settings.to_dict()
    settings.pop("progress", None)
    return tomli_w.dumps({
        "data": data, "model": model,
        "priors": {name: spec.priors[name].to_dict() for name in spec.parameter_names()},
        "sampler": settings,
        "summary": {"interval": fit.interval.kind, "prob": fit.interval.prob},
    })


def footer(fit: FitResult, analysis: AnalysisSpec | None) -> Section:
    attrs = fit.posterior.attrs
    versions = pd.DataFrame({"package": list(PACKAGES),
                             "version": [_package_version(p) for p in PACKAGES]})
    fitted_with = attrs.get("bayes_poem_version", "")
    lines = [
        f"Seed {fit.settings.seed}; data hash {attrs.get('data_hash', fit.spec.table.data_hash())}"
        f" (SHA-256 of the canonical CSV of the analysed table, first 16 hex digits).",
        f"Posterior created {attrs.get('created_at', 'unknown')}"
        + (f" by bayes_poem {fitted_with}" if fitted_with else "") + ".",
        "Resolved analysis spec (every setting with its default filled in); with the same "
        "package versions, `bayes-poem report` on it reproduces this report.",
    ]
    return Section("Reproducibility", "\n\n".join(lines), table=versions,
                   code=_spec_toml(fit, analysis), anchor="reproducibility")


