"""Sensitivity of the joint (efficacy-safety) model to the prior on ``rho``.

``bayes-poem sensitivity`` of a joint spec (the CLI dispatches to
:func:`sensitivity_command`) fits the main analysis and one variant per prior on
``rho`` (:class:`JointVariant`; by default LKJ ``eta`` = 1, 2, 4 and ``rho``
fixed at 0, a variant equal to the main analysis skipped), each with the same
sampler settings and seed and the same compiled kernel (no compilation per
variant), and tabulates per variant the benefit-risk probabilities of every
subgroup (``[benefit_risk]`` thresholds, its ``quantity``), the joint contrasts'
P(A better on both), ``rho`` and the ``tau`` of each outcome.

Flags follow the one-outcome grid's rule (:mod:`bayes_poem.sensitivity`): a
probability is flagged when it falls on the other side of the decision threshold
(``decision_threshold``, default 0.95) than in the main analysis.

The spec's ``[sensitivity]`` section (joint specs) takes two keys::

    [sensitivity]
    rho_priors = [{ eta = 1.0 }, { eta = 4.0 }, { fixed = 0.0, name = "independent" }]
    decision_threshold = 0.95

Output (:data:`ROW_COLUMNS`): one row per variant x quantity, tidy, in
``benefit_risk_sensitivity.csv``; :func:`read_table` reads it back for the report.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import math
import numbers
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayes_poem.errors import ConvergenceWarning, SamplingError, SpecError
from bayes_poem.intervals import IntervalSpec
from bayes_poem.joint_results import BenefitRisk, with_options

if TYPE_CHECKING:
    import argparse

    from bayes_poem.joint import JointSpec
    from bayes_poem.sampling import SamplerSettings

__all__ = ["DEFAULT_RHO_PRIORS", "ROW_COLUMNS", "JointSensitivityConfig",
           "JointSensitivityResult", "JointVariant", "build_rho_variants", "fit_joint_variant",
           "parse_joint_sensitivity", "read_table", "render_text", "run_joint_sensitivity",
           "sensitivity_command"]

MAIN = "main"
SENSITIVITY_KEYS = ("rho_priors", "decision_threshold")
DEFAULT_RHO_PRIORS: tuple[tuple[float | None, float | None], ...] = (
    (1.0, None), (2.0, None), (4.0, None), (None, 0.0))
"""``(eta, fixed)`` of the default variants: LKJ(1) (uniform), LKJ(2), LKJ(4), rho = 0."""
ROW_COLUMNS = ["variant", "description", "status", "error", "quantity", "kind", "subgroup",
               "probability", "median", "lower", "upper", "interval", "divergences",
               "seconds", "flag"]


@dataclass(frozen=True)
class JointVariant:
    """One variant of the joint model: a named :class:`~bayes_poem.joint.JointSpec`."""

    name: str
    spec: JointSpec
    description: str = ""


@dataclass(frozen=True)
class JointSensitivityConfig:
    """The ``[sensitivity]`` section of a joint spec.

    ``rho_priors`` holds ``(name, eta, fixed)``: ``eta`` of an LKJ prior, or
    ``fixed`` (``rho`` pinned), one of the two ``None``; ``name`` ``None`` for the
    generated name."""

    rho_priors: tuple[tuple[str | None, float | None, float | None], ...] = field(
        default_factory=lambda: tuple((None, eta, fixed) for eta, fixed in DEFAULT_RHO_PRIORS))
    threshold: float = 0.95


def _real(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def parse_joint_sensitivity(raw: Mapping[str, Any] | None,
                            source: str) -> JointSensitivityConfig:
    """Validate the ``[sensitivity]`` table of a joint spec (one line naming the key)."""
    raw = dict(raw or {})
    unknown = [k for k in raw if k not in SENSITIVITY_KEYS]
    if unknown:
        raise SpecError(f"{source}: unknown key 'sensitivity.{unknown[0]}'; valid keys in "
                        f"[sensitivity] of a joint spec: {', '.join(SENSITIVITY_KEYS)}")
    threshold = raw.get("decision_threshold", 0.95)
    if not _real(threshold) or not 0.5 <= threshold < 1.0:
        raise SpecError(f"{source}: sensitivity.decision_threshold must be in [0.5, 1) "
                        f"(got {threshold!r})")
    if "rho_priors" not in raw:
        return JointSensitivityConfig(threshold=float(threshold))
    entries = raw["rho_priors"]
    if not isinstance(entries, list):
        raise SpecError(f"{source}: sensitivity.rho_priors must be an array of tables, e.g. "
                        "[{ eta = 1.0 }, { fixed = 0.0 }]")
    priors = []
    for i, entry in enumerate(entries, start=1):
        where = f"{source}: sensitivity.rho_priors[{i}]"
        if not isinstance(entry, Mapping) or set(entry) - {"name", "eta", "fixed"}:
            raise SpecError(f"{where}: a table with eta or fixed (and an optional name)")
        if ("eta" in entry) == ("fixed" in entry):
            raise SpecError(f"{where}: give eta (an LKJ prior) or fixed (rho pinned), one of "
                            "the two")
        eta, fixed = entry.get("eta"), entry.get("fixed")
        if eta is not None and (not _real(eta) or eta <= 0):
            raise SpecError(f"{where}.eta: must be a finite number > 0 (got {eta!r})")
        if fixed is not None and (not _real(fixed) or not -1.0 < fixed < 1.0):
            raise SpecError(f"{where}.fixed: must be a number in (-1, 1) (got {fixed!r})")
        name = entry.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()
                                 or name == MAIN):
            raise SpecError(f"{where}.name: must be a non-empty string other than '{MAIN}' "
                            f"(got {name!r})")
        priors.append((name, None if eta is None else float(eta),
                       None if fixed is None else float(fixed)))
    config = JointSensitivityConfig(tuple(priors), float(threshold))
    names = [_name(*p) for p in config.rho_priors]
    twice = [n for i, n in enumerate(names) if n in names[:i]]
    if twice:
        raise SpecError(f"{source}: sensitivity.rho_priors: two variants named '{twice[0]}'; "
                        "variant names must be unique")
    return config


def _name(name: str | None, eta: float | None, fixed: float | None) -> str:
    if name is not None:
        return name
    return f"rho fixed at {fixed:g}" if fixed is not None else f"rho LKJ(eta={eta:g})"


def build_rho_variants(spec: JointSpec,
                       config: JointSensitivityConfig | None = None) -> list[JointVariant]:
    """``main`` (the spec as given) and one variant per rho prior of ``config``; a prior
    equal to the main analysis's is skipped (it would be ``main`` again)."""
    from bayes_poem.joint import rho_prior_description

    config = config or JointSensitivityConfig()
    variants = [JointVariant(MAIN, spec, "the analysis as specified: rho "
                             + rho_prior_description(spec.rho_eta, spec.rho_fixed))]
    for name, eta, fixed in config.rho_priors:
        same = (fixed == spec.rho_fixed if fixed is not None
                else spec.rho_fixed is None and eta == spec.rho_eta)
        if same:
            continue
        variant = (spec.with_rho(fixed=fixed) if fixed is not None
                   else spec.with_rho(eta=eta, fixed=None))
        variants.append(JointVariant(
            _name(name, eta, fixed), variant,
            "rho " + rho_prior_description(variant.rho_eta, variant.rho_fixed)))
    return variants


