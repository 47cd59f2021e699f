"""The aligned plain-text tables of :meth:`bayes_poem.compare.Comparison.render_text`
(formatting only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from bayes_poem.compare_frames import _level
from bayes_poem.results import OVERALL


def _pct(x: float, digits: int = 1) -> str:
    return "" if not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _pct_g(x: float) -> str:
    return "" if not np.isfinite(x) else f"{100 * x:g}%"


def _ci(est: float, lower: float, upper: float, fmt: Callable[[float], str] = _pct) -> str:
    if not np.isfinite(est):
        return ""
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return fmt(est)
    return f"{fmt(est)} [{fmt(lower)}, {fmt(upper)}]"


def _num(x: float, fmt: str) -> str:
    return "" if not np.isfinite(x) else format(x, fmt)


def _table(groups: list[tuple[str, list[tuple[str, str, list[str]]]]]) -> list[str]:
    """Columns ``(header, align, cells)`` in named groups, separated by `` | ``."""
    blocks = []
    for name, columns in groups:
        widths = [max(len(h), *(len(c) for c in cells)) for h, _, cells in columns]
        n_rows = len(columns[0][2])

        def cell(text: str, width: int, align: str) -> str:
            return text.rjust(width) if align == ">" else text.ljust(width)

        header = "  ".join(cell(h, w, a) for (h, a, _), w in zip(columns, widths, strict=True))
        body = ["  ".join(cell(c[2][i], w, c[1]) for c, w in zip(columns, widths, strict=True))
                for i in range(n_rows)]
        width = max(len(header), len(name))
        blocks.append([name.ljust(width), header.ljust(width),
                       *(line.ljust(width) for line in body)])
    return [" | ".join(parts).rstrip() for parts in zip(*blocks, strict=True)]


def _subgroup_table(frame: pd.DataFrame, published: bool, level: float,
                    interval: str, moderated: bool = False) -> list[str]:
    r = frame
    groups = [
        ("", [("subgroup", "<", list(r["subgroup"])),
              ("k", ">", [str(k) for k in r["k"]]),
              ("n", ">", [str(n) for n in r["total"]]),
              ("observed", ">", [_pct(x) for x in r["observed"]])]),
    ]
    if moderated:
        groups.append((f"Meta-regression [{_level(level)} CI]", [
            ("estimate", "<", [_ci(*v) for v in zip(
                r["freq_metareg_estimate"], r["freq_metareg_ci_lower"],
                r["freq_metareg_ci_upper"], strict=True)])]))
    groups += [
        (f"Frequentist{' without moderators' if moderated else ''}, estimate "
         f"[{_level(level)} CI]", [
            ("estimate", "<", [_ci(*v) for v in zip(r["freq_estimate"], r["freq_ci_lower"],
                                                    r["freq_ci_upper"], strict=True)]),
            ("model", "<", list(r["freq_model"])),
            ("I^2", ">", [_num(x, ".1f") + "%" if np.isfinite(x) else "" for x in r["freq_i2"]]),
            ("tau^2", ">", [_num(x, ".3f") for x in r["freq_tau2"]]),
            ("Q p", ">", [_num(x, ".3f") for x in r["freq_q_pvalue"]])]),
        (f"Bayesian, median [{interval}]", [
            ("p_pooled", "<", [_ci(*v) for v in zip(
                r["bayes_p_pooled_median"], r["bayes_p_pooled_lower"],
                r["bayes_p_pooled_upper"], strict=True)]),
            ("p_mean", ">", [_pct(x) for x in r["bayes_p_mean_median"]]),
            ("tau^2", ">", [_num(x, ".3f") for x in r["bayes_tau2_median"]])]),
    ]
    if published:
        groups.append(("Published (real data)", [
            ("estimate", "<", [_ci(*v, fmt=_pct_g) for v in zip(
                r["published"], r["published_ci_lower"], r["published_ci_upper"],
                strict=True)]),
            ("I^2", ">", [_num(x, "g") + "%" if np.isfinite(x) else ""
                          for x in r["published_i2"]])]))
    return _table(groups)


def _tau_table(frame: pd.DataFrame, level: float, re_method: str, interval: str) -> list[str]:
    r = frame[frame["subgroup"] != OVERALL]

    def num(est: float, lower: float, upper: float) -> str:
        return _ci(est, lower, upper, fmt=lambda x: f"{x:.3f}")

    groups = [
        ("", [("subgroup", "<", list(r["subgroup"])), ("k", ">", [str(k) for k in r["k"]])]),
        (f"Frequentist random effects ({re_method}), Q-profile {_level(level)} CI", [
            ("tau^2", "<", [num(*v) for v in zip(r["freq_re_tau2"], r["freq_re_tau2_ci_lower"],
                                                 r["freq_re_tau2_ci_upper"], strict=True)]),
            ("chosen model", "<", list(r["freq_model"]))]),
        (f"Bayesian, median [{interval}]", [
            ("tau[d]^2", "<", [num(*v) for v in zip(r["bayes_tau2_median"],
                                                    r["bayes_tau2_lower"],
                                                    r["bayes_tau2_upper"], strict=True)]),
            ("tau[d]", ">", [_num(x, ".3f") for x in r["bayes_tau_median"]]),
            ("I^2", ">", [_num(x, ".1f") + "%" if np.isfinite(x) else ""
                          for x in r["bayes_i2_median"]])]),
    ]
    return _table(groups)


def _moderator_table(frame: pd.DataFrame, level: float, interval: str) -> list[str]:
    r = frame

    def num(est: float, lower: float, upper: float) -> str:
        return _ci(est, lower, upper, fmt=lambda x: f"{x:.3f}")

    groups = [
        ("", [("term", "<", list(r["term"])), ("per", "<", list(r["per"]))]),
        (f"Bayesian, median [{interval}]", [
            ("beta", "<", [num(*v) for v in zip(r["bayes_median"], r["bayes_lower"],
                                                r["bayes_upper"], strict=True)]),
            ("P(>0)", ">", [_num(x, ".3f") for x in r["bayes_p_gt_0"]])]),
        (f"REML [{_level(level)} CI]", [
            ("estimate", "<", [num(*v) for v in zip(r["freq_estimate"], r["freq_ci_lower"],
                                                    r["freq_ci_upper"], strict=True)]),
            ("p", ">", [_num(x, ".3f") for x in r["freq_p_value"]]),
            ("Knapp-Hartung CI", "<", [num(*v) for v in zip(
                r["freq_estimate"], r["freq_knha_ci_lower"], r["freq_knha_ci_upper"],
                strict=True)]),
            ("KH p", ">", [_num(x, ".3f") for x in r["freq_knha_p_value"]])]),
        (f"GLMM [{_level(level)} CI]", [
            ("estimate", "<", [num(*v) for v in zip(r["glmm_estimate"], r["glmm_ci_lower"],
                                                    r["glmm_ci_upper"], strict=True)]),
            ("p", ">", [_num(x, ".3f") for x in r["glmm_p_value"]])]),
    ]
    return _table(groups)


def _contrast_table(frame: pd.DataFrame, published: bool, level: float,
                    interval: str, moderated: bool = False) -> list[str]:
    r = frame
    groups = [("", [("contrast", "<", list(r["contrast"]))])]
    if moderated and "freq_metareg_difference" in r:
        groups.append((f"Meta-regression [{_level(level)} CI]", [
            ("difference", "<", [_ci(*v) for v in zip(
                r["freq_metareg_difference"], r["freq_metareg_ci_lower"],
                r["freq_metareg_ci_upper"], strict=True)]),
            ("p", ">", [_num(x, ".3f") for x in r["freq_metareg_p_value"]])]))
    groups += [
        (f"Frequentist{' without moderators' if moderated else ''} [{_level(level)} CI]", [
            ("difference", "<", [_ci(*v) for v in zip(r["freq_difference"], r["freq_ci_lower"],
                                                      r["freq_ci_upper"], strict=True)]),
            ("z", ">", [_num(x, ".2f") for x in r["freq_z"]]),
            ("p", ">", [_num(x, ".3f") for x in r["freq_p_value"]])]),
        (f"Bayesian, median [{interval}]", [
            ("difference", "<", [_ci(*v) for v in zip(r["bayes_median"], r["bayes_lower"],
                                                      r["bayes_upper"], strict=True)]),
            ("P(>0)", ">", [_num(x, ".3f") for x in r["bayes_p_gt_0"]]),
            ("margin", ">", [_pct_g(x) for x in r["margin"]]),
            ("P(>margin)", ">", [_num(x, ".3f") for x in r["bayes_p_gt_margin"]])]),
    ]
    if published:
        groups.append(("Published (real data)", [
            ("difference", ">", [_pct_g(x) for x in r["published_difference"]]),
            ("P", ">", [_num(x, "g") for x in r["published_p_value"]])]))
    return _table(groups)
