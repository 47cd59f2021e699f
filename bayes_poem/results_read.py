"""Reading a results directory back: the one reader of its format.

:func:`load_results` (and :func:`load_fit`, given the parsed spec) rebuilds the
:class:`~bayes_poem.results.FitResult` from ``posterior.nc`` and ``spec.toml``
without refitting, refusing a posterior that is not the fit of the model
``spec.toml`` describes (``SpecError`` naming the key, or ``DataError`` naming
the file); :func:`find_sensitivity` finds a ``sensitivity.csv`` in the
directory or its ``_sensitivity`` sibling. A joint model's directory
(``bayes_poem.joint_cli``) is read back by :func:`load_joint_fit` (the same
checks on the joint posterior's attributes), and :func:`find_joint_sensitivity`
finds its ``benefit_risk_sensitivity.csv``. The names of the files are
:mod:`bayes_poem.results_names`'; :mod:`bayes_poem.results_dir` re-exports
every public name of this module.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayes_poem.errors import DataError, SpecError
from bayes_poem.results_names import JOINT_SENSITIVITY, POSTERIOR, SENSITIVITY, SPEC, beside

if TYPE_CHECKING:
    import pandas as pd

    from bayes_poem.joint import JointSpec
    from bayes_poem.joint_results import JointResult
    from bayes_poem.joint_specfile import JointAnalysisSpec
    from bayes_poem.results import FitResult
    from bayes_poem.spec import ModelSpec
    from bayes_poem.specfile import AnalysisSpec

__all__ = ["find_joint_sensitivity", "find_sensitivity", "load_fit", "load_joint_fit",
           "load_results", "results_dir_files"]


# ---------------------------------------------------------------------- reading back
def load_results(path: str | Path) -> FitResult:
    """The :class:`~bayes_poem.results.FitResult` of a ``bayes-poem run`` directory.

    Reads its ``spec.toml`` (the resolved spec: data, model, priors, sampler,
    ``[summary]``) and ``posterior.nc``, and checks them as ``bayes-poem report
    RESULTS_DIR`` does (:func:`load_fit`): the posterior must be the fit of the
    model ``spec.toml`` describes, else ``SpecError`` naming the key or
    ``DataError`` naming the file. Nothing is refitted. The result reports with
    the spec's ``[summary]`` interval, weights and ``at``.
    """
    from bayes_poem.specfile import load_spec

    _, spec_path = results_dir_files(path)
    analysis = load_spec(spec_path)
    return load_fit(path, analysis, analysis.model_spec())


def results_dir_files(path: str | Path) -> tuple[Path, Path]:
    """``posterior.nc`` and ``spec.toml`` of a results directory (``DataError`` if missing)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")
    posterior, spec = path / POSTERIOR, path / SPEC
    if not posterior.is_file():
        raise DataError(f"{path}: no {POSTERIOR} (expected a results directory written by "
                        "'bayes-poem run')")
    if not spec.is_file():
        raise DataError(f"{path}: no {SPEC} (expected a results directory written by "
                        "'bayes-poem run')")
    return posterior, spec


def load_fit(path: str | Path, analysis: AnalysisSpec, spec: ModelSpec) -> FitResult:
    """The :class:`FitResult` stored in a results directory, without refitting.

    ``analysis`` and ``spec`` come from its ``spec.toml``. The posterior's
    attributes (written by :func:`bayes_poem.sampling.fit`) must describe
    exactly the model of ``spec.toml``: outcome, subgroups, data (hash and
    studies), subgroup and study effects, likelihood, moderators (names, kinds,
    centres, scales, levels, references), the priors the structure uses and
    every sampler setting. A difference is refused (``SpecError``
    naming the ``spec.toml`` key), and so is a posterior without these
    attributes or whose draws do not match them (``DataError``). Only the
    ``[summary]`` options, contrasts, title and description may be edited:
    they change how the fit is reported, not the fit.
    """
    from bayes_poem.diagnostics import check_fit
    from bayes_poem.results import FitResult

    posterior_path, _ = results_dir_files(path)
    idata = _read_posterior(posterior_path)
    fitted = _fitted_model(idata.posterior.attrs, posterior_path)
    _check_same_model(fitted, analysis, spec)
    _check_draws(idata, fitted, spec, posterior_path)
    settings = dataclasses.replace(analysis.sampler, progress=False)
    return FitResult(spec=spec, idata=idata, settings=settings,
                     diagnostics=check_fit(idata, warn=False), interval=analysis.interval,
                     weights=analysis.weights, at=analysis.at, labels=analysis.labels or None)


