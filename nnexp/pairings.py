"""Which optimiser x regulariser x stopping x model pairings can train as the user means.

Every pairing is decided here, in one table: a pairing that cannot work is refused before any
training, in one line that names the key and the fix. Pairings not listed train as configured.
"""

from __future__ import annotations

from nnexp.errors import ConfigError
from nnexp.sklearn_models import is_mlp

LBFGS_TARGETS = ("nnexp.training.lbfgs.LBFGS", "torch.optim.LBFGS", "torch.optim.lbfgs.LBFGS")
NO_DROPOUT_WITH_LBFGS = ("L-BFGS cannot train with dropout: scikit-learn has no dropout, and L-BFGS's line search needs "
                         "a deterministic objective (each evaluation would drop other units); use model.dropout=0, "
                         "or optim=adam / optim=sgd for dropout")
# (optimiser, regulariser, stopping, model) -> None (trains as configured) or the reason it cannot.
# "*" matches any value; the first matching row decides.
RULES: tuple[tuple[str, str, str, str, str | None, str | None], ...] = (
    # optimiser, regulariser, stopping, model, key to name, reason
    ("lbfgs", "dropout", "*", "*", "model.dropout", NO_DROPOUT_WITH_LBFGS),
    ("lbfgs", "*", "early_stopping", "*", "stopping",
     "L-BFGS runs its whole fit at once and stops on its own budgets (optim.max_iter, optim.max_fun, optim.tol), so "
     "early stopping cannot act (scikit-learn ignores early_stopping for solver='lbfgs'); use stopping=convergence, "
     "or optim=adam / optim=sgd for early stopping"),
    # Trains: L-BFGS minimises the kinked L1 objective approximately (weights shrink, none becomes exactly 0).
    ("lbfgs", "l1", "*", "*", None, None),
    ("*", "dropout", "*", "no_hidden_layer", "model.dropout",
     "dropout acts after hidden layers and this model has none (linear or logistic regression); use model.dropout=0, "
     "or add hidden layers (model.hidden_sizes=[10])"),
    # Every other pairing trains as configured: epoch optimisers (SGD, Adam, RMSprop, GD) take any
    # penalty, dropout and stopping rule; L-BFGS takes L2 or none with convergence or no stopping rule.
    ("*", "*", "*", "*", None, None),
)


def pairing(cfg) -> tuple[str, str, str, str]:
    """The (optimiser, regulariser, stopping, model) kinds of a config, as the rule table names them."""
    optim_target = str(cfg.optim.get("_target_", ""))
    optimiser = "lbfgs" if optim_target in LBFGS_TARGETS else "epochs"
    dropout = float(cfg.model.get("dropout", 0) or 0) > 0
    l1 = float(cfg.regularization.get("l1", 0) or 0) > 0
    regulariser = "dropout" if dropout else "l1" if l1 else "l2_or_none"
    early = str(cfg.stopping.get("monitor", "")).startswith("val")
    stopping = "early_stopping" if early else "other"
    hidden = cfg.model.get("hidden_sizes", None)
    no_hidden = is_mlp(cfg.model) and hidden is not None and len(hidden) == 0
    model = "no_hidden_layer" if no_hidden else "other"
    return optimiser, regulariser, stopping, model


def decide(kinds: tuple[str, str, str, str]) -> tuple[str | None, str | None]:
    """(key, reason) of the first rule matching ``kinds``; (None, None) when the pairing trains."""
    for *pattern, key, reason in RULES:
        if all(p in ("*", kind) for p, kind in zip(pattern, kinds)):
            return key, reason
    return None, None


def check_pairing(cfg) -> None:
    """Refuse, in one line naming the key, a pairing that cannot train as configured."""
    from omegaconf import OmegaConf

    key, reason = decide(pairing(cfg))
    if key is not None:
        value = "early_stopping" if key == "stopping" else OmegaConf.select(cfg, key)
        raise ConfigError(key, value, reason)
