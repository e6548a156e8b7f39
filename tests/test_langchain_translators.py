"""Pure translators of the LangChain integration: no threads, no HTTP."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, LLMResult
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue

from lunary_integrations.langchain import attributes, messages, model, payloads, usage
from lunary_integrations.langchain.builders import llm_output

from .lc_fakes import multiply

# --------------------------------------------------------------------------- messages


def test_roles_content_and_names() -> None:
    out = messages.messages_to_openai(
        [
            SystemMessage("be brief"),
            HumanMessage("hi", name="alice"),
            AIMessage("hello"),
            ChatMessage(role="critic", content="meh"),
            ChatMessage(role="human", content="again"),
            FunctionMessage(name="lookup", content="42"),
        ]
    )
    assert out == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi", "name": "alice"},
        {"role": "assistant", "content": "hello"},
        {"role": "critic", "content": "meh"},
        {"role": "user", "content": "again"},
        {"role": "function", "content": "42", "name": "lookup"},
    ]


def test_tool_calls_become_json_string_arguments() -> None:
    ai = AIMessage(
        content="",
        tool_calls=[{"name": "multiply", "args": {"a": 3, "b": 4}, "id": "call_1"}],
    )
    out = messages.message_to_openai(ai)
    assert out["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "multiply", "arguments": '{"a": 3, "b": 4}'},
        }
    ]
    assert json.loads(out["tool_calls"][0]["function"]["arguments"]) == {"a": 3, "b": 4}


def test_invalid_and_raw_tool_calls_kept() -> None:
    bad = AIMessage(
        content="",
        invalid_tool_calls=[{"name": "f", "args": "{not json", "id": "c9", "error": "x"}],
    )
    assert messages.message_to_openai(bad)["tool_calls"][0]["function"]["arguments"] == "{not json"
    raw = AIMessage(
        content="",
        additional_kwargs={
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "g", "arguments": "{}"}}
            ]
        },
    )
    assert messages.message_to_openai(raw)["tool_calls"][0]["function"]["name"] == "g"


def test_tool_message_carries_call_id() -> None:
    out = messages.message_to_openai(
        ToolMessage(content="12", tool_call_id="call_1", name="multiply")
    )
    assert out == {"role": "tool", "content": "12", "tool_call_id": "call_1", "name": "multiply"}


def test_multimodal_blocks_kept() -> None:
    blocks = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    assert messages.message_to_openai(HumanMessage(content=blocks))["content"] == blocks  # type: ignore[arg-type]


def test_chat_and_text_inputs() -> None:
    assert messages.chat_input([[HumanMessage("a")]]) == [{"role": "user", "content": "a"}]
    assert messages.chat_input([[HumanMessage("a")], [HumanMessage("b")]]) == [
        [{"role": "user", "content": "a"}],
        [{"role": "user", "content": "b"}],
    ]
    assert messages.text_input(["Say hi"]) == "Say hi"
    assert messages.text_input(["a", "b"]) == ["a", "b"]


def test_dumps_args_never_raises() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert isinstance(messages.dumps_args(cyclic), str)
    assert messages.dumps_args({"when": object()}).startswith('{"when": "<object')
    assert messages.dumps_args(None) == "{}"
    assert messages.dumps_args('{"a":1}') == '{"a":1}'


# --------------------------------------------------------------------------- usage


def _result(message: Any = None, llm_output: Any = None, chunk: bool = False) -> LLMResult:
    gen: Generation
    if message is None:
        gen = Generation(text="x")
    elif chunk:
        gen = ChatGenerationChunk(message=message)
    else:
        gen = ChatGeneration(message=message)
    return LLMResult(generations=[[gen]], llm_output=llm_output)


def test_usage_metadata_first_with_cached_tokens() -> None:
    msg = AIMessage(
        content="x",
        usage_metadata={
            "input_tokens": 100,
            "output_tokens": 7,
            "total_tokens": 107,
            "input_token_details": {"cache_read": 60},
        },
    )
    llm_out = {"token_usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    assert usage.usage_from_result(_result(msg, llm_out)) == {
        "prompt": 100,
        "completion": 7,
        "promptCached": 60,
    }


def test_usage_when_streaming_from_the_aggregated_chunk() -> None:
    chunk = AIMessageChunk(
        content="hi", usage_metadata={"input_tokens": 11, "output_tokens": 3, "total_tokens": 14}
    )
    assert usage.usage_from_result(_result(chunk, None, chunk=True)) == {
        "prompt": 11,
        "completion": 3,
    }


def test_usage_from_llm_output_openai_and_anthropic() -> None:
    openai = {
        "token_usage": {
            "prompt_tokens": 9,
            "completion_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": 5},
        }
    }
    assert usage.usage_from_result(_result(AIMessage("x"), openai)) == {
        "prompt": 9,
        "completion": 2,
        "promptCached": 5,
    }
    anthropic = {"usage": {"input_tokens": 30, "output_tokens": 4, "cache_read_input_tokens": 20}}
    assert usage.usage_from_result(_result(AIMessage("x"), anthropic)) == {
        "prompt": 30,
        "completion": 4,
        "promptCached": 20,
    }
    text = {"token_usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    assert usage.usage_from_result(_result(None, text)) == {"prompt": 3, "completion": 1}


def test_usage_from_response_metadata_and_garbage() -> None:
    msg = AIMessage("x", response_metadata={"usage": {"prompt_tokens": 5, "completion_tokens": 6}})
    assert usage.usage_from_result(_result(msg)) == {"prompt": 5, "completion": 6}
    assert usage.usage_from_result(_result(AIMessage("x"))) is None
    assert usage.usage_from_result(None) is None
    assert usage.usage_from_result(LLMResult(generations=[])) is None
    weird = {"token_usage": {"prompt_tokens": "lots", "completion_tokens": True}}
    assert usage.usage_from_result(_result(None, weird)) is None
    assert usage.from_provider_usage({"prompt_tokens": 4.0, "completion_tokens": -1}) == {
        "prompt": 4
    }


# --------------------------------------------------------------------------- model


def test_model_name_order() -> None:
    assert model.model_name({"ls_model_name": "gpt-4o"}, {"model": "other"}, None) == "gpt-4o"
    assert model.model_name({}, {"model_name": "claude-3"}, {"name": "ChatX"}) == "claude-3"
    assert model.model_name(None, {"azure_deployment": "dep-1"}, None) == "dep-1"
    serialized = {"id": ["langchain", "chat_models", "ChatX"], "kwargs": {"model": "m-7"}}
    assert model.model_name(None, {}, serialized) == "m-7"
    assert (
        model.model_name(None, {"_type": "fake"}, {"name": "FakeListChatModel"})
        == "FakeListChatModel"
    )
    assert model.model_name(None, None, {"id": ["x", "ChatY"]}) == "ChatY"
    assert model.model_name(None, None, None, run_name="my-llm") == "my-llm"
    assert model.model_name(None, None, None) is None


def test_params_allow_list_no_secrets_no_clients() -> None:
    invocation = {
        "model_name": "fake-gpt-1",
        "temperature": 0.2,
        "max_tokens": 64,
        "top_p": None,
        "stop": ["\n"],
        "seed": 7,
        "api_key": "sk-secret",
        "openai_api_key": "sk-secret",
        "http_client": object(),
        "_type": "usage-fake",
        "reasoning_effort": "low",
        "tool_choice": "auto",
        "model_kwargs": {"frequency_penalty": 0.5, "token": "hf_secret"},
    }
    params = model.model_params(
        invocation, {"ls_temperature": 0.9, "ls_max_tokens": 64, "ls_stop": ["x"]}
    )
    assert params == {
        "temperature": 0.2,
        "max_tokens": 64,
        "stop": ["\n"],
        "seed": 7,
        "reasoning_effort": "low",
        "tool_choice": "auto",
        "frequency_penalty": 0.5,
    }
    assert model.model_params(None, {"ls_temperature": 0.9}) == {"temperature": 0.9}


def test_tools_as_openai_schemas() -> None:
    anthropic = {"name": "search", "description": "web", "input_schema": {"type": "object"}}
    openai = {"type": "function", "function": {"name": "f", "parameters": {}}}
    builtin = {"type": "web_search_preview"}
    tools = model.tools_to_openai([anthropic, openai, builtin, multiply])
    assert tools[0] == {
        "type": "function",
        "function": {"name": "search", "description": "web", "parameters": {"type": "object"}},
    }
    assert tools[1] is openai and tools[2] is builtin
    assert tools[3]["function"]["name"] == "multiply"
    assert set(tools[3]["function"]["parameters"]["properties"]) == {"a", "b"}


# --------------------------------------------------------------------------- payloads


def test_render_payloads() -> None:
    pv = ChatPromptValue(messages=[SystemMessage("s"), HumanMessage("q")])
    assert payloads.render(pv) == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q"},
    ]
    assert payloads.render(StringPromptValue(text="t")) == "t"
    state = {"messages": [HumanMessage("hi"), AIMessage("yo")], "n": 1}
    assert payloads.render(state) == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        "n": 1,
    }
    plain = {"q": "x"}
    assert payloads.render(plain) is plain  # nothing to convert: no copy
    assert payloads.render(AIMessage("a")) == {"role": "assistant", "content": "a"}
    assert payloads.render(5) == 5


def test_documents_are_capped() -> None:
    docs = [Document(page_content="x" * 20_000, metadata={"src": "a"})] + [
        Document(page_content=str(i)) for i in range(60)
    ]
    out = payloads.documents(docs)
    assert len(out) == payloads.MAX_DOCUMENTS + 1
    assert out[0]["metadata"] == {"src": "a"}
    assert len(out[0]["pageContent"]) <= payloads.MAX_DOCUMENT_CHARS + 40
    assert out[-1] == "... 11 more documents"
    assert payloads.documents([Document(page_content="p")]) == [{"pageContent": "p"}]


def test_tool_output() -> None:
    assert payloads.tool_output(ToolMessage(content="12", tool_call_id="c")) == "12"
    assert payloads.tool_output(12) == 12


def test_llm_output() -> None:
    ai = AIMessage(content="", tool_calls=[{"name": "m", "args": {}, "id": "c"}])
    out = llm_output(_result(ai))
    assert out["role"] == "assistant" and out["tool_calls"][0]["function"]["arguments"] == "{}"
    assert llm_output(_result(None)) == {"role": "assistant", "content": "x"}
    two = LLMResult(
        generations=[
            [ChatGeneration(message=AIMessage("a")), ChatGeneration(message=AIMessage("b"))]
        ]
    )
    assert [m["content"] for m in llm_output(two)] == ["a", "b"]
    assert llm_output(LLMResult(generations=[])) is None
    chunk = _result(AIMessageChunk(content="hi"), chunk=True)
    assert llm_output(chunk) == {"role": "assistant", "content": "hi"}


# --------------------------------------------------------------------------- attributes


def test_tags_and_hidden() -> None:
    tags = ["seq:step:1", "graph:step:2", "langsmith:hidden", "retry:attempt:2", "prod", "nostream"]
    assert attributes.split_tags(tags) == (["prod", "nostream"], True)
    assert attributes.split_tags(["prod", "seq:step:1"]) == (["prod"], False)
    assert attributes.split_tags(None) == ([], False)
    assert attributes.split_tags("langsmith:hidden") == ([], False)  # type: ignore[arg-type]


def test_metadata_filter_and_user() -> None:
    meta = {
        "ls_provider": "openai",
        "ls_model_name": "gpt",
        "lc_versions": {"langchain-core": "1"},
        "langgraph_node": "agent",
        "langgraph_step": 2,
        "langgraph_triggers": ("x",),
        "langgraph_path": ("a",),
        "langgraph_checkpoint_ns": "agent:1",
        "checkpoint_ns": "agent:1",
        "thread_id": "t1",
        "session_id": "s1",
        "user_id": "u1",
        "user_props": {"plan": "pro"},
        "custom": "yes",
    }
    kept = {
        "langgraph_node": "agent",
        "langgraph_step": 2,
        "thread_id": "t1",
        "session_id": "s1",
        "custom": "yes",
    }
    assert attributes.split_metadata(meta) == (kept, "u1", {"plan": "pro"})
    assert attributes.split_metadata({"userId": 7, "userProps": "bad"}) == ({}, 7, None)
    assert attributes.split_metadata(None) == ({}, None, None)


def test_chain_run_types() -> None:
    assert attributes.chain_run_type("LangGraph", {"ls_integration": "langgraph"}, None) == "agent"
    assert attributes.chain_run_type("my_graph", {"ls_integration": "langgraph"}, "p") == "agent"
    node_meta = {"ls_integration": "langgraph", "langgraph_node": "agent"}
    assert attributes.chain_run_type("agent", node_meta, "p") == "chain"
    assert attributes.chain_run_type("LangGraph", node_meta, "p") == "chain"  # a subgraph in a node
    assert attributes.chain_run_type("AgentExecutor", None, "p") == "agent"
    assert attributes.chain_run_type("x", {"agent_name": "bob"}, None) == "agent"
    assert attributes.chain_run_type("x", {"agent_name": "bob"}, "p") == "chain"
    assert attributes.chain_run_type("RunnableSequence", {}, None) == "chain"


def test_control_flow_by_class_name() -> None:
    class GraphBubbleUp(Exception):
        pass

    class GraphInterrupt(GraphBubbleUp):
        pass

    class MyInterrupt(GraphInterrupt):
        pass

    assert attributes.is_control_flow(MyInterrupt(["v"]))
    assert not attributes.is_control_flow(ValueError("x"))
    assert attributes.control_flow_output(GraphInterrupt(["v"])) == {
        "interrupted": "GraphInterrupt",
        "value": ["v"],
    }