# ---------------------------------------------------------------------- running
def fit_joint_variant(variant: JointVariant, settings: SamplerSettings,
                      benefit_risk: BenefitRisk, pairs: Sequence[tuple[str, str]],
                      interval: IntervalSpec) -> pd.DataFrame:
    """Fit one variant and return its rows; an error becomes a failed row (picklable)."""
    started = time.perf_counter()
    base = {"variant": variant.name, "description": variant.description}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = variant.spec.fit(settings)
        result = with_options(result, interval=interval, benefit_risk=benefit_risk)
        rows = _quantity_rows(result, pairs)
        problems = result.diagnostics.problems
        frame = pd.DataFrame(rows).assign(
            **base, status="ok" if not problems else "diagnostics",
            error="; ".join(problems), divergences=result.diagnostics.divergences,
            seconds=time.perf_counter() - started)
    except Exception as err:  # noqa: BLE001 - a failed variant must not abort the grid
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        if not isinstance(err, SpecError):
            message += " | " + traceback.format_exc(limit=1).strip().splitlines()[-1]
        frame = pd.DataFrame([{**base, "status": "failed", "error": message,
                               "seconds": time.perf_counter() - started}])
    return frame.reindex(columns=ROW_COLUMNS)


def _quantity_rows(result, pairs: Sequence[tuple[str, str]]) -> list[dict]:
    """Benefit-risk probabilities (the ``[benefit_risk]`` quantity), P(better on both),
    then rho and the taus."""
    quantity = result.benefit_risk.quantity
    rows = []
    table = result.benefit_risk_table()
    for row in table[table.quantity == quantity].itertuples(index=False):
        for column in ("p_both", "p_benefit_ok", "p_harm_ok"):
            rows.append({"quantity": f"{column}[{row.subgroup}]", "kind": "benefit_risk",
                         "subgroup": row.subgroup, "probability": getattr(row, column)})
    if pairs:
        contrasts = result.joint_contrasts(list(pairs))
        for row in contrasts.itertuples(index=False):
            rows.append({"quantity": f"p_better_both[{row.a} vs {row.b}]",
                         "kind": "joint_contrast", "subgroup": f"{row.a} vs {row.b}",
                         "probability": row.p_better_both})
    for row in result.heterogeneity().itertuples(index=False):
        if row.parameter in ("tau", "rho"):
            name = "rho" if row.parameter == "rho" else f"tau[{row.outcome}]"
            rows.append({"quantity": name, "kind": "heterogeneity", "median": row.median,
                         "lower": row.lower, "upper": row.upper, "interval": row.interval})
    return rows


