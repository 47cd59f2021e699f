"""Baseline for benchmarks/cli_vs_pymc.py: the SED clinical-success model in plain PyMC.

What a statistician would write without bayes_poem: the same non-centred
binomial-logit-normal model with random subgroup and study effects, the same
priors, data (the SYNTHETIC sed_synthetic table) and number of draws, tuning
steps and chains as models/sed_clinical_success.toml, sampled with
``pm.sample()`` defaults otherwise, then summarised and saved like the CLI does.
"""

import sys
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

ROOT = Path(__file__).resolve().parents[1]
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("baseline_out")
cores = int(sys.argv[2]) if len(sys.argv) > 2 else None  # None: pm.sample's default
out.mkdir(parents=True, exist_ok=True)

data = pd.read_csv(ROOT / "bayes_poem" / "datasets" / "sed_synthetic.csv")
data = data[data["outcome"] == "clinical_success"]
subgroups = ["type_iii", "des", "jackhammer", "unassigned"]
study_idx, studies = pd.factorize(data["study"])
subgroup_idx = data["subgroup"].map({s: i for i, s in enumerate(subgroups)}).to_numpy()

with pm.Model(coords={"study": studies, "subgroup": subgroups}) as model:
    mu = pm.Normal("mu", 0.0, 1.5)
    tau = pm.HalfNormal("tau", 1.0)
    w = pm.Normal("w", 0.0, 1.0, dims="study")
    u = pm.Deterministic("u", tau * w, dims="study")
    sigma_subgroup = pm.HalfNormal("sigma_subgroup", 1.0)
    z = pm.Normal("z", 0.0, 1.0, dims="subgroup")
    alpha = pm.Deterministic("alpha", sigma_subgroup * z, dims="subgroup")
    pm.Binomial("y", n=data["total"].to_numpy(), logit_p=mu + alpha[subgroup_idx] + u[study_idx],
                observed=data["events"].to_numpy())
    idata = pm.sample(draws=1000, tune=1000, chains=4, random_seed=20170101, progressbar=False,
                      cores=cores)

summary = az.summary(idata, var_names=["mu", "tau", "sigma_subgroup", "alpha"])
p_pooled = 1 / (1 + np.exp(-(idata.posterior["mu"] + idata.posterior["alpha"])))
summary.to_csv(out / "summary.csv")
idata.to_netcdf(out / "posterior.nc", engine="h5netcdf")
print(summary)
print(p_pooled.median(("chain", "draw")).to_series())
