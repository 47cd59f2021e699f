r"""Effect-size transforms of binomial counts, continuity correction, back-transforms.

Each study :math:`i` has :math:`x_i` events among :math:`n_i` patients. As in
metafor's ``escalc`` (Viechtbauer 2010), a continuity correction first adds
``add`` to both cells (events and non-events) of the selected studies,
:math:`x_i' = x_i + a`, :math:`n_i' = n_i + 2a`; then, with :math:`p_i = x_i'/n_i'`:

``logit`` (metafor ``PLO``)
    :math:`y_i = \log\{x_i' / (n_i' - x_i')\}`,
    :math:`v_i = 1/x_i' + 1/(n_i' - x_i')`. Back-transform :math:`\operatorname{expit}`.
``double_arcsine`` (Freeman-Tukey, metafor ``PFT``)
    :math:`y_i = \tfrac12\{\arcsin\sqrt{x_i'/(n_i'+1)} + \arcsin\sqrt{(x_i'+1)/(n_i'+1)}\}`,
    :math:`v_i = 1/(4n_i' + 2)`. Back-transform: Miller (1978), see :func:`miller_inverse`.
``proportion`` (metafor ``PR``)
    :math:`y_i = p_i`, :math:`v_i = p_i(1-p_i)/n_i'`. Back-transform: identity.
``log_odds_ratio`` (metafor ``OR``, two arms)
    :math:`y_i = \log\{a_i d_i / (b_i c_i)\}`, :math:`v_i = 1/a_i + 1/b_i + 1/c_i + 1/d_i`
    (cells after correction). Back-transform :math:`\exp`.

Which studies are corrected (``to``): ``"only0"`` (default) those with a zero cell
(:math:`x_i = 0` or :math:`x_i = n_i`; for two arms any of the four cells),
``"all"`` every study, ``"if0all"`` every study if any has a zero cell, ``"none"``
no study. The default ``add`` is 0.5, except 0 for the double arcsine, which needs
no correction (metafor's defaults).

References
----------
Freeman MF, Tukey JW. Transformations related to the angular and the square root.
Ann Math Stat 1950;21:607-11.
Miller JJ. The inverse of the Freeman-Tukey double arcsine transformation.
Am Stat 1978;32:138.
Viechtbauer W. Conducting meta-analyses in R with the metafor package.
J Stat Softw 2010;36(3):1-48.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logit

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.inputs import Counts, TwoArmCounts

__all__ = [
    "BACK_SCALE",
    "SCALES",
    "TO_OPTIONS",
    "EffectSizes",
    "back_transform",
    "continuity_mask",
    "default_add",
    "expit",
    "ft_double_arcsine",
    "log_odds_ratio_effects",
    "logit",
    "miller_inverse",
    "proportion_effects",
]

SCALES = ("logit", "double_arcsine", "proportion")
TO_OPTIONS = ("only0", "all", "if0all", "none")
#: name of the back-transformed scale of each analysis scale
BACK_SCALE = {"logit": "proportion", "double_arcsine": "proportion", "proportion": "proportion",
              "log_odds_ratio": "odds_ratio"}


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effect sizes on the analysis scale, with the correction applied.

    Attributes
    ----------
    scale : str
        One of :data:`SCALES` or ``"log_odds_ratio"``.
    labels : tuple of str
        Study labels of the studies kept.
    yi, vi : numpy.ndarray
        Effect sizes and sampling variances.
    totals : numpy.ndarray
        Uncorrected sample sizes (for the double-arcsine back-transform; the sum of
        both arms for two-arm data).
    corrected : numpy.ndarray of bool
        Which studies received the continuity correction.
    add : float
        The amount added to each cell of a corrected study.
    to : str
        The correction rule.
    dropped : tuple of str
        Studies left out (double-zero trials with ``drop00``).
    """

    scale: str
    labels: tuple[str, ...]
    yi: np.ndarray
    vi: np.ndarray
    totals: np.ndarray
    corrected: np.ndarray
    add: float
    to: str
    dropped: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        return len(self.labels)

    @property
    def corrected_labels(self) -> tuple[str, ...]:
        return tuple(label for label, c in zip(self.labels, self.corrected, strict=True) if c)


def default_add(scale: str) -> float:
    """metafor's default ``add``: 0 for the double arcsine, 0.5 otherwise."""
    return 0.0 if scale == "double_arcsine" else 0.5


def _check_options(scale: str, add: float | None, to: str) -> float:
    if scale not in (*SCALES, "log_odds_ratio"):
        raise SpecError(f"scale: {scale!r} is not one of {', '.join(SCALES)}, log_odds_ratio")
    if to not in TO_OPTIONS:
        raise SpecError(f"to: {to!r} is not one of {', '.join(TO_OPTIONS)}")
    value = default_add(scale) if add is None else add
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"add: {add!r} is not a number") from None
    if not np.isfinite(value) or value < 0:
        raise SpecError(f"add: {add!r} must be a finite number >= 0")
    return value


def continuity_mask(has_zero: np.ndarray, to: str) -> np.ndarray:
    """Which studies get the correction, given which have a zero cell."""
    has_zero = np.asarray(has_zero, dtype=bool)
    if to == "all" or (to == "if0all" and has_zero.any()):
        return np.ones_like(has_zero)
    if to == "only0":
        return has_zero.copy()
    return np.zeros_like(has_zero)


