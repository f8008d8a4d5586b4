"""What nnexp prints: the config tree, the layer table and the final scores (rich)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from nnexp.metrics import RunRecord

TREE_ORDER = ("data", "model", "optim", "schedule", "regularization", "stopping", "trainer")


def config_tree(cfg: DictConfig) -> Tree:
    """The composed config as a tree, main groups first."""
    tree = Tree("[bold]config")
    keys = [key for key in TREE_ORDER if key in cfg] + [
        key for key in cfg if key not in TREE_ORDER and key not in ("hydra", "paths", "logger", "callbacks")
    ]
    for key in keys:
        value = cfg[key]
        if OmegaConf.is_dict(value):
            branch = tree.add(f"[bold cyan]{key}")
            text = OmegaConf.to_yaml(value, resolve=True).rstrip()
            branch.add(text if text != "{}" else "[dim]-")
        else:
            tree.add(f"[cyan]{key}[/]: {value}")
    return tree


def layer_table(rows: list[dict], total: int) -> Table:
    """Output shape and parameter count of every layer, with the total."""
    table = Table(title="model", title_justify="left")
    table.add_column("layer")
    table.add_column("type")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    for row in rows:
        table.add_row(row["layer"], row["type"], str(tuple(row["output_shape"])), f"{row['params']:,}")
    table.add_section()
    table.add_row("total", "", "", f"{total:,}")
    return table


def results_rows(run: RunRecord) -> list[tuple[str, str, str]]:
    """(split, loss, score) per split the run has, formatted."""
    fit = run.fit
    rows = []
    for split in ("train", "val", "test"):
        score, loss = getattr(fit, f"{split}_score"), getattr(fit, f"{split}_loss")
        if score is None:
            continue
        text = f"{score:.4f}"
        if split == "val" and fit.val_score_std is not None:
            text += f" ± {fit.val_score_std:.4f}"
        label = f"{split} ({fit.cv}-fold mean)" if fit.cv and split != "test" else split
        rows.append((label, f"{loss:.4f}", text))
    return rows


def results_table(run: RunRecord) -> Table:
    """Loss and score per split."""
    table = Table(title=f"results ({run.data or ''})", title_justify="left")
    table.add_column("split")
    table.add_column("loss", justify="right")
    table.add_column(run.score_name or "score", justify="right")
    for row in results_rows(run):
        table.add_row(*row)
    return table


def results_lines(run: RunRecord) -> list[str]:
    """The results table as plain lines, one per split (for the run's log file)."""
    return [f"{split}: loss {loss}, {run.score_name or 'score'} {score}" for split, loss, score in results_rows(run)]


def plural(count: float, noun: str) -> str:
    """``noun`` as counted: "1 epoch", "2 epochs" (and a CV mean such as "2.4 epochs")."""
    return noun if count == 1 else f"{noun}s"


def results_caption(run: RunRecord) -> str:
    """One line: status, why training stopped, epochs, fit time and parameter count."""
    fit = run.fit
    colour = "green" if run.status == "ok" else "red"
    unit = plural(fit.epochs, "iteration" if fit.iterations is not None else "epoch")  # L-BFGS counts iterations
    return (
        f"[{colour}]{run.status}[/]: {fit.stop_reason} after {fit.epochs:g} {unit}, "
        f"fit {fit.fit_seconds:.2f} s, {fit.params:,} parameters"
    )


def make_console() -> Console:
    """The console for progress and tables (stdout); errors go to stderr."""
    return Console(highlight=False)


def layer_text(rows: list[dict], total: int) -> str:
    """The layer table as plain text, for model_summary.txt (plain formatting: a rich render
    costs ~10 ms, paid by every sweep job)."""
    lines = [f"{'layer':<16} {'type':<12} {'output shape':<16} {'params':>10}"]
    lines += [f"{r['layer']:<16} {r['type']:<12} {str(tuple(r['output_shape'])):<16} {r['params']:>10,}" for r in rows]
    lines.append(f"{'total':<46} {total:>10,}")
    return "\n".join(lines) + "\n"