@dataclass(frozen=True)
class JointSensitivityResult:
    """The grid's tidy table (one row per variant x quantity) and its threshold."""

    table: pd.DataFrame
    threshold: float
    seconds: float

    @property
    def flags(self) -> pd.DataFrame:
        return self.table[self.table["flag"].fillna("") != ""]


def run_joint_sensitivity(variants: Sequence[JointVariant], settings: SamplerSettings, *,
                          benefit_risk: BenefitRisk | None = None,
                          pairs: Sequence[tuple[str, str]] = (),
                          interval: IntervalSpec | None = None, threshold: float = 0.95,
                          executor: cf.Executor | None = None,
                          progress: Callable[[int, int, str], None] | None = None
                          ) -> JointSensitivityResult:
    """Fit every variant (on ``executor`` if given, else serially) and flag changes.

    Raises
    ------
    SamplingError
        The ``main`` variant failed: it is the reference of every flag.
    """
    if not 0.5 <= threshold < 1.0:
        raise SpecError("sensitivity.decision_threshold: must be in [0.5, 1)")
    benefit_risk = benefit_risk or BenefitRisk()
    interval = interval or IntervalSpec()
    started = time.perf_counter()
    args = (settings, benefit_risk, tuple(pairs), interval)
    frames: dict[int, pd.DataFrame] = {}
    if executor is None:
        for i, variant in enumerate(variants):
            frames[i] = fit_joint_variant(variant, *args)
            _raise_if_main_failed(variant, frames[i])
            if progress:
                progress(i + 1, len(variants), variant.name)
    else:
        futures = {executor.submit(fit_joint_variant, v, *args): i
                   for i, v in enumerate(variants)}
        try:
            for done, future in enumerate(cf.as_completed(futures), start=1):
                i = futures[future]
                try:
                    frames[i] = future.result()
                except Exception as err:  # noqa: BLE001 - e.g. a worker lost: keep the grid
                    frames[i] = pd.DataFrame([{
                        "variant": variants[i].name, "description": variants[i].description,
                        "status": "failed", "error": f"{type(err).__name__}: {err}"
                        .splitlines()[0]}]).reindex(columns=ROW_COLUMNS)
                _raise_if_main_failed(variants[i], frames[i])
                if progress:
                    progress(done, len(variants), variants[i].name)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    table = pd.concat([frames[i] for i in range(len(variants))], ignore_index=True)
    return JointSensitivityResult(flag(table, threshold), threshold,
                                  time.perf_counter() - started)


