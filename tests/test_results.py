"""Run-dir files: history.csv reads back what was written."""

from __future__ import annotations

import csv
import math

import torch

from nnexp.results import write_history


def test_history_reads_back_its_numbers_and_its_odd_rows(tmp_path):
    float32 = [float(v) for v in torch.rand(50, generator=torch.Generator().manual_seed(0))]
    rows = [{"epoch": i + 1, "train_loss": v, "lr": 1e-3 / (i + 1), "seconds": 0.1 * i} for i, v in enumerate(float32)]
    rows[3]["train_loss"] = math.nan
    write_history(tmp_path / "plain.csv", rows)  # every row numbers, in column order
    rows.append({"epoch": 51, "train_loss": 0.5, "val_loss": 0.25})  # a new column, and none of lr or seconds
    rows.append({"seconds": 9.0, "epoch": 52, "train_loss": 0.5, "note": "stopped, early"})  # another order; text with a comma
    write_history(tmp_path / "odd.csv", rows)
    plain, odd = (list(csv.DictReader((tmp_path / name).open())) for name in ("plain.csv", "odd.csv"))
    assert list(plain[0]) == ["epoch", "train_loss", "lr", "seconds"] and len(plain) == 50
    assert list(odd[0]) == ["epoch", "train_loss", "lr", "seconds", "val_loss", "note"] and len(odd) == 52
    for row, read, read_odd in zip(rows, plain, odd):
        assert read_odd == {**read, "val_loss": "", "note": ""}
        assert int(read["epoch"]) == row["epoch"]
        for key in ("train_loss", "lr", "seconds"):  # every float comes back exactly
            assert float(read[key]) == row[key] or math.isnan(row[key]) and math.isnan(float(read[key]))
    assert odd[50] == {"epoch": "51", "train_loss": "0.5", "lr": "", "seconds": "", "val_loss": "0.25", "note": ""}
    assert odd[51] == {"epoch": "52", "train_loss": "0.5", "lr": "", "seconds": "9.0", "val_loss": "", "note": "stopped, early"}
