"""The report's footer: seed, data hash, software versions and platform, the resolved spec.

The versions table has one row per entry of :func:`bayes_poem._version.environment`
(bayes_poem, Python, numpy, scipy, pandas, ArviZ, PyMC, PyTensor, nutpie, numba,
the platform) and two columns: what drew the posterior (its attrs, written by
:func:`bayes_poem.sampling.fit`; "not recorded" for a posterior written before
they were) and what made the report. A subsection holds the methods paragraph
(:func:`bayes_poem.methods.methods_paragraph`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayes_poem._version import environment
from bayes_poem.methods import methods_paragraph
from bayes_poem.predictive import likelihood_of
from bayes_poem.report.document import Section

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.specfile import AnalysisSpec

NAMES = {"bayes_poem": "bayes_poem", "python": "Python", "numpy": "numpy", "scipy": "scipy",
         "pandas": "pandas", "arviz": "ArviZ", "pymc": "PyMC", "pytensor": "PyTensor",
         "nutpie": "nutpie", "numba": "numba", "platform": "platform"}


def versions(attrs: Mapping[str, Any]) -> pd.DataFrame:
    """The software of the fit (from the posterior's ``attrs``) beside this report's."""
    now = environment()
    fitted = [attrs.get(key if key == "platform" else f"{key}_version", "not recorded")
              for key in now]
    return pd.DataFrame({"software": [NAMES.get(key, key) for key in now],
                         "fitted with": [str(v) for v in fitted],
                         "report made with": list(now.values())})


def _spec_toml(fit: FitResult, analysis: AnalysisSpec | None) -> str:
    if analysis is not None:  # its data path relative to the spec file's directory
        # the sampler settings the fit used (an adaptive target_accept resolved)
        analysis = dataclasses.replace(analysis, sampler=fit.settings)
        return analysis.resolved_toml(fit.spec, relative_to=analysis.base_dir)
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


def footer(fit: FitResult, analysis: AnalysisSpec | None, *, methods: bool = True) -> Section:
    """The Reproducibility section; ``methods``: with the generated methods paragraph
    (one-outcome fits: :func:`bayes_poem.methods.methods_paragraph`)."""
    attrs = fit.posterior.attrs
    fitted_with = attrs.get("bayes_poem_version", "")
    lines = [
        f"Seed {fit.settings.seed}; data hash {attrs.get('data_hash', fit.spec.table.data_hash())}"
        f" (SHA-256 of the canonical CSV of the analysed table, first 16 hex digits).",
        f"Posterior created {attrs.get('created_at', 'unknown')}"
        + (f" by bayes_poem {fitted_with}" if fitted_with else "") + ".",
        "Software that drew the posterior and that made this report, and the platform "
        "(`platform.platform()`).",
        "Resolved analysis spec (every setting with its default filled in); with the same "
        "package versions, `bayes-poem report` on it reproduces this report."
        + (f" Its data path is relative to the directory of {analysis.source}."
           if analysis is not None and "path" in analysis.data else ""),
    ]
    if fit.spec.table.metadata.get("label"):  # the spec's [data] label
        lines.insert(0, f"Data: {fit.spec.table.label}"
                     + (" (SYNTHETIC)." if fit.spec.table.is_synthetic else "."))
    subsections = (Section("Methods paragraph",
                           "Generated from this fit and its records, to adapt and paste:\n\n"
                           + methods_paragraph(fit)),) if methods else ()
    return Section("Reproducibility", "\n\n".join(lines), table=versions(attrs),
                   code=_spec_toml(fit, analysis), subsections=subsections,
                   anchor="reproducibility")


