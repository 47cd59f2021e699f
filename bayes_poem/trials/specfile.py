"""TOML specs of trial analyses (``models/anterior_vs_posterior_*.toml``): reading.

``load_trial_spec(path)`` reads a spec and :func:`parse_trial_spec` checks its
keys and value types (unknown keys are rejected with the valid ones listed;
every message starts with the file name) into a frozen :class:`TrialSpec`.
``TrialSpec.prepare()`` then validates the data and every setting of the
analysis (:mod:`bayes_poem.trials.prepare`, :mod:`bayes_poem.trials.prepare_meta`:
all user errors surface there, before anything runs or prints) and the prepared
analysis' ``.run()`` computes (:mod:`bayes_poem.trials.run`). Every key is
documented in ``docs/trials.md``.

``analysis`` is one of ``binary``, ``continuous``, ``meta``,
``meta_continuous``, ``assurance``, ``interim``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayes_poem.errors import BayesPoemError, SpecError
from bayes_poem.intervals import IntervalSpec
from bayes_poem.trials.common import shown

if TYPE_CHECKING:
    from bayes_poem.trials.prepare import PreparedAnalysis

__all__ = ["ANALYSES", "TrialSpec", "load_trial_spec", "parse_trial_spec"]

ANALYSES = ("binary", "continuous", "meta", "meta_continuous", "assurance", "interim")
TOP_KEYS = ("title", "description", "analysis", "data", "noninferiority", "model", "priors",
            "sampler", "simulation", "design", "interim", "summary")
SECTIONS: dict[str, tuple[str, ...]] = {
    "binary": ("data", "noninferiority", "priors", "simulation", "summary"),
    "continuous": ("data", "noninferiority", "model", "priors", "sampler", "simulation",
                   "summary"),
    "meta": ("data", "noninferiority", "priors", "sampler", "summary"),
    "meta_continuous": ("data", "priors", "sampler", "summary"),
    "assurance": ("data", "priors", "sampler", "design", "summary"),
    "interim": ("interim", "summary"),
}
SAMPLER_KEYS = ("draws", "tune", "chains", "seed", "backend", "target_accept")
SUMMARY_KEYS = ("interval", "prob")
KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("binary", "data"): ("dataset", "path", "trial", "outcome", "anterior", "posterior"),
    ("binary", "noninferiority"): ("margin", "kind"),
    ("binary", "priors"): ("anterior", "posterior"),
    ("binary", "simulation"): ("draws", "seed"),
    ("continuous", "data"): ("outcome", "path", "example", "synthetic", "anterior", "posterior",
                             "correlation"),
    ("continuous", "noninferiority"): ("margin", "better"),
    ("continuous", "model"): ("likelihood",),
    ("continuous", "priors"): ("b0", "b_arm", "b_base", "sigma", "change"),
    ("continuous", "simulation"): ("draws", "seed"),
    ("meta", "data"): ("dataset", "path", "outcomes", "studies", "same_trial"),
    ("meta", "noninferiority"): ("margin", "kinds"),
    ("meta", "priors"): ("theta", "tau", "mu_study"),
    ("meta_continuous", "data"): ("outcome", "measure", "studies", "path", "synthetic"),
    ("meta_continuous", "priors"): ("mu", "tau"),
    ("assurance", "data"): ("dataset", "path", "outcome", "studies", "same_trial"),
    ("assurance", "priors"): ("theta", "tau", "mu_study"),
    ("assurance", "design"): ("n_per_arm", "margin", "kind", "threshold", "baseline",
                              "simulations", "seed", "prior"),
    ("interim", "interim"): ("anterior", "posterior", "n_per_arm", "margin", "kind",
                             "threshold", "simulations", "seed", "prior"),
}


@dataclass(frozen=True)
class TrialSpec:
    """A parsed trial spec; sections are plain mappings checked for keys and types."""

    source: str
    base_dir: Path
    analysis: str
    title: str
    description: str
    sections: Mapping[str, Mapping[str, Any]]
    interval: IntervalSpec

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    def error(self, message: str) -> SpecError:
        return SpecError(f"{self.source}: {message}")

    def prepare(self) -> PreparedAnalysis:
        """Load and validate data and settings; nothing is computed or printed.

        Every user error is raised here, its message starting with the file name.
        """
        from bayes_poem.trials import prepare, prepare_meta

        builder = {"binary": prepare.binary, "continuous": prepare.continuous,
                   "interim": prepare.interim, "meta": prepare_meta.meta,
                   "meta_continuous": prepare_meta.meta_continuous,
                   "assurance": prepare_meta.assurance}[self.analysis]
        try:
            return builder(self)
        except BayesPoemError as err:
            message = str(err)
            if message.startswith(self.source):
                raise
            raise type(err)(f"{self.source}: {message}") from None


def load_trial_spec(path: str | Path) -> TrialSpec:
    """Read and check a TOML trial spec."""
    from bayes_poem.specfile import read_toml

    raw, source, base_dir = read_toml(path)
    return parse_trial_spec(raw, source=source, base_dir=base_dir)


def _unknown(mapping: Mapping[str, Any], allowed: tuple[str, ...], source: str,
             where: str) -> None:
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        place = f"[{where}]" if where else "the top level"
        raise SpecError(f"{source}: unknown key '{name}'; valid keys in {place}: "
                        f"{', '.join(allowed)}")


def parse_trial_spec(raw: Mapping[str, Any], *, source: str = "spec",
                     base_dir: Path | None = None) -> TrialSpec:
    """Check the keys of a spec given as a mapping (the parsed TOML)."""
    _unknown(raw, TOP_KEYS, source, "")
    analysis = raw.get("analysis")
    if analysis is None:
        raise SpecError(f"{source}: 'analysis' is required; one of {', '.join(ANALYSES)}")
    if analysis not in ANALYSES:
        raise SpecError(f"{source}: analysis: '{analysis}' is not one of {', '.join(ANALYSES)}")
    allowed = SECTIONS[analysis]
    for key in raw:
        if key in ("title", "description", "analysis"):
            continue
        if key not in allowed:
            raise SpecError(f"{source}: section [{key}] is not used by analysis '{analysis}'; "
                            f"its sections: {', '.join(allowed)}")
    sections: dict[str, dict[str, Any]] = {}
    for name in allowed:
        section = raw.get(name, {})
        if not isinstance(section, Mapping):
            raise SpecError(f"{source}: [{name}] must be a table (got {shown(section)})")
        keys = KEYS.get((analysis, name)) or (SAMPLER_KEYS if name == "sampler"
                                              else SUMMARY_KEYS)
        _unknown(section, keys, source, name)
        sections[name] = dict(section)
    for key in ("title", "description"):
        if key in raw and not isinstance(raw[key], str):
            raise SpecError(f"{source}: {key} must be a string (got {shown(raw[key])})")
    summary = sections.get("summary", {})
    try:
        interval = IntervalSpec(summary.get("interval", "eti"), summary.get("prob", 0.95))
    except SpecError as err:
        raise SpecError(f"{source}: {err}") from None
    return TrialSpec(source=source, base_dir=base_dir or Path.cwd(), analysis=analysis,
                     title=raw.get("title", ""), description=raw.get("description", ""),
                     sections=sections, interval=interval)
