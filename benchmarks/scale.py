"""Scale: ``bayes-poem run`` on thousands of SYNTHETIC studies vs plain PyMC + nutpie.

The data are SYNTHETIC (simulated here, labelled so in the spec and its results):
``--studies`` single-group studies (default 2,000) of 5-60 patients each (uniform),
events ~ Binomial(n, logistic(mu + tau w)), mu = logit(0.7), tau = 0.5,
w ~ N(0, 1), seed 20261127. The model is the package's single-group
binomial-logit-normal random-effects model with its default priors
(mu ~ Normal(0, 1.5), tau ~ HalfNormal(1)), 4 chains x 1000 draws after 1000 tuning
steps.

Two commands, each in a fresh process, measured in this same run (one after
the other, so they share the machine's load):

- ``bayes-poem run SPEC --quiet``: the whole run (start-up, sampling with the
  default adaptive target_accept, summaries, the log-likelihood and prior groups,
  tables, figures, ``posterior.nc``);
- a plain PyMC script (``--plain``, this file): the same model and priors in
  ``pm.Model``, compiled by ``nutpie.compile_pymc_model`` and sampled with nutpie's
  defaults (``nutpie.sample(compiled, draws=1000, tune=1000, chains=4)``),
  its ``az.summary`` printed and its trace written to NetCDF.

Goal (issue 15): ratio bayes-poem / plain <= 1.2, zero divergences. Peak memory
(maximum resident set size) of each process comes from ``/usr/bin/time``. The
machine's load average is printed before and after: on a shared machine the
ratio is only as good as the load was even.

    PYTHONPATH=$PWD python benchmarks/scale.py                 # 2,000 studies
    PYTHONPATH=$PWD python benchmarks/scale.py --studies 10000 --only bayes_poem
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import bayes_poem_command  # noqa: E402

SEED = 20261127
DRAWS, TUNE, CHAINS = 1000, 1000, 4
TIME = Path("/usr/bin/time")


def simulate(n_studies: int, path: Path) -> None:
    """The SYNTHETIC long table: one row per study, outcome ``success``, subgroup ``all``."""
    rng = np.random.default_rng(SEED)
    total = rng.integers(5, 61, size=n_studies)
    logit = np.log(0.7 / 0.3) + 0.5 * rng.normal(size=n_studies)
    events = rng.binomial(total, 1.0 / (1.0 + np.exp(-logit)))
    lines = ["study,subgroup,outcome,events,total"]
    lines += [f"S{i + 1:05d},all,success,{e},{n}"
              for i, (e, n) in enumerate(zip(events, total, strict=True))]
    path.write_text("\n".join(lines) + "\n")


def write_spec(csv: Path, path: Path, n_studies: int, draws: int = DRAWS, tune: int = TUNE,
               chains: int = CHAINS) -> None:
    path.write_text(f"""title = "SYNTHETIC scale benchmark: {n_studies} simulated studies"

[data]
path = "{csv.name}"
outcome = "success"
synthetic = true
label = "SYNTHETIC: simulated by benchmarks/scale.py, seed {SEED}"

[sampler]
draws = {draws}
tune = {tune}
chains = {chains}
seed = {SEED}
""")


def plain(csv: Path, out: Path) -> None:
    """The baseline: plain PyMC model, compiled by nutpie, nutpie's default sampler."""
    import arviz as az
    import nutpie
    import pandas as pd
    import pymc as pm

    data = pd.read_csv(csv)
    started = time.perf_counter()
    with pm.Model(coords={"study": data["study"].to_numpy()}) as model:
        mu = pm.Normal("mu", 0.0, 1.5)
        tau = pm.HalfNormal("tau", 1.0)
        w = pm.Normal("w", 0.0, 1.0, dims="study")
        u = pm.Deterministic("u", tau * w, dims="study")
        pm.Binomial("y", n=data["total"].to_numpy(), logit_p=mu + u,
                    observed=data["events"].to_numpy())
    compiled = nutpie.compile_pymc_model(model)
    compiled_at = time.perf_counter()
    idata = nutpie.sample(compiled, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED,
                          progress_bar=False)
    sampled_at = time.perf_counter()
    print(az.summary(idata, var_names=["mu", "tau"]))
    out.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(out / "posterior.nc", engine="h5netcdf")
    print(json.dumps({"compile_s": round(compiled_at - started, 2),
                      "sample_s": round(sampled_at - compiled_at, 2),
                      "divergences": int(idata.sample_stats["diverging"].sum())}))


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB, ``/usr/bin/time``'s maximum resident set size) and
    the merged output of ``command`` in a fresh process."""
    rss_file = cwd / "maxrss.txt"
    wrapper = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] if TIME.exists() else []
    started = time.perf_counter()
    proc = subprocess.run(wrapper + command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{command[0]} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = float(rss_file.read_text().split()[-1]) / 1024 if wrapper else float("nan")
    return seconds, peak, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--only", choices=("bayes_poem", "plain"))
    parser.add_argument("--draws", type=int, default=DRAWS,
                        help="draws and tuning steps per chain of bayes-poem run (a quick "
                             "profile at scale; the plain script keeps nutpie's defaults)")
    parser.add_argument("--chains", type=int, default=CHAINS)
    parser.add_argument("--keep", type=Path, help="keep the scratch directory here")
    parser.add_argument("--plain", nargs=2, metavar=("CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain(Path(args.plain[0]), Path(args.plain[1]))
        return

    if (args.draws, args.chains) != (DRAWS, CHAINS) and args.only != "bayes_poem":
        parser.error("--draws/--chains change bayes-poem run only: use them with "
                     "--only bayes_poem (the ratio compares nutpie's defaults)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bayes_poem_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    csv, spec = work / "scale_synthetic.csv", work / "scale.toml"
    simulate(args.studies, csv)
    write_spec(csv, spec, args.studies, args.draws, args.draws, args.chains)
    print(f"SYNTHETIC data: {args.studies} studies, {args.chains} chains x {args.draws} draws "
          f"({args.draws} tuning); load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f} (1/5/15 min), {os.cpu_count()} cores", flush=True)
    results = {}
    try:
        if args.only != "plain":
            seconds, peak, text = timed(
                bayes_poem_command() + ["run", str(spec), "--out", str(work / "run"),
                                        "--force", "--quiet"], work)
            diag = next((line for line in text.splitlines() if line.startswith("Diagnostics")),
                        "")
            results["bayes_poem"] = seconds
            print(f"bayes-poem run: {seconds:7.1f} s wall, peak RSS {peak:6.0f} MiB\n  {diag}",
                  flush=True)
        if args.only != "bayes_poem":
            seconds, peak, text = timed(
                [sys.executable, __file__, "--plain", str(csv), str(work / "plain")], work)
            results["plain"] = seconds
            print(f"plain PyMC + nutpie: {seconds:7.1f} s wall, peak RSS {peak:6.0f} MiB\n  "
                  + text.strip().splitlines()[-1], flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if len(results) == 2:
        ratio = results["bayes_poem"] / results["plain"]
        print(f"ratio bayes-poem run / plain PyMC + nutpie = {ratio:.3f}   (goal <= 1.2)")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
