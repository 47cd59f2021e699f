"""The ``[bias]`` section of a spec: ``BiasOptions`` (precision measure, slope, the
cumulative analyses' ordering column, the frequentist estimator) and ``parse_bias``.

See :mod:`bayes_poem.bias` for the overview and the references.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bayes_poem.bias_precision import PRECISIONS, SLOPES
from bayes_poem.errors import SpecError
from bayes_poem.specfile_sections import check_keys

__all__ = [
    "BIAS_KEYS",
    "BiasOptions",
    "parse_bias",
]

# ---------------------------------------------------------------------- options
BIAS_KEYS = ("precision", "slope", "order", "decreasing", "method")


@dataclass(frozen=True)
class BiasOptions:
    """The ``[bias]`` section of a spec (all optional).

    Attributes
    ----------
    precision : {"sqrtninv", "sei"}
        The precision moderator and the funnels' vertical axis.
    slope : {"common", "by_subgroup"}
        One slope, or one per subgroup.
    order : str or None
        The column the cumulative analyses order studies by; ``None``: ``year`` when the
        data have it, else the table's study order.
    decreasing : bool
        Latest first.
    method : str
        The frequentist tau^2 estimator (``REML``, ``ML``, ``DL``; ``FE`` for the
        cumulative and trim-and-fill analyses only).
    """

    precision: str = "sqrtninv"
    slope: str = "common"
    order: str | None = None
    decreasing: bool = False
    method: str = "REML"

    def to_dict(self) -> dict[str, Any]:
        """TOML-ready (``order`` left out when unset)."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if v is not None}


def parse_bias(raw: Mapping[str, Any] | None, source: str) -> BiasOptions:
    """Validate a ``[bias]`` table (``SpecError`` naming the file and the key)."""
    raw = dict(raw or {})
    check_keys(raw, BIAS_KEYS, source, "bias")
    for key, allowed in (("precision", PRECISIONS), ("slope", SLOPES),
                         ("method", ("REML", "ML", "DL"))):
        if key in raw and raw[key] not in allowed:
            raise SpecError(f"{source}: bias.{key}: {raw[key]!r} is not one of "
                            f"{', '.join(allowed)}")
    if "order" in raw and (not isinstance(raw["order"], str) or not raw["order"].strip()):
        raise SpecError(f"{source}: bias.order must be a column name (got {raw['order']!r})")
    if "decreasing" in raw and not isinstance(raw["decreasing"], bool):
        raise SpecError(f"{source}: bias.decreasing must be true or false "
                        f"(got {raw['decreasing']!r})")
    return BiasOptions(**raw)
