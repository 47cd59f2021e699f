"""Frequentist reference analyses of binomial outcomes, reproducing R's metafor.

Entry points (each takes a :class:`~bayes_poem.table.StudyTable` or plain arrays):

* :func:`pool_proportions` -- normal-normal model on the logit, double-arcsine or raw
  proportion scale (fixed effect, DerSimonian-Laird, REML, ML), metafor ``rma()``;
* :func:`pool_log_odds_ratios` -- two-arm log odds ratios, metafor ``rma(measure="OR")``;
* :func:`glmm_proportions` -- binomial-normal GLMM by ML, metafor ``rma.glmm(measure="PLO")``;
* :func:`metareg_proportions` (counts) and :func:`meta_regression` (``yi``, ``vi``) --
  mixed-effects meta-regression with numeric and categorical moderators (REML, ML, DL;
  Wald or Knapp-Hartung tests, QM, QE, pseudo R^2), metafor ``rma(mods = )``;
* :func:`glmm_metareg_proportions` -- the binomial-normal GLMM with moderators, metafor
  ``rma.glmm(measure="PLO", mods = )``;
* :func:`pool_by_rule` and :func:`subgroup_analysis` -- fixed or random effects chosen by
  heterogeneity (:class:`ModelChoice`), subgroup rates, test for subgroup differences,
  pairwise differences of pooled proportions;
* small-study effects (:mod:`.bias`): :func:`regtest` (Egger, metafor ``regtest``),
  :func:`ranktest` (Begg and Mazumdar, ``ranktest``), :func:`trimfill` (Duval and
  Tweedie, ``trimfill``), :func:`cumulative` (``cumul``) and :func:`funnel_data`
  (``funnel``), each also from effect sizes (``*_effects``).

Lower-level pieces: :mod:`.transforms` (effect sizes, continuity correction,
back-transforms), :mod:`.tau2` (tau^2 estimators, Q-profile CI), :mod:`.pooling`
(inverse-variance pooling from ``yi``, ``vi``). Formulas and validation:
``docs/frequentist.md``.
"""

from __future__ import annotations

from bayes_poem.frequentist.bias import (
    CUMULATIVE_COLUMNS,
    RANKTEST_COLUMNS,
    REGTEST_COLUMNS,
    REGTEST_PREDICTORS,
    TRIMFILL_COLUMNS,
    CumulativeResult,
    FunnelData,
    RankTestResult,
    RegTestResult,
    TrimFillResult,
    cumulative,
    cumulative_effects,
    funnel_data,
    funnel_effects,
    ranktest,
    ranktest_effects,
    regtest,
    regtest_effects,
    trimfill,
    trimfill_effects,
)
from bayes_poem.frequentist.glmm import (
    glmm_loglik,
    glmm_metareg_proportions,
    glmm_proportions,
    glmm_study_logliks,
)
from bayes_poem.frequentist.meta import pool_log_odds_ratios, pool_proportions
from bayes_poem.frequentist.metareg import (
    METAREG_METHODS,
    METAREG_TESTS,
    fit_meta_regression,
    meta_regression,
    metareg_proportions,
)
from bayes_poem.frequentist.moderators import Design, build_design
from bayes_poem.frequentist.pooling import (
    Heterogeneity,
    PooledEstimate,
    fixed_effect,
    heterogeneity,
    pool,
    random_effects,
)
from bayes_poem.frequentist.results import (
    COEFFICIENT_COLUMNS,
    HETEROGENEITY_COLUMNS,
    REGRESSION_STUDY_COLUMNS,
    RESULT_COLUMNS,
    STUDY_COLUMNS,
    GlmmRegResult,
    GlmmResult,
    MetaRegResult,
    MetaResult,
)
from bayes_poem.frequentist.subgroups import (
    PAIRWISE_COLUMNS,
    ModelChoice,
    SubgroupResult,
    pool_by_rule,
    subgroup_analysis,
)
from bayes_poem.frequentist.tau2 import (
    Tau2Estimate,
    Tau2Interval,
    estimate_tau2,
    generalised_q,
    q_profile_ci,
    tau2_dl,
    tau2_ml,
    tau2_reml,
)
from bayes_poem.frequentist.transforms import (
    EffectSizes,
    back_transform,
    ft_double_arcsine,
    log_odds_ratio_effects,
    miller_inverse,
    proportion_effects,
)

__all__ = [
    "COEFFICIENT_COLUMNS",
    "CUMULATIVE_COLUMNS",
    "HETEROGENEITY_COLUMNS",
    "METAREG_METHODS",
    "METAREG_TESTS",
    "PAIRWISE_COLUMNS",
    "RANKTEST_COLUMNS",
    "REGRESSION_STUDY_COLUMNS",
    "REGTEST_COLUMNS",
    "REGTEST_PREDICTORS",
    "RESULT_COLUMNS",
    "STUDY_COLUMNS",
    "TRIMFILL_COLUMNS",
    "CumulativeResult",
    "Design",
    "EffectSizes",
    "FunnelData",
    "GlmmRegResult",
    "GlmmResult",
    "Heterogeneity",
    "MetaRegResult",
    "MetaResult",
    "ModelChoice",
    "PooledEstimate",
    "RankTestResult",
    "RegTestResult",
    "SubgroupResult",
    "Tau2Estimate",
    "Tau2Interval",
    "TrimFillResult",
    "back_transform",
    "build_design",
    "cumulative",
    "cumulative_effects",
    "estimate_tau2",
    "fit_meta_regression",
    "fixed_effect",
    "ft_double_arcsine",
    "funnel_data",
    "funnel_effects",
    "generalised_q",
    "glmm_loglik",
    "glmm_metareg_proportions",
    "glmm_proportions",
    "glmm_study_logliks",
    "heterogeneity",
    "log_odds_ratio_effects",
    "meta_regression",
    "metareg_proportions",
    "miller_inverse",
    "pool",
    "pool_by_rule",
    "pool_log_odds_ratios",
    "pool_proportions",
    "proportion_effects",
    "q_profile_ci",
    "random_effects",
    "ranktest",
    "ranktest_effects",
    "regtest",
    "regtest_effects",
    "subgroup_analysis",
    "tau2_dl",
    "tau2_ml",
    "tau2_reml",
    "trimfill",
    "trimfill_effects",
]
