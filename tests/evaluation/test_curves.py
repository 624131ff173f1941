"""curves.png: one panel per kind of curve the run logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from distgan.evaluation.curves import draw_curves

PANEL_WIDTH = 500  # 5 inches at 100 dpi


def write_rows(path: Path, with_fid: bool) -> Path:
    rows = [{"step": s, "kimg": s * 0.1, "loss_d": 1.0, "loss_g": 0.5, "d_real": 0.1, "d_fake": -0.1} for s in (1, 2)]
    if with_fid:
        rows.append({"step": 2, "kimg": 0.2, "fid": 123.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(("with_fid", "panels"), [(False, 2), (True, 3)])
def test_fid_panel_only_with_fid_rows(tmp_path: Path, with_fid: bool, panels: int):
    out = draw_curves(write_rows(tmp_path / "metrics.jsonl", with_fid), tmp_path / "curves.png")
    assert Image.open(out).size[0] == panels * PANEL_WIDTH
