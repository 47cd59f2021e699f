"""The section parsers of a TOML analysis spec (moved from ``specfile``, unchanged).

Type checks of ``[data]`` (:func:`_check_data`) and of the ``[model]`` moderator
keys (:func:`_check_moderator_keys`), the ``[labels]`` (:func:`_parse_labels`) and
``[compare]`` (:func:`_parse_compare`, :func:`check_method`: ``method`` one of
:data:`COMPARE_METHODS`, ``knapp_hartung``) sections, and the helpers every
message uses (:func:`check_keys`: unknown keys with the valid ones listed;
:func:`_shown`). Every error is a ``SpecError`` naming the file and the key.
:mod:`bayes_poem.specfile` calls them from ``parse_spec`` and re-exports the
public names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bayes_poem.datasets import load_dataset
from bayes_poem.errors import SpecError
from bayes_poem.table import StudyTable, load_table, recorded_path

__all__ = ["COMPARE_KEYS", "COMPARE_METHODS", "check_data_marks", "check_data_source",
           "check_keys", "check_method", "data_table"]

COMPARE_KEYS = ("method", "knapp_hartung")  # [compare]: the comparator of 'bayes-poem compare'
# the frequentist comparators (bayes_poem.compare's docstring); "published" is the default
COMPARE_METHODS = ("published", "glmm", "reml", "dl")


def data_table(data: Mapping[str, Any], base_dir: Path, source: str) -> StudyTable:
    """The table a (checked) ``[data]`` section names, marked and labelled as it says.

    ``dataset`` loads an embedded dataset; ``path`` reads a file relative to
    ``base_dir`` (recorded as ``data_source``, :func:`~bayes_poem.table.recorded_path`).
    ``synthetic = true`` marks the table synthetic (every SYNTHETIC banner follows);
    ``label`` names it. A synthetic table cannot be un-marked: ``synthetic = false``
    on one is a ``SpecError`` naming ``source`` and the key. One definition for the
    one-outcome and the joint specs.
    """
    if "dataset" in data:
        table = load_dataset(data["dataset"])
        marks = {}
    else:
        path = (base_dir / data["path"]).resolve()
        table = load_table(path, source=str(path))
        marks = {"data_source": recorded_path(data["path"], base_dir)}
    if "synthetic" in data:
        if table.is_synthetic and not data["synthetic"]:
            raise SpecError(f"{source}: data.synthetic = false, but {table.source} is "
                            "synthetic data; it cannot be marked otherwise (remove the key)")
        marks["synthetic"] = str(data["synthetic"]).lower()
    if "label" in data:
        marks["label"] = data["label"]
    return table.with_metadata(**marks) if marks else table


def check_data_source(data: Mapping[str, Any], source: str, strings: tuple[str, ...],
                      shown: Callable[[Any], str] | None = None) -> None:
    """``[data]`` names exactly one of ``dataset`` and ``path``; each of ``strings`` it
    has is a non-empty string (one-outcome and joint specs; ``shown`` writes a bad value
    into the message, :func:`_shown` unless given)."""
    shown = shown or _shown
    if ("dataset" in data) == ("path" in data):
        raise SpecError(f"{source}: [data] needs exactly one of 'dataset' or 'path'")
    for key in strings:
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            raise SpecError(f"{source}: data.{key} must be a non-empty string "
                            f"(got {shown(data[key])})")


def check_data_marks(data: Mapping[str, Any], source: str,
                     shown: Callable[[Any], str] | None = None) -> None:
    """``data.synthetic`` is a boolean and ``data.label`` a non-empty one-line string
    (one-outcome and joint specs; ``shown`` as for :func:`check_data_source`)."""
    shown = shown or _shown
    if "synthetic" in data and not isinstance(data["synthetic"], bool):
        raise SpecError(f"{source}: data.synthetic must be true or false "
                        f"(got {shown(data['synthetic'])})")
    if "label" in data and (not isinstance(data["label"], str) or not data["label"].strip()
                            or "\n" in data["label"]):
        raise SpecError(f"{source}: data.label must be a non-empty one-line string "
                        f"(got {shown(data['label'])})")


def _check_data(data: Mapping[str, Any], source: str) -> None:
    """Types of the ``[data]`` keys (the table itself is read and checked later)."""
    check_data_source(data, source, ("dataset", "path", "outcome"))
    if "outcome" not in data:
        raise SpecError(f"{source}: data.outcome is required (the outcome to model)")
    check_data_marks(data, source)
    if "subgroups" in data and (
        not isinstance(data["subgroups"], list)
        or not all(isinstance(s, str) for s in data["subgroups"])
        or not data["subgroups"]
    ):
        raise SpecError(f"{source}: data.subgroups must be a non-empty list of labels "
                        f"(got {_shown(data['subgroups'])})")


def _check_moderator_keys(model: Mapping[str, Any], source: str) -> None:
    """Types of the ``[model]`` moderator keys (their values are checked with the data)."""
    names = model.get("moderators", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise SpecError(f"{source}: model.moderators must be a list of covariate column names "
                        f"(got {_shown(names)})")
    for key in ("moderator_reference", "moderator_kinds"):
        if key in model and not isinstance(model[key], Mapping):
            raise SpecError(f"{source}: model.{key} must be a table moderator = value "
                            f"(got {_shown(model[key])})")
    for name, value in model.get("moderator_reference", {}).items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SpecError(f"{source}: model.moderator_reference.{name} must be a level "
                            f"(string) or a centre (number) (got {_shown(value)})")
    for name, value in model.get("moderator_kinds", {}).items():
        if value not in ("numeric", "categorical"):
            raise SpecError(f"{source}: model.moderator_kinds.{name} must be \"numeric\" or "
                            f"\"categorical\" (got {_shown(value)})")
    scale = model.get("moderator_scale", True)
    if not isinstance(scale, bool | Mapping):
        raise SpecError(f"{source}: model.moderator_scale must be true, false or a table "
                        f"moderator = number (got {_shown(scale)})")


def _parse_labels(section: Any, source: str) -> dict[str, str]:
    """``[labels]``: code = "display name" (non-empty one-line strings)."""
    if not isinstance(section, Mapping):
        raise SpecError(f"{source}: [labels] must be a table code = \"display name\" "
                        f"(got {_shown(section)})")
    for key, value in section.items():
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            raise SpecError(f"{source}: labels.{key} must be a non-empty one-line string "
                            f"(got {_shown(value)})")
    return dict(section)


def check_method(method: object, knapp_hartung: object, key: str = "method") -> tuple[str, bool]:
    """``(method, knapp_hartung)`` validated; ``SpecError`` naming ``key`` otherwise."""
    if not isinstance(method, str) or method.lower() not in COMPARE_METHODS:
        raise SpecError(f"{key}: {method!r} is not one of {', '.join(COMPARE_METHODS)}")
    if not isinstance(knapp_hartung, bool):
        raise SpecError(f"{key.rpartition('.')[0] + '.' if '.' in key else ''}knapp_hartung: "
                        f"{knapp_hartung!r} must be true or false")
    method = method.lower()
    if knapp_hartung and method not in ("reml", "dl"):
        raise SpecError(f"{key.rpartition('.')[0] + '.' if '.' in key else ''}knapp_hartung: "
                        f"the Knapp-Hartung adjustment applies to method 'reml' or 'dl', "
                        f"not '{method}'")
    return method, knapp_hartung


def _parse_compare(section: Any, source: str) -> dict[str, Any]:
    """``[compare]``: ``method`` (published | glmm | reml | dl, default published) and
    ``knapp_hartung`` (reml and dl only, default false); ``SpecError`` naming the key."""
    if not isinstance(section, Mapping):
        raise SpecError(f"{source}: [compare] must be a table (got {_shown(section)})")
    check_keys(section, COMPARE_KEYS, source, "compare")
    try:
        method, knha = check_method(section.get("method", "published"),
                                    section.get("knapp_hartung", False), key="compare.method")
    except SpecError as err:
        raise SpecError(f"{source}: {err}") from None
    return {"method": method, "knapp_hartung": knha}


def _shown(value: Any, width: int = 60) -> str:
    """``repr`` of a value for a message, cut to one short line."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}..."


def check_keys(mapping: Mapping[str, Any], allowed: tuple[str, ...], source: str,
               section: str, note: str = "") -> None:
    """Unknown keys of a section (``""``: the top level) are one ``SpecError`` naming
    the first and listing the valid ones (``note`` after the section's name)."""
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        where = f"[{section}]" if section else "the top level"
        name = f"{section}.{unknown[0]}" if section else unknown[0]
        raise SpecError(f"{source}: unknown key '{name}'; valid keys in {where}{note}: "
                        f"{', '.join(allowed)}")
