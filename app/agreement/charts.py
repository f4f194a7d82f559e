"""Agreement plots, drawn with matplotlib's object API (no pyplot state, no GUI backend).

The same Figure objects go into the HTML report (as PNG) and into the app's dashboard
(ui/ puts them on a QtAgg canvas), so what a lead exports is what they saw.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from app.agreement.reliability import TargetReport, TrendPoint, VersionReport

BAND_COLOURS = {
    "reliable": "#2e7d32",
    "tentative": "#f9a825",
    "unreliable": "#c62828",
    "undefined": "#9e9e9e",
}


def alpha_by_criterion(report: VersionReport, width: float = 7.5) -> Figure:
    """Krippendorff's alpha per criterion with its 95% CI; percent agreement beside it."""
    rows = list(reversed(report.targets))
    fig = Figure(figsize=(width, 0.55 * len(rows) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    for i, t in enumerate(rows):
        a = t.result.alpha
        colour = BAND_COLOURS[t.band]
        if a.value is not None:
            ax.barh(i, a.value, color=colour, alpha=0.85, height=0.6)
            if a.ci_low is not None:
                ax.errorbar(
                    a.value,
                    i,
                    xerr=[[a.value - a.ci_low], [a.ci_high - a.value]],
                    fmt="none",
                    ecolor="black",
                    capsize=3,
                    lw=1,
                )
            ax.text(max(a.value, 0) + 0.01, i + 0.18, f"{a.value:.2f}", fontsize=8)
        else:
            ax.text(0.01, i, "α undefined", fontsize=8, va="center", color="#666")
        pa = t.result.coefficients["percent_agreement"].value
        if pa is not None:
            ax.plot(
                pa,
                i,
                marker="D",
                color="#1565c0",
                ms=5,
                ls="none",
                label="percent agreement" if i == 0 else None,
            )
    ax.axvline(0.667, color="#f9a825", ls="--", lw=1)
    ax.axvline(0.800, color="#2e7d32", ls="--", lw=1)
    ax.set_yticks(y, [t.target.key for t in rows])
    lo = min([0.0] + [t.result.alpha.ci_low or 0 for t in rows])
    ax.set_xlim(min(lo, 0) - 0.05, 1.05)
    ax.set_xlabel("Krippendorff's α (bars, 95% bootstrap CI)   ◆ percent agreement")
    ax.set_title(
        f"{report.rubric} v{report.version}"
        + (f", {report.round_name}" if report.round_name else "")
        + ": 0.667 tentative, 0.800 reliable",
        fontsize=9,
    )
    return fig


def kappa_heatmap(target: TargetReport, width: float = 5.5) -> Figure:
    """Cohen's kappa for every judge pair on one criterion."""
    res = target.result
    mat = res.pairwise.get("cohen_kappa")
    names = [str(j) for j in res.judges]
    n = len(names)
    fig = Figure(figsize=(width, width * 0.8), layout="constrained")
    ax = fig.add_subplot()
    if mat is None or n < 2:
        ax.text(0.5, 0.5, "fewer than two judges", ha="center", va="center")
        ax.set_axis_off()
        return fig
    shown = np.where(np.eye(n, dtype=bool), 1.0, mat)
    im = ax.imshow(np.ma.masked_invalid(shown), cmap="RdYlGn", vmin=-0.2, vmax=1.0)
    for i in range(n):
        for j in range(n):
            v = mat[i, j]
            label = "—" if i == j else ("n/a" if not np.isfinite(v) else f"{v:.2f}")
            ax.text(j, i, label, ha="center", va="center", fontsize=8)
    short = [_short(s) for s in names]
    ax.set_xticks(range(n), short, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(n), short, fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8, label="Cohen's κ")
    ax.set_title(f"{target.target.key}: judge × judge Cohen's κ", fontsize=9)
    return fig


def judge_agreement(target: TargetReport, width: float = 6.5) -> Figure:
    """Each judge against the adjudicated gold and against the rest."""
    lines = target.judges
    fig = Figure(figsize=(width, 0.45 * max(len(lines), 2) + 1.3), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(lines))
    rest = [np.nan if j.vs_rest is None else j.vs_rest for j in lines]
    gold = [
        np.nan if (j.vs_gold is None or j.vs_gold.value is None) else j.vs_gold.value for j in lines
    ]
    ax.barh(y + 0.2, rest, height=0.38, color="#78909c", label="κ vs the other judges (mean)")
    ax.barh(y - 0.2, gold, height=0.38, color="#ffb300", label="κ vs adjudicated gold")
    ax.set_yticks(y, [_short(j.judge) for j in lines], fontsize=8)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlim(min([-0.1] + [v for v in rest + gold if np.isfinite(v)]) - 0.05, 1.05)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{target.target.key}: each judge against gold and the rest", fontsize=9)
    return fig


def trend(
    points: Sequence[TrendPoint], keys: Sequence[str] | None = None, width: float = 7.5
) -> Figure:
    """Alpha per criterion across rubric versions and rounds (oldest left)."""
    fig = Figure(figsize=(width, 3.6), layout="constrained")
    ax = fig.add_subplot()
    scopes = list(dict.fromkeys((p.version, p.round_name or "", p.when) for p in points))
    scopes.sort(key=lambda s: (s[2], s[0]))
    xs = {s[:2]: i for i, s in enumerate(scopes)}
    for key in keys or list(dict.fromkeys(p.key for p in points)):
        ps = [p for p in points if p.key == key and p.alpha.value is not None]
        if not ps:
            continue
        x = [xs[(p.version, p.round_name or "")] for p in ps]
        yv = [p.alpha.value for p in ps]
        lo = [
            p.alpha.value - (p.alpha.ci_low if p.alpha.ci_low is not None else p.alpha.value)
            for p in ps
        ]
        hi = [
            (p.alpha.ci_high if p.alpha.ci_high is not None else p.alpha.value) - p.alpha.value
            for p in ps
        ]
        ax.errorbar(x, yv, yerr=[lo, hi], marker="o", capsize=3, lw=1.4, label=key)
    ax.axhline(0.667, color="#f9a825", ls="--", lw=1)
    ax.axhline(0.800, color="#2e7d32", ls="--", lw=1)
    ax.set_xticks(
        range(len(scopes)),
        [f"v{v}\n{_short(r, 22)}\n{w:%Y-%m-%d}" for v, r, w in scopes],
        fontsize=7,
    )
    ax.set_ylabel("Krippendorff's α")
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    ax.set_title("Agreement across rubric versions and rounds", fontsize=9)
    return fig


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _short(s: str, n: int = 16) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"
