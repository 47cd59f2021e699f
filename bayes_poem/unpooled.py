"""The unpooled contrasts beside the partially pooled ones.

With ``subgroup_effects = "random"`` the subgroup logits are partially pooled,
``alpha_d = sigma_subgroup * z_d``: they shrink towards each other, and so does a
contrast between two subgroups, the more so the fewer subgroups and the smaller
``sigma_subgroup``. A reader deciding whether one subgroup does better than
another needs to see how much of the contrast is the data and how much the
pooling, so every contrast of such a fit is also reported from the unpooled
structure: the same spec with ``subgroup_effects = "fixed"`` (sum-to-zero fixed
effects with the exchangeable prior ``ZeroSumNormal(s_alpha)``; data, zeroed rows,
study effects and heterogeneity, cell effects, moderators, other priors, sampler
settings and seed unchanged), with the same interval, margins, subgroup weights
and moderator values ``at``.

How: the fixed-effects model is refitted (:func:`unpooled_fit`). The refit is
exact, and it costs one more fit of the same size (the kernel is compiled once
per installation and serves both structures, so nothing is compiled). No cheaper
exact route exists: the two structures put different priors on the subgroup
effects (random: ``N(0, sigma_subgroup^2)`` given ``sigma_subgroup``; fixed:
``ZeroSumNormal(s_alpha)``), and reweighting the partially pooled draws into the
unpooled posterior (importance sampling) fails exactly when it matters, when the
pooling is strong and the two posteriors of ``alpha`` barely overlap.

For a fit whose subgroup effects are already fixed the contrasts are the unpooled
ones; with ``"none"`` there are no contrasts. :func:`is_defined` says when a
refit applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from bayes_poem.contrasts import Contrast, with_unpooled

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.sampling import SamplerSettings

# a failed refit's message names it
REFIT_LABEL = "the fit with fixed subgroup effects (unpooled contrasts)"


def is_defined(fit: FitResult) -> bool:
    """Whether ``fit``'s contrasts have an unpooled counterpart to compute: random
    subgroup effects."""
    return fit.spec.subgroup_effects == "random"


def unpooled_fit(fit: FitResult, settings: SamplerSettings | None = None) -> FitResult:
    """``fit``'s spec with fixed subgroup effects, fitted with ``fit``'s sampler settings
    (unless given), reporting ``fit``'s interval, weights and ``at``."""
    from bayes_poem.results import with_summary_options

    spec = fit.spec.with_options(subgroup_effects="fixed")
    refit = spec.fit(settings) if settings is not None else spec.refit(fit.settings)
    return with_summary_options(refit, interval=fit.interval, weights=fit.weights, at=fit.at)


def unpooled_contrasts(fit: FitResult, contrasts: Sequence[Contrast] | None = None, *,
                       unpooled: FitResult | None = None,
                       settings: SamplerSettings | None = None) -> pd.DataFrame:
    """``fit.contrasts(contrasts)`` with the unpooled columns
    (:data:`bayes_poem.contrasts.UNPOOLED_COLUMNS`).

    ``unpooled`` is the fixed-effects fit when already available (else it is fitted
    here, :func:`unpooled_fit`). A fit without random subgroup effects gets its own
    table unchanged.
    """
    pooled = fit.contrasts(contrasts)
    if not is_defined(fit) or pooled.empty:
        return pooled
    if unpooled is None:
        unpooled = unpooled_fit(fit, settings)
    table = unpooled.contrasts(contrasts, fit.interval)
    return with_unpooled(pooled, table, unpooled.diagnostics.problems)
