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
import tempfile
from pathlib import Path

from _timing import median_seconds


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
    times = {"study_estimates": median_seconds(result.study_estimates, args.repeats)}
    tables = run_tables(result)
    word = {name[:-4]: (frame, CAPTIONS[name].text, CAPTIONS[name].percent)
            for name, frame in tables.items()}
    times["to_docx"] = median_seconds(lambda: to_docx(word), args.repeats)
    times["table_files"] = median_seconds(lambda: table_files(tables, synthetic=True),
                                          args.repeats)
    idata = result.idata
    for group in idata.groups():
        idata[group].load()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "posterior.nc"
        times["write_netcdf"] = median_seconds(lambda: outputs.write_netcdf(idata)(path),
                                               args.repeats)
        size = path.stat().st_size
    if args.grid:
        import pandas as pd

        from bayes_poem.sensitivity_grid import AXES
        from bayes_poem.sensitivity_plots import figure_names, figure_png

        frame = pd.read_csv(Path(args.grid) / "sensitivity.csv", keep_default_na=False,
                            na_values=[""])
        axes = [c for c in frame.columns if c in AXES]  # the crossed axes' columns

        def figures() -> None:  # what 'bayes-poem sensitivity --jobs 1' draws
            for name in figure_names(axes):
                figure_png(name, frame, axes)

        times["grid_figures"] = median_seconds(figures, args.repeats)
    for name, seconds in times.items():
        print(f"{name:<16} {seconds:6.3f} s")
    print(f"posterior.nc     {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
