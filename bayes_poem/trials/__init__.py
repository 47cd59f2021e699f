"""Anterior versus posterior myotomy: two-arm trials, comparative meta-analysis, design.

Modules (one concern each):

* :mod:`~bayes_poem.trials.binary`: one trial, binary outcome (conjugate Beta);
* :mod:`~bayes_poem.trials.continuous`: one trial, continuous outcome (patient-level
  regression or arm-level summaries);
* :mod:`~bayes_poem.trials.meta`: arm-based binomial and normal-normal meta-analysis;
* :mod:`~bayes_poem.trials.design`: assurance and interim predictive probability;
* :mod:`~bayes_poem.trials.specfile`: TOML specs (``bayes-poem trial SPEC``), read and
  checked; :mod:`~bayes_poem.trials.prepare`: their analyses validated;
  :mod:`~bayes_poem.trials.run`: run;
* :mod:`~bayes_poem.trials.common`: shared vocabulary and checks;
  :mod:`~bayes_poem.trials.pymc_models`: PyMC models and priors as data;
* :mod:`~bayes_poem.trials.plots`: figures; :mod:`~bayes_poem.trials.report`: text;
* :mod:`~bayes_poem.trials.published`: published figures with citations;
* :mod:`~bayes_poem.trials.synthetic`: SYNTHETIC continuous example data.

Arms are ``anterior`` (reference) and ``posterior``; every contrast is posterior
versus anterior. See ``docs/trials.md``.
"""

from __future__ import annotations

from bayes_poem.trials.binary import (
    ArmCounts,
    BetaPrior,
    BinaryTrialResult,
    analyse_binary,
    binary_from_table,
    exact_prob_noninferior,
)
from bayes_poem.trials.continuous import (
    ArmSummary,
    ContinuousTrialResult,
    analyse_arm_summaries,
    analyse_patient_level,
)
from bayes_poem.trials.counts import comparative_counts
from bayes_poem.trials.design import (
    AssuranceResult,
    DecisionRule,
    InterimResult,
    assurance,
    assurance_from_meta,
    assurance_normal_approximation,
    interim_predictive_probability,
    interim_predictive_probability_exact,
)
from bayes_poem.trials.meta import (
    BinomialMetaResult,
    NormalMetaResult,
    binomial_meta,
    binomial_meta_from_table,
    random_effects_meta,
)
from bayes_poem.trials.specfile import load_trial_spec

__all__ = [
    "ArmCounts",
    "ArmSummary",
    "AssuranceResult",
    "BetaPrior",
    "BinaryTrialResult",
    "BinomialMetaResult",
    "ContinuousTrialResult",
    "DecisionRule",
    "InterimResult",
    "NormalMetaResult",
    "analyse_arm_summaries",
    "analyse_binary",
    "analyse_patient_level",
    "assurance",
    "assurance_from_meta",
    "assurance_normal_approximation",
    "binary_from_table",
    "binomial_meta",
    "binomial_meta_from_table",
    "comparative_counts",
    "exact_prob_noninferior",
    "interim_predictive_probability",
    "interim_predictive_probability_exact",
    "load_trial_spec",
    "random_effects_meta",
]
