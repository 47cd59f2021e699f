"""Output pipeline at scale: the pieces of writing a ``bayes-poem run`` directory, timed
in-process on an existing 2,000-study SYNTHETIC results directory.

Times (median of ``--repeats``, one process, no sampling):

- ``study_estimates``: :meth:`FitResult.study_estimates` (2,000 rows);
- ``to_docx``: :func:`bayes_poem.exports.to_docx` of the run's tables (``tables.docx``);
- ``table_files``: every ``NAME.tex`` plus ``tables.docx`` (what ``run`` adds);
- ``write_netcdf``: :func:`bayes_poem.outputs.write_netcdf` of the stored posterior
  (with its ``log_likelihood`` and ``prior`` groups, as ``run`` writes it);
- ``grid_figures`` (with ``--grid DIR``, a ``bayes-poem sensitivity`` directory of a
  crossed grid): the sensitivity forest and grid figures drawn and saved as PNG.

Make the directory once (``benchmarks/scale.py --only bayes_poem --keep DIR``, or copy
one), then:

    PYTHONPATH=$PWD python benchmarks/outputs_scale.py DIR/out [--grid GRID_DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a bayes-poem run directory (posterior.nc, spec.toml)")
    parser.add_argument("--grid", help="a bayes-poem sensitivity directory of a crossed grid")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from bayes_poem import outputs
    from bayes_poem.exports import CAPTIONS, run_tables, table_files, to_docx
    from bayes_poem.results_dir import load_results

    result = load_results(args.results)
    result.idata.posterior.load()
    times = {"study_estimates": median_time(result.study_estimates, args.repeats)}
    tables = run_tables(result)
    word = {name[:-4]: (frame, CAPTIONS[name].text, CAPTIONS[name].percent)
            for name, frame in tables.items()}
    times["to_docx"] = median_time(lambda: to_docx(word), args.repeats)
    times["table_files"] = median_time(lambda: table_files(tables, synthetic=True),
                                       args.repeats)
    idata = result.idata
    for group in idata.groups():
        idata[group].load()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "posterior.nc"
        times["write_netcdf"] = median_time(lambda: outputs.write_netcdf(idata)(path),
                                            args.repeats)
        size = path.stat().st_size
    if args.grid:
        import pandas as pd

        from bayes_poem.figure_style import to_bytes
        from bayes_poem.plots import sensitivity_forest
        from bayes_poem.sensitivity_grid import AXES
        from bayes_poem.sensitivity_plots import crossed_grid_plot

        frame = pd.read_csv(Path(args.grid) / "sensitivity.csv", keep_default_na=False,
                            na_values=[""])
        axes = [c for c in frame.columns if c in AXES]  # the crossed axes' columns

        def figures() -> None:
            to_bytes(sensitivity_forest(frame=frame), "png")
            if len(axes) == 2:
                to_bytes(crossed_grid_plot(frame=frame, axes=axes), "png")

        times["grid_figures"] = median_time(figures, args.repeats)
    for name, seconds in times.items():
        print(f"{name:<16} {seconds:6.3f} s")
    print(f"posterior.nc     {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
