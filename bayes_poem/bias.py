r"""Small-study effects, Bayesian half: the precision model, cumulative posteriors and the
posterior funnel, all on the one compiled density (no compilation, a refit is a sampling run).

One module each; this module re-exports their public names:

* :mod:`bayes_poem.bias_precision`: the precision of a row (``1/sqrt(n)`` or the SE of the
  observed logit) and the precision model (:func:`with_precision`, :func:`precision_model`:
  the slope and the limit estimate);
* :mod:`bayes_poem.bias_cumulative`: cumulative posteriors (:func:`study_order`,
  :func:`cumulative_specs`, :func:`bayes_cumulative`);
* :mod:`bayes_poem.bias_funnel`: the posterior funnel (:func:`posterior_funnel`);
* :mod:`bayes_poem.bias_options`: the ``[bias]`` section (:class:`BiasOptions`,
  :func:`parse_bias`).

Each module's docstring gives its formulas in the code's symbols.

References
----------
Stanley TD, Doucouliagos H. Meta-regression approximations to reduce publication selection
bias. Res Synth Methods 2014;5:60-78.
Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L. Comparison of two methods to detect
publication bias in meta-analysis. JAMA 2006;295:676-80.
Harbord RM, Egger M, Sterne JAC. A modified test for small-study effects in meta-analyses
of controlled trials with binary endpoints. Stat Med 2006;25:3443-57.
"""

from __future__ import annotations

from bayes_poem.bias_cumulative import (
    CUMULATIVE_BAYES_COLUMNS,
    BayesCumulative,
    bayes_cumulative,
    cumulative_specs,
    study_order,
)
from bayes_poem.bias_funnel import (
    POSTERIOR_FUNNEL_COLUMNS,
    PosteriorFunnel,
    posterior_funnel,
)
from bayes_poem.bias_options import (
    BIAS_KEYS,
    BiasOptions,
    parse_bias,
)
from bayes_poem.bias_precision import (
    CORRECTION,
    PRECISION_COLUMNS,
    PRECISION_LABELS,
    PRECISIONS,
    SLOPES,
    PrecisionResult,
    observed_logit,
    precision_model,
    precision_terms,
    precision_values,
    with_precision,
)

__all__ = [
    "BIAS_KEYS",
    "CORRECTION",
    "CUMULATIVE_BAYES_COLUMNS",
    "POSTERIOR_FUNNEL_COLUMNS",
    "PRECISION_COLUMNS",
    "PRECISION_LABELS",
    "PRECISIONS",
    "SLOPES",
    "BayesCumulative",
    "BiasOptions",
    "PosteriorFunnel",
    "PrecisionResult",
    "bayes_cumulative",
    "cumulative_specs",
    "observed_logit",
    "parse_bias",
    "posterior_funnel",
    "precision_model",
    "precision_terms",
    "precision_values",
    "study_order",
    "with_precision",
]
