"""The variants of a sensitivity grid: families, crossed axes, and what is skipped.

A :class:`Variant` is a named :class:`~bayes_poem.spec.ModelSpec`. A *family*
of variants changes one thing of the main analysis (``tau_priors``: the prior on
``tau``, with the Turner presets; ``mu_priors``; ``sigma_subgroup_priors``;
``subgroup_effects``; ``likelihoods``; ``moderator_sets``;
``precision_moderator``; ``leave_one_out``; ``subsets``); its *levels* are
the changes it makes (:class:`Level`: a name and a function ``ModelSpec ->
ModelSpec``). Families are the axes of the grid.

By default each family adds its levels on their own (main + tau priors, main +
leave-one-out, ...). Families named in ``GridOptions.cross`` are *crossed*
instead: their levels are combined, one variant per element of the Cartesian
product ``L_1 x L_2 x ...``, the levels applied in the order of :data:`APPLY_ORDER`
(priors and structure before the data: leave-one-out and subsets last). So
``cross = ("tau_priors", "leave_one_out")`` with 3 tau priors and 8 studies is
24 variants, named ``<tau level> | <study level>``, each carrying its
``coordinates`` (axis -> level name); families not crossed still add their own
variants. The main analysis's own level is not an element of an axis (list it
as a level to get it, e.g. the main prior among ``tau_priors``).

A variant that leaves a subgroup without studies (a subset, or a study left out
of a subgroup that has only that study) cannot be fitted when the model has
subgroup effects. :func:`plan_grid` says so before anything is sampled
(``GridPlan.notes``), and the *default* quality subset (:func:`default_subsets`)
is not added at all when it would be such a variant.

Building a grid fits nothing, so ``bayes-poem check`` builds it: every error is
a one-line ``SpecError`` naming the ``sensitivity.*`` key.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bayes_poem.errors import DataError, SpecError
from bayes_poem.priors import SENSITIVITY_PRIORS, Prior, turner_description, turner_prior
from bayes_poem.spec import ModelSpec

MAIN = "main"
DEFAULT_TAU_PRIORS: dict[str, Prior] = SENSITIVITY_PRIORS["tau"]
# The families (axes), in the order their variants are added to a grid.
AXES = ("tau_priors", "mu_priors", "sigma_subgroup_priors", "subgroup_effects",
        "likelihoods", "leave_one_out", "subsets", "moderator_sets", "precision_moderator")
# The order in which the levels of a crossed variant are applied: the data last.
APPLY_ORDER = ("tau_priors", "mu_priors", "sigma_subgroup_priors", "subgroup_effects",
               "likelihoods", "moderator_sets", "precision_moderator", "leave_one_out",
               "subsets")
AXIS_LABELS = {"tau_priors": "tau priors", "mu_priors": "mu priors",
               "sigma_subgroup_priors": "sigma_subgroup priors",
               "subgroup_effects": "subgroup structures", "likelihoods": "likelihoods",
               "moderator_sets": "moderator sets", "precision_moderator": "precision moderator",
               "leave_one_out": "leave-one-out", "subsets": "subsets"}
CROSSED = "crossed"
SEPARATOR = " | "  # between the level names of a crossed variant


@dataclass(frozen=True)
class Variant:
    """One model variant of a sensitivity grid.

    ``coordinates`` are the (axis, level name) pairs of a crossed variant
    (empty for ``main`` and the variants of families that are not crossed).
    """

    name: str
    group: str
    spec: ModelSpec
    description: str = ""
    coordinates: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GridOptions:
    """Which variants to build (each a list; empty turns that family off).

    ``cross``: families (names of :data:`AXES`) whose levels are crossed
    instead of added one by one; at least two, or none. ``subsets = None``
    (the default) is :func:`default_subsets` of the spec, as for a spec file
    without a ``subsets`` key, so Python and ``bayes-poem sensitivity`` build
    the same grid.
    """

    tau_priors: Mapping[str, Prior] = field(default_factory=lambda: dict(DEFAULT_TAU_PRIORS))
    turner: Sequence[str] = ("turner_surgical_nonpharm",)
    mu_priors: Mapping[str, Prior] = field(
        default_factory=lambda: dict(SENSITIVITY_PRIORS["mu"]))
    sigma_subgroup_priors: Mapping[str, Prior] = field(
        default_factory=lambda: dict(SENSITIVITY_PRIORS["sigma_subgroup"]))
    subgroup_effects: Sequence[str] = ("fixed",)
    likelihoods: Sequence[str] = ("beta_binomial", "common_effect")
    leave_one_out: bool = True
    # (name, column, values); None: the default subsets of the spec (default_subsets)
    subsets: Sequence[tuple[str, str, tuple[str, ...]]] | None = None
    moderator_sets: Sequence[tuple[str, ...]] = ()  # covariate columns; () = none
    precision_moderator: str | None = None  # "sqrtninv" or "sei": the precision model
    cross: Sequence[str] = ()


@dataclass(frozen=True)
class Level:
    """One level of an axis: a change of the main analysis, and the key that asks for it."""

    name: str
    group: str
    description: str
    apply: Callable[[ModelSpec], ModelSpec]
    key: str


@dataclass(frozen=True)
class GridPlan:
    """The variants of a grid, the crossed axes' sizes and notes to print before sampling."""

    variants: list[Variant]
    axes: tuple[tuple[str, int], ...] = ()  # crossed axes: (axis, number of levels)
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: ``sensitivity grid: 25 variants: main + 24 crossed (3 tau priors x
        8 leave-one-out)``; without crossing, the count per group."""
        n = len(self.variants)
        groups: dict[str, int] = {}
        for variant in self.variants[1:]:
            groups[variant.group] = groups.get(variant.group, 0) + 1
        parts = []
        for group, count in groups.items():
            if group == CROSSED:
                sizes = " x ".join(f"{size} {AXIS_LABELS[axis]}" for axis, size in self.axes)
                parts.append(f"{count} crossed ({sizes})")
            else:
                parts.append(f"{count} {group}")
        return (f"sensitivity grid: {n} variant{'s' if n != 1 else ''}: main"
                + "".join(f" + {p}" for p in parts))


def build_variants(spec: ModelSpec, options: GridOptions | None = None) -> list[Variant]:
    """The main analysis followed by every variant ``options`` asks for.

    Cheap (nothing is fitted), so specs are checked by building their grid.
    See :func:`plan_grid` for the notes and sizes that go with them.

    Raises
    ------
    SpecError
        Two variants with the same name (``main`` is the main analysis), or a
        subset on a column the data do not have or on values that match no
        row, or a moderator set that cannot be coded (unknown or constant
        column, ...), or a ``cross`` that cannot be built; the message names
        the ``sensitivity.*`` key(s).

    A moderator set equal (as a set) to the main analysis's own moderators is
    skipped: it is ``main``.
    """
    return plan_grid(spec, options).variants


def plan_grid(spec: ModelSpec, options: GridOptions | None = None) -> GridPlan:
    """:func:`build_variants` with the crossed axes' sizes and the notes on variants
    that cannot be fitted (a subgroup left without studies)."""
    options = options or GridOptions()
    default_notes: tuple[str, ...] = ()
    if options.subsets is None:
        options = dataclasses.replace(options, subsets=default_subsets(spec))
        note = default_subset_note(spec)
        default_notes = (note,) if note else ()
    cross = tuple(options.cross)
    _check_cross(cross, options)
    variants = [Variant(MAIN, MAIN, spec, "the analysis as specified")]
    origin = {MAIN: "the main analysis"}

    def add(key: str, variant: Variant) -> None:
        if variant.name in origin:
            first = origin[variant.name]
            reason = ("'main' is reserved for the main analysis" if variant.name == MAIN
                      else f"{first} and {key} both name a variant '{variant.name}'")
            raise SpecError(f"{key}: {reason}; variant names must be unique")
        origin[variant.name] = key
        variants.append(variant)

    levels = {axis: axis_levels(spec, options, axis) for axis in AXES}
    for axis in AXES:
        if axis in cross:
            continue
        for level in levels[axis]:
            add(level.key, Variant(level.name, level.group, level.apply(spec),
                                   level.description))
    sizes: tuple[tuple[str, int], ...] = ()
    if cross:
        ordered = [axis for axis in APPLY_ORDER if axis in cross]
        empty = [axis for axis in ordered if not levels[axis]]
        if empty:
            raise SpecError(f"sensitivity.cross: '{empty[0]}' has no levels for this model "
                            f"({_why_empty(spec, empty[0])}); nothing to cross")
        sizes = tuple((axis, len(levels[axis])) for axis in cross)
        for combination in itertools.product(*(levels[axis] for axis in cross)):
            by_axis = dict(zip(cross, combination, strict=True))
            crossed = spec
            for axis in ordered:
                crossed = by_axis[axis].apply(crossed)
            add("sensitivity.cross", Variant(
                SEPARATOR.join(level.name for level in combination), CROSSED, crossed,
                "; ".join(level.description for level in combination),
                tuple((axis, level.name) for axis, level in zip(cross, combination,
                                                                strict=True))))
    notes = default_notes + tuple(
        f"variant '{v.name}' cannot be fitted: subgroup(s) {', '.join(empty)} have no "
        "studies in it (it will be a failed row)"
        for v in variants[1:]
        if v.spec.subgroup_effects != "none" and (empty := v.spec.subgroups_without_data()))
    return GridPlan(variants, sizes, notes)


def _check_cross(cross: tuple[str, ...], options: GridOptions) -> None:
    if not cross:
        return
    unknown = [axis for axis in cross if axis not in AXES]
    if unknown:
        raise SpecError(f"sensitivity.cross: '{unknown[0]}' is not a family of variants; "
                        f"one of {', '.join(AXES)}")
    twice = [axis for i, axis in enumerate(cross) if axis in cross[:i]]
    if twice:
        raise SpecError(f"sensitivity.cross: '{twice[0]}' is listed twice")
    if len(cross) < 2:
        raise SpecError("sensitivity.cross: name at least two families to cross "
                        f"(got {cross[0]!r} alone)")
    if ({"tau_priors", "likelihoods"} <= set(cross)
            and "common_effect" in options.likelihoods):
        raise SpecError("sensitivity.cross: 'tau_priors' cannot be crossed with "
                        "'likelihoods' that include common_effect (it has no tau)")
    if ({"sigma_subgroup_priors", "subgroup_effects"} <= set(cross)
            and "fixed" in options.subgroup_effects):
        raise SpecError("sensitivity.cross: 'sigma_subgroup_priors' cannot be crossed with "
                        "subgroup_effects = fixed (it has no sigma_subgroup)")


def _why_empty(spec: ModelSpec, axis: str) -> str:
    if axis == "tau_priors" and spec.study_effects != "random":
        return "study_effects is not random"
    if axis == "sigma_subgroup_priors" and spec.subgroup_effects != "random":
        return "subgroup_effects is not random"
    if axis == "leave_one_out":
        return "sensitivity.leave_one_out is false"
    if axis == "precision_moderator":
        return "sensitivity.precision_moderator is false"
    return f"sensitivity.{axis} is empty or only repeats the main analysis"


def axis_levels(spec: ModelSpec, options: GridOptions, axis: str) -> list[Level]:
    """The levels of one family for ``spec`` (those equal to the main analysis left out)."""
    out: list[Level] = []
    if axis == "tau_priors" and spec.study_effects == "random":
        for i, (name, prior) in enumerate(options.tau_priors.items(), start=1):
            out.append(Level(name, "tau prior", f"tau ~ {prior.describe()}",
                             _priors(tau=prior), f"sensitivity.tau_priors[{i}]"))
        for i, preset in enumerate(options.turner, start=1):
            out.append(Level(f"tau2 {preset}", "tau prior", turner_description(preset),
                             _priors(tau=turner_prior(preset)), f"sensitivity.turner[{i}]"))
    elif axis == "mu_priors":
        for i, (name, prior) in enumerate(options.mu_priors.items(), start=1):
            out.append(Level(name, "mu prior", f"mu ~ {prior.describe()}", _priors(mu=prior),
                             f"sensitivity.mu_priors[{i}]"))
    elif axis == "sigma_subgroup_priors" and spec.subgroup_effects == "random":
        for i, (name, prior) in enumerate(options.sigma_subgroup_priors.items(), start=1):
            out.append(Level(name, "subgroup prior", f"sigma_subgroup ~ {prior.describe()}",
                             _priors(sigma_subgroup=prior),
                             f"sensitivity.sigma_subgroup_priors[{i}]"))
    elif axis == "subgroup_effects":
        for i, effects in enumerate(options.subgroup_effects, start=1):
            if spec.subgroup_effects != "none" and effects != spec.subgroup_effects:
                out.append(Level(f"subgroups {effects}", "structure",
                                 f"subgroup effects {effects}",
                                 _options(subgroup_effects=effects),
                                 f"sensitivity.subgroup_effects[{i}]"))
    elif axis == "likelihoods":
        for i, likelihood in enumerate(options.likelihoods, start=1):
            key = f"sensitivity.likelihoods[{i}]"
            if likelihood == "beta_binomial" and spec.likelihood != "beta_binomial":
                out.append(Level("beta-binomial", "likelihood",
                                 "beta-binomial likelihood (overdispersion phi)",
                                 _options(likelihood="beta_binomial"), key))
            elif likelihood == "common_effect" and spec.study_effects == "random":
                out.append(Level("common effect", "likelihood", "common-effect model (tau = 0)",
                                 _options(study_effects="common"), key))
            elif likelihood not in ("beta_binomial", "common_effect", "binomial"):
                raise SpecError(f"{key}: '{likelihood}' is not one of "
                                "binomial, beta_binomial, common_effect")
    elif axis == "moderator_sets":
        own = frozenset(m.name for m in spec.moderators)
        main = ", ".join(m.name for m in spec.moderators) or "none"
        for i, names in enumerate(options.moderator_sets, start=1):
            key = f"sensitivity.moderator_sets[{i}]"
            if frozenset(names) == own:  # the main analysis itself: skipped
                continue
            names = tuple(names)
            _with_moderator_set(spec, names, key)  # coded now: errors at build time
            out.append(Level(moderator_set_name(names), "moderators",
                             "moderators " + (", ".join(names) if names else "none")
                             + f" (main: {main})",
                             lambda s, n=names, k=key: _with_moderator_set(s, n, k), key))
    elif axis == "precision_moderator" and options.precision_moderator is not None:
        precision = options.precision_moderator
        _with_precision(spec, precision)
        out.append(Level(f"with precision moderator ({precision})", "moderators",
                         "precision moderator " + precision + ", not centred: p_pooled is the "
                         "limit estimate at infinite precision (bayes_poem.bias)",
                         lambda s: _with_precision(s, precision),
                         "sensitivity.precision_moderator"))
    elif axis == "leave_one_out" and options.leave_one_out:
        for study in spec.studies:
            out.append(Level(f"without {study}", "leave one out",
                             f"study {study} left out (its counts zeroed)",
                             lambda s, study=study: s.leave_out(study),
                             "sensitivity.leave_one_out"))
    elif axis == "subsets":
        for i, (name, column, values) in enumerate(options.subsets, start=1):
            key = f"sensitivity.subsets[{i}]"
            _check_subset(spec, column, values, key)
            out.append(Level(name, "subset", f"only rows with {column} in {', '.join(values)}",
                             lambda s, c=column, v=tuple(values): s.only_where(c, list(v)),
                             key))
    return out


def _priors(**priors: Prior) -> Callable[[ModelSpec], ModelSpec]:
    return lambda spec: spec.with_priors(**priors)


def _options(**options: str) -> Callable[[ModelSpec], ModelSpec]:
    return lambda spec: spec.with_options(**options)


def default_subsets(spec: ModelSpec) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """A quality subset when the data have a ``quality`` column with "good" rows,
    unless it would leave a subgroup of a model with subgroup effects without
    studies (that variant could not be fitted, so the default grid leaves it out;
    :func:`default_subset_note` says why)."""
    frame = spec.table.frame
    if "quality" in frame.columns and (frame["quality"] == "good").any():
        subset = ("good-quality studies only", "quality", ("good",))
        if default_subset_note(spec) is None:
            return (subset,)
    return ()


def default_subset_note(spec: ModelSpec) -> str | None:
    """Why the default quality subset is not in the grid, or ``None`` when it is
    (or when the data have no such subset)."""
    frame = spec.table.frame
    if "quality" not in frame.columns or not (frame["quality"] == "good").any():
        return None
    empty = spec.only_where("quality", ["good"]).subgroups_without_data()
    if empty and spec.subgroup_effects != "none":
        return ("skipped the default variant 'good-quality studies only': subgroup(s) "
                f"{', '.join(empty)} have no good-quality studies")
    return None


def _with_precision(spec: ModelSpec, precision: str) -> ModelSpec:
    """``spec`` with the precision moderator of :func:`bayes_poem.bias.with_precision`
    (one common slope); a failure is a ``SpecError`` naming the key."""
    from bayes_poem.bias import with_precision

    try:
        return with_precision(spec, precision)
    except (SpecError, DataError) as err:
        raise SpecError(f"sensitivity.precision_moderator: {str(err).splitlines()[0]}") from None


def moderator_set_name(names: Sequence[str]) -> str:
    """The variant name of a moderator set: ``moderators: year, quality`` / ``moderators: none``."""
    return "moderators: " + (", ".join(names) if names else "none")


def _with_moderator_set(spec: ModelSpec, names: tuple[str, ...], key: str) -> ModelSpec:
    """``spec`` with the moderators ``names``, coded now (a failure is a ``SpecError``
    naming ``key``). A moderator of the main analysis keeps its coding there (kind,
    centre or reference level, scale); any other column gets the default coding."""
    from bayes_poem.moderators import RESERVED

    frame = spec.table.frame
    for name in names:
        if name in RESERVED:
            raise SpecError(f"{key}: '{name}' is a column of the model's own data, not a "
                            "covariate")
        if name not in frame.columns:
            covariates = [str(c) for c in frame.columns if c not in RESERVED]
            raise SpecError(f"{key}: no column '{name}' in the data; covariates: "
                            f"{', '.join(covariates) or '(none)'}")
    main = {m.name: m for m in spec.moderators if m.name in names}
    try:
        return spec.with_moderators(
            *names,
            reference={n: m.centre if m.kind == "numeric" else m.reference
                       for n, m in main.items()},
            scale={n: m.scale for n, m in main.items() if m.kind == "numeric"},
            kinds={n: m.kind for n, m in main.items()})
    except (SpecError, DataError) as err:
        raise SpecError(f"{key}: {str(err).splitlines()[0]}") from None


def _check_subset(spec: ModelSpec, column: str, values: Sequence[str], key: str) -> None:
    """A subset must name a column of the data and match at least one row of the
    outcome (the same comparison as :meth:`ModelSpec.only_where`)."""
    frame = spec.table.frame
    if column not in frame.columns:
        raise SpecError(f"{key}: no column '{column}' to subset by; columns: "
                        f"{', '.join(map(str, frame.columns))}")
    cells = frame[column].astype(str)
    if not cells.isin([str(v) for v in values]).any():
        found = list(dict.fromkeys(cells))
        shown = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "")
        raise SpecError(f"{key}: no row has {column} in {', '.join(values) or '(no values)'}"
                        f" (outcome {spec.outcome}; values found: {shown})")
