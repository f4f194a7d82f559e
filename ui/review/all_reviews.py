"""The lead's "All reviews" tab: every submitted review of a trace, each with the rubric
version it was scored under (scores under different versions do not compare), the whole
rationale, and corrections shortened until the lead asks for all of them."""

from __future__ import annotations

from html import escape

from app.review.reviews import OtherReview  # noqa: F401 - the rows rendered here

PREVIEW = 600


def render_all_reviews(
    reviews: list[OtherReview], versions: dict[int, str], current: int | None, full: bool
) -> str:
    """HTML for the tab; `full` shows corrections whole (the "show all" link sets it)."""
    if not reviews:
        return "<i>No submitted reviews of this trace yet.</i>"
    html = []
    for r in reviews:
        version = escape(versions.get(r.version_id, f"version #{r.version_id}"))
        other = "" if r.version_id == current else " <i>(not the version you review under)</i>"
        sc = ", ".join(f"{escape(k)}={escape(str(v))}" for k, v in r.scores.items())
        html.append(
            f"<p><b>{escape(r.judge)}</b>: {escape(r.decision or '')}"
            f" <span style='color:gray'>· rubric {version}</span>{other}"
            f"<br><span style='color:gray'>{sc}</span>"
        )
        if r.rationale:
            html.append("<br>" + escape(r.rationale).replace("\n", "<br>"))
        if r.corrected:
            shown = r.corrected if full else r.corrected[:PREVIEW]
            html.append(f"<br><i>Correction:</i> {escape(shown)}")
            if len(shown) < len(r.corrected):
                more = len(r.corrected) - len(shown)
                html.append(
                    f" <a href='all-reviews:full'>… show all ({more:,} more characters)</a>"
                )
        html.append("</p>")
    return "".join(html)
