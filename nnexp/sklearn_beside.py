"""``sklearn=true``: scikit-learn's own estimator fitted beside a run, on the same split.

For a config scikit-learn can express (an MLP, linear or logistic net with ``init=sklearn``; SGD,
Adam or L-BFGS; L2 or no penalty; no dropout; scikit-learn's stopping rule), the same scaled
training rows go to ``MLPClassifier``/``MLPRegressor`` with ``random_state=seed``, and both rows
are printed and written to ``sklearn.json`` in the run dir. Anything else gets one line saying why.
"""

from __future__ import annotations

import json
import warnings

from nnexp.sklearn_models import is_mlp, uses_sklearn_draws

SOLVERS = {"nnexp.training.optimizers.SGD": "sgd", "nnexp.training.optimizers.Adam": "adam", "nnexp.training.lbfgs.LBFGS": "lbfgs"}
SCHEDULES = {"torch.optim.lr_scheduler.ConstantLR": "constant", "nnexp.training.schedules.InverseScaling": "invscaling",
             "nnexp.training.schedules.AdaptiveRate": "adaptive"}
ACTIVATIONS = ("relu", "tanh", "logistic", "identity")


def why_not_expressible(cfg) -> str | None:
    """None when scikit-learn's MLP can express the config, else the reason, naming the key."""
    model, optim = cfg.model, cfg.optim
    if not is_mlp(model):
        return f"scikit-learn has no {str(model.get('_target_')).rsplit('.', 1)[-1]} (model=mlp, linear or logistic)"
    if not uses_sklearn_draws(model):
        return "model.init=torch draws torch's weights; scikit-learn's are model.init=sklearn"
    if model.get("activation") not in ACTIVATIONS:
        return f"model.activation={model.get('activation')}: scikit-learn has {', '.join(ACTIVATIONS)}"
    if float(model.get("dropout", 0) or 0) > 0:
        return "scikit-learn's MLP has no dropout (model.dropout)"
    solver = SOLVERS.get(optim.get("_target_"))
    if solver is None:
        return f"optimiser {optim.get('_target_')}: scikit-learn's solvers are optim=sgd, adam and lbfgs"
    if float(cfg.regularization.get("l1", 0) or 0) > 0:
        return "scikit-learn's MLP has no L1 penalty (regularization.l1)"
    if solver == "lbfgs" and int(optim.get("history_size", 10)) != 10:
        return f"scikit-learn's L-BFGS keeps 10 pairs (optim.history_size={optim.history_size})"
    if solver != "lbfgs":
        if SCHEDULES.get(cfg.schedule.get("_target_")) is None:
            return f"schedule {cfg.schedule.get('_target_')}: scikit-learn's are constant, invscaling and adaptive"
        if cfg.stopping.get("monitor") is None or cfg.stopping.get("rule", "sklearn") != "sklearn":
            return "scikit-learn always stops by its own count (stopping=convergence or early_stopping)"
    if int(cfg.get("cv", 1)) > 1:
        return "with cv > 1 compare the grid with GridSearchCV (scripts/bench_parity.py --grids)"
    if float(cfg.data.get("validation_fraction", 0) or 0) > 0:
        return "data.validation_fraction holds rows out; scikit-learn only holds them out for early stopping"
    return None


