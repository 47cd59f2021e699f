"""Named dimensions used in every model, ``InferenceData`` and table.

One place for the names so that no ``_dim_0`` ever reaches a user.
"""

from __future__ import annotations

STUDY = "study"
"""A study (trial, centre or experiment) contributing one or more rows."""

SUBGROUP = "subgroup"
"""A disorder type or other subgroup whose effect is modelled (``alpha``)."""

OUTCOME = "outcome"
"""A binary outcome such as ``clinical_success`` or ``adverse_event``."""

ARM = "arm"
"""A trial arm (for two-arm comparisons)."""

SUBGROUP_CONTRAST = "subgroup_contrast"
"""Helmert contrasts of fixed (sum-to-zero) subgroup effects: length n_subgroups - 1."""

MODERATOR = "moderator"
"""A moderator term (meta-regression coefficient ``beta``): a numeric moderator's name,
or ``"<name>[<level>]"`` for a level of a categorical one against its reference."""

CELL = "cell"
"""A study x subgroup cell of the model's rows, labelled ``"<study>:<subgroup>"``: the
dimension of the cell effects ``v`` and ``u_cell`` (``cell_effects = "random"``)."""

ROW = "row"
"""One row of the canonical table: a study x subgroup cell of one outcome."""

CHAIN = "chain"
DRAW = "draw"
SAMPLE_DIMS = (CHAIN, DRAW)
