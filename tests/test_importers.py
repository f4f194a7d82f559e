"""Every supported format maps into the one trace model. Fixtures are small, hand-written
examples of each vendor's documented shape."""

from __future__ import annotations

from app.traces.importers import FileImport
from app.traces.importers.messages import RecordError
from app.traces.model import TraceRecord


def parse(path, fmt=None, **kw):
    reader = FileImport(path, fmt)
    results = list(reader)
    return (
        reader.format,
        [r for _, r in results if isinstance(r, TraceRecord)],
        [(loc, r) for loc, r in results if isinstance(r, RecordError)],
    )


def roles(rec):
    return [m["role"] for m in rec.messages]


def parts(rec, kind):
    return [p for m in rec.messages for p in m["parts"] if p["type"] == kind]


WEATHER_CHAT = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"},
    {"role": "assistant", "content": "It is 18C and cloudy in Paris."},
]


def test_openai_chat_single_conversation(write):
    fmt, recs, errs = parse(write("chat.json", WEATHER_CHAT))
    assert fmt == "openai-chat" and not errs and len(recs) == 1
    rec = recs[0]
    assert roles(rec) == ["system", "user", "assistant", "tool", "assistant"]
    call = parts(rec, "tool_call")[0]
    assert call == {
        "type": "tool_call",
        "id": "call_1",
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }
    result = parts(rec, "tool_result")[0]
    assert (
        result["call_id"] == "call_1"
        and result["content"] == "18C, cloudy"
        and result["is_error"] is False
    )
    assert rec.task == "Weather in Paris?"
    assert rec.final_output == "It is 18C and cloudy in Paris."
    assert rec.n_tool_calls == 1


def test_openai_chat_jsonl_records_with_tools_and_legacy_function_call(write):
    legacy = {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "calc", "arguments": '{"expr": "2+2"}'},
            },
            {"role": "function", "name": "calc", "content": "4"},
            {"role": "assistant", "content": "4"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "calc",
                    "description": "Evaluate",
                    "parameters": {"type": "object"},
                },
            }
        ],
    }
    path = write("chats.jsonl", lines=[{"messages": WEATHER_CHAT}, legacy])
    fmt, recs, errs = parse(path)
    assert fmt == "openai-chat" and not errs and len(recs) == 2
    rec = recs[1]
    call = parts(rec, "tool_call")[0]
    assert call["name"] == "calc" and call["arguments"] == {"expr": "2+2"}
    # the legacy function result is linked to its call by name
    assert parts(rec, "tool_result")[0]["call_id"] == call["id"]
    assert rec.tools == [
        {"name": "calc", "description": "Evaluate", "parameters": {"type": "object"}}
    ]


def test_openai_chat_array_of_conversations(write):
    fmt, recs, errs = parse(
        write("many.json", [{"messages": WEATHER_CHAT}, {"messages": WEATHER_CHAT[:2]}])
    )
    assert fmt == "openai-chat" and len(recs) == 2 and not errs


def test_invalid_tool_arguments_are_kept_and_flagged(write):
    conv = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
            ],
        },
    ]
    _, recs, _ = parse(write("bad_args.json", conv))
    call = parts(recs[0], "tool_call")[0]
    assert call["arguments"] == "{not json" and call["arguments_invalid"] is True


def test_openai_responses_items(write):
    record = {
        "id": "resp_1",
        "input": [
            {"role": "user", "content": "Find flights to Oslo"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Need the search tool."}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_9",
                "name": "search_flights",
                "arguments": '{"to": "OSL"}',
            },
            {"type": "function_call_output", "call_id": "call_9", "output": '{"flights": 3}'},
        ],
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "I found 3 flights."}],
            }
        ],
    }
    fmt, recs, errs = parse(write("resp.json", record))
    assert fmt == "openai-responses" and not errs
    rec = recs[0]
    assert roles(rec) == ["user", "assistant", "tool", "assistant"]
    assistant = rec.messages[1]
    assert [p["type"] for p in assistant["parts"]] == ["reasoning", "tool_call"]  # merged fragments
    assert assistant["parts"][1]["id"] == "call_9"
    assert parts(rec, "tool_result")[0]["call_id"] == "call_9"
    assert rec.final_output == "I found 3 flights."
    assert rec.external_id == "resp_1"


