"""The Python API (nnexp.run, nnexp.sweep, nnexp.load): the CLI's composition, run dirs, identity
and store, in-process; and a real notebook executed by a real kernel."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from conftest import QUIET

TINY = [*QUIET, "data=moons", "data.generator.n_samples=120", "trainer.max_epochs=5"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_override_values_are_written_in_hydras_grammar():
    from nnexp.api import override_value

    assert override_value([10, 10]) == "[10,10]"
    assert override_value(None) == "null" and override_value(True) == "true" and override_value(0.5) == "0.5"
    assert override_value("relu") == "relu" and override_value("a b") == "'a b'"
    assert override_value([0.1, 1.0], sweep=True) == "0.1,1.0"
    assert override_value([[10], [10, 10]], sweep=True) == "[10],[10,10]"


def test_run_returns_scores_history_model_and_predictions_from_the_clis_run_dir(in_tmp):
    import nnexp

    run = nnexp.run(*TINY, "solver=adam", random_state=3, **{"model.hidden_sizes": [4, 3]})
    assert run.dir.parent.parent == in_tmp / "outputs" / "train"  # outputs/<task>/<date>/<time>, as the CLI
    metrics = json.loads((run.dir / "metrics.json").read_text())
    assert run.scores["test"]["accuracy"] == pytest.approx(metrics["test_score"])
    assert run.scores["train"]["loss"] == pytest.approx(metrics["train_loss"])
    assert len(run.history) == metrics["epochs"] and "train_loss" in run.history.columns
    assert run.config.seed == 3 and list(run.config.model.hidden_sizes) == [4, 3]
    assert [m.out_features for m in run.model.modules() if hasattr(m, "out_features")] == [4, 3, 1]
    predicted = run.predict(np.zeros((2, 2)))
    assert predicted.shape == (2,) and set(predicted) <= {0, 1}
    assert Path(os.getcwd()) == in_tmp
    from nnexp.errors import NnexpError

    with pytest.raises(NnexpError, match=r"^X has rows of shape \(3,\); this model takes rows of shape \(2,\)"):
        run.predict(np.zeros((2, 3)))  # was numpy's broadcast error
    with pytest.raises(NnexpError, match=r"X.reshape\(1, -1\) for one sample"):
        run.predict(np.zeros(2))


def test_a_regression_runs_predictions_are_one_value_a_row_as_scikit_learns(in_tmp):
    import nnexp

    run = nnexp.run("data=diabetes", "trainer.max_epochs=2", "quiet=true", "plots=false", "logger=none")
    assert run.predict(np.zeros((3, 10))).shape == (3,)  # was (3, 1)


def test_run_plot_is_a_matplotlib_figure_of_the_runs_curves(in_tmp):
    import matplotlib.figure

    import nnexp
    from nnexp.errors import NnexpError

    run = nnexp.run(*TINY, "solver=adam")
    figure = run.plot()
    assert isinstance(figure, matplotlib.figure.Figure) and figure._repr_png_().startswith(b"\x89PNG")
    loss_axes, score_axes = figure.axes
    curves = {line.get_label(): line.get_ydata() for line in loss_axes.get_lines()}
    assert np.allclose(curves["train"], run.history["train_loss"]) and score_axes.get_ylabel() == "accuracy"
    figure.savefig(in_tmp / "curves.svg")
    assert "<svg" in (in_tmp / "curves.svg").read_text() and not (run.dir / "curves.png").exists()
    assert run.plot("boundary").axes[0].collections  # the other kinds too (a 2-D classifier's boundary)
    with pytest.raises(NnexpError, match="choose one of: curves"):
        run.plot("curve")


def test_same_overrides_give_the_clis_job_identity(in_tmp, compose_cfg):
    import nnexp
    from nnexp.store import job_key

    run = nnexp.run(*TINY, "seed=1")
    assert run.record.job_key == job_key(compose_cfg(*TINY, "seed=1"))
    again = nnexp.run(*TINY, "seed=1")  # composed once, reused: still a run dir of its own
    assert again.record.job_key == run.record.job_key and again.dir != run.dir


def test_calls_within_one_second_write_beside_each_other_and_keep_both_results(in_tmp, monkeypatch):
    # Run and sweep dirs are named by the second: with the clock frozen, every call falls in the
    # same second, and each later one writes beside the first (its run dir's claim; no waiting).
    import datetime

    import hydra.core.utils

    import nnexp

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(hydra.core.utils, "datetime", Frozen)  # the clock of Hydra's ${now:}
    first = nnexp.run(*TINY, "seed=1")
    kept = (first.dir / "metrics.json").read_text()
    second = nnexp.run(*TINY, "seed=2")
    assert first.dir.name == "03-04-05" and second.dir == first.dir.with_name("03-04-05-2")
    assert (first.dir / "metrics.json").read_text() == kept and first.config.seed == 1
    assert second.status == "ok" and second.config.seed == 2
    sweeps = [nnexp.sweep(*TINY, seed=[seed]) for seed in (1, 2)]
    assert [item.dir.name for item in sweeps] == ["03-04-05", "03-04-05-2"]
    assert [[run.config.seed for run in item.runs] for item in sweeps] == [[1], [2]]


def test_a_run_dir_is_made_as_hydra_run_makes_it(in_tmp, monkeypatch):
    """nnexp.run makes its run dir without Hydra's run_job (no copies of the config): the same
    .hydra files as Hydra.run (the public path, forced here), HydraConfig let go after the call,
    and a run dir named by ${hydra:...} claimed as run_job names it (a second run writes beside)."""
    from hydra.core.hydra_config import HydraConfig

    import nnexp
    from nnexp import compat

    named = [*TINY, "seed=4", "hydra.run.dir=out/${hydra:job.override_dirname}"]
    fast = nnexp.run(*named)
    assert not HydraConfig.initialized() and fast.dir == in_tmp / "out" / fast.dir.name
    beside = nnexp.run(*named)
    assert beside.dir == fast.dir.with_name(fast.dir.name + "-2") and beside.status == "ok"
    monkeypatch.setattr(compat, "run_callbacks", lambda config: None)  # as on a Hydra without the fast path
    public = nnexp.run(*TINY, "seed=4", "hydra.run.dir=public")
    for name in ("config.yaml", "overrides.yaml"):
        assert (fast.dir / ".hydra" / name).read_text() == (public.dir / ".hydra" / name).read_text(), name
    hydra_fast, hydra_public = (yaml.safe_load((run.dir / ".hydra" / "hydra.yaml").read_text())["hydra"] for run in (fast, public))
    for config in (hydra_fast, hydra_public):  # where the two runs differ: their dirs, as asked
        config.pop("run"), config["runtime"].pop("output_dir"), config["overrides"].pop("hydra")
    assert hydra_fast == hydra_public
    assert (fast.dir / "metrics.json").is_file() and public.status == "ok"


def test_a_sweep_reuses_what_the_cli_stored_and_load_opens_it(in_tmp, sweep):
    import nnexp

    sweep("cli", *TINY, "seed=0,1")  # `nnexp -m` in-process: stores into cli_store
    result = nnexp.sweep(*TINY, "hydra.callbacks.sweep_summary.figures=foreground", "paths.store_dir=cli_store",
                         seed=[0, 1])
    assert list(result.summary["n_reused"]) == [2]
    assert len(result.runs) == 2 and result.best.dir.parent == result.dir
    opened = nnexp.load(in_tmp / "cli")
    assert opened.summary["mean_val_score"].equals(result.summary["mean_val_score"])
    assert isinstance(nnexp.load(result.best.dir), nnexp.Run)


def test_results_stay_readable_after_a_chdir_and_a_check_returns_none(in_tmp, monkeypatch, capsys):
    """A notebook may %cd after a call: Run and Sweep hold absolute dirs (load of a relative path
    too). mode=validate and mode=params train nothing: they print their check and return None."""
    import nnexp

    done = nnexp.sweep(*TINY, seed=[0])
    ran = nnexp.run(*TINY, "seed=0")
    loaded = nnexp.load(done.dir.relative_to(in_tmp))
    elsewhere = in_tmp / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert done.dir.is_absolute() and ran.dir.is_absolute() and loaded.dir == done.dir
    assert len(done.summary) == 1 and done.best.status == "ok" and ran.history.shape[0] == 5
    assert nnexp.run(*TINY, "mode=validate") is None and "config OK" in capsys.readouterr().out
    assert nnexp.run(*TINY, "mode=params") is None


@pytest.mark.parametrize("override, message", [
    ("data=moonz", "data=moonz is not an option; choose one of: "),
    ("optim.lr=-1", "optim.lr=-1 is not allowed"),
    ("model.hidden_sizes=[10", "model.hidden_sizes=[10: "),
    ("colour=red", "nnexp has no key colour"),
    ("model.hiden_sizes=[10]", "model.hiden_sizes: model has no setting hiden_sizes (did you mean model.hidden_sizes?)"),
    # a setting of another option of the group (the default optim is adam): name the options that take it
    ("optim.momentum=0.9", "optim.momentum: the chosen optim has no setting momentum; optim=rmsprop and optim=sgd and "
                           "optim=sgd_torch take it: choose one, or remove optim.momentum"),
])
def test_a_bad_override_raises_the_clis_one_line(in_tmp, override, message):
    import nnexp
    from nnexp.errors import NnexpError

    with pytest.raises(NnexpError) as raised:
        nnexp.run(*TINY, override)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert raised.value.__cause__ is None and (raised.value.__context__ is None or raised.value.__suppress_context__)


def test_a_flat_list_for_a_list_setting_is_refused_before_any_job(in_tmp):
    import nnexp
    from nnexp.errors import NnexpError

    with pytest.raises(NnexpError, match=r"^model.hidden_sizes=\[10,10\]: model.hidden_sizes takes a list, and nnexp.sweep "
                                         r"sweeps a list's items \(model.hidden_sizes=10, ...\); give \[\[10,10\]\]"):
        nnexp.sweep(*TINY, **{"model.hidden_sizes": [10, 10]})
    assert not (in_tmp / "multirun").exists()
    done = nnexp.sweep(*TINY, **{"model.hidden_sizes": [[10, 10]], "regularization.alpha": [0.1]})
    assert [list(run.config.model.hidden_sizes) for run in done.runs] == [[10, 10]]


def test_overrides_come_as_strings_or_one_list_of_them(in_tmp):
    import nnexp
    from nnexp.api import checked_overrides
    from nnexp.errors import NnexpError

    assert checked_overrides((["data=moons", "seed=1"], "optim=adam"), {}, sweep=False) == checked_overrides(
        ("data=moons", "seed=1", "optim=adam"), {}, sweep=False)
    with pytest.raises(NnexpError, match=r"^5: nnexp.run and nnexp.sweep take overrides as strings") as raised:
        nnexp.run(*TINY, 5)
    assert "\n" not in str(raised.value)


def test_load_refuses_a_dir_that_is_neither(in_tmp):
    import nnexp
    from nnexp.errors import NnexpError

    with pytest.raises(NnexpError, match="neither a run dir"):
        nnexp.load(in_tmp)


def test_import_nnexp_stays_light():
    import subprocess
    import sys

    code = "import sys, nnexp; print(sorted(m for m in ('torch', 'hydra', 'pandas', 'nnexp.api') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


NOTEBOOK = [
    """import os, signal, threading, pathlib, nnexp