def _read_posterior(posterior_path: Path) -> Any:
    """``posterior.nc`` loaded into memory (``DataError`` if unreadable)."""
    import arviz as az

    try:
        idata = az.from_netcdf(str(posterior_path), engine="h5netcdf")
        for group in idata.groups():
            idata[group].load()
        idata.posterior  # noqa: B018 - a file without a posterior group is refused here
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error
        raise DataError(f"{posterior_path}: cannot be read as a posterior "
                        f"({type(err).__name__})") from None
    return idata


def load_joint_fit(path: str | Path, analysis: JointAnalysisSpec,
                   spec: JointSpec) -> JointResult:
    """The :class:`~bayes_poem.joint_results.JointResult` of a joint ``bayes-poem run``
    directory, without refitting: as :func:`load_fit`, the posterior's attributes
    (written by :func:`bayes_poem.joint.fit`) must describe the model of ``spec.toml``
    (outcomes, subgroups, data, subgroup effects, priors, the prior on ``rho``, every
    sampler setting; ``SpecError`` naming the key) and its draws and data must match
    them (``DataError`` naming the file)."""
    import dataclasses

    import arviz as az
    import numpy as np

    from bayes_poem.diagnostics import check_fit
    from bayes_poem.joint_results import JointResult

    posterior_path, _ = results_dir_files(path)
    idata = _read_posterior(posterior_path)
    post = idata.posterior
    if post.attrs.get("model") != "joint":
        raise DataError(f"{posterior_path}: not the posterior of a joint model (no "
                        "model = 'joint' attribute), but spec.toml has data.outcomes")
    try:
        fitted = {name: json.loads(post.attrs[name]) for name in
                  ("outcomes", "subgroups", "studies", "priors", "sampler")}
        fitted.update({name: post.attrs[name] for name in
                       ("data_hash", "subgroup_effects", "rho_eta", "rho_fixed")})
    except KeyError as err:
        raise DataError(f"{posterior_path}: no {err} attribute: not a posterior written by "
                        "this version of bayes-poem; refit it with 'bayes-poem run'") from None
    except (TypeError, ValueError):
        raise DataError(f"{posterior_path}: an attribute is not valid JSON") from None

    def differs(key: str, was: Any, now: Any) -> SpecError:
        return SpecError(f"{analysis.source}: {key} differs from the fitted model (fitted "
                         f"{was}, spec.toml {now})")

    if fitted["outcomes"] != list(spec.outcomes):
        raise differs("data.outcomes", fitted["outcomes"], list(spec.outcomes))
    if fitted["subgroups"] != list(spec.subgroups):
        raise differs("data.subgroups", fitted["subgroups"], list(spec.subgroups))
    if fitted["data_hash"] != spec.table.data_hash() or fitted["studies"] != spec.studies:
        raise SpecError(f"{analysis.source}: data: the posterior was fitted to other data "
                        f"than spec.toml describes (data hash: fitted {fitted['data_hash']}, "
                        f"spec.toml {spec.table.data_hash()})")
    if fitted["subgroup_effects"] != spec.subgroup_effects:
        raise differs("model.subgroup_effects", fitted["subgroup_effects"],
                      spec.subgroup_effects)
    for outcome in spec.outcomes:
        for name in spec.parameter_names():
            was = (fitted["priors"].get(outcome) or {}).get(name)
            now = spec.priors[outcome][name].to_dict()
            if was != now:
                raise differs(f"priors.{outcome}.{name}", _prior_text(was), _prior_text(now))
    rho_fixed = None if fitted["rho_fixed"] == "none" else float(fitted["rho_fixed"])
    if float(fitted["rho_eta"]) != spec.rho_eta:
        raise differs("priors.rho.eta", fitted["rho_eta"], spec.rho_eta)
    if rho_fixed != spec.rho_fixed:
        raise differs("priors.rho.fixed", rho_fixed, spec.rho_fixed)
    described = analysis.sampler.to_dict()
    for settings in (described, fitted["sampler"]):
        settings.pop("progress", None)
    for key in sorted(set(described) | set(fitted["sampler"])):
        if described.get(key) != fitted["sampler"].get(key):
            raise differs(f"sampler.{key}", repr(fitted["sampler"].get(key)),
                          repr(described.get(key)))
    shape = (post.sizes.get("chain"), post.sizes.get("draw"))
    if shape != (described.get("chains"), described.get("draws")):
        raise DataError(f"{posterior_path}: {shape[0]} chains x {shape[1]} draws stored, but "
                        f"sampled with {described.get('chains')} x {described.get('draws')}")
    for name in ("mu", "tau", "rho"):
        if name not in post or not np.isfinite(post[name].values).all():
            raise DataError(f"{posterior_path}: variable '{name}' missing or not finite")
    stored = (idata.observed_data.get("y") if "observed_data" in idata.groups()
              else None)
    events = spec.arrays()["events"]
    if stored is None or stored.shape != events.shape or not (np.asarray(stored)
                                                              == events).all():
        raise DataError(f"{posterior_path}: its observed_data 'y' differs from the data of "
                        "spec.toml")
    checked = idata
    if spec.rho_fixed is not None:  # a constant has no R-hat (as joint.fit)
        checked = az.InferenceData(posterior=post.drop_vars("rho"),
                                   sample_stats=idata.sample_stats)
    settings = dataclasses.replace(analysis.sampler, progress=False)
    return JointResult(spec=spec, idata=idata, settings=settings,
                       diagnostics=check_fit(checked, warn=False), interval=analysis.interval,
                       benefit_risk=analysis.benefit_risk)