def test_anthropic_messages(write):
    record = {
        "system": "You are a coding agent.",
        "tools": [
            {
                "name": "bash",
                "description": "Run a command",
                "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}},
            }
        ],
        "messages": [
            {"role": "user", "content": "List files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should run ls.", "signature": "x"},
                    {"type": "text", "text": "Running ls."},
                    {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"cmd": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "permission denied"}],
                        "is_error": True,
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "I cannot list the files."}],
            },
        ],
    }
    fmt, recs, errs = parse(write("anthropic.json", record))
    assert fmt == "anthropic" and not errs
    rec = recs[0]
    assert roles(rec) == ["system", "user", "assistant", "tool", "assistant"]
    assert [p["type"] for p in rec.messages[2]["parts"]] == ["reasoning", "text", "tool_call"]
    assert parts(rec, "tool_call")[0]["arguments"] == {"cmd": "ls"}
    result = parts(rec, "tool_result")[0]
    assert result == {
        "type": "tool_result",
        "call_id": "toolu_1",
        "content": "permission denied",
        "is_error": True,
    }
    assert (
        rec.tools[0]["name"] == "bash"
        and rec.tools[0]["parameters"]["properties"]["cmd"]["type"] == "string"
    )


def _attr(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _otlp(spans):
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", "agent")]},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
            }
        ]
    }


def test_otel_genai_semconv_with_execute_tool(write):
    import json

    chat1 = {
        "traceId": "t1",
        "spanId": "s2",
        "parentSpanId": "s1",
        "name": "chat gpt-4o",
        "startTimeUnixNano": "2000",
        "attributes": [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.request.model", "gpt-4o"),
            _attr(
                "gen_ai.input.messages",
                json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "Weather in Rome?"}]}]
                ),
            ),
            _attr(
                "gen_ai.output.messages",
                json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [
                                {
                                    "type": "tool_call",
                                    "id": "c1",
                                    "name": "weather",
                                    "arguments": {"city": "Rome"},
                                }
                            ],
                        }
                    ]
                ),
            ),
        ],
    }
    tool = {
        "traceId": "t1",
        "spanId": "s3",
        "parentSpanId": "s1",
        "name": "execute_tool weather",
        "startTimeUnixNano": "3000",
        "attributes": [
            _attr("gen_ai.operation.name", "execute_tool"),
            _attr("gen_ai.tool.name", "weather"),
            _attr("gen_ai.tool.call.id", "c1"),
            _attr("gen_ai.tool.call.result", "sunny"),
        ],
    }
    chat2 = {
        "traceId": "t1",
        "spanId": "s4",
        "parentSpanId": "s1",
        "name": "chat gpt-4o",
        "startTimeUnixNano": "4000",
        "attributes": [
            _attr("gen_ai.operation.name", "chat"),
            _attr(
                "gen_ai.input.messages",
                json.dumps(
                    [
                        {
                            "role": "user",
                            "parts": [{"type": "text", "content": "Weather in Rome?"}],
                        },
                        {
                            "role": "assistant",
                            "parts": [
                                {
                                    "type": "tool_call",
                                    "id": "c1",
                                    "name": "weather",
                                    "arguments": {"city": "Rome"},
                                }
                            ],
                        },
                        {
                            "role": "tool",
                            "parts": [
                                {"type": "tool_call_response", "id": "c1", "response": "sunny"}
                            ],
                        },
                    ]
                ),
            ),
            _attr(
                "gen_ai.output.messages",
                json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": "Sunny in Rome."}],
                        }
                    ]
                ),
            ),
        ],
    }
    root = {
        "traceId": "t1",
        "spanId": "s1",
        "name": "invoke_agent",
        "startTimeUnixNano": "1000",
        "attributes": [_attr("gen_ai.operation.name", "invoke_agent")],
    }
    # spans deliberately out of order: grouping and ordering are by trace id, parent and start
    fmt, recs, errs = parse(write("otlp.json", _otlp([chat2, tool, root, chat1])))
    assert fmt == "otel" and not errs and len(recs) == 1
    rec = recs[0]
    assert roles(rec) == ["user", "assistant", "tool", "assistant"]
    assert parts(rec, "tool_call")[0]["arguments"] == {"city": "Rome"}
    assert parts(rec, "tool_result")[0]["call_id"] == "c1"
    assert rec.final_output == "Sunny in Rome." and rec.external_id == "t1"
    assert rec.metadata["model"] == "gpt-4o" and rec.metadata["service.name"] == "agent"


def test_otel_older_per_message_events(write):
    span = {
        "traceId": "t2",
        "spanId": "a",
        "name": "chat",
        "startTimeUnixNano": "1",
        "attributes": [_attr("gen_ai.system", "openai")],
        "events": [
            {"name": "gen_ai.system.message", "attributes": [_attr("content", "Be brief.")]},
            {"name": "gen_ai.user.message", "attributes": [_attr("content", "Hi")]},
            {
                "name": "gen_ai.choice",
                "attributes": [_attr("message", '{"content": "Hello!"}'), _attr("index", 0)],
            },
        ],
    }
    fmt, recs, errs = parse(write("events.json", _otlp([span])))
    assert fmt == "otel" and not errs
    assert roles(recs[0]) == ["system", "user", "assistant"] and recs[0].final_output == "Hello!"


