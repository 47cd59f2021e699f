"""A methods paragraph to paste into a paper, generated from a fit and its records.

:func:`methods_paragraph` states the data (label, SYNTHETIC mark, counts), the
model as fitted (likelihood, linear predictor terms, study and subgroup
structure, moderators), every prior the structure uses, the sampler and its
settings, the diagnostics and their values, the interval reported, and the
software with the versions recorded in the posterior's attributes
(:func:`bayes_poem._version.environment` at fit time), followed by the
references it cites. Formatting only: nothing is computed here beyond counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bayes_poem.results import FitResult

REFERENCES = (
    "Hoffman MD, Gelman A. The No-U-Turn sampler: adaptively setting path lengths in "
    "Hamiltonian Monte Carlo. J Mach Learn Res. 2014;15:1593-1623.",
    "Vehtari A, Gelman A, Simpson D, Carpenter B, Burkner PC. Rank-normalization, folding, "
    "and localization: an improved R-hat for assessing convergence of MCMC. Bayesian Anal. "
    "2021;16(2):667-718.",
    "Betancourt M. Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte "
    "Carlo. arXiv:1604.00695. 2016.",
    "Abril-Pla O, Andreani V, Carroll C, et al. PyMC: a modern, and comprehensive "
    "probabilistic programming framework in Python. PeerJ Comput Sci. 2023;9:e1516.",
    "Kumar R, Carroll C, Hartikainen A, Martin O. ArviZ a unified library for exploratory "
    "analysis of Bayesian models in Python. J Open Source Softw. 2019;4(33):1143.",
)

_SUBGROUPS = {
    "random": "subgroup effects partially pooled (normal with SD sigma_subgroup)",
    "fixed": "fixed subgroup effects (alpha, sum-to-zero by a Helmert basis)",
    "none": "no subgroup effects (one pooled probability)",
}


def _recorded(attrs, key: str) -> str:
    return str(attrs.get(f"{key}_version", "(version not recorded)"))


def methods_paragraph(fit: FitResult) -> str:
    """The paragraph and its references, as plain text (one paragraph, a blank line,
    the numbered references)."""
    spec, settings, attrs = fit.spec, fit.settings, fit.posterior.attrs
    arrays = spec.arrays()
    rows, patients, events = len(arrays["total"]), int(arrays["total"].sum()), int(
        arrays["events"].sum())
    data = spec.table.label or spec.table.source
    synthetic = " These data are SYNTHETIC (simulated counts), not real patients." \
        if spec.table.is_synthetic else ""
    citation = spec.table.metadata.get("citation")
    if citation:
        synthetic += f" Source: {citation}"
        synthetic += "" if synthetic.endswith(".") else "."
    likelihood = ("beta-binomial (overdispersion phi)" if spec.likelihood == "beta_binomial"
                  else "binomial")
    if spec.study_effects == "random":
        study = ("random study effects with a between-study SD tau per subgroup"
                 if spec.study_heterogeneity == "by_subgroup"
                 else "random study effects (normal, between-study SD tau)")
    else:
        study = "a common effect across studies (no between-study variation)"
    terms = [_SUBGROUPS[spec.subgroup_effects], study]
    if spec.cell_effects == "random":
        terms.append("random study x subgroup cell effects (SD tau_cell)")
    if spec.moderators:
        terms.append("moderators " + ", ".join(m.name for m in spec.moderators)
                     + " (meta-regression coefficients beta)")
    priors = "; ".join(f"{name} ~ {text}" for name, text in spec.describe_priors().items())
    backend = ("nutpie " + _recorded(attrs, "nutpie") if settings.backend == "nutpie"
               else "PyMC " + _recorded(attrs, "pymc"))
    diag = fit.diagnostics
    table = diag.table
    text = (
        f"We fitted a Bayesian hierarchical model to the {spec.outcome} counts of {data} "
        f"({rows} study x subgroup cells from {len(spec.studies)} studies, {patients} "
        f"patients, {events} events; subgroups {', '.join(spec.subgroups)}).{synthetic} "
        f"Events were modelled as {likelihood} with the logit of each cell's probability "
        f"equal to an intercept mu plus {'; '.join(terms)}. Priors: {priors}. The posterior "
        f"was sampled with the No-U-Turn sampler [1] ({backend}): {settings.chains} chains of "
        f"{settings.draws} draws after {settings.tune} warm-up iterations, target acceptance "
        f"{settings.target_accept}, seed {settings.seed}. Convergence was checked by the "
        f"rank-normalised R-hat (maximum {table['r_hat'].max():.3f}) and bulk and tail "
        f"effective sample sizes (minimum {table['ess_bulk'].min():.0f} and "
        f"{table['ess_tail'].min():.0f}) [2], divergent transitions ({diag.divergences}) "
        f"and E-BFMI (minimum {min(diag.bfmi):.2f}) [3]. Estimates are posterior medians "
        f"with {fit.interval.label} credible intervals. Analyses used bayes_poem "
        f"{_recorded(attrs, 'bayes_poem')} with Python "
        f"{_recorded(attrs, 'python')}, PyMC {_recorded(attrs, 'pymc')} [4], PyTensor "
        f"{_recorded(attrs, 'pytensor')}, nutpie {_recorded(attrs, 'nutpie')}, ArviZ "
        f"{_recorded(attrs, 'arviz')} [5], NumPy {_recorded(attrs, 'numpy')}, SciPy "
        f"{_recorded(attrs, 'scipy')}, pandas {_recorded(attrs, 'pandas')} and numba "
        f"{_recorded(attrs, 'numba')} on {attrs.get('platform', 'an unrecorded platform')}."
    )
    references = "\n".join(f"[{i}] {ref}" for i, ref in enumerate(REFERENCES, start=1))
    return f"{text}\n\n{references}"