# Attributes that define a fitted model, and whether each is JSON.
MODEL_ATTRS = {"outcome": False, "subgroups": True, "data_hash": False, "studies": True,
               "subgroup_effects": False, "study_effects": False, "likelihood": False,
               "priors": True, "zeroed_rows": True, "sampler": True}


def _fitted_model(attrs: Mapping[str, Any], posterior_path: Path) -> dict[str, Any]:
    """The model-defining attributes of a posterior; ``DataError`` if any is missing."""
    fitted = {}
    for name, is_json in MODEL_ATTRS.items():
        if name not in attrs:
            raise DataError(f"{posterior_path}: no '{name}' attribute: not a posterior written "
                            "by this version of bayes-poem, so what was fitted is unknown; "
                            "refit it with 'bayes-poem run'")
        value = attrs[name]
        try:
            fitted[name] = json.loads(value) if is_json else str(value)
        except (TypeError, ValueError):
            raise DataError(f"{posterior_path}: attribute '{name}' is not valid JSON") from None
    kinds = {"subgroups": list, "studies": list, "priors": dict, "zeroed_rows": list,
             "sampler": dict}
    for name, kind in kinds.items():
        if not isinstance(fitted[name], kind):
            raise DataError(f"{posterior_path}: attribute '{name}' is not a JSON "
                            f"{'list' if kind is list else 'object'}")
    fitted["sampler"].pop("progress", None)
    # Optional: posteriors written before moderators existed have none.
    try:
        fitted["moderators"] = json.loads(attrs.get("moderators", "[]"))
    except (TypeError, ValueError):
        raise DataError(f"{posterior_path}: attribute 'moderators' is not valid JSON") from None
    if not isinstance(fitted["moderators"], list):
        raise DataError(f"{posterior_path}: attribute 'moderators' is not a JSON list")
    # Optional: posteriors written before tau[subgroup] existed had one tau.
    fitted["study_heterogeneity"] = str(attrs.get("study_heterogeneity", "common"))
    # Optional: posteriors written before cell effects existed had none.
    fitted["cell_effects"] = str(attrs.get("cell_effects", "none"))
    return fitted


def _check_same_model(fitted: Mapping[str, Any], analysis: AnalysisSpec,
                      spec: ModelSpec) -> None:
    """Refuse a spec.toml whose model differs from the fitted one, naming the key."""
    source = analysis.source
    data_key = "data.dataset" if "dataset" in analysis.data else "data.path"

    def differs(key: str, was: Any, now: Any) -> SpecError:
        return SpecError(f"{source}: {key} differs from the fitted model (fitted {was}, "
                         f"spec.toml {now})")

    def labels(values: Sequence[Any]) -> str:
        return "[" + ", ".join(map(str, values)) + "]"

    if fitted["outcome"] != spec.outcome:
        raise differs("data.outcome", fitted["outcome"], spec.outcome)
    if fitted["subgroups"] != list(spec.subgroups):
        raise differs("data.subgroups", labels(fitted["subgroups"]), labels(spec.subgroups))
    if fitted["data_hash"] != spec.table.data_hash() or fitted["studies"] != spec.studies:
        raise SpecError(f"{source}: {data_key}: the posterior was fitted to other data than "
                        f"spec.toml describes (data hash: fitted {fitted['data_hash']}, "
                        f"spec.toml {spec.table.data_hash()})")
    for key in ("subgroup_effects", "study_effects", "likelihood", "study_heterogeneity",
                "cell_effects"):
        if fitted[key] != getattr(spec, key):
            raise differs(f"model.{key}", fitted[key], getattr(spec, key))
    coding = [m.to_dict() for m in spec.moderators]
    if fitted["moderators"] != coding:
        was_names = [m.get("name") if isinstance(m, Mapping) else m
                     for m in fitted["moderators"]]
        now_names = [m["name"] for m in coding]
        if was_names != now_names:
            raise differs("model.moderators", labels(was_names), labels(now_names))
        k = next(k for k, (a, b) in enumerate(zip(fitted["moderators"], coding,
                                                   strict=True)) if a != b)
        raise differs(f"the coding of moderator '{now_names[k]}' (model.moderator_reference, "
                      "moderator_scale, moderator_kinds or its data)",
                      json.dumps(fitted["moderators"][k]), json.dumps(coding[k]))
    for name in spec.parameter_names():
        was, now = fitted["priors"].get(name), spec.priors[name].to_dict()
        if was != now:
            raise differs(f"priors.{name}", _prior_text(was), _prior_text(now))
    described = analysis.sampler.to_dict()
    described.pop("progress", None)
    missing = object()
    for key in [*described, *(k for k in fitted["sampler"] if k not in described)]:
        was, now = fitted["sampler"].get(key, missing), described.get(key, missing)
        if was != now:
            raise differs(f"sampler.{key}", "(not set)" if was is missing else repr(was),
                          "(not set)" if now is missing else repr(now))
    if fitted["zeroed_rows"]:
        raise SpecError(f"{source}: the posterior is of a variant with rows zeroed "
                        f"(rows {labels(fitted['zeroed_rows'])}), which no spec.toml describes")


