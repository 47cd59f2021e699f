"""The model's structure in one line, with the reason it was chosen.

Which subgroup-effects structure a spec gets when ``[model] subgroup_effects`` is
not set (:func:`default_subgroup_effects`, used by ``ModelSpec.from_table``):

* ``D >= 3`` subgroups (:data:`RANDOM_MIN_SUBGROUPS`): ``"random"``, partially
  pooled subgroup effects ``alpha_d = sigma_subgroup * z_d``; the subgroup
  estimates, and so the contrasts between them, shrink towards each other;
* ``D = 2``: ``"fixed"`` (unpooled, sum-to-zero): a between-subgroup SD cannot be
  learned from two subgroups;
* ``D = 1``: ``"none"``, the single-group model.

Study heterogeneity has no such rule: one ``tau`` for every subgroup
(``study_heterogeneity = "common"``) unless the spec sets ``"by_subgroup"``.

:func:`structure_line` is what ``run``, ``compare``, ``sensitivity`` and the
report print, e.g. ``Subgroup effects: random (partially pooled), chosen because
4 subgroups >= 3; set [model] subgroup_effects to change | study effects: random,
one tau for all subgroups``. ``sampling.fit`` stores it in ``posterior.nc``'s
attributes (``structure``), so a report of a results directory (whose resolved
``spec.toml`` states the choice explicitly) still says why it was chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bayes_poem.spec import ModelSpec

RANDOM_MIN_SUBGROUPS = 3
"""The fewest subgroups that get random subgroup effects by default."""

_NAMES = {"random": "random (partially pooled)", "fixed": "fixed (unpooled, sum-to-zero)",
          "none": "none (one group)"}


def default_subgroup_effects(n_subgroups: int) -> str:
    """The structure chosen when the spec does not set one (module docstring)."""
    if n_subgroups >= RANDOM_MIN_SUBGROUPS:
        return "random"
    return "fixed" if n_subgroups == 2 else "none"


def subgroup_reason(n_subgroups: int, chosen_by_default: bool) -> str:
    """Why the subgroup effects are what they are."""
    if not chosen_by_default:
        return "as set by [model] subgroup_effects"
    plural = "subgroup" if n_subgroups == 1 else "subgroups"
    if n_subgroups >= RANDOM_MIN_SUBGROUPS:
        because = f"{n_subgroups} {plural} >= {RANDOM_MIN_SUBGROUPS}"
    else:
        because = f"{n_subgroups} {plural} < {RANDOM_MIN_SUBGROUPS}"
    return f"chosen because {because}; set [model] subgroup_effects to change"


def study_text(spec: ModelSpec) -> str:
    """Study effects and heterogeneity: one tau, a tau per subgroup, or none."""
    if spec.likelihood == "beta_binomial":
        return "study effects: none (beta-binomial overdispersion phi)"
    if spec.study_effects == "common":
        return "study effects: common (tau = 0)"
    if spec.study_heterogeneity == "by_subgroup":
        return "study effects: random, a tau per subgroup"
    return "study effects: random, one tau for all subgroups"


def structure_line(spec: ModelSpec) -> str:
    """One line: the subgroup-effects structure with its reason, and the study effects."""
    n = len(spec.subgroups)
    # a variant on other data (fewer subgroups) keeps the structure, not the rule's reason
    by_default = (spec.subgroup_effects_by_default
                  and default_subgroup_effects(n) == spec.subgroup_effects)
    reason = subgroup_reason(n, by_default)
    return (f"Subgroup effects: {_NAMES[spec.subgroup_effects]}, {reason} | "
            f"{study_text(spec)}")


def recorded_line(spec: ModelSpec, attrs: dict | None) -> str:
    """The line stored with a fit (``posterior.nc``'s ``structure`` attribute) when it
    is there, else the spec's own: a refitted results directory keeps the reason."""
    stored = (attrs or {}).get("structure")
    return str(stored) if stored else structure_line(spec)
