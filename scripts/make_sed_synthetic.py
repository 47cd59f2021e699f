"""Regenerate bayes_poem/datasets/sed_synthetic.csv (SYNTHETIC data) from its seed."""

from pathlib import Path

from bayes_poem.datasets.synthetic import SEED, simulate_sed

target = Path(__file__).resolve().parents[1] / "bayes_poem" / "datasets" / "sed_synthetic.csv"
frame = simulate_sed(SEED)
frame.to_csv(target, index=False, lineterminator="\n")
print(f"wrote {target} ({len(frame)} rows, SYNTHETIC, seed {SEED})")