def ft_double_arcsine(events: ArrayLike, totals: ArrayLike) -> np.ndarray:
    r"""Freeman-Tukey double arcsine :math:`\tfrac12\{\arcsin\sqrt{x/(n+1)} +
    \arcsin\sqrt{(x+1)/(n+1)}\}`."""
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def miller_inverse(t: ArrayLike, n: float) -> np.ndarray:
    r"""Miller's (1978) inverse of the double arcsine for sample size ``n``.

    .. math::

        p = \tfrac12\Bigl[1 - \operatorname{sgn}(\cos 2t)\sqrt{1 - \bigl\{\sin 2t
            + (\sin 2t - 1/\sin 2t)/n\bigr\}^2}\,\Bigr],

    set to 0 below :math:`t(p=0)` and to 1 above :math:`t(p=1)` (metafor's
    ``transf.ipft``). For a pooled estimate, ``n`` is the harmonic mean of the
    studies' sample sizes (metafor's ``transf.ipft.hm``). It inverts
    :func:`ft_double_arcsine` exactly: ``miller_inverse(ft(x, n), n) == x / n``.
    """
    t = np.asarray(t, dtype=float)
    n = float(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sin(2 * t)
        p = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(1 - (s + (s - 1 / s) / n) ** 2))
    lower = ft_double_arcsine(0.0, n)
    upper = ft_double_arcsine(n, n)
    p = np.where(t > upper, 1.0, np.where(t < lower, 0.0, p))
    return np.where(np.isnan(t), np.nan, p)


def back_transform(scale: str, totals: ArrayLike | None = None) -> Callable[[ArrayLike],
                                                                            np.ndarray]:
    """The function mapping the analysis scale back to a proportion (or odds ratio).

    For ``double_arcsine`` the harmonic mean of ``totals`` is used (Miller 1978).
    """
    if scale == "logit":
        return lambda v: expit(np.asarray(v, dtype=float))
    if scale == "proportion":
        return lambda v: np.asarray(v, dtype=float)
    if scale == "log_odds_ratio":
        return lambda v: np.exp(np.asarray(v, dtype=float))
    if scale == "double_arcsine":
        if totals is None:
            raise SpecError("the double-arcsine back-transform needs the sample sizes")
        n = np.asarray(totals, dtype=float)
        n_hm = 1.0 / np.mean(1.0 / n)
        return lambda v: miller_inverse(v, n_hm)
    raise SpecError(f"scale: {scale!r} has no back-transform")


def _undefined(labels: tuple[str, ...], bad: np.ndarray, why: str, source: str) -> DataError:
    names = ", ".join(repr(label) for label, b in zip(labels, bad, strict=True) if b)
    return DataError(
        f"{source}: {why} for study {names}; use a continuity correction "
        "(add > 0, to='only0') or another scale (e.g. 'double_arcsine')"
    )


def proportion_effects(counts: Counts, scale: str = "logit", *, add: float | None = None,
                       to: str = "only0") -> EffectSizes:
    """Per-study effect sizes of single proportions on ``scale`` (see module docstring).

    Raises
    ------
    DataError
        If an effect size or its variance is undefined (a zero cell left uncorrected
        on the logit scale, or a zero variance on the proportion scale).
    """
    add = _check_options(scale, add, to)
    if scale == "log_odds_ratio":
        raise SpecError("log_odds_ratio needs two-arm data: use log_odds_ratio_effects")
    x, n = counts.events, counts.totals
    mask = continuity_mask((x == 0) | (x == n), to) & (add > 0)
    xa = x + add * mask
    na = n + 2 * add * mask
    if scale == "logit":
        bad = (xa == 0) | (xa == na)
        if bad.any():
            raise _undefined(counts.labels, bad, "the logit of 0 or 1 events/total is infinite",
                             counts.source)
        yi = np.log(xa / (na - xa))
        vi = 1 / xa + 1 / (na - xa)
    elif scale == "proportion":
        yi = xa / na
        vi = yi * (1 - yi) / na
        bad = vi <= 0
        if bad.any():
            raise _undefined(counts.labels, bad, "the sampling variance is 0", counts.source)
    else:
        yi = ft_double_arcsine(xa, na)
        vi = 1 / (4 * na + 2)
    return EffectSizes(scale, counts.labels, yi, vi, n.copy(), mask, add, to)


def log_odds_ratio_effects(counts: TwoArmCounts, *, add: float | None = 0.5,
                           to: str = "only0", drop00: bool = True) -> EffectSizes:
    """Per-trial log odds ratios (treated vs control), metafor ``escalc(measure="OR")``.

    ``drop00`` leaves out trials with no events in either arm (or only events), in
    which the odds ratio is not estimable; they are listed in ``dropped``.

    Raises
    ------
    DataError
        If no trial is left, or a zero cell is left uncorrected.
    """
    add = _check_options("log_odds_ratio", add, to)
    a, c = counts.a, counts.c
    b, d = counts.n1 - a, counts.n2 - c
    double_zero = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    keep = ~double_zero if drop00 else np.ones_like(double_zero)
    dropped = tuple(label for label, z in zip(counts.labels, double_zero, strict=True)
                    if z and drop00)
    if not keep.any():
        raise DataError(f"{counts.source}: every trial has no events (or only events) in both "
                        "arms; the odds ratio is not estimable")
    labels = tuple(label for label, k in zip(counts.labels, keep, strict=True) if k)
    a, b, c, d = (arr[keep] for arr in (a, b, c, d))
    has_zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    mask = continuity_mask(has_zero, to) & (add > 0)
    a, b, c, d = (arr + add * mask for arr in (a, b, c, d))
    bad = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    if bad.any():
        raise _undefined(labels, bad, "the log odds ratio with a zero cell is infinite",
                         counts.source)
    yi = np.log(a * d / (b * c))
    vi = 1 / a + 1 / b + 1 / c + 1 / d
    totals = (counts.n1 + counts.n2)[keep]
    return EffectSizes("log_odds_ratio", labels, yi, vi, totals, mask, add, to, dropped)
