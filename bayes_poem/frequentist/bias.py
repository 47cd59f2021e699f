r"""Small-study effects: Egger's regression test, Begg's rank test, trim and fill,
cumulative meta-analysis and funnel-plot data, as metafor's ``regtest``, ``ranktest``,
``trimfill``, ``cumul`` and ``funnel``.

Study :math:`i` has the effect size :math:`y_i` and sampling variance :math:`v_i` of
:mod:`.transforms` (logit by default; the same continuity correction as every other
entry point: 0.5 added to both cells of a study with 0 events or 0 non-events,
``add=``/``to=``), standard error :math:`s_i = \sqrt{v_i}` and sample size :math:`n_i`
(the uncorrected total, metafor's ``ni``).


The analyses, one module each (this module re-exports their public names):

* :mod:`.bias_tests`: Egger's regression test (:func:`regtest`; Egger et al. 1997, metafor
  ``regtest``) and Begg's rank correlation test (:func:`ranktest`; Begg & Mazumdar 1994,
  metafor ``ranktest``);
* :mod:`.bias_trimfill`: trim and fill (:func:`trimfill`; Duval & Tweedie 2000, metafor
  ``trimfill.rma.uni``);
* :mod:`.bias_cumulative`: cumulative meta-analysis (:func:`cumulative`; metafor ``cumul``);
* :mod:`.bias_funnel`: funnel-plot data (:func:`funnel_data`; metafor ``funnel``);
* :mod:`.bias_common`: the predictors, estimators and table columns they share, and the
  input helpers.

Each module's docstring gives its formulas in the code's symbols.

References
----------
Begg CB, Mazumdar M. Operating characteristics of a rank correlation test for publication
bias. Biometrics 1994;50:1088-101.
Duval S, Tweedie R. Trim and fill: a simple funnel-plot-based method of testing and
adjusting for publication bias in meta-analysis. Biometrics 2000;56:455-63.
Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a simple,
graphical test. BMJ 1997;315:629-34.
Sterne JAC, Egger M. Regression methods to detect publication and other bias in
meta-analysis. In: Rothstein HR et al. (eds), Publication Bias in Meta-Analysis. Wiley 2005.
Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw
2010;36(3).
"""

from __future__ import annotations

from bayes_poem.frequentist.bias_common import (
    CUMULATIVE_COLUMNS,
    FUNNEL_YAXES,
    RANKTEST_COLUMNS,
    REGTEST_COLUMNS,
    REGTEST_PREDICTORS,
    TRIMFILL_COLUMNS,
)
from bayes_poem.frequentist.bias_cumulative import (
    CumulativeResult,
    cumulative,
    cumulative_effects,
)
from bayes_poem.frequentist.bias_funnel import (
    FunnelData,
    funnel_data,
    funnel_effects,
)
from bayes_poem.frequentist.bias_tests import (
    RankTestResult,
    RegTestResult,
    kendall_exact_cdf,
    ranktest,
    ranktest_effects,
    regtest,
    regtest_effects,
)
from bayes_poem.frequentist.bias_trimfill import (
    TrimFillResult,
    trimfill,
    trimfill_effects,
)

__all__ = [
    "CUMULATIVE_COLUMNS",
    "FUNNEL_YAXES",
    "RANKTEST_COLUMNS",
    "REGTEST_COLUMNS",
    "REGTEST_PREDICTORS",
    "TRIMFILL_COLUMNS",
    "CumulativeResult",
    "FunnelData",
    "RankTestResult",
    "RegTestResult",
    "TrimFillResult",
    "cumulative",
    "cumulative_effects",
    "funnel_data",
    "funnel_effects",
    "kendall_exact_cdf",
    "ranktest",
    "ranktest_effects",
    "regtest",
    "regtest_effects",
    "trimfill",
    "trimfill_effects",
]
