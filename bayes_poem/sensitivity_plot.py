"""Forest plot of a sensitivity grid: one panel per quantity, one line per variant."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

MAX_PANELS = 6


def plot_sensitivity(*, table: pd.DataFrame, quantities: list[str] | None = None,
                     title: str = "") -> Figure:
    """Posterior median and interval of each quantity across variants.

    Flagged variants (a conclusion changes) are drawn in red, failed variants
    are listed as such, and the main analysis is shaded.
    """
    ok = table[table["status"] != "failed"]
    if quantities is None:
        order = {"contrast": 0, "heterogeneity": 1, "probability": 2}
        kinds = ok.drop_duplicates("quantity")[["quantity", "kind"]]
        quantities = sorted(kinds["quantity"], key=lambda q: order.get(
            kinds.set_index("quantity").loc[q, "kind"], 3))[:MAX_PANELS]
    variants = list(dict.fromkeys(table["variant"]))
    failed = set(table.loc[table["status"] == "failed", "variant"])
    height = 1.0 + 0.28 * len(variants)
    fig, axes = plt.subplots(1, len(quantities), figsize=(3.6 * len(quantities), height),
                             sharey=True, squeeze=False)
    positions = {v: len(variants) - 1 - i for i, v in enumerate(variants)}
    for ax, quantity in zip(axes[0], quantities, strict=True):
        rows = ok[ok["quantity"] == quantity]
        for row in rows.itertuples(index=False):
            y = positions[row.variant]
            color = "tab:red" if isinstance(row.flag, str) and row.flag else "black"
            ax.plot([row.lower, row.upper], [y, y], color=color, linewidth=1.4)
            ax.plot(row.median, y, "o", color=color, markersize=4)
        main = rows[rows["variant"] == "main"]
        if not main.empty:
            ax.axvspan(main["lower"].iloc[0], main["upper"].iloc[0], color="tab:blue",
                       alpha=0.08)
            ax.axvline(main["median"].iloc[0], color="tab:blue", linewidth=0.8)
        if rows["kind"].eq("contrast").any():
            ax.axvline(0.0, color="grey", linestyle="--", linewidth=0.8)
        for variant in failed:
            ax.text(0.02, positions[variant], "failed", transform=ax.get_yaxis_transform(),
                    va="center", fontsize=7, color="tab:grey")
        label = rows["interval"].dropna().iloc[0] if not rows.empty else ""
        ax.set_title(quantity, fontsize=9)
        ax.set_xlabel(f"median, {label}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_yticks(range(len(variants)))
    axes[0][0].set_yticklabels(list(reversed(variants)), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
