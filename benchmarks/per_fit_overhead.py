"""Per-fit overhead of a small fit, in-process: what each of the grid's fits pays
beyond sampling.

One fit of the 8-study SED model (SYNTHETIC data) at the 24-variant grid's
settings (``benchmarks/sed_grid_24.toml``: 4 chains x 1,000 draws, 1,000 tuning).
Its raw nutpie trace is converted twice, by nutpie 0.16's own conversion
(``nutpie.sample._arrow_to_arviz`` through ``az.from_dict``, what
``sampler.wait()`` runs without ``return_raw_trace``) and by
:func:`bayes_poem.nutpie_trace.to_inference_data` (what ``bayes-poem`` runs), and
the per-variant summaries of the grid are timed: ``subgroup_summary`` (the full
table of ``run``), ``subgroup_summary`` of ``p_pooled`` only, ``heterogeneity``
and ``sensitivity_run._quantity_rows``. Medians of REPEATS calls (ms).

    PYTHONPATH=$PWD python benchmarks/per_fit_overhead.py [--repeats N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _timing import median_seconds

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats

    import nutpie
    import pandas as pd
    from nutpie.sample import _arrow_to_arviz

    from bayes_poem.backends.compiled import compiled_model
    from bayes_poem.nutpie_trace import skipped_stats, to_inference_data
    from bayes_poem.sampling import SamplerSettings
    from bayes_poem.sensitivity_run import _quantity_rows
    from bayes_poem.specfile import load_spec

    analysis = load_spec(ROOT / "benchmarks" / "sed_grid_24.toml")
    spec = analysis.model_spec()
    settings = SamplerSettings(draws=1000, tune=1000, chains=4, seed=20170101)
    model = compiled_model(spec, settings.seed)
    sampler = nutpie.sample(model, draws=settings.draws, tune=settings.tune,
                            chains=settings.chains, seed=settings.seed, save_warmup=False,
                            progress_bar=False, blocking=False, return_raw_trace=True)
    draws, stats = sampler.wait().get_arrow_trace()
    skip = skipped_stats(getattr(sampler, "_settings", None))
    coords = {name: pd.Index(values) for name, values in model.coords.items()}
    result = spec.fit(settings)
    interval = result.interval
    rows = {
        "trace conversion, nutpie's (_arrow_to_arviz)": lambda: _arrow_to_arviz(
            draws, stats, skip_vars=sorted(skip), coords=coords, save_warmup=False),
        "trace conversion, nutpie_trace.to_inference_data": lambda: to_inference_data(
            draws, stats, model.coords, skip=skip),
        "subgroup_summary (all three quantities)": lambda: result.subgroup_summary(interval),
        "subgroup_summary (p_pooled only)": lambda: result.subgroup_summary(
            interval, quantities=("p_pooled",)),
        "heterogeneity": lambda: result.heterogeneity(interval),
        "sensitivity_run._quantity_rows": lambda: _quantity_rows(
            result, analysis.contrasts, interval),
    }
    print(f"SED fit (SYNTHETIC data), 4 x 1000 draws; median of {repeats} calls")
    for name, call in rows.items():
        call()  # warm
        print(f"  {name:<50} {1000 * median_seconds(call, repeats):8.2f} ms")


if __name__ == "__main__":
    main()
