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

    python benchmarks/sensitivity_grid.py [--cores2]
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
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
    cli = bayes_poem_command()
    with tempfile.TemporaryDirectory(prefix="bayes_poem_grid_") as tmp:
        work = Path(tmp)
        time_process("check", cli + ["check", str(SPEC)], work)  # warm the on-disk caches
        times, cpu = {}, {}
        for jobs in ("1", "2"):
            before = _children_cpu()
            times[jobs] = time_process(f"--jobs {jobs}", cli + [
                "sensitivity", str(SPEC), "--out", str(work / f"jobs{jobs}"), "--quiet",
                "--jobs", jobs], work)
            cpu[jobs] = _children_cpu() - before
        summary = (work / "jobs1" / "sensitivity.txt").read_text().splitlines()
        variants = (work / "jobs1" / "variants.csv").read_text().splitlines()[1:]
    failed = sum(",failed," in line for line in variants)
    spec = ModelSpec.from_table(load_dataset("sed_synthetic"), "clinical_success",
                                subgroups=SUBGROUPS)
    before = time.process_time() + _children_cpu()  # children: PyTensor's C compiler
    t_plain = plain_pymc_loop(spec, cores=None)
    cpu_plain = time.process_time() + _children_cpu() - before
    t_plain2 = plain_pymc_loop(spec, cores=2) if "--cores2" in sys.argv else None
    print(next(line for line in summary if line.startswith("sensitivity grid:")))
    print(f"variants fitted: {len(variants)} (failed: {failed})")
    print(f"bayes-poem sensitivity --jobs 1  {times['1']:7.1f} s")
    print(f"bayes-poem sensitivity --jobs 2  {times['2']:7.1f} s")
    print(f"naive pm.sample loop (24 fits)   {t_plain:7.1f} s  (pm.sample default cores)")
    if t_plain2 is not None:
        print(f"naive pm.sample loop, cores=2    {t_plain2:7.1f} s")
    print(f"ratio --jobs 1 / naive = {times['1'] / t_plain:.3f}; --jobs 2 / naive = "
          f"{times['2'] / t_plain:.3f} (goal <= 0.05)")
    print(f"CPU time: --jobs 1 {cpu['1']:.1f} s, --jobs 2 {cpu['2']:.1f} s, naive loop "
          f"{cpu_plain:.1f} s; ratio --jobs 1 / naive = {cpu['1'] / cpu_plain:.3f}, "
          f"--jobs 2 / naive = {cpu['2'] / cpu_plain:.3f}")
    if t_plain2 is not None:
        print(f"ratio --jobs 2 / naive cores=2 = {times['2'] / t_plain2:.3f}")
    print(json.dumps({"cli_jobs1_s": round(times["1"], 2), "cli_jobs2_s": round(times["2"], 2),
                      "naive_s": round(t_plain, 2),
                      "naive_cores2_s": None if t_plain2 is None else round(t_plain2, 2),
                      "ratio_jobs1": round(times["1"] / t_plain, 4),
                      "ratio_jobs2": round(times["2"] / t_plain, 4),
                      "cpu_jobs1_s": round(cpu["1"], 2), "cpu_jobs2_s": round(cpu["2"], 2),
                      "cpu_naive_s": round(cpu_plain, 2),
                      "cpu_ratio_jobs1": round(cpu["1"] / cpu_plain, 4)}))


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