def _prior_text(prior: Any) -> str:
    if not isinstance(prior, Mapping):
        return "(none)"
    params = {k: v for k, v in prior.items() if k != "dist"}
    return f"{prior.get('dist')}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def _check_draws(idata: Any, fitted: Mapping[str, Any], spec: ModelSpec,
                 posterior_path: Path) -> None:
    """The stored draws and data are those of the model the attributes describe."""
    import numpy as np

    from bayes_poem.backends.compiled import expanded_layout

    post = idata.posterior

    def refuse(problem: str) -> DataError:
        return DataError(f"{posterior_path}: {problem}; it is not the posterior its "
                         "attributes describe")

    for group in ("sample_stats", "observed_data", "constant_data"):
        if group not in idata.groups():
            raise refuse(f"no '{group}' group")
    sampler = fitted["sampler"]
    shape = (post.sizes.get("chain"), post.sizes.get("draw"))
    if shape != (sampler.get("chains"), sampler.get("draws")):
        raise refuse(f"{shape[0]} chains x {shape[1]} draws stored, but sampled with "
                     f"{sampler.get('chains')} x {sampler.get('draws')}")
    for name, dims_shape, dims in expanded_layout(spec):
        if name not in post:
            raise refuse(f"variable '{name}' missing")
        if (tuple(post[name].dims) != ("chain", "draw", *dims)
                or tuple(post[name].shape[2:]) != tuple(dims_shape)):
            raise refuse(f"variable '{name}' has dims {tuple(post[name].dims)}")
        if not np.isfinite(post[name].values).all():
            raise refuse(f"variable '{name}' has non-finite draws")
    for dim, values in spec.coords.items():
        if dim in post.dims and [str(v) for v in post[dim].values] != list(values):
            raise refuse(f"the '{dim}' labels differ from the data's")
    arrays = spec.arrays()
    for group, name, expected in (("observed_data", "y", arrays["events"]),
                                  ("constant_data", "total", arrays["total"])):
        stored = idata[group].get(name)
        if (stored is None or stored.shape != expected.shape
                or not (np.asarray(stored) == expected).all()):
            raise refuse(f"its {group} '{name}' differs from the data of spec.toml")


def find_sensitivity(results_dir: str | Path) -> pd.DataFrame | None:
    """``sensitivity.csv`` in ``results_dir`` or in its sibling ``<name>_sensitivity``
    (where ``bayes-poem sensitivity`` writes by default), validated
    (:func:`bayes_poem.sensitivity.read_table`: ``DataError`` naming the file,
    row and column); ``None`` if there is none."""
    from bayes_poem.sensitivity import read_table

    results_dir = Path(results_dir)
    for path in (results_dir / SENSITIVITY, beside(results_dir, "sensitivity") / SENSITIVITY):
        if path.exists():
            if not path.is_file():
                raise DataError(f"{path}: not a regular file")
            return read_table(path)
    return None


def find_joint_sensitivity(results_dir: str | Path) -> pd.DataFrame | None:
    """``benefit_risk_sensitivity.csv`` (``bayes-poem sensitivity`` of a joint spec) in
    ``results_dir`` or its sibling ``<name>_sensitivity``, validated
    (:func:`bayes_poem.joint_sensitivity.read_table`); ``None`` if there is none."""
    from bayes_poem.joint_sensitivity import read_table

    results_dir = Path(results_dir)
    for path in (results_dir / JOINT_SENSITIVITY,
                 beside(results_dir, "sensitivity") / JOINT_SENSITIVITY):
        if path.exists():
            if not path.is_file():
                raise DataError(f"{path}: not a regular file")
            return read_table(path)
    return None