cwd = os.getcwd()
tiny = ["data=moons", "data.generator.n_samples=120", "trainer.max_epochs=5", "plots=false", "logger=none"]""",
    # Two runs in one kernel, within a second: two run dirs.
    """first = nnexp.run(*tiny, "solver=adam", random_state=0, **{"model.hidden_sizes": [5]})
second = nnexp.run(*tiny, "solver=lbfgs", random_state=1, **{"model.hidden_sizes": [5]})
assert first.dir != second.dir and first.config.seed == 0 and second.config.seed == 1
assert first.status == "ok" and os.getcwd() == cwd
first.scores""",
    """first.plot("curves")""",
    """from nnexp.errors import NnexpError
try:
    nnexp.run(*tiny, "optim.lr=-1")
except NnexpError as error:
    bad = str(error)
print(f"BAD: {bad}")""",
    # Ctrl-C (the kernel's interrupt is a SIGINT) in the second job of a sweep whose second job
    # would train for hours: the first job's result is kept, and the kernel goes on.
    """def interrupt_after_first_job():  # job 1's dir: job 0 has ended, and been counted, before it is made
    while not (pathlib.Path("interrupted/0/metrics.json").is_file() and pathlib.Path("interrupted/1").is_dir()):
        threading.Event().wait(0.05)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt_after_first_job, daemon=True).start()
