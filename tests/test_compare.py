"""nnexp.compare and nnexp-compare: runs and sweeps side by side."""

from __future__ import annotations

import sys

import pytest

from test_api import TINY


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_two_runs_differ_in_config_scores_and_curves(in_tmp):
    import nnexp

    a = nnexp.run(*TINY, "seed=0")
    b = nnexp.run(*TINY, "seed=1", "regularization.alpha=0.5")
    comparison = nnexp.compare(a.dir, b.dir)
    differences = comparison.config_differences
    assert set(differences.index) == {"seed", "regularization.alpha"}
    assert list(differences.loc["seed"]) == [0, 1]
    assert comparison.scores.loc["test accuracy", "A"] == pytest.approx(a.scores["test"]["accuracy"])
    assert comparison.scores.loc["test accuracy", "B"] == pytest.approx(b.scores["test"]["accuracy"])
    assert comparison.provenance.empty  # the same versions, host, commit and data
    loss_axes, score_axes = comparison.figure().axes
    assert [line.get_label() for line in loss_axes.lines] == ["A train", "B train"]
    assert list(loss_axes.lines[1].get_ydata()) == list(b.history["train_loss"])


def test_provenance_shows_where_results_came_from_when_it_differs(in_tmp):
    import json

    import nnexp

    a = nnexp.run(*TINY, "seed=0")
    b = nnexp.run(*TINY, "seed=0")
    assert a.dir != b.dir, (a.dir, b.dir)
    recorded = json.loads((b.dir / "provenance.json").read_text())
    recorded["versions"]["torch"] = "0.0-elsewhere"
    (b.dir / "provenance.json").write_text(json.dumps(recorded))
    origin = nnexp.compare(a.dir, b.dir).provenance
    assert list(origin.index) == ["versions.torch"] and origin.loc["versions.torch", "B"] == "0.0-elsewhere"


def test_sweeps_summaries_are_joined_on_their_parameters(in_tmp):
    import nnexp

    a = nnexp.sweep(*TINY, **{"regularization.alpha": [0.1, 1, 10]})  # summary.csv reads as floats
    b = nnexp.sweep(*TINY, "optim.lr=0.01", **{"regularization.alpha": [1, 10, 100]})  # as integers
    comparison = nnexp.compare(a, b)  # the API's objects, or their dirs
    joined = comparison.summaries.set_index("regularization.alpha")
    assert sorted(joined.index, key=float) == ["0.1", "1", "10", "100"]  # 1 and 1.0 are one grid point
    assert joined["val A"].isna().sort_index(key=lambda index: index.astype(float)).tolist() == [False, False, False, True]
    assert joined.loc["10", "val B"] == pytest.approx(b.summary.set_index("param_regularization.alpha").loc[10, "mean_val_score"])
    assert "sweep" in comparison.config_differences.index and "optim.lr" in comparison.config_differences.index
    # A sweep's config is its best run's, the run whose scores are shown beside it
    best = [a.best.config.regularization.alpha, b.best.config.regularization.alpha]
    differences = comparison.config_differences
    if best[0] != best[1]:
        assert list(differences.loc["regularization.alpha"]) == best
    else:
        assert "regularization.alpha" not in differences.index
    html = comparison._repr_html_()
    assert "config keys that differ" in html and "<table" in html


def test_sweeps_with_no_parameter_in_common_are_not_paired_row_by_row(in_tmp):
    import nnexp

    a = nnexp.sweep(*TINY, **{"regularization.alpha": [0.1, 1]})
    b = nnexp.sweep(*TINY, **{"optim.lr": [0.01, 0.1]})
    joined = nnexp.compare(a.dir, b.dir).summaries
    assert len(joined) == 4
    assert joined["regularization.alpha"].notna().tolist() == [True, True, False, False]
    assert joined["optim.lr"].notna().tolist() == [False, False, True, True]


def test_small_values_keep_their_digits_and_1_is_1_0(in_tmp):
    import io

    from rich.console import Console

    import nnexp
    from nnexp.comparison import _cell, print_comparison
    from nnexp.errors import NnexpError

    assert [_cell(v) for v in (1e-5, 1e-8, 0.0, 0.12345, 12345.0)] == ["1e-05", "1e-08", "0.0000", "0.1235", "1.234e+04"]
    a = nnexp.run(*TINY, "regularization.alpha=1e-5", "optim.lr=1")
    b = nnexp.run(*TINY, "regularization.alpha=1e-6", "optim.lr=1.0")
    comparison = nnexp.compare(a, b)
    stream = io.StringIO()
    print_comparison(comparison, Console(file=stream, width=120))
    row = next(line for line in stream.getvalue().splitlines() if "regularization.alpha" in line)
    assert "1e-05" in row and "1e-06" in row
    assert "optim.lr" not in comparison.config_differences.index  # 1 and 1.0 are one value
    with pytest.raises(NnexpError, match="compare takes run or sweep dirs"):
        nnexp.compare(a, None)


def test_the_command_prints_the_tables_and_writes_the_figure(in_tmp, monkeypatch, capsys):
    import nnexp
    from nnexp.comparison import main

    a, b = nnexp.run(*TINY, "seed=0"), nnexp.run(*TINY, "seed=1")
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["nnexp-compare", str(a.dir), str(b.dir), "--figure", "both.png"])
    main()
    out = capsys.readouterr().out
    assert "config keys that differ" in out and "test accuracy" in out and "plot: both.png" in out
    assert (in_tmp / "both.png").stat().st_size > 0


def test_the_command_refuses_one_dir_or_a_dir_that_is_neither(in_tmp, monkeypatch, capsys):
    from nnexp.comparison import main

    for argv in (["x"], ["x", "y"]):
        monkeypatch.setattr(sys, "argv", ["nnexp-compare", *argv])
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
