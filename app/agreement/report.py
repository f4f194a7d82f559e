"""A self-contained HTML agreement report: tables plus the dashboard's plots as inline PNG."""

from __future__ import annotations

import base64
import html
from typing import Any

from app.agreement import charts
from app.agreement.reliability import TrendPoint, VersionReport

COEFFS = [
    ("percent_agreement", "% agreement"),
    ("krippendorff_alpha", "Krippendorff α"),
    ("fleiss_kappa", "Fleiss κ"),
    ("gwet_ac1", "Gwet AC1"),
    ("gwet_ac2", "Gwet AC2 (quadratic)"),
    ("cohen_kappa", "Cohen κ (mean of pairs)"),
    ("cohen_kappa_linear", "Cohen κ linear"),
    ("cohen_kappa_quadratic", "Cohen κ quadratic"),
]

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.reliable{color:#2e7d32;font-weight:600}
.tentative{color:#b28704;font-weight:600}.unreliable{color:#c62828;font-weight:600}
.undefined{color:#777}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.small{color:#666;font-size:12px}
"""


def _img(fig) -> str:
    data = base64.b64encode(charts.png_bytes(fig)).decode()
    return f'<img alt="" src="data:image/png;base64,{data}">'


def render(report: VersionReport, trend: list[TrendPoint] | None = None) -> str:
    e = html.escape
    title = f"Agreement: {report.rubric} v{report.version}" + (
        f", {report.round_name}" if report.round_name else ""
    )
    out: list[str] = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p class='small'>{report.n_reviews} submitted reviews of {report.n_traces} traces by "
        f"{len(report.judges)} judges ({e(', '.join(report.judges))}). 95% intervals: percentile "
        f"bootstrap over traces, {report.n_boot} resamples, seed {report.seed}. Generated "
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC by Chambers. Krippendorff (2004): α ≥ 0.800 "
        "reliable, 0.667–0.800 tentative. Percent agreement is shown beside α because of the "
        "prevalence paradox (high agreement with a low chance-corrected coefficient).</p>",
        _img(charts.alpha_by_criterion(report)),
        "<h2>Coefficients</h2><table><tr><th class='l'>criterion</th><th>items</th>"
        "<th>judges</th><th>band</th>"
        + "".join(f"<th>{e(label)}</th>" for _, label in COEFFS)
        + "</tr>",
    ]
    for t in report.targets:
        c = t.result.coefficients
        cells = []
        for key, _ in COEFFS:
            coef = c.get(key)
            if coef is None:
                cells.append("<td class='undefined'>–</td>")
            elif coef.value is None:
                cells.append(f"<td class='undefined' title='{e(coef.note)}'>n/a</td>")
            else:
                cells.append(f"<td>{e(coef.fmt())}</td>")
        out.append(
            f"<tr><td class='l'>{e(t.target.key)}<br><span class='small'>{e(t.target.title)}, "
            f"{e(t.result.level)}</span></td><td>{t.result.n_items}</td><td>{t.result.n_judges}</td>"
            f"<td class='{t.band}'>{t.band}</td>{''.join(cells)}</tr>"
        )
    out.append("</table>")
    if trend:
        out += ["<h2>Trend across versions and rounds</h2>", _img(charts.trend(trend))]
    for t in report.targets:
        out.append(f"<h2>{e(t.target.key)}: judges</h2>")
        out.append(
            "<table><tr><th class='l'>judge</th><th>rated</th><th>κ vs rest</th>"
            "<th>κ vs gold [95% CI]</th><th>% vs gold</th><th>gold items</th></tr>"
        )
        for j in t.judges:
            out.append(
                f"<tr><td class='l'>{e(j.judge)}</td><td>{j.n_rated}</td><td>{_f(j.vs_rest)}</td>"
                f"<td>{e(j.vs_gold.fmt()) if j.vs_gold else '–'}</td><td>{_f(j.gold_percent)}</td>"
                f"<td>{j.n_gold}</td></tr>"
            )
        out.append("</table>")
        out.append(_img(charts.kappa_heatmap(t)))
        out.append(_img(charts.judge_agreement(t)))
    out += _step_section(report)
    if report.disagreements:
        out.append(
            "<h2>Traces with the most disagreement</h2><table><tr><th class='l'>trace"
            "</th><th>score</th><th>judges</th><th class='l'>where they differ</th></tr>"
        )
        for d in report.disagreements:
            out.append(
                f"<tr><td class='l'>{d.trace_id}: {e(d.external_id)}</td>"
                f"<td>{d.score:.2f}</td><td>{d.n_judges}</td>"
                f"<td class='l'>{e(d.summary)}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def _step_section(report: VersionReport) -> list[str]:
    steps = report.step_labels
    if steps is None or not steps.n_reviews:
        return []
    return [
        "<h2>Step labels</h2><table><tr><th class='l'>measure</th><th>value</th>"
        "<th class='l'>from</th></tr>",
        f"<tr><td class='l'>first error at the same step</td><td>{_f(steps.exact_step)}</td>"
        f"<td class='l'>{steps.first_error_same} of {steps.first_error_pairs} judge pairs</td></tr>",
        f"<tr><td class='l'>Krippendorff's α (nominal)</td><td>{html.escape(steps.alpha.fmt())}</td>"
        f"<td class='l'>{steps.n_steps} steps in {steps.n_reviews} reviews</td></tr>",
        "</table>",
    ]


def _f(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"