def estimator_for(cfg, task: str):
    """scikit-learn's estimator with the config's parameters."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    optim, solver = cfg.optim, SOLVERS[cfg.optim._target_]
    params = dict(hidden_layer_sizes=tuple(int(s) for s in cfg.model.hidden_sizes), activation=str(cfg.model.activation),
                  solver=solver, alpha=float(cfg.regularization.get("alpha", 0) or 0), random_state=int(cfg.seed))
    if solver == "lbfgs":
        params.update(max_iter=int(optim.max_iter), max_fun=int(optim.max_fun), tol=float(optim.tol))
    else:
        stopping = cfg.stopping
        batch = cfg.batch_size
        params.update(learning_rate_init=float(optim.lr), max_iter=int(cfg.trainer.max_epochs), tol=float(stopping.tol),
                      n_iter_no_change=int(stopping.patience), batch_size=batch if isinstance(batch, int) else "auto",
                      early_stopping=str(stopping.monitor).startswith("val"),
                      validation_fraction=float(stopping.get("validation_fraction", 0.1) or 0.1),
                      learning_rate=SCHEDULES[cfg.schedule._target_])
        if cfg.schedule.get("power_t") is not None:
            params["power_t"] = float(cfg.schedule.power_t)
        if solver == "sgd":
            params.update(momentum=float(optim.get("momentum", 0.9)), nesterovs_momentum=bool(optim.get("nesterov", True)))
        else:
            betas = optim.get("betas", (0.9, 0.999))
            params.update(beta_1=float(betas[0]), beta_2=float(betas[1]), epsilon=float(optim.get("eps", 1e-8)))
    estimator = MLPRegressor if task == "regression" else MLPClassifier
    return estimator(**params)


def fit_beside(plan, result, console) -> dict | None:
    """Fit scikit-learn's estimator on the run's split; print both rows and write them to sklearn.json."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    reason = why_not_expressible(plan.cfg)
    if reason is not None:
        console.print(f"[yellow]sklearn=true[/]: no scikit-learn fit beside this run: {reason}")
        return None
    bundle, data = plan.bundle, result.data
    scale = data.feature_scaler.transform if data.feature_scaler is not None else (lambda X: X)
    X_train, X_test = scale(bundle.X_train.reshape(len(bundle.X_train), -1)), scale(bundle.X_test.reshape(len(bundle.X_test), -1))
    y_train, y_test = bundle.y_train, bundle.y_test
    if bundle.task == "regression" and data.target_mean is not None:  # nnexp's targets, standardised as it trained on them
        y_train = ((y_train.reshape(len(y_train), -1) - data.target_mean) / data.target_scale).squeeze()
        y_test = ((y_test.reshape(len(y_test), -1) - data.target_mean) / data.target_scale).squeeze()
    estimator = estimator_for(plan.cfg, bundle.task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X_train, y_train)
    fit = result.metrics
    train_rows = data.train.X.double().numpy().reshape(len(data.train), -1)
    train_targets = data.train.y.double().numpy().squeeze() if bundle.task == "regression" else data.train.y.numpy().astype(int)
    rows = {
        "nnexp": {"train_score": fit.train_score, "test_score": fit.test_score,
                  "n_iter": fit.iterations if fit.iterations is not None else fit.epochs},
        "scikit-learn": {"train_score": float(estimator.score(train_rows, train_targets)),
                         "test_score": float(estimator.score(X_test, y_test)), "n_iter": int(estimator.n_iter_)},
    }
    # the same as printed: equal counts, and scores equal to the 4 decimals shown
    rows["same"] = bool(rows["nnexp"]["n_iter"] == rows["scikit-learn"]["n_iter"]
                        and all(round(rows["nnexp"][key], 4) == round(rows["scikit-learn"][key], 4) for key in ("train_score", "test_score")))
    rows["estimator"] = repr(estimator)
    from nnexp.results import SKLEARN_FILE, write_text_atomic

    write_text_atomic(plan.output_dir / SKLEARN_FILE, json.dumps(rows, indent=2))
    for name in ("nnexp", "scikit-learn"):
        row = rows[name]
        console.print(f"{name:>12}: train {row['train_score']:.4f}  test {row['test_score']:.4f}  n_iter {row['n_iter']}")
    why = ("long L-BFGS runs part by rounding" if SOLVERS.get(plan.cfg.optim.get("_target_")) == "lbfgs"
           else "their epochs part by rounding: nnexp trains in float32 unless told otherwise, scikit-learn in float64")
    console.print(f"[dim]{rows['estimator']} on the same split -> {plan.output_dir / SKLEARN_FILE}"
                  + ("" if rows["same"] else f"; they differ ({why}: scripts/bench_parity.py)"), soft_wrap=True)
    return rows
