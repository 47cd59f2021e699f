"""The 24-variant crossed grid as ONE ``bayes-poem sensitivity`` command, against a naive loop.

Grid (``benchmarks/sed_grid_24.toml``): 3 priors on tau (HalfNormal(0.5),
HalfNormal(1), HalfCauchy(0.5)) crossed with leave-one-study-out over the 8
studies of the SED clinical-success example (SYNTHETIC data), ``[sensitivity]
cross = ["tau_priors", "leave_one_out"]``: 24 variants plus ``main``, each 4
chains x 1000 draws. bayes_poem tunes ``main`` for 1000 steps and warm-starts
the 24 variants from it (300 steps; ``bayes_poem.sensitivity_run``).

Timed in one run, each in a fresh process or loop:

- ``bayes-poem sensitivity benchmarks/sed_grid_24.toml --jobs 1`` and ``--jobs 2``
  (the whole command: start-up, the 25 fits, tables, figure, files);
- the naive loop of the same 24 fits: a fresh ``pm.Model`` per variant (the study
  dropped, the prior set) and ``pm.sample()`` with 1000 draws, 1000 tuning steps
  and 4 chains (``benchmarks/sensitivity.py``'s ``plain_pymc_loop``), with
  ``pm.sample``'s default ``cores`` and, with ``--cores2``, also ``cores=2``.

Goal (issue 15): the command at most 0.05x the naive loop. Wall time on a
shared machine moves with the other processes' load, so the CPU time (user +
system: of the command's process and its workers; of this process, whose
threads run the loop's sequential chains, and of the compiler PyTensor starts)
is printed beside it: a ratio of CPU times is what contention disturbs least.

How much a grid samples depends on its seed: a variant that diverges at the target
the main fit resolved to is refitted higher (``variants.csv``: ``target_accept``),
and when the two pilot variants both were, the others start higher
(``bayes_poem.sensitivity_run``). ``--seeds`` times the command at other seeds too
(the spec with its ``[sampler] seed`` replaced), each against the same naive loop,
and says per seed where the main fit resolved and what the text says of the
variants' targets; ``--repeats N`` times each command N times (alternating) and
reports the median.

    python benchmarks/sensitivity_grid.py [--cores2] [--repeats N] [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
import tomllib
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _timing import bayes_poem_command, time_process  # noqa: E402
from sensitivity import plain_pymc_loop  # noqa: E402

from bayes_poem import ModelSpec, load_dataset  # noqa: E402

SPEC = HERE / "sed_grid_24.toml"
SUBGROUPS = ["type_iii", "des", "jackhammer", "unassigned"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores2", action="store_true",
                        help="also time the naive loop with cores=2")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each command (alternating); the median is reported")
    parser.add_argument("--seeds", default="",
                        help="comma-separated seeds to time as well (the spec with its "
                             "[sampler] seed replaced), against the same naive loop")
    args = parser.parse_args()
    cli = bayes_poem_command()
    spec_seed = tomllib.loads(SPEC.read_text())["sampler"]["seed"]
    seeds = [spec_seed] + [int(s) for s in args.seeds.split(",") if s.strip()]
    runs: dict[tuple[int, str], list[float]] = {}
    cpus: dict[tuple[int, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bayes_poem_grid_") as tmp:
        work = Path(tmp)
        time_process("check", cli + ["check", str(SPEC)], work)  # warm the on-disk caches
        for seed in seeds:
            spec_file = SPEC
            if seed != spec_seed:
                spec_file = work / f"grid_seed{seed}.toml"
                spec_file.write_text(SPEC.read_text().replace(
                    f"seed = {spec_seed}", f"seed = {seed}", 1))
            for repeat in range(args.repeats):
                for jobs in ("1", "2"):
                    out = work / f"seed{seed}_jobs{jobs}_{repeat}"
                    before = _children_cpu()
                    runs.setdefault((seed, jobs), []).append(time_process(
                        f"--jobs {jobs}", cli + ["sensitivity", str(spec_file), "--out",
                                                 str(out), "--quiet", "--jobs", jobs], work))
                    cpus.setdefault((seed, jobs), []).append(_children_cpu() - before)
        first = work / f"seed{spec_seed}_jobs1_0"
        summary = (first / "sensitivity.txt").read_text().splitlines()
        variants = (first / "variants.csv").read_text().splitlines()[1:]
        refits = {seed: _refits(work / f"seed{seed}_jobs1_0") for seed in seeds}
    failed = sum(",failed," in line for line in variants)
    spec = ModelSpec.from_table(load_dataset("sed_synthetic"), "clinical_success",
                                subgroups=SUBGROUPS)
    before = time.process_time() + _children_cpu()  # children: PyTensor's C compiler
    t_plain = plain_pymc_loop(spec, cores=None)
    cpu_plain = time.process_time() + _children_cpu() - before
    t_plain2 = plain_pymc_loop(spec, cores=2) if args.cores2 else None
    times = {key: statistics.median(values) for key, values in runs.items()}
    cpu = {key: statistics.median(values) for key, values in cpus.items()}
    print(next(line for line in summary if line.startswith("sensitivity grid:")))
    print(f"variants fitted: {len(variants)} (failed: {failed})")
    print(f"naive pm.sample loop (24 fits)   {t_plain:7.1f} s  (pm.sample default cores), "
          f"CPU {cpu_plain:.1f} s")
    if t_plain2 is not None:
        print(f"naive pm.sample loop, cores=2    {t_plain2:7.1f} s")
    for seed in seeds:
        label = f"seed {seed}" + (" (the spec's)" if seed == spec_seed else "")
        print(f"{label}: main fit at target_accept {refits[seed][0]}; {refits[seed][1]}")
        for jobs in ("1", "2"):
            key = (seed, jobs)
            print(f"  bayes-poem sensitivity --jobs {jobs}  {times[key]:6.2f} s "
                  f"(runs: {' '.join(f'{v:.2f}' for v in runs[key])})  ratio "
                  f"{times[key] / t_plain:.3f} (goal <= 0.05); CPU {cpu[key]:.1f} s, "
                  f"CPU ratio {cpu[key] / cpu_plain:.3f}")
    if t_plain2 is not None:
        print(f"ratio --jobs 2 / naive cores=2 = {times[(spec_seed, '2')] / t_plain2:.3f}")
    print(json.dumps({"naive_s": round(t_plain, 2), "cpu_naive_s": round(cpu_plain, 2),
                      "naive_cores2_s": None if t_plain2 is None else round(t_plain2, 2),
                      **{f"seed{seed}_jobs{jobs}_s": round(times[(seed, jobs)], 2)
                         for seed in seeds for jobs in ("1", "2")},
                      **{f"seed{seed}_ratio_jobs{jobs}": round(times[(seed, jobs)] / t_plain, 4)
                         for seed in seeds for jobs in ("1", "2")}}))


def _refits(out: Path) -> tuple[str, str]:
    """The main fit's target (variants.csv), and what the text says of the variants'
    targets: where they started (pilots included) and how many were refitted."""
    import pandas as pd

    variants = pd.read_csv(out / "variants.csv").set_index("variant")
    start = variants.loc["main", "target_accept"]
    line = next(line for line in (out / "sensitivity.txt").read_text().splitlines()
                if line.startswith("Variants warm-started"))
    return f"{start:g}", line[line.index("target_accept from"):]


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
