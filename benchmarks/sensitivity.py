"""Speed of a sensitivity grid: bayes_poem against a plain loop of pm.sample(), one run.

Grid: 3 heterogeneity priors x leave-one-study-out over the 8 studies of the
SED clinical-success example (SYNTHETIC data) = 24 variants, each sampled with
1000 draws, 1000 tuning steps and 4 chains.

- bayes_poem: ``run_sensitivity`` on the spec's variants (priors as data,
  leave-one-out by zeroing counts: nothing recompiles), serially on one core and
  then with 2 worker processes.
- plain PyMC: for each variant, build a fresh ``pm.Model`` (the study dropped, the
  prior set) and call ``pm.sample()`` with the same draws/tune/chains. PyMC's
  default ``cores`` is half of ``multiprocessing.cpu_count()`` (it assumes
  hyper-threads), which is 1 on a 2-core machine, so chains then run one after
  another; the loop is therefore timed twice, with the default and with
  ``cores=2``, and both ratios are printed.

Also reported: the latency of a first fit in a fresh Python process, with the
on-disk numba cache warm (the usual case) and cold (``NUMBA_CACHE_DIR`` pointing
at an empty directory, as on a first run after installation).

Goal (issue "Sensitivity analyses"): ratio bayes_poem / plain PyMC <= 0.10.

    python benchmarks/sensitivity.py
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")

from bayes_poem import ModelSpec, Prior, load_dataset  # noqa: E402
from bayes_poem.sampling import SamplerSettings  # noqa: E402
from bayes_poem.sensitivity import Variant, run_sensitivity  # noqa: E402

SUBGROUPS = ["type_iii", "des", "jackhammer", "unassigned"]
TAU_PRIORS = {"HalfNormal(0.5)": ("HalfNormal", {"sigma": 0.5}),
              "HalfNormal(1)": ("HalfNormal", {"sigma": 1.0}),
              "HalfCauchy(0.5)": ("HalfCauchy", {"beta": 0.5})}
SETTINGS = SamplerSettings(draws=1000, tune=1000, chains=4, seed=20170101)

FIRST_FIT = """
import time; t = time.perf_counter()
import warnings; warnings.simplefilter("ignore")
from bayes_poem import ModelSpec, load_dataset
spec = ModelSpec.from_table(load_dataset("sed_synthetic"), "clinical_success")
spec.fit()
print(time.perf_counter() - t)
"""


def variants(spec: ModelSpec) -> list[Variant]:
    out = []
    for name, (dist, params) in TAU_PRIORS.items():
        with_prior = spec.with_priors(tau=Prior(dist, params))
        for study in spec.studies:
            out.append(Variant(f"{name} without {study}", "grid", with_prior.leave_out(study)))
    return out


def plain_pymc_loop(spec: ModelSpec, cores: int | None) -> float:
    import pymc as pm

    frame = spec.table.frame
    started = time.perf_counter()
    for dist, params in TAU_PRIORS.values():
        for study in spec.studies:
            data = frame[frame["study"] != study]
            labels = list(dict.fromkeys(data["study"]))
            study_idx = data["study"].map({s: i for i, s in enumerate(labels)}).to_numpy()
            sub_idx = data["subgroup"].map({s: i for i, s in enumerate(SUBGROUPS)}).to_numpy()
            with pm.Model(coords={"study": labels, "subgroup": SUBGROUPS}):
                mu = pm.Normal("mu", 0.0, 1.5)
                tau = getattr(pm, dist)("tau", **params)
                w = pm.Normal("w", 0.0, 1.0, dims="study")
                sigma = pm.HalfNormal("sigma_subgroup", 1.0)
                z = pm.Normal("z", 0.0, 1.0, dims="subgroup")
                pm.Binomial("y", n=data["total"].to_numpy(),
                            logit_p=mu + sigma * z[sub_idx] + tau * w[study_idx],
                            observed=data["events"].to_numpy())
                pm.sample(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False,
                          compute_convergence_checks=False, cores=cores)
    return time.perf_counter() - started


def first_fit_seconds(cold: bool) -> float:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run([sys.executable, "-c", FIRST_FIT], env=env, capture_output=True,
                             text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    spec = ModelSpec.from_table(load_dataset("sed_synthetic"), "clinical_success",
                                subgroups=SUBGROUPS)
    grid = variants(spec)
    spec.fit(SamplerSettings(draws=10, tune=10, chains=2))  # load the cached density
    started = time.perf_counter()
    serial = run_sensitivity(grid, SETTINGS)
    t_serial = time.perf_counter() - started
    started = time.perf_counter()
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        run_sensitivity(grid, SETTINGS, executor=pool)
    t_pool = time.perf_counter() - started
    failed = int((serial.table.groupby("variant")["status"].first() == "failed").sum())

    t_plain = plain_pymc_loop(spec, cores=None)
    t_plain2 = plain_pymc_loop(spec, cores=2)
    warm = first_fit_seconds(cold=False)
    cold = first_fit_seconds(cold=True)
    ratio = t_serial / t_plain
    print(f"variants: {len(grid)} (failed: {failed})")
    print(f"bayes_poem serial       {t_serial:7.1f} s  ({t_serial / len(grid):.2f} s/variant)")
    print(f"bayes_poem 2 processes  {t_pool:7.1f} s")
    print(f"plain PyMC loop         {t_plain:7.1f} s  ({t_plain / len(grid):.2f} s/variant, "
          "pm.sample defaults)")
    print(f"plain PyMC loop cores=2 {t_plain2:7.1f} s  ({t_plain2 / len(grid):.2f} s/variant)")
    print(f"ratio serial / plain = {ratio:.3f}; 2 processes / plain = {t_pool / t_plain:.3f} "
          "(goal <= 0.10)")
    print(f"ratio serial / plain cores=2 = {t_serial / t_plain2:.3f}")
    print(f"first fit in a fresh process: {warm:.1f} s (numba cache warm), "
          f"{cold:.1f} s (cold: compiles the density)")
    print(json.dumps({"variants": len(grid), "bayes_poem_serial_s": round(t_serial, 2),
                      "bayes_poem_2proc_s": round(t_pool, 2), "plain_pymc_s": round(t_plain, 2),
                      "plain_pymc_cores2_s": round(t_plain2, 2),
                      "ratio_serial_vs_cores2": round(t_serial / t_plain2, 4),
                      "ratio_serial": round(ratio, 4), "ratio_2proc": round(t_pool / t_plain, 4),
                      "first_fit_warm_s": round(warm, 2), "first_fit_cold_s": round(cold, 2)}))


if __name__ == "__main__":
    main()
