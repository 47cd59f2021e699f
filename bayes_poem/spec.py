r"""The model specification: a frozen description of a model, its variants and its data.

Model (one outcome; row :math:`i` belongs to study :math:`s_i` and subgroup :math:`d_i`)

.. math::

    y_i &\sim \mathrm{Binomial}(n_i, p_i), \qquad
    \operatorname{logit} p_i = \mu + \alpha_{d_i} + u_{s_i} + x_i^\top \beta \\
    u_s &= \tau\, w_s, \quad w_s \sim N(0, 1)
        \quad (\text{study\_effects = "random"}; \; u_s = 0 \text{ if "common"}) \\
    u_{s_i} &\to \tau_{d_i}\, w_{s_i}
        \quad (\text{study\_heterogeneity = "by\_subgroup"}) \\
    \alpha_d &= \sigma_{\text{subgroup}}\, z_d, \quad z_d \sim N(0, 1)
        \quad (\text{subgroup\_effects = "random"}) \\
    \alpha &= s_\alpha H \alpha^{\text{raw}}, \quad \alpha^{\text{raw}} \sim N(0, I_{D-1})
        \quad (\text{"fixed"}: \textstyle\sum_d \alpha_d = 0) \\
    \alpha_d &= 0 \quad (\text{"none"}: \text{single-group model}) \\
    \beta_k &\sim N(0, s_\beta^2) \quad (\text{moderators; } x_i = 0
        \text{ at the reference values, see } :mod:`bayes_poem.moderators`) \\
    \operatorname{logit} p_i &\mathrel{+}= \tau_{\text{cell}}\, v_{c_i}, \quad v_c \sim N(0, 1)
        \quad (\text{cell\_effects = "random"}; c_i \text{ the row's study x subgroup cell})

with priors on :math:`\mu`, :math:`\tau`, :math:`\sigma_{\text{subgroup}}`,
:math:`s_\alpha`, :math:`s_\beta` and :math:`\tau_{\text{cell}}` from
:mod:`bayes_poem.priors`. ``H`` is the orthonormal Helmert basis of the sum-to-zero
subspace, so fixed effects have the exchangeable prior ``ZeroSumNormal(s_alpha)``
and ``mu`` is the mean subgroup logit.

The spec describes; the backends build and run it: the PyMC reference model is
:func:`bayes_poem.backends.pymc_model.build_model`, the compiled kernel's buffer and
layouts are in :mod:`bayes_poem.backends.compiled`, sampling is
:func:`bayes_poem.sampling.fit`. :meth:`ModelSpec.build` and :meth:`ModelSpec.fit`
are conveniences that delegate to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bayes_poem.dims import CELL, MODERATOR, ROW, STUDY, SUBGROUP, SUBGROUP_CONTRAST
from bayes_poem.errors import DataError, SpecError
from bayes_poem.moderators import Moderator, code_moderators, design_matrix, term_names
from bayes_poem.priors import Prior, resolve_priors
from bayes_poem.structure import default_subgroup_effects
from bayes_poem.table import StudyTable

if TYPE_CHECKING:
    import pymc as pm

    from bayes_poem.results import FitResult
    from bayes_poem.sampling import SamplerSettings

SubgroupEffects = Literal["random", "fixed", "none"]
StudyEffects = Literal["random", "common"]
Likelihood = Literal["binomial", "beta_binomial"]
SUBGROUP_OPTIONS = ("random", "fixed", "none")
STUDY_OPTIONS = ("random", "common")
LIKELIHOOD_OPTIONS = ("binomial", "beta_binomial")
StudyHeterogeneity = Literal["common", "by_subgroup"]
HETEROGENEITY_OPTIONS = ("common", "by_subgroup")
CellEffects = Literal["none", "random"]
CELL_OPTIONS = ("none", "random")


@dataclass(frozen=True)
class ModelSpec:
    """A binomial-logit-normal meta-analysis of one outcome, ready to build or fit.

    Create with :meth:`from_table`; every ``with_*`` / ``without_*`` method
    returns a new spec and never mutates this one.

    Attributes
    ----------
    table : StudyTable
        Rows of one outcome (validated).
    outcome : str
        The outcome being modelled.
    subgroup_effects : {"random", "fixed", "none"}
        Partially pooled, unpooled (sum-to-zero) or absent subgroup effects.
    study_effects : {"random", "common"}
        Random study effects, or the common-effect model (``tau = 0``).
    priors : dict
        Parameter name -> :class:`~bayes_poem.priors.Prior`, defaults filled in.
    likelihood : {"binomial", "beta_binomial"}
        Binomial (with study effects) or beta-binomial (overdispersion ``phi``;
        study effects must then be "common").
    zeroed_rows : tuple of int
        Rows whose counts are set to 0 (leave-one-out, subsets): they drop out
        of the likelihood exactly while the model keeps its shape.
    moderators : tuple of Moderator
        Meta-regression terms, coded once from the model's rows
        (:meth:`with_moderators`); empty for the model without moderators.
    study_heterogeneity : {"common", "by_subgroup"}
        One between-study SD ``tau``, or one per subgroup (``tau[d]``; row
        ``i``'s study effect is ``tau[d_i] * w[s_i]``). "by_subgroup" needs
        random study effects and random or fixed subgroup effects.
    cell_effects : {"none", "random"}
        Study x subgroup cell effects: row ``i`` gets ``tau_cell * v[c_i]``,
        ``v ~ N(0, 1)``, where ``c_i`` indexes the distinct (study, subgroup)
        cells of the model's rows (:attr:`cell_labels`; zeroed rows included, so
        the shape never changes between variants). "random" needs random study
        effects (binomial likelihood), random or fixed subgroup effects, and a
        study with rows in two or more subgroups (otherwise a cell effect is not
        separable from the study effect).
    subgroup_effects_by_default : bool
        True when ``from_table`` chose ``subgroup_effects`` by its rule (the spec did
        not set it; :mod:`bayes_poem.structure`): only the reason printed with the
        structure, never part of the model (not compared, not hashed).
    """

    table: StudyTable
    outcome: str
    subgroup_effects: SubgroupEffects = "random"
    study_effects: StudyEffects = "random"
    priors: Mapping[str, Prior] = field(default_factory=resolve_priors)
    likelihood: Likelihood = "binomial"
    zeroed_rows: tuple[int, ...] = ()
    moderators: tuple[Moderator, ...] = ()
    study_heterogeneity: StudyHeterogeneity = "common"
    cell_effects: CellEffects = "none"
    subgroup_effects_by_default: bool = field(default=False, compare=False, repr=False)

    # ------------------------------------------------------------------ creation
    @classmethod
    def from_table(
        cls,
        table: StudyTable,
        outcome: str | None = None,
        *,
        subgroup_effects: SubgroupEffects | None = None,
        study_effects: StudyEffects | None = None,
        priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
        subgroups: list[str] | None = None,
        likelihood: Likelihood = "binomial",
        moderators: list[str] | tuple[str, ...] | None = None,
        moderator_reference: Mapping[str, Any] | None = None,
        moderator_scale: bool | Mapping[str, float] = True,
        moderator_kinds: Mapping[str, str] | None = None,
        study_heterogeneity: StudyHeterogeneity = "common",
        cell_effects: CellEffects = "none",
    ) -> ModelSpec:
        """Build a spec from a validated table.

        ``outcome`` may be omitted when the table has exactly one. By default,
        three or more subgroups get random (partially pooled) subgroup effects,
        two subgroups fixed effects (a between-subgroup SD cannot be learned from
        two groups), and one subgroup the single-group model.

        The rows are put in a canonical order: stably sorted by the subgroup
        order (``subgroups``, default: order of first appearance), so that the
        same data with the same subgroup order always give the same model.

        ``moderators`` (covariate columns) and the ``moderator_*`` options are
        those of :meth:`with_moderators` (``reference``, ``scale``, ``kinds``).
        """
        if not isinstance(table, StudyTable):
            raise SpecError(f"table: expected a StudyTable from load_table or load_dataset "
                            f"(got {type(table).__name__})")
        if outcome is not None and not isinstance(outcome, str):
            raise SpecError(f"outcome: must be a string (got {outcome!r})")
        if subgroups is not None and (isinstance(subgroups, str) or not isinstance(
                subgroups, list | tuple) or not all(isinstance(s, str) for s in subgroups)):
            raise SpecError(f"subgroups: must be a list of subgroup labels (got {subgroups!r})")
        if priors is not None and not isinstance(priors, Mapping):
            raise SpecError(f"priors: must be a mapping name -> Prior (got {priors!r})")
        if outcome is None:
            if len(table.outcomes) != 1:
                raise SpecError(
                    f"{table.source}: several outcomes ({', '.join(table.outcomes)}); "
                    "name one with outcome="
                )
            outcome = table.outcomes[0]
        rows = table.for_outcome(outcome)
        # Canonical row order, whether or not subgroups are named: rows stably
        # grouped by subgroup order. The model (and its data hash) is then a
        # function of the data and the subgroup order only, so a resolved
        # spec.toml, which always lists the subgroups, repeats the analysis.
        try:
            rows = rows.with_subgroups(rows.subgroups if subgroups is None else subgroups)
        except DataError as err:  # only a given subgroup list can fail: name its key
            raise SpecError(f"data.subgroups: {err}") from None
        by_default = subgroup_effects is None
        if subgroup_effects is None:  # the rule: bayes_poem.structure
            chosen = default_subgroup_effects(len(rows.subgroups))
            subgroup_effects = chosen  # type: ignore[assignment]
        if study_effects is None:
            study_effects = "common" if likelihood == "beta_binomial" else "random"
        spec = cls(rows, outcome, subgroup_effects, study_effects,
                   resolve_priors(priors), likelihood, study_heterogeneity=study_heterogeneity,
                   cell_effects=cell_effects, subgroup_effects_by_default=by_default)
        spec._check()
        if moderators:
            spec = spec.with_moderators(*moderators, reference=moderator_reference,
                                        scale=moderator_scale, kinds=moderator_kinds)
        return spec

    def _check(self) -> None:
        for key in ("subgroup_effects", "study_effects", "likelihood", "study_heterogeneity",
                    "cell_effects"):
            if not isinstance(getattr(self, key), str):
                raise SpecError(f"model.{key}: must be a string (got {getattr(self, key)!r})")
        if self.subgroup_effects not in SUBGROUP_OPTIONS:
            raise SpecError(f"model.subgroup_effects: '{self.subgroup_effects}' is not one of "
                            f"{', '.join(SUBGROUP_OPTIONS)}")
        if self.study_effects not in STUDY_OPTIONS:
            raise SpecError(f"model.study_effects: '{self.study_effects}' is not one of "
                            f"{', '.join(STUDY_OPTIONS)}")
        if self.likelihood not in LIKELIHOOD_OPTIONS:
            raise SpecError(f"model.likelihood: '{self.likelihood}' is not one of "
                            f"{', '.join(LIKELIHOOD_OPTIONS)}")
        if self.likelihood == "beta_binomial" and self.study_effects != "common":
            raise SpecError("model.likelihood = 'beta_binomial' models between-study "
                            "variation itself; it needs model.study_effects = 'common'")
        if self.study_heterogeneity not in HETEROGENEITY_OPTIONS:
            raise SpecError(f"model.study_heterogeneity: '{self.study_heterogeneity}' is not "
                            f"one of {', '.join(HETEROGENEITY_OPTIONS)}")
        if self.study_heterogeneity == "by_subgroup":
            if self.study_effects != "random":
                raise SpecError("model.study_heterogeneity = 'by_subgroup' scales random study "
                                "effects; it needs model.study_effects = 'random' (and the "
                                "binomial likelihood)")
            if self.subgroup_effects == "none":
                raise SpecError("model.study_heterogeneity = 'by_subgroup' needs "
                                "model.subgroup_effects = 'random' or 'fixed' (a tau per "
                                "subgroup with pooled subgroups has no subgroup results)")
        self._check_cells()
        if self.subgroup_effects != "none" and len(self.subgroups) < 2:
            raise SpecError(
                f"model.subgroup_effects = '{self.subgroup_effects}' needs at least 2 subgroups; "
                f"the data have {len(self.subgroups)} ({', '.join(self.subgroups)}); "
                "use 'none' for the single-group model"
            )

    def _check_cells(self) -> None:
        if self.cell_effects not in CELL_OPTIONS:
            raise SpecError(f"model.cell_effects: '{self.cell_effects}' is not one of "
                            f"{', '.join(CELL_OPTIONS)}")
        if self.cell_effects == "none":
            return
        if self.study_effects != "random":
            raise SpecError("model.cell_effects = 'random' varies a study's subgroups around "
                            "its random study effect; it needs model.study_effects = 'random' "
                            "(and the binomial likelihood)")
        if self.subgroup_effects == "none":
            raise SpecError("model.cell_effects = 'random' needs model.subgroup_effects = "
                            "'random' or 'fixed' (cells are study x subgroup)")
        per_study = self.table.frame.groupby("study")["subgroup"].nunique()
        if not (per_study >= 2).any():
            raise SpecError("model.cell_effects = 'random' needs a study with rows in two or "
                            "more subgroups; in these data every study has one subgroup, so "
                            "a cell effect is not separable from the study effect")

    # ------------------------------------------------------------------ variants
    def with_priors(self, **priors: Prior | Mapping[str, Any]) -> ModelSpec:
        """A copy with some priors replaced, e.g. ``spec.with_priors(tau=Prior(...))``."""
        merged: dict[str, Any] = dict(self.priors)
        merged.update(priors)
        return dataclasses.replace(self, priors=resolve_priors(merged))

    def with_options(self, *, subgroup_effects: SubgroupEffects | None = None,
                     study_effects: StudyEffects | None = None,
                     likelihood: Likelihood | None = None,
                     study_heterogeneity: StudyHeterogeneity | None = None,
                     cell_effects: CellEffects | None = None) -> ModelSpec:
        """A copy with other subgroup effects, study effects, likelihood, heterogeneity
        or cell effects.

        Choosing ``likelihood="beta_binomial"`` without ``study_effects`` sets
        the study effects to "common" (the beta-binomial carries the
        between-study variation); going back to "binomial" restores "random".
        Without ``study_heterogeneity``, a change that leaves no random study
        effects or no subgroup effects (common effects, beta-binomial,
        ``subgroup_effects="none"``) sets it to "common" (one tau or none): the
        variant then has no tau per subgroup to keep; likewise ``cell_effects``
        falls back to "none" (cells vary around random study effects, within
        subgroups).
        """
        if study_effects is None and likelihood is not None and likelihood != self.likelihood:
            study_effects = "common" if likelihood == "beta_binomial" else "random"
        if study_heterogeneity is None and (study_effects == "common"
                                            or likelihood == "beta_binomial"
                                            or subgroup_effects == "none"):
            study_heterogeneity = "common"
        if cell_effects is None and (study_effects == "common" or likelihood == "beta_binomial"
                                     or subgroup_effects == "none"):
            cell_effects = "none"
        spec = dataclasses.replace(  # None keeps a setting; anything else is checked
            self,
            subgroup_effects=self.subgroup_effects if subgroup_effects is None
            else subgroup_effects,
            study_effects=self.study_effects if study_effects is None else study_effects,
            likelihood=self.likelihood if likelihood is None else likelihood,
            study_heterogeneity=self.study_heterogeneity if study_heterogeneity is None
            else study_heterogeneity,
            cell_effects=self.cell_effects if cell_effects is None else cell_effects,
            subgroup_effects_by_default=self.subgroup_effects_by_default
            and subgroup_effects in (None, self.subgroup_effects),
        )
        spec._check()
        return spec

    def with_moderators(self, *names: str, reference: Mapping[str, Any] | None = None,
                        scale: bool | Mapping[str, float] = True,
                        kinds: Mapping[str, str] | None = None) -> ModelSpec:
        """A copy with these moderators (meta-regression terms) replacing any others.

        Each name is a covariate column of the table. Numeric moderators are
        centred at their mean over the model's rows (or at ``reference[name]``)
        and scaled by their SD (``scale=True``), not at all (``False``), or by
        ``scale[name]``; categorical ones get dummies against the first of
        their sorted levels (or ``reference[name]``). ``kinds[name]`` forces
        ``"numeric"`` or ``"categorical"``. The coding is computed now, from
        all rows of the model (zeroed rows included), and recorded in
        :attr:`moderators`. No names: the model without moderators. See
        :mod:`bayes_poem.moderators`.
        """
        coded = code_moderators(self.table.frame, self.table.source, list(names),
                                reference=reference, scale=scale, kinds=kinds)
        return dataclasses.replace(self, moderators=coded)

    def leave_out(self, study: str) -> ModelSpec:
        """Zero one study's counts: exact leave-one-out with an unchanged structure.

        With its counts at 0 the study's rows contribute nothing to the
        likelihood, and its own effect ``w_s`` is a priori independent of every
        other parameter, so the posterior of the others equals the posterior
        without the study (see docs/sensitivity.md).
        """
        # one pass over the rows (not self.studies, which lists the table's studies
        # anew: the leave-one-out grid of S studies would be quadratic in S)
        rows = np.flatnonzero(self.table.frame["study"].to_numpy() == study)
        if not rows.size:
            raise DataError(f"{self.table.source}: study '{study}' not in the data")
        return dataclasses.replace(self, zeroed_rows=tuple(sorted({*self.zeroed_rows, *rows})))

    def only_where(self, column: str, values: list[Any]) -> ModelSpec:
        """Zero every row whose covariate ``column`` is not in ``values`` (a subset)."""
        frame = self.table.frame
        if column not in frame.columns:
            raise DataError(f"{self.table.source}: no column '{column}' to subset by; "
                            f"columns: {', '.join(map(str, frame.columns))}")
        keep = frame[column].astype(str).isin([str(v) for v in values]).to_numpy()
        if not keep.any():
            raise DataError(f"{self.table.source}: no row has {column} in "
                            f"{', '.join(map(str, values))}")
        rows = np.flatnonzero(~keep)
        return dataclasses.replace(self, zeroed_rows=tuple(sorted({*self.zeroed_rows, *rows})))

    def active_frame(self):
        """The rows that enter the likelihood (all rows unless some are zeroed)."""
        frame = self.table.frame
        if not self.zeroed_rows:
            return frame
        return frame.drop(index=list(self.zeroed_rows))

    def subgroups_without_data(self) -> list[str]:
        present = set(self.active_frame()["subgroup"])
        return [s for s in self.subgroups if s not in present]

    def with_table(self, table: StudyTable) -> ModelSpec:
        """The same model on other data (same outcome).

        Moderators keep their coding (centre, scale, levels and reference), so
        that ``mu`` and ``beta`` mean the same as in this spec.
        """
        spec = ModelSpec.from_table(
            table, self.outcome, subgroup_effects=self.subgroup_effects,
            study_effects=self.study_effects, priors=dict(self.priors),
            likelihood=self.likelihood, study_heterogeneity=self.study_heterogeneity,
            cell_effects=self.cell_effects,
        )
        spec = dataclasses.replace(
            spec, subgroup_effects_by_default=self.subgroup_effects_by_default)
        if not self.moderators:
            return spec
        mods = self.moderators
        coded = code_moderators(
            spec.table.frame, spec.table.source, [m.name for m in mods],
            reference={m.name: m.centre if m.kind == "numeric" else m.reference for m in mods},
            scale={m.name: m.scale for m in mods if m.kind == "numeric"},
            kinds={m.name: m.kind for m in mods},
            levels={m.name: m.levels for m in mods if m.kind == "categorical"},
            check_variation=False)
        return dataclasses.replace(spec, moderators=coded)

    def without_study(self, study: str) -> ModelSpec:
        """The same model without one study's rows."""
        return self.with_table(self.table.without_studies([study]))

    # ------------------------------------------------------------------ data views
    @property
    def studies(self) -> list[str]:
        return self.table.studies

    @property
    def subgroups(self) -> list[str]:
        return self.table.subgroups

    @property
    def row_labels(self) -> list[str]:
        frame = self.table.frame
        return [f"{s} | {d}" for s, d in zip(frame["study"], frame["subgroup"], strict=True)]

    @property
    def coords(self) -> dict[str, list[str]]:
        coords = {STUDY: self.studies, SUBGROUP: self.subgroups, ROW: self.row_labels}
        if self.subgroup_effects == "fixed":
            coords[SUBGROUP_CONTRAST] = [f"helmert_{k}" for k in range(1, len(self.subgroups))]
        if self.moderators:
            coords[MODERATOR] = self.moderator_terms
        if self.cell_effects == "random":
            coords[CELL] = self.cell_labels
        return coords

    @property
    def cell_labels(self) -> list[str]:
        """The distinct study x subgroup cells of the rows, ``"<study>:<subgroup>"``, in
        order of first appearance (the ``cell`` coordinate; zeroed rows included)."""
        return list(dict.fromkeys(self._cell_keys()))

    def _cell_keys(self) -> list[str]:
        frame = self.table.frame
        return [f"{s}:{d}" for s, d in zip(frame["study"], frame["subgroup"], strict=True)]

    @property
    def moderator_terms(self) -> list[str]:
        """Names of the coefficients ``beta`` (the ``moderator`` coordinate)."""
        return term_names(self.moderators)

    def design(self) -> np.ndarray:
        """The coded moderators of every row, shape (rows, terms); (rows, 0) without."""
        return design_matrix(self.moderators, self.table.frame)

    def arrays(self) -> dict[str, np.ndarray]:
        """Counts and index arrays, one entry per row."""
        frame = self.table.frame
        study_pos = {s: i for i, s in enumerate(self.studies)}
        sub_pos = {d: i for i, d in enumerate(self.subgroups)}
        events = frame["events"].to_numpy(dtype=np.int64).copy()
        total = frame["total"].to_numpy(dtype=np.int64).copy()
        events[list(self.zeroed_rows)] = 0
        total[list(self.zeroed_rows)] = 0
        return {
            "events": events,
            "total": total,
            "study_idx": frame["study"].map(study_pos).to_numpy(dtype=np.int64),
            "subgroup_idx": frame["subgroup"].map(sub_pos).to_numpy(dtype=np.int64),
            "cell_idx": self._cell_index(),
        }

    def _cell_index(self) -> np.ndarray:
        cell_pos = {label: i for i, label in enumerate(self.cell_labels)}
        return np.array([cell_pos[key] for key in self._cell_keys()], dtype=np.int64)

    def hyperparameters(self) -> dict[str, float]:
        """Prior hyperparameters that are data to the compiled model, by name."""
        used = self.parameter_names()
        return {
            f"prior_{name}_{key}": value
            for name, prior in self.priors.items() if name in used
            for key, value in prior.params.items()
        }

    def describe_priors(self) -> dict[str, str]:
        used = self.parameter_names()
        return {name: prior.describe() for name, prior in self.priors.items() if name in used}

    def parameter_names(self) -> list[str]:
        """Names of the priors this structure uses."""
        names = ["mu"]
        if self.study_effects == "random":
            names.append("tau")
        if self.likelihood == "beta_binomial":
            names.append("phi")
        if self.subgroup_effects == "random":
            names.append("sigma_subgroup")
        elif self.subgroup_effects == "fixed":
            names.append("alpha")
        if self.moderators:
            names.append("beta")
        if self.cell_effects == "random":
            names.append("tau_cell")
        return names

    # ------------------------------------------------------------------ conveniences
    def build(self) -> pm.Model:
        """A fresh PyMC model of this spec (the reference definition).

        See :func:`bayes_poem.backends.pymc_model.build_model`.
        """
        from bayes_poem.backends.pymc_model import build_model

        return build_model(self)

    def fit(self, settings: SamplerSettings | None = None, **kwargs: Any) -> FitResult:
        """Sample the posterior; see :func:`bayes_poem.sampling.fit`."""
        from bayes_poem.sampling import fit

        return fit(self, settings, **kwargs)

    def refit(self, settings: SamplerSettings) -> FitResult:
        """Fit this model as another model of an analysis whose main fit used
        ``settings``; see :func:`bayes_poem.sampling.refit`."""
        from bayes_poem.sampling import refit

        return refit(self, settings)

