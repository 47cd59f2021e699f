"""The shipped SED fit against its results before issue 15, within Monte Carlo error.

Issue 15 changed how the shipped SED clinical-success fit samples (an adaptive
``target_accept`` from 0.8 instead of a fixed 0.99, nutpie's defaults
otherwise), so its draws differ; its posterior must not. This script fits
``models/sed_clinical_success.toml`` (SYNTHETIC data) with the current code
(``bayes-poem run``, a fresh process) and compares the posterior mean of every
element of every posterior variable with the reference: the same spec and seed
fitted by commit f93cdab (the last ``main`` before the adaptive target; fixed
``target_accept = 0.99``), stored in
``benchmarks/reference/sed_clinical_success_f93cdab.csv`` (columns ``element``,
``mean``, ``mcse_mean``, ``sd``: ArviZ's ``az.summary`` of that fit's
``posterior.nc``).

For each element, ``z = (mean_now - mean_before) / sqrt(mcse_now^2 + mcse_before^2)``
(the two fits are independent chains); the goal is ``|z| <= 4`` for every element.
With about 30 elements, a 4-sigma band is exceeded by chance with probability
about 30 x 6.3e-5 = 0.002 if both fits are right.

    PYTHONPATH=$PWD python benchmarks/sed_against_before.py [--results DIR]
    # the reference, from a results directory of the same spec fitted by f93cdab:
    PYTHONPATH=$PWD python benchmarks/sed_against_before.py --write-reference DIR
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import bayes_poem_command  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "reference" / "sed_clinical_success_f93cdab.csv"
SPEC = ROOT / "models" / "sed_clinical_success.toml"
Z_MAX = 4.0


def element_summary(results: Path) -> pd.DataFrame:
    """Mean, MCSE of the mean and SD of every posterior element of a results directory."""
    import arviz as az

    idata = az.from_netcdf(results / "posterior.nc")
    table = az.summary(idata, kind="all", round_to="none")
    return (table[["mean", "mcse_mean", "sd"]].rename_axis("element").reset_index())


def compare(now: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    merged = before.merge(now, on="element", suffixes=("_before", "_now"), how="outer",
                          indicator=True)
    missing = merged[merged["_merge"] != "both"]
    if not missing.empty:
        raise SystemExit(f"elements not in both fits: {', '.join(missing['element'])}")
    merged["z"] = ((merged["mean_now"] - merged["mean_before"])
                   / np.hypot(merged["mcse_mean_now"], merged["mcse_mean_before"]))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="a results directory of the shipped "
                        "SED spec (default: fit it now)")
    parser.add_argument("--write-reference", type=Path, metavar="DIR",
                        help="write the reference CSV from this results directory")
    args = parser.parse_args()
    if args.write_reference:
        element_summary(args.write_reference).to_csv(REFERENCE, index=False,
                                                     float_format="%.10g")
        print(f"wrote {REFERENCE}")
        return
    results = args.results
    if results is None:
        results = Path(tempfile.mkdtemp(prefix="bayes_poem_sed_")) / "out"
        subprocess.run(bayes_poem_command() + ["run", str(SPEC), "--out", str(results),
                                               "--quiet"], check=True)
    now = element_summary(results)
    table = compare(now, pd.read_csv(REFERENCE))
    worst = table.loc[table["z"].abs().idxmax()]
    print(table[["element", "mean_before", "mean_now", "z"]].to_string(index=False,
                                                                       float_format="%.4f"))
    print(f"\n{len(table)} elements; max |z| = {abs(worst['z']):.2f} ({worst['element']}); "
          f"{int((table['z'].abs() > Z_MAX).sum())} beyond {Z_MAX:g}; goal: none")


if __name__ == "__main__":
    main()