def _raise_if_main_failed(variant: JointVariant, frame: pd.DataFrame) -> None:
    if variant.name == MAIN and (frame["status"] == "failed").any():
        raise SamplingError(f"the main analysis failed ({frame['error'].iloc[0]}); it is the "
                            "reference of every flag, so the grid was stopped")


def flag(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Flag each probability (benefit-risk, P(better on both)) that falls on the other
    side of ``threshold`` than in ``main``: the one-outcome grid's rule for P(> 0)."""
    table = table.copy()
    table["flag"] = ""
    main = table[(table["variant"] == MAIN) & (table["status"] != "failed")]
    reference = main.set_index("quantity")["probability"]
    for idx, row in table.iterrows():
        if (row["variant"] == MAIN or row["status"] == "failed"
                or row["kind"] not in ("benefit_risk", "joint_contrast")
                or row["quantity"] not in reference.index):
            continue
        ref, value = reference[row["quantity"]], row["probability"]
        if (ref >= threshold) != (value >= threshold):
            table.at[idx, "flag"] = f"crosses {threshold:g} ({ref:.3f} -> {value:.3f})"
    return table


KINDS = ("benefit_risk", "joint_contrast", "heterogeneity")


def read_table(path: str | Path) -> pd.DataFrame:
    """``benefit_risk_sensitivity.csv`` read back and checked: every column of
    :data:`ROW_COLUMNS`, a ``main`` variant, known ``kind`` values and, in the rows of
    fitted variants, probabilities in [0, 1] and finite medians. ``DataError``
    naming the file, row (as a spreadsheet numbers it: the header is row 1) and column."""
    from bayes_poem.errors import DataError

    path = Path(path)
    try:
        table = pd.read_csv(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error
        raise DataError(f"{path}: cannot be read as CSV ({type(err).__name__})") from None
    missing = [c for c in ROW_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: no column '{missing[0]}' (expected the table 'bayes-poem "
                        "sensitivity' writes for a joint spec)")
    if not (table["variant"].astype(str) == MAIN).any():
        raise DataError(f"{path}: column 'variant': no '{MAIN}' variant")
    for i, row in table.iterrows():
        where = f"{path}: row {i + 2}"
        if row["status"] == "failed":
            continue
        if row["kind"] not in KINDS:
            raise DataError(f"{where}, column 'kind': {row['kind']!r} is not one of "
                            f"{', '.join(KINDS)}")
        if row["kind"] == "heterogeneity":
            value, column = row["median"], "median"
            ok = isinstance(value, numbers.Real) and math.isfinite(value)
        else:
            value, column = row["probability"], "probability"
            ok = isinstance(value, numbers.Real) and 0.0 <= value <= 1.0
        if not ok:
            raise DataError(f"{where}, column '{column}': {value!r} is not "
                            + ("a finite number" if column == "median"
                               else "a probability in [0, 1]"))
    return table


def render_text(result: JointSensitivityResult, spec: JointSpec, benefit_risk: BenefitRisk,
                title: str = "") -> str:
    """The plain-text table: per variant, rho, P(both) per subgroup, flags."""
    from bayes_poem.banner import synthetic_banner

    table = result.table
    lines = [synthetic_banner(spec.table)] if spec.table.is_synthetic else []
    if title:
        lines.append(title)
    benefit, harm = spec.outcomes
    variants = list(dict.fromkeys(table["variant"]))
    n_failed = table.groupby("variant", sort=False)["status"].first().eq("failed").sum()
    lines.append(f"Sensitivity to the prior on rho: {len(variants)} variants in "
                 f"{result.seconds:.1f} s ({n_failed} failed); decision threshold "
                 f"{result.threshold:g}")
    lines.append(f"p_both = P({benefit} >= {benefit_risk.benefit_min:g} and {harm} <= "
                 f"{benefit_risk.harm_max:g}) of {benefit_risk.quantity}; p_benefit_ok, "
                 "p_harm_ok each alone; p_better_both = P(A better on both)")
    label = str(table["interval"].dropna().iloc[0]) if table["interval"].notna().any() \
        else "interval"
    lines += ["", f"{'variant':<22} {f'rho median [{label}]':<28} {'quantity':<40} "
                  f"{'P':>6}  flag"]
    for name in variants:
        mine = table[table["variant"] == name]
        first = mine.iloc[0]
        if first["status"] == "failed":
            lines.append(f"{name[:22]:<22} failed: {first['error']}")
            continue
        rho = mine[mine["quantity"] == "rho"].iloc[0]
        rho_text = (f"{rho['median']:6.3f} [{rho['lower']:6.3f}, {rho['upper']:6.3f}]"
                    if rho["lower"] != rho["upper"] else f"{rho['median']:6.3f} (fixed)")
        probs = mine[mine["kind"].isin(["benefit_risk", "joint_contrast"])]
        for j, row in enumerate(probs.itertuples(index=False)):
            left = f"{name[:22]:<22} {rho_text:<28}" if j == 0 else " " * 51
            lines.append(f"{left} {row.quantity[:40]:<40} {row.probability:6.3f}  "
                         f"{row.flag or ''}")
        if first["status"] == "diagnostics":
            lines.append(" " * 23 + f"WARNING: {first['error']}")
    flagged = result.flags
    lines += ["", f"{len(flagged)} flagged probabilit{'y' if len(flagged) == 1 else 'ies'}"]
    if spec.table.is_synthetic:
        lines += ["", synthetic_banner(spec.table)]
    return "\n".join(lines)


# ---------------------------------------------------------------------- command
def sensitivity_command(args: argparse.Namespace, analysis, out: Path, inputs: Sequence[Path],
                        *, progress: Callable[[str], None],
                        make_executor: Callable[[int], tuple[Any, Callable[..., None]]]) -> int:
    """``bayes-poem sensitivity`` of a joint spec: ``out`` was checked by the caller;
    ``make_executor(n_variants)`` gives ``(executor or None, shutdown)`` (``--jobs``,
    ``--scheduler``)."""
    import sys

    from bayes_poem.bundle import Bundle, write_bundle
    from bayes_poem.exports import JOINT_CAPTIONS, table_files
    from bayes_poem.outputs import reserve

    spec = analysis.model_spec()  # every user error before the directory is reserved
    config = parse_joint_sensitivity(analysis.sensitivity, analysis.source)
    variants = build_rho_variants(spec, config)
    executor, shutdown = make_executor(len(variants))
    settings = dataclasses.replace(analysis.sampler, progress=False)

    def step(done: int, total: int, name: str) -> None:
        progress(f"{done}/{total} {name}")

    try:
        with reserve(out, force=args.force, protect=inputs, command="sensitivity") as target:
            progress(f"{len(variants)} variants of {analysis.source} (prior on rho)")
            try:
                result = run_joint_sensitivity(
                    variants, settings, benefit_risk=analysis.benefit_risk,
                    pairs=analysis.pairs, interval=analysis.interval,
                    threshold=config.threshold, executor=executor, progress=step)
            except SamplingError as err:
                raise SamplingError(f"{analysis.source}: {err}; nothing was written") from None
            shutdown()
            text = render_text(result, spec, analysis.benefit_risk, analysis.title)
            tables = {"benefit_risk_sensitivity.csv": result.table}
            write_bundle(Bundle(text=text, text_name="sensitivity.txt", tables=tables,
                                files=table_files(tables, JOINT_CAPTIONS,
                                                    title=analysis.title,
                                                    synthetic=spec.table.is_synthetic),
                                spec_toml=analysis.resolved_toml(spec)), target)
    except BaseException:
        shutdown(abort=True)  # an interrupt or error: stop the workers' fits too
        raise
    sys.stdout.write(text + f"\n\nResults written to {out}/\n")
    return 0