try:
    nnexp.sweep(*tiny, "hydra.sweep.dir=interrupted", "stopping=none", "optim=sgd", "batch_size=1",
                **{"trainer.max_epochs": [2, 10**6]})
    raise AssertionError("not interrupted")
except KeyboardInterrupt as stop:
    print(f"STOPPED: {stop}")  # one write: ipykernel may flush a print's parts as separate outputs
assert os.getcwd() == cwd and '"ok"' in pathlib.Path("interrupted/0/metrics.json").read_text()
third = nnexp.run(*tiny, "solver=lbfgs", random_state=2)
third.status""",
]


def test_a_notebook_runs_plots_fails_one_line_and_survives_ctrl_c(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in NOTEBOOK])
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [cell.outputs for cell in notebook.cells]
    text = "\n".join(str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
                     for cell in outputs for output in cell)
    assert "'test': {'loss':" in text and "ok" in text
    assert any("image/png" in output.get("data", {}) for output in outputs[2])  # the Figure, inline
    bad = next(line for line in text.splitlines() if line.startswith("BAD:"))
    assert "optim.lr=-1 is not allowed" in bad
    assert "Error executing job" not in text and "Traceback" not in text
    assert "STOPPED: interrupted: 1 finished job kept in interrupted" in text, outputs[4]
    assert OmegaConf.load(tmp_path / "interrupted" / "multirun.yaml").hydra.sweep.dir == "interrupted"
    assert 'ipywidgets' not in text  # rich's live displays draw nothing in Jupyter without it
    assert any("epoch" in output.get("data", {}).get("text/plain", "") for output in outputs[1])  # the live bar
    assert any("sweep: 1/2 jobs" in output.get("data", {}).get("text/plain", "") for output in outputs[4])  # sweep progress
