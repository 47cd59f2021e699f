"""``diagnostics.check_fit`` in-process: this checkout against a git revision.

For each posterior (a ``posterior.nc`` with ``sample_stats``): the revision's
``diagnostics.py`` and ``mcmc_stats.py`` (read with ``git show``, imported as
private modules) and this checkout's are each called once untimed, then
REPEATS times alternating; wall and CPU medians are printed with their ratio,
and the largest relative difference of the diagnostics tables (which must be
rounding: both compute ArviZ's estimators). On a shared machine the CPU time
is the steadier number.

    PYTHONPATH=$PWD python benchmarks/check_fit_speed.py POSTERIOR.nc [...] \
        [--against REV] [--repeats N]

The 2,000-study posterior of issue 15 is made by ``benchmarks/scale.py --only
bayes_poem --keep DIR`` (``DIR/.../posterior.nc``); a small one by ``bayes-poem
run models/sed_clinical_success.toml --out DIR``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _revision_modules(rev: str, workdir: Path):
    """The revision's ``mcmc_stats`` and ``diagnostics``, the latter using the former."""
    modules = {}
    for name in ("mcmc_stats", "diagnostics"):
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:bayes_poem/{name}.py"],
                                check=True, capture_output=True, text=True).stdout
        path = workdir / f"{name}_{rev}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"_rev_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        if name == "diagnostics":  # it imported this checkout's: use the revision's
            module.mcmc_stats = modules["mcmc_stats"]
        modules[name] = module
    return modules["diagnostics"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("posteriors", nargs="+", type=Path)
    parser.add_argument("--against", default="d271d84",
                        help="git revision to compare with (default: before issue 15's diag3)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import arviz as az
    import numpy as np

    import bayes_poem.mcmc_stats  # noqa: F401  (the checkout's, before the revision's)
    from bayes_poem import diagnostics

    with tempfile.TemporaryDirectory() as tmp:
        old = _revision_modules(args.against, Path(tmp))
        for path in args.posteriors:
            idata = az.from_netcdf(path)
            idata.posterior.load()
            idata.sample_stats.load()
            wall: dict[str, list[float]] = {"old": [], "new": []}
            cpu: dict[str, list[float]] = {"old": [], "new": []}
            tables = {kind: module.check_fit(idata, warn=False).table
                      for kind, module in (("old", old), ("new", diagnostics))}
            for _ in range(args.repeats):
                for kind, module in (("old", old), ("new", diagnostics)):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    module.check_fit(idata, warn=False)
                    wall[kind].append(time.perf_counter() - started)
                    cpu[kind].append(time.process_time() - started_cpu)
            old_table, new_table = tables["old"].to_numpy(), tables["new"].to_numpy()
            rel = float(np.nanmax(np.abs(new_table - old_table) / np.abs(old_table)))
            print(f"{path}: {dict(idata.posterior.sizes)}, check_fit median of {args.repeats}")
            for label, times in (("wall", wall), ("CPU", cpu)):
                before, after = statistics.median(times["old"]), statistics.median(times["new"])
                print(f"  {label:4s} {args.against} {before * 1e3:9.1f} ms   this checkout "
                      f"{after * 1e3:9.1f} ms   {before / after:5.2f}x")
            print(f"  tables: largest relative difference {rel:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
