"""One self-contained HTML page per sweep: the summary table, the figures and the best config."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from nnexp.plots.labels import short_value
from nnexp.results import CONFIG_FILE, METRICS_FILE, write_text_atomic

REPORT_FILE = "report.html"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f0f0f0; } tr.best td { background: #e8f4e8; font-weight: 600; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5rem 0; }
pre { background: #f7f7f7; padding: 1rem; overflow-x: auto; }
"""
# Records, once the page has loaded, how many images decoded: a headless browser test reads it.
CHECK_SCRIPT = """
window.addEventListener('load', () => {
  const images = [...document.images];
  document.body.dataset.imagesLoaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.tableRows = document.querySelectorAll('#summary tbody tr').length;
});
"""


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def _param_cell(value) -> str:
    """A swept parameter: 4 significant digits, the exact value in the tooltip."""
    shown = short_value(value, digits=4)
    return html.escape(shown) if shown == str(value) else f'<span title="{html.escape(str(value))}">{html.escape(shown)}</span>'


def refit_command(best_command: str) -> str:
    """The single-run command that trains the refit model: the best point's overrides on the whole
    training split (``cv=1``; a sweep preset's ``cv=5`` would rerun the cross-validation)."""
    return f"{best_command} cv=1"


def refit_scores(sweep_dir: Path) -> dict | None:
    """The refit's test and train scores (``refit/metrics.json``), when the sweep has a refit."""
    from nnexp.metrics import read_record

    try:
        record = read_record(Path(sweep_dir) / "refit" / METRICS_FILE)
    except (OSError, ValueError):
        return None
    fit = record.fit
    if fit is None or fit.test_score is None:
        return None
    return {"test": float(fit.test_score), "train": float(fit.train_score), "name": record.score_name or "score"}


def provenance_html(sweep_dir: Path) -> str:
    """The sweep's provenance.json (versions, host, device, git commit) as a two-column table."""
    from nnexp.provenance import read_provenance

    record = read_provenance(sweep_dir)
    if record is None:
        return "<p>Not recorded (a sweep from before nnexp recorded provenance).</p>"
    rows = [(f"{group} {key}" if isinstance(value, dict) else group, item)
            for group, value in record.items() for key, item in (value.items() if isinstance(value, dict) else [(group, value)])]
    body = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>" for key, value in rows)
    return f'<table id="provenance">{body}</table>'


def write_report(sweep_dir: Path, rows: list[dict], keys: list[str], figures: list[Path]) -> Path:
    """report.html: opens in any browser with no server (figures are embedded as data URIs)."""
    sweep_dir = Path(sweep_dir)
    columns = ["rank_val_score", *[f"param_{k}" for k in keys], "mean_val_score", "std_val_score",
               "mean_train_score", "mean_test_score", "mean_fit_time", "n_runs", "status"]

    header = "".join(f"<th>{html.escape(c.replace('param_', ''))}</th>" for c in columns)
    images = "".join(
        f"<h3>{html.escape(path.name)}</h3><img alt=\"{html.escape(path.name)}\" src=\"data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}\">"
        for path in figures if path.is_file()
    )
    best = rows[0] if rows else {}
    refit = refit_scores(sweep_dir)
    if refit is not None and rows and math.isnan(float(rows[0].get("mean_test_score", math.nan))):
        # GridSearchCV scores test rows once, with the refit: so does the best row, marked as the refit's
        rows = [dict(rows[0], mean_test_score=f"{refit['test']:.4f} (refit)"), *rows[1:]]
    body = "".join(
        f"<tr class=\"{'best' if row['rank_val_score'] == 1 else ''}\">" + "".join(f"<td>{(_param_cell if c.startswith('param_') else _cell)(row.get(c, ''))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    refit_text = "" if refit is None else (
        f"<p>Refit on the whole training split: test {html.escape(refit['name'])} <b>{refit['test']:.4f}</b> "
        f"(train {refit['train']:.4f}); the refit model again: <code>{html.escape(refit_command(str(best.get('command', ''))))}</code></p>")
    best_config = sweep_dir / str(best.get("best_job", "")) / CONFIG_FILE
    config_text = html.escape(best_config.read_text()) if best_config.is_file() else "(no finished job)"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nnexp sweep {html.escape(sweep_dir.name)}</title>
<style>{STYLE}</style><script>{CHECK_SCRIPT}</script></head>
<body>
<h1>Sweep {html.escape(str(sweep_dir))}</h1>
<p>{len(rows)} grid points. Best: <code>{html.escape(str(best.get('command', '')))}</code></p>{refit_text}
<h2>Summary</h2>
<table id="summary"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>
<h2>Figures</h2>{images or '<p>No figures.</p>'}
<h2>Best config</h2><pre>{config_text}</pre>
<h2>Provenance</h2>{provenance_html(sweep_dir)}
</body></html>
"""
    path = sweep_dir / REPORT_FILE
    write_text_atomic(path, page)
    return path
