"""Reading a long real-shaped trace: the fixture, the outline, decoded JSON, safe Markdown,
the rendered view, corrections that end at the edited step, and the word diff."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import tau_airline  # noqa: E402

from app.review.corrections import REPLY, TOOL_CALL, CorrectionDraft  # noqa: E402
from app.review.word_diff import n_edits, word_diff, word_segments  # noqa: E402
from app.traces.importers.conversations import conversation_record  # noqa: E402
from app.traces.outline import cut_at_word, decode_json, is_error_result, outline  # noqa: E402


@pytest.fixture(scope="module")
def rec():
    return conversation_record(json.loads(tau_airline.JSONL.read_text("utf-8")), "benchmark")


def test_committed_fixture_is_the_generators_output():
    assert tau_airline.JSONL.read_text("utf-8") == tau_airline.jsonl_text()


def test_fixture_has_the_real_shape(rec):
    assert len(rec.messages) == 40 and rec.n_tool_calls == 10
    assert (
        rec.messages[0]["role"] == "system"
        and "# Airline Agent Policy" in rec.messages[0]["parts"][0]["text"]
    )
    assert len(rec.tools) == 8 and rec.outcome == 0.0
    ref = rec.metadata["reference"]
    assert [a["name"] for a in ref["expected_actions"]][:3] == [
        "get_user_details",
        "search_direct_flight",
        "book_reservation",
    ]
    [error] = [p for m in rec.messages for p in m["parts"] if is_error_result(p)]
    assert error["content"].startswith("Error: payment amount does not add up")


def test_outline_names_tools_marks_errors(rec):
    entries = outline(rec.messages)
    assert [e.step for e in entries] == list(range(40))  # one call per message here
    by_step = {e.step: e for e in entries}
    assert by_step[0].kind == "system"
    assert by_step[18].kind == "tool_call" and by_step[18].label == "→ book_reservation"
    assert by_step[19].kind == "error" and by_step[19].label.startswith("✗ book_reservation: Error")
    assert by_step[21].kind == "tool_result" and by_step[21].label == "← book_reservation"
    assert by_step[38].kind == "final" and by_step[39].kind == "user"


def test_json_inside_a_string_is_decoded(rec):
    content = rec.messages[9]["parts"][0]["content"]
    assert content.startswith('"[{\\"flight_number')  # the tool double-encoded its output
    ok, value = decode_json(content)
    assert ok and value[0]["flight_number"] == "HAT083" and value[1]["prices"]["economy"] == 171
    assert decode_json("Error: not json") == (False, None)
    assert decode_json('{"a": "{\\"b\\": 1}"}') == (True, {"a": {"b": 1}})


def test_cut_at_word_never_cuts_mid_word():
    text = "Book a one-way economy flight from JFK to SEA on 2024-05-20"
    cut = cut_at_word(text, 30)
    assert cut == "Book a one-way economy flight…" and len(cut) <= 30
    assert cut_at_word("short", 30) == "short"


def test_markdown_is_rendered_safely():
    from ui.widgets.markdown import render_markdown

    html = render_markdown(
        "# Policy\n\n- **Reservation ID** and `code`\n- *gold* members\n\n"
        '<script>alert("x")</script> [click](javascript:alert(1)) ![p](http://evil.example/p.png)'
        "\n\nfile: receipt\u202efdp.exe"
    )
    assert "<b>Policy</b>" in html and "<li><b>Reservation ID</b>" in html
    assert "<i>gold</i>" in html and "<code" in html
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<a " not in html and "<img" not in html and "[image: p]" in html
    assert "\u202e" not in html and "⟨U+202E⟩" in html


def test_rendered_trace_is_readable(rec):
    from ui.widgets.render import Colors, ViewState, render_trace
    from ui.widgets.render_context import render_task_box, render_tools

    trace = {"messages": rec.messages, "final_output": rec.final_output}
    html = render_trace(trace, ViewState(), Colors())
    assert "{user_id, name, address, email, … 6 more}" in html  # a long result starts collapsed
    assert "mia.li3818@example.com" not in html
    html = render_trace(trace, ViewState(expanded={"res5.0"}), Colors())
    assert "mia.li3818@example.com" in html
    assert "ERROR" in html and "← book_reservation" in html  # the tool's name, not only the id
    assert "Amélie" in html and "\\u00e9" not in html  # pretty-printed, non-ASCII as itself
    assert "decoded from a JSON string" in html and "HAT083" in html
    assert "⟨U+202E⟩" in html and "\u202e" not in html
    assert "<b>Reservation ID</b>" in html  # the final answer's Markdown
    box = render_task_box(
        {
            "id": 1,
            "task": rec.task,
            "n_messages": 40,
            "n_tool_calls": 10,
            "outcome": 0.0,
            "outcome_label": None,
            "outcome_source": "benchmark:reward",
            "metadata": rec.metadata,
        },
        Colors(),
    )
    assert "Expected actions" in box and "update_reservation_baggages(" in box
    tools = render_tools({"tools": rec.tools}, Colors())
    assert "book_reservation" in tools and "one_way | round_trip" in tools


# --- corrections -----------------------------------------------------------------------------


def _fixed_booking(rec):
    args = json.loads(json.dumps(rec.messages[18]["parts"][0]["arguments"]))
    args["payment_methods"][1]["amount"] = 34
    return args


def test_editing_step_k_ends_the_corrected_history_at_k(rec):
    d = CorrectionDraft(rec.messages, tools=rec.tools)
    assert d.result() is None and d.end() == -1
    d.set_call(18, 0, "book_reservation", _fixed_booking(rec))
    corrected = d.result()
    assert len(corrected) == 19  # steps 19.. answered the old arguments: not in the correction
    assert corrected[:18] == rec.messages[:18] and d.problems() == []
    assert corrected[18]["parts"][0]["arguments"]["payment_methods"][1]["amount"] == 34
    # changing it back is no correction at all
    d.set_call(18, 0, "book_reservation", rec.messages[18]["parts"][0]["arguments"])
    assert d.result() is None


def test_a_tool_call_becomes_a_reply_and_back(rec):
    d = CorrectionDraft(rec.messages, tools=rec.tools)
    assert d.kind(28) == TOOL_CALL
    d.set_kind(28, REPLY)
    assert d.problems() == ["Step 28: the reply is empty"]
    d.set_text(28, "Basic economy without insurance cannot be cancelled after 24 hours.")
    corrected = d.result()
    assert len(corrected) == 29 and d.problems() == []
    assert corrected[28]["parts"] == [
        {
            "type": "text",
            "text": "Basic economy without insurance cannot be cancelled after 24 hours.",
        }
    ]
    d2 = CorrectionDraft(rec.messages, tools=rec.tools)
    d2.set_kind(26, TOOL_CALL)  # a reply becomes a call, checked against the schemas
    assert any("get_user_details" in p and "required" in p for p in d2.problems())
    d2.set_call(26, 0, "transfer_to_human_agents", {"summary": "cancel a basic economy trip"})
    assert (
        d2.problems() == [] and d2.result()[26]["parts"][-1]["name"] == "transfer_to_human_agents"
    )


def test_insert_and_delete_steps(rec):
    d = CorrectionDraft(rec.messages, tools=rec.tools)
    d.delete(28)  # the cancel call and its result go together
    assert [s.origin for s in d.steps[27:30]] == [27, 30, 31]
    assert "must end with a step of the agent" in d.problems()[0]
    new = d.insert_after(27, REPLY)
    d.set_text(new, "I cannot cancel ZFA04Y: it is basic economy without insurance.")
    corrected = d.result()
    assert len(corrected) == 29 and corrected[28]["role"] == "assistant" and d.problems() == []
    d2 = CorrectionDraft(rec.messages, tools=rec.tools)
    with pytest.raises(ValueError):
        d2.delete(27)  # a user turn is not the agent's to correct
    i = d2.insert_after(17, TOOL_CALL)
    d2.set_call(i, 0, "calculate", {"expression": "250 + 34"})
    assert len(d2.result()) == 19 and d2.result()[18]["parts"][0]["name"] == "calculate"


def test_an_old_full_length_correction_is_resumed_and_trimmed(rec):
    old = json.loads(json.dumps(rec.messages))
    old[18]["parts"][0]["arguments"]["payment_methods"][1]["amount"] = 34
    d = CorrectionDraft(rec.messages, old, rec.tools)
    assert len(d.result()) == 19 and d.end() == 18


def test_bad_arguments_are_named(rec):
    d = CorrectionDraft(rec.messages, tools=rec.tools)
    args = _fixed_booking(rec)
    args["cabin"] = "first"
    del args["insurance"]
    d.set_call(18, 0, "book_reservation", args)
    problems = d.problems()
    assert any("arguments.cabin: 'first' is not one of" in p for p in problems)
    assert any("arguments.insurance: required" in p for p in problems)


# --- word diff -------------------------------------------------------------------------------


def test_word_diff_marks_the_changed_word_in_place(rec):
    d = CorrectionDraft(rec.messages, tools=rec.tools)
    d.set_call(18, 0, "book_reservation", _fixed_booking(rec))
    blocks = word_diff(rec.messages, d.result())
    assert [b.kind for b in blocks] == ["unchanged", "changed", "after_end"]
    changed = blocks[1]
    assert changed.title == "Step 18 · assistant · tool call book_reservation"
    assert [s for s in changed.segments if s[0] != "equal"] == [("delete", "30"), ("insert", "34")]
    text = "".join(t for op, t in changed.segments if op != "delete")
    keys = [line.split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert keys == list(rec.messages[18]["parts"][0]["arguments"])  # the agent's key order
    assert "@@" not in "".join(b.title for b in blocks)
    assert blocks[2].original == (19, 40) and n_edits(rec.messages, d.result()) == 1


def test_word_segments():
    assert word_segments("paid 280 in total", "paid 284 in total") == [
        ("equal", "paid "),
        ("delete", "280"),
        ("insert", "284"),
        ("equal", " in total"),
    ]
    # a rewrite is shown as old out, new in, not as interleaved words
    assert word_segments("The parcel is lost.", "Refund issued today, sorry!") == [
        ("delete", "The parcel is lost."),
        ("insert", "Refund issued today, sorry!"),
    ]


def test_corrected_answer_is_only_a_final_reply(rec):
    from app.review.corrections import corrected_answer

    d = CorrectionDraft(rec.messages, tools=rec.tools)
    d.set_call(18, 0, "book_reservation", _fixed_booking(rec))
    assert corrected_answer(d.result()) is None  # ends in a call
    d.set_kind(28, REPLY)
    d.set_text(28, "I cannot cancel it.")
    assert corrected_answer(d.result()) == "I cannot cancel it."


def test_markdown_blocks():
    from ui.widgets.markdown import render_markdown

    html = render_markdown(
        'Steps:\n\n1. first\n2. second\n   - nested <b>x</b>\n\n```json\n{"a": "<i>"}\n```\n\n'
        "| id | status |\n|----|--------|\n| 1 | ok |\n\n> quoted **bold**\n\n---"
    )
    assert '<ol start="1"' in html and "<li>first</li>" in html and "<ul" in html
    assert "<li>nested &lt;b&gt;x&lt;/b&gt;</li>" in html
    assert (
        '<pre style="font-family:monospace;white-space:pre-wrap;margin:4px 0">{&quot;a&quot;: &quot;&lt;i&gt;&quot;}</pre>'
        in html
    )
    assert "| id | status |" in html  # a table stays readable as preformatted text
    assert "<blockquote" in html and "quoted <b>bold</b>" in html and "<hr>" in html
