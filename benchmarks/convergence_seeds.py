"""Clean sampling over seeds: the README example and the shipped specs, 20 seeds each.

For each model and seed 0 ... N-1 (the shipped seed replaced), one fit with the
model's own sampler settings (the default: adaptive ``target_accept``), and one
row: divergences, max R-hat, min bulk and tail ESS, the target the fit used
(``target_accept``; ``0.8>0.95`` when it was refitted), problems (the
``ConvergenceWarning`` text; empty when clean). The data are the shipped tables
(``sed_synthetic`` is SYNTHETIC; rat tumours and Niel-Weise 2007 are published).

Models: ``readme`` (the README's Python example: clinical success, four
subgroups), ``models/sed_clinical_success.toml``, ``models/sed_adverse_events.toml``,
``models/sed_joint.toml`` (joint efficacy-safety), ``models/rat_tumors.toml``,
``models/nielweise2007_control.toml``. The trial specs in ``models/`` are
conjugate or Monte Carlo except the comparative meta-analyses, which sample
through their own reusable PyMC model (``bayes_poem.trials``), not covered here.

Run (about 10 min on one free core)::

    PYTHONPATH=$PWD python benchmarks/convergence_seeds.py            # 20 seeds, all
    PYTHONPATH=$PWD python benchmarks/convergence_seeds.py --seeds 5 --models readme

Exit status 1 if any fit had a problem (divergence, R-hat > 1.01, low ESS or E-BFMI).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = {
    "sed_clinical_success": "models/sed_clinical_success.toml",
    "sed_adverse_events": "models/sed_adverse_events.toml",
    "sed_joint": "models/sed_joint.toml",
    "rat_tumors": "models/rat_tumors.toml",
    "nielweise2007_control": "models/nielweise2007_control.toml",
}
MODELS = ("readme", *SPECS)


def model_and_settings(name: str):
    """``(spec, settings)``: a ``ModelSpec``/``JointSpec`` and its sampler settings."""
    from bayes_poem import ModelSpec, SamplerSettings, load_dataset
    from bayes_poem.specfile import load_spec

    if name == "readme":
        table = load_dataset("sed_synthetic")
        spec = ModelSpec.from_table(table, "clinical_success",
                                    subgroups=["type_iii", "des", "jackhammer", "unassigned"])
        return spec, SamplerSettings()
    analysis = load_spec(ROOT / SPECS[name])
    return analysis.model_spec(), analysis.sampler


def one_fit(spec, settings, seed: int) -> dict:
    from bayes_poem.diagnostics import attempts
    from bayes_poem.errors import ConvergenceWarning

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = spec.fit(dataclasses.replace(settings, seed=seed))
    seconds = time.perf_counter() - started
    diagnostics = result.diagnostics
    warned = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    targets = ">".join(f"{a.target:g}" for a in attempts(result.idata)) or "?"
    return {"seed": seed, "divergences": diagnostics.divergences,
            "max_rhat": float(diagnostics.table["r_hat"].max()),
            "min_ess_bulk": float(diagnostics.table["ess_bulk"].min()),
            "min_ess_tail": float(diagnostics.table["ess_tail"].min()),
            "target": targets, "seconds": seconds,
            "problems": "; ".join(diagnostics.problems),
            "warned": bool(warned)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0 ... N-1 (default 20)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)

    print(f"{'model':<22} {'seed':>4} {'div':>4} {'max R-hat':>9} {'min ESS bulk':>12} "
          f"{'min ESS tail':>12} {'target used':<16} {'s':>5}  problems")
    failed = 0
    summary = []
    for name in args.models:
        spec, settings = model_and_settings(name)
        rows = []
        for seed in range(args.seeds):
            row = one_fit(spec, settings, seed)
            rows.append(row)
            failed += bool(row["problems"]) or row["warned"]
            print(f"{name:<22} {seed:>4} {row['divergences']:>4} {row['max_rhat']:>9.4f} "
                  f"{row['min_ess_bulk']:>12.0f} {row['min_ess_tail']:>12.0f} "
                  f"{row['target']:<16} {row['seconds']:>5.1f}  {row['problems']}",
                  flush=True)
        refits = sum(">" in r["target"] for r in rows)
        summary.append(
            f"{name:<22} fits {len(rows)}, with problems {sum(bool(r['problems']) for r in rows)}, "
            f"refitted {refits}, worst R-hat {max(r['max_rhat'] for r in rows):.4f}, "
            f"lowest ESS {min(min(r['min_ess_bulk'], r['min_ess_tail']) for r in rows):.0f}, "
            f"divergences {sum(r['divergences'] for r in rows)}")
    print()
    print("\n".join(summary))
    print(f"\n{failed} fit(s) with a problem")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