def test_otel_openinference_attributes_jsonl(write):
    llm = {
        "traceId": "t3",
        "spanId": "l1",
        "name": "ChatCompletion",
        "startTimeUnixNano": "1",
        "attributes": [
            _attr("openinference.span.kind", "LLM"),
            _attr("llm.input_messages.0.message.role", "user"),
            _attr("llm.input_messages.0.message.content", "Convert 10 USD to EUR"),
            _attr("llm.output_messages.0.message.role", "assistant"),
            _attr("llm.output_messages.0.message.tool_calls.0.tool_call.id", "x1"),
            _attr("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "fx"),
            _attr(
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
                '{"amount": 10}',
            ),
        ],
    }
    tool = {
        "traceId": "t3",
        "spanId": "l2",
        "name": "fx",
        "startTimeUnixNano": "2",
        "attributes": [
            _attr("openinference.span.kind", "TOOL"),
            _attr("tool.name", "fx"),
            _attr("input.value", '{"amount": 10}'),
            _attr("output.value", "9.2 EUR"),
        ],
    }
    fmt, recs, errs = parse(write("oi.jsonl", lines=[_otlp([llm]), _otlp([tool])]))
    assert fmt == "otel" and not errs
    rec = recs[0]
    assert roles(rec) == ["user", "assistant", "tool"]
    call = parts(rec, "tool_call")[0]
    assert call["name"] == "fx" and call["arguments"] == {"amount": 10}
    assert parts(rec, "tool_result")[0] == {
        "type": "tool_result",
        "call_id": "x1",
        "content": "9.2 EUR",
        "is_error": False,
    }


def test_langsmith_run_tree(write):
    run = {
        "id": "r1",
        "trace_id": "tr1",
        "name": "AgentExecutor",
        "run_type": "chain",
        "start_time": "2025-01-01T00:00:00",
        "inputs": {"input": "What is 3*7?"},
        "outputs": {"output": "21"},
        "feedback_stats": {"correctness": {"n": 1, "avg": 1.0}},
        "child_runs": [
            {
                "id": "r2",
                "run_type": "llm",
                "name": "ChatOpenAI",
                "start_time": "2025-01-01T00:00:01",
                "inputs": {
                    "messages": [
                        [
                            {
                                "lc": 1,
                                "type": "constructor",
                                "id": ["langchain", "schema", "messages", "HumanMessage"],
                                "kwargs": {"content": "What is 3*7?"},
                            }
                        ]
                    ]
                },
                "outputs": {
                    "generations": [
                        [
                            {
                                "text": "",
                                "message": {
                                    "lc": 1,
                                    "type": "constructor",
                                    "id": ["langchain", "schema", "messages", "AIMessage"],
                                    "kwargs": {
                                        "content": "",
                                        "tool_calls": [
                                            {
                                                "name": "multiply",
                                                "args": {"a": 3, "b": 7},
                                                "id": "call_m",
                                            }
                                        ],
                                    },
                                },
                            }
                        ]
                    ]
                },
                "child_runs": [],
            },
            {
                "id": "r3",
                "run_type": "tool",
                "name": "multiply",
                "start_time": "2025-01-01T00:00:02",
                "inputs": {"input": "{'a': 3, 'b': 7}"},
                "outputs": {"output": "21"},
                "child_runs": [],
            },
            {
                "id": "r4",
                "run_type": "llm",
                "name": "ChatOpenAI",
                "start_time": "2025-01-01T00:00:03",
                "inputs": {
                    "messages": [
                        [
                            {
                                "lc": 1,
                                "type": "constructor",
                                "id": ["langchain", "schema", "messages", "HumanMessage"],
                                "kwargs": {"content": "What is 3*7?"},
                            },
                            {
                                "lc": 1,
                                "type": "constructor",
                                "id": ["langchain", "schema", "messages", "AIMessage"],
                                "kwargs": {
                                    "content": "",
                                    "tool_calls": [
                                        {
                                            "name": "multiply",
                                            "args": {"a": 3, "b": 7},
                                            "id": "call_m",
                                        }
                                    ],
                                },
                            },
                            {
                                "lc": 1,
                                "type": "constructor",
                                "id": ["langchain", "schema", "messages", "ToolMessage"],
                                "kwargs": {"content": "21", "tool_call_id": "call_m"},
                            },
                        ]
                    ]
                },
                "outputs": {
                    "generations": [
                        [
                            {
                                "text": "3*7 = 21",
                                "message": {
                                    "lc": 1,
                                    "type": "constructor",
                                    "id": ["langchain", "schema", "messages", "AIMessage"],
                                    "kwargs": {"content": "3*7 = 21"},
                                },
                            }
                        ]
                    ]
                },
                "child_runs": [],
            },
        ],
    }
    fmt, recs, errs = parse(write("ls.json", run))
    assert fmt == "langsmith" and not errs
    rec = recs[0]
    assert roles(rec) == ["user", "assistant", "tool", "assistant"]
    assert parts(rec, "tool_call")[0]["arguments"] == {"a": 3, "b": 7}
    assert parts(rec, "tool_result")[0]["call_id"] == "call_m"
    assert rec.final_output == "3*7 = 21" and rec.external_id == "tr1"
    assert rec.scores == [
        {"name": "correctness", "value": 1.0, "source": "langsmith:feedback", "comment": ""}
    ]


def test_sharegpt_with_function_call_and_observation(write):
    rows = [
        {
            "id": "sg1",
            "conversations": [
                {"from": "system", "value": "You can call tools."},
                {"from": "human", "value": "Stock price of ACME?"},
                {
                    "from": "function_call",
                    "value": '{"name": "quote", "arguments": {"ticker": "ACME"}}',
                },
                {"from": "observation", "value": '{"price": 12.5}'},
                {"from": "gpt", "value": "ACME trades at 12.5."},
            ],
        }
    ]
    fmt, recs, errs = parse(write("sg.json", rows))
    assert fmt == "sharegpt" and not errs
    rec = recs[0]
    assert roles(rec) == ["system", "user", "assistant", "tool", "assistant"]
    call = parts(rec, "tool_call")[0]
    assert (
        call["arguments"] == {"ticker": "ACME"}
        and parts(rec, "tool_result")[0]["call_id"] == call["id"]
    )
    assert rec.external_id == "sg1"


def test_benchmark_dump_guesses_keys(write):
    rows = [
        {"task_id": "swe-1", "traj": WEATHER_CHAT, "info": {"exit_status": "resolved"}},
        {"task_id": "swe-2", "traj": WEATHER_CHAT[:2], "info": {"exit_status": "failed"}},
        {"task_id": "swe-3", "trajectory": WEATHER_CHAT, "reward": 0.25},
        {"task_id": "swe-4", "history": WEATHER_CHAT, "success": True},
    ]
    fmt, recs, errs = parse(write("bench.jsonl", lines=rows))
    assert fmt == "benchmark" and not errs
    assert [(r.external_id, r.outcome, r.outcome_label) for r in recs] == [
        ("swe-1", 1.0, "resolved"),
        ("swe-2", 0.0, "failed"),
        ("swe-3", 0.25, None),
        ("swe-4", 1.0, "pass"),
    ]
    assert recs[0].outcome_source == "benchmark:info.exit_status"


def test_benchmark_key_overrides(write):
    from app.traces.importers.conversations import KeyOptions

    rows = [{"name": "ep-7", "episode": {"turns": WEATHER_CHAT}, "eval": {"points": 3}}]
    path = write("custom.jsonl", lines=rows)
    reader = FileImport(path, "benchmark", KeyOptions("episode.turns", "eval.points", "name"))
    [(loc, rec)] = list(reader)
    assert isinstance(rec, TraceRecord)
    assert rec.external_id == "ep-7" and rec.outcome == 3.0 and rec.n_messages == 5


def test_wrong_types_name_the_record_and_field(write):
    rows = [
        {"id": "ok", "messages": WEATHER_CHAT},
        {"id": "bad-role", "messages": [{"role": 5, "content": "x"}]},
        {"id": "bad-messages", "messages": "not a list"},
        {"id": "unknown-role", "messages": [{"role": "wizard", "content": "x"}]},
        {
            "id": "bad-call",
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": 3, "arguments": "{}"}}],
                }
            ],
        },
    ]
    fmt, recs, errs = parse(write("mixed.jsonl", lines=rows), "openai-chat")
    assert [r.external_id for r in recs] == ["ok"]
    got = {loc: (e.field, e.reason) for loc, e in errs}
    assert got["line 2"] == ("messages[0].role", "expected a role string, got a number")
    assert got["line 3"] == ("messages", "expected an array of messages, got a string")
    assert got["line 4"] == ("messages[0].role", "unknown role 'wizard'")
    assert got["line 5"][0] == "messages[0].tool_calls[0].function.name"


def test_content_hash_is_stable_and_sensitive():
    a = TraceRecord(
        source="x", messages=[{"role": "user", "parts": [{"type": "text", "text": "hi"}]}]
    ).finish()
    b = TraceRecord(
        source="x", messages=[{"role": "user", "parts": [{"type": "text", "text": "hi"}]}]
    ).finish()
    c = TraceRecord(
        source="x", messages=[{"role": "user", "parts": [{"type": "text", "text": "hi!"}]}]
    ).finish()
    assert a.content_hash() == b.content_hash() != c.content_hash()
