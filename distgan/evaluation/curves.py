"""`<output_dir>/curves.png`: losses, D outputs and FID against kimg, from metrics.jsonl."""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_rows(metrics: Path) -> list[dict]:
    rows = []
    for line in metrics.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
    return rows


def draw_curves(metrics: Path, out: Path) -> Path:
    """Redraws `out` from every row of `metrics` (atomically: a viewer never sees half a file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(metrics)
    panels = [("losses", ["loss_d", "loss_g"]), ("D outputs (mean logits)", ["d_real", "d_fake"])]
    if any(r.get("fid") is not None for r in rows):  # evaluation off: no empty panel
        panels.append(("FID", ["fid"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), constrained_layout=True)
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            points = [(r["kimg"], r[key]) for r in rows if r.get(key) is not None and "kimg" in r]
            if points:
                ax.plot(*zip(*points), marker="o" if key == "fid" else None, markersize=3, label=key)
        ax.set_title(title)
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out
