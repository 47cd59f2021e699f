"""Published reference figures that the comparison tables show next to our results.

Only figures that were checked against the source are stored, each as
``{"value": ..., "mark": "verified"}``. Proportions are fractions (0.87 for 87%),
I^2 is in percent, as published. These figures come from the authors' *real*
study-level data; the embedded ``sed_synthetic`` dataset was simulated to resemble
them and is not those data, so agreement or disagreement with our numbers is no
replication (see ``docs/compare.md``).

Structure of :data:`PUBLISHED` (keyed by the ``dataset`` name in a table's metadata)::

    {dataset: {"citation": str, "short": str, "outcomes": {outcome: {
        "subgroups": {label: {"estimate": V, "ci_lower": V, "ci_upper": V, "i2": V}},
        "contrasts": {(a, b): {"difference": V, "p_value": V}},
        "statements": (str, ...)}}}}

where ``V`` is a ``{"value", "mark"}`` dict, the row ``"overall"`` is the paper's
"all SEDs" pooled rate, and every key inside a row is optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["KHAN_2017", "PUBLISHED", "published_for", "value"]

VERIFIED = "verified"


def _v(number: float, mark: str = VERIFIED) -> dict[str, Any]:
    return {"value": float(number), "mark": mark}


KHAN_2017: dict[str, Any] = {
    "citation": ("Khan MA et al., Dig Dis Sci 2017;62:35-44, doi:10.1007/s10620-016-4373-1 "
                 "(weighted pooled rates, WPR)"),
    "short": "Khan 2017",
    "outcomes": {
        "clinical_success": {
            "subgroups": {
                "overall": {"estimate": _v(0.87), "ci_lower": _v(0.78), "ci_upper": _v(0.93),
                            "i2": _v(37.0)},
                "type_iii": {"estimate": _v(0.92)},
                "des": {"estimate": _v(0.88)},
                "jackhammer": {"estimate": _v(0.72)},
            },
            "contrasts": {
                ("type_iii", "jackhammer"): {"difference": _v(0.20), "p_value": _v(0.01)},
            },
            "statements": ("type III vs jackhammer clinical success: difference 20%, P = 0.01",),
        },
        "adverse_event": {
            "subgroups": {
                "overall": {"estimate": _v(0.14), "ci_lower": _v(0.09), "ci_upper": _v(0.20),
                            "i2": _v(0.0)},
                "type_iii": {"estimate": _v(0.11)},
                "des": {"estimate": _v(0.14)},
                "jackhammer": {"estimate": _v(0.16)},
            },
            "contrasts": {},
            "statements": ("no safety difference between disorders",),
        },
    },
}

PUBLISHED: dict[str, dict[str, Any]] = {"sed_synthetic": KHAN_2017}


def published_for(dataset: str | None, outcome: str) -> Mapping[str, Any] | None:
    """The published figures for ``outcome`` of ``dataset``, or ``None``.

    The outcome's ``subgroups``, ``contrasts`` and ``statements``, with the source's
    ``citation`` and ``short`` name added.
    """
    source = PUBLISHED.get(dataset or "")
    if source is None or outcome not in source["outcomes"]:
        return None
    return {"citation": source["citation"], "short": source["short"],
            **source["outcomes"][outcome]}


def value(entry: Mapping[str, Any] | None, key: str) -> float:
    """The number stored under ``key`` of a row (``nan`` when not published)."""
    if not entry or key not in entry:
        return float("nan")
    return float(entry[key]["value"])
