"""Cost of meta-regression and cell effects: ``bayes-poem run`` against the plain fit.

Every command fits the SED clinical-success model (SYNTHETIC data, 4 chains x 1000
draws, 1000 tuning steps) in a fresh process each time, as a user runs them: wall
time includes interpreter start-up, imports, sampling and writing results. The
``moderators`` run adds ``year`` (numeric) and ``quality`` (categorical); the
``moderators_cells`` run adds to these the study x subgroup cell effects
(``cell_effects = "random"``: 17 cells, 8 studies of which 7 report two or more
disorders, so the cell effects are separable). Each command is run once untimed to
warm the on-disk caches, then REPEATS times, alternating, and the medians are
compared. Nothing compiles in any of them (the one cached density).

Two measurements, each a ratio within one run:

* ``fit``: a fresh Python process that loads the spec and fits it
  (``ModelSpec.fit``, the same sampler settings), nothing else. Goal (issue 10):
  with moderators and cell effects / plain <= 1.2.
* ``run``: the whole ``bayes-poem run``, which with moderators also fits the model
  without them (for R^2, ``tau2_explained.csv``) and, for every model, writes the
  ArviZ ``log_likelihood`` group (per-study integrated likelihood: with cell
  effects a nested quadrature). Reported beside the fit ratio, no goal.

    python benchmarks/moderators_vs_plain.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _timing import alternate_medians, bayes_poem_command, time_process

ROOT = Path(__file__).resolve().parents[1]
MODERATED = '[model]\nmoderators = ["year", "quality"]\n'
WITH_CELLS = MODERATED + 'cell_effects = "random"\n'


def _spec(workdir: Path, kind: str) -> Path:
    text = (ROOT / "models" / "sed_clinical_success.toml").read_text(encoding="utf-8")
    extra = {"moderators": MODERATED, "moderators_cells": WITH_CELLS}.get(kind)
    if extra:
        if "[model]" in text:
            text = text.replace("[model]\n", extra, 1)
        else:
            text += "\n" + extra
    path = workdir / f"{kind}.toml"
    path.write_text(text, encoding="utf-8")
    return path


FIT = ("import sys; from bayes_poem.specfile import load_spec; "
       "a = load_spec(sys.argv[1]); a.model_spec().fit(a.sampler)")


def _time(kind: str, workdir: Path) -> float:
    if kind.startswith("fit:"):
        kind = kind.removeprefix("fit:")
        command = [sys.executable, "-c", FIT, str(_spec(workdir, kind))]
        return time_process(kind, command, workdir)
    command = bayes_poem_command() + ["run", str(_spec(workdir, kind)), "--out",
                                      str(workdir / kind), "--force", "--quiet"]
    return time_process(kind, command, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    medians = alternate_medians(["fit:plain", "fit:moderators_cells", "plain", "moderators",
                                "moderators_cells"], _time, args.repeats)
    fit_ratio = medians["fit:moderators_cells"] / medians["fit:plain"]
    ratio = medians["moderators"] / medians["plain"]
    ratio_cells = medians["moderators_cells"] / medians["plain"]
    print(f"fit: with moderators and cell effects / plain = {fit_ratio:.3f}   (goal <= 1.2)")
    print(f"run: with moderators / plain = {ratio:.3f}")
    print(f"run: with moderators and cell effects / plain = {ratio_cells:.3f}   "
          "(R^2 refit and ArviZ groups included; no goal)")
    print(json.dumps({"fit_ratio": round(fit_ratio, 4), "run_ratio": round(ratio_cells, 4),
                      "run_ratio_moderators": round(ratio, 4),
                      "median_seconds": medians, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
