"""Offline stand-ins for provider models, shaped like the real ones (model ids, usage).

The examples use these unless a provider key is set, so every example runs with no account.
They report the token usage a provider would, under a real model id, so Lunary computes cost.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

MODEL = "gpt-4o-mini"
#: A provider call takes time; Lunary gives no cost to llm runs shorter than 10 ms.
LATENCY_S = 0.015


def chat_model(**kwargs: Any) -> Any:
    """A real ``ChatOpenAI`` when ``OPENAI_API_KEY`` is set (and langchain-openai installed),
    else the offline tool-calling fake below."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]

            return ChatOpenAI(model=MODEL, **kwargs)
        except ImportError:
            pass
    return _langchain_fakes()(**kwargs)


def _langchain_fakes() -> Any:
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    class FakeToolChatModel(BaseChatModel):
        """Calls the first bound tool whose name appears in the question, then answers with
        the tool's result. Reports usage like OpenAI does."""

        model_name: str = MODEL
        temperature: float = 0.2
        max_tokens: int = 256
        bound_tools: list[dict[str, Any]] = []  # noqa: RUF012 (a pydantic field)

        @property
        def _llm_type(self) -> str:
            return "fake-tool-chat"

        @property
        def _identifying_params(self) -> dict[str, Any]:
            return {
                "model_name": self.model_name,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
            }

        def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
            from langchain_core.utils.function_calling import convert_to_openai_tool

            schemas = [convert_to_openai_tool(t) for t in tools]
            return self.model_copy(update={"bound_tools": schemas}).bind(tools=schemas, **kwargs)

        def _reply(self, messages: list[BaseMessage]) -> AIMessage:
            time.sleep(LATENCY_S)
            prompt_tokens = sum(len(str(m.content).split()) + 4 for m in messages)
            last = messages[-1]
            if isinstance(last, ToolMessage):
                text = f"The answer is {last.content}."
                return self._message(text, prompt_tokens)
            question = str(last.content).lower()
            for tool in self.bound_tools:
                name = tool["function"]["name"]
                if name in question:
                    numbers = [int(n) for n in re.findall(r"\d+", question)][:2] or [2, 3]
                    args = dict(zip(tool["function"]["parameters"]["properties"], numbers))
                    return AIMessage(
                        content="",
                        tool_calls=[{"name": name, "args": args, "id": f"call_{name}_1"}],
                        usage_metadata={
                            "input_tokens": prompt_tokens,
                            "output_tokens": 12,
                            "total_tokens": prompt_tokens + 12,
                        },
                        response_metadata={
                            "model_name": self.model_name,
                            "finish_reason": "tool_calls",
                        },
                    )
            context = re.search(r"context:\s*(.+)", str(last.content), re.I | re.S)
            text = context.group(1).strip().split("\n")[0] if context else "Happy to help!"
            return self._message(text, prompt_tokens)

        def _message(self, text: str, prompt_tokens: int) -> AIMessage:
            completion = len(text.split())
            return AIMessage(
                content=text,
                usage_metadata={
                    "input_tokens": prompt_tokens,
                    "output_tokens": completion,
                    "total_tokens": prompt_tokens + completion,
                },
                response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
            )

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

        def _stream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> Iterator[ChatGenerationChunk]:
            reply = self._reply(messages)
            if reply.tool_calls:
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        tool_call_chunks=[
                            {
                                "name": c["name"],
                                "args": json.dumps(c["args"]),
                                "id": c["id"],
                                "index": 0,
                            }
                            for c in reply.tool_calls
                        ],
                        usage_metadata=reply.usage_metadata,
                    )
                )
                return
            words = str(reply.content).split(" ")
            for i, word in enumerate(words):
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(content=word if i == 0 else " " + word)
                )
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata=reply.usage_metadata,
                    response_metadata=reply.response_metadata,
                )
            )

    return FakeToolChatModel


def __getattr__(name: str) -> Any:
    if name == "FakeToolChatModel":
        return _langchain_fakes()
    if name == "UsageLLM":
        return _llama_index_fakes()
    raise AttributeError(name)


def _llama_index_fakes() -> Any:
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        CompletionResponseGen,
        LLMMetadata,
    )
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from llama_index.core.llms.custom import CustomLLM

    class UsageLLM(CustomLLM):
        """Answers from the context it is given and reports OpenAI-style usage."""

        model: str = MODEL
        temperature: float = 0.2

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name=self.model, is_chat_model=True, num_output=256)

        def _answer(self, prompt: str) -> tuple[str, dict[str, int]]:
            time.sleep(LATENCY_S)
            context = re.search(r"-{5,}\n(.+?)\n-{5,}", prompt, re.S)
            text = context.group(1).strip().splitlines()[-1] if context else "Happy to help!"
            usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            return text, usage

        @llm_chat_callback()
        def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
            text, usage = self._answer("\n".join(str(m.content) for m in messages))
            return ChatResponse(
                message=ChatMessage(role="assistant", content=text),
                raw={"model": self.model, "usage": usage},
            )

        @llm_completion_callback()
        def complete(
            self, prompt: str, formatted: bool = False, **kwargs: Any
        ) -> CompletionResponse:
            text, usage = self._answer(prompt)
            return CompletionResponse(text=text, raw={"model": self.model, "usage": usage})

        @llm_completion_callback()
        def stream_complete(
            self, prompt: str, formatted: bool = False, **kwargs: Any
        ) -> CompletionResponseGen:
            text, usage = self._answer(prompt)

            def gen() -> CompletionResponseGen:
                out = ""
                for word in text.split(" "):
                    out += (" " if out else "") + word
                    yield CompletionResponse(text=out, delta=word, raw={"usage": usage})

            return gen()

    return UsageLLM


# --------------------------------------------------------------------------- where runs go


@contextlib.contextmanager
def lunary_target() -> Iterator[tuple[str | None, str | None]]:
    """Where the example sends its runs, as ``(private_key, api_url)``.

    With ``LUNARY_PUBLIC_KEY`` set: that Lunary, from the environment (``LUNARY_PRIVATE_KEY``
    and ``LUNARY_API_URL`` are optional). Otherwise the embedded local collector on
    127.0.0.1, configured process-wide and stopped (after a final flush) at exit.
    """
    import lunary_integrations

    if os.environ.get("LUNARY_PUBLIC_KEY"):
        api_url = os.environ.get("LUNARY_API_URL")
        print(f"Sending to the Lunary at {api_url or 'https://api.lunary.ai'} (LUNARY_PUBLIC_KEY)")
        try:
            yield os.environ.get("LUNARY_PRIVATE_KEY"), api_url
        finally:
            lunary_integrations.shutdown()
        return

    from lunary_integrations.local import LocalLunary

    local = LocalLunary().start()
    try:
        lunary_integrations.configure(
            public_key=local.public_key, private_key=local.private_key, api_url=local.url
        )
        print(f"No LUNARY_PUBLIC_KEY: sending to the embedded local collector at {local.url}")
        yield local.private_key, local.url
    finally:
        lunary_integrations.shutdown()
        local.stop()


# --------------------------------------------------------------------------- reading back


def since_now() -> Any:
    """A ``start_time`` that keeps every run started from now on. The server filters with
    ``date=gt.`` at millisecond precision: a run started within the current millisecond
    would be left out of ``start_time=datetime.now()``."""
    from datetime import datetime, timedelta, timezone

    return datetime.now(timezone.utc) - timedelta(milliseconds=1)


def describe(run: Any) -> str:
    """One line for a stored run (a ``lunary_integrations.events.Run``)."""
    parts = [f"{run.type:<9} {run.name or '-'}"]
    if run.total_tokens:
        parts.append(f"tokens {run.prompt_token_count}/{run.completion_token_count}")
    if run.cost:
        parts.append(f"${run.cost:.6f}")
    messages = run.output if isinstance(run.output, list) else [run.output]
    calls = [
        call.get("function", {})
        for m in messages
        if isinstance(m, dict)
        for call in m.get("toolCalls") or m.get("tool_calls") or []
    ]
    if calls:
        parts.append("calls " + ", ".join(f"{c.get('name')}({c.get('arguments')})" for c in calls))
    if run.type == "tool":
        shown = (json.dumps(value, ensure_ascii=False) for value in (run.input, run.output))
        parts.append(" -> ".join(shown))
    parts.append(run.status or "started")
    return "  ".join(parts)


def print_tree(node: Any, depth: int = 0) -> None:
    """Print a ``RunNode`` and its children, indented (the root with its tags and user)."""
    line = describe(node.run)
    if depth == 0 and node.run.tags:
        line += f"  tags={','.join(node.run.tags)}"
    if depth == 0 and node.run.user and node.run.user.external_id:
        line += f"  user={node.run.user.external_id}"
    print("    " + "  " * depth + line)
    for child in node.children:
        print_tree(child, depth + 1)


def _can_read() -> bool:
    from lunary_integrations.config import resolve

    if resolve().private_key:
        return True
    print("    (set LUNARY_PRIVATE_KEY to read the runs back)")
    return False


def print_trace(root_id: Any) -> None:
    """Read one trace back through the Runs API and print it as a tree."""
    from lunary_integrations import RunsClient

    if _can_read():
        with RunsClient() as client:  # keys and URL from configure() or the environment
            tree = client.related(root_id)
            tree.root.run.user = client.get(root_id).user  # /related rows carry no user
            print_tree(tree.root)


def print_traces(type: str | list[str] = "trace", **filters: Any) -> int:
    """Print every trace matching ``filters``, oldest first. ``type="trace"`` finds root
    chain/agent runs; add ``"llm"`` to include bare LLM calls (those already printed inside a
    trace are skipped). Returns how many traces were printed."""
    from lunary_integrations import RunsClient

    if not _can_read():
        return 0
    seen: set[str] = set()
    printed = 0
    with RunsClient() as client:
        for run in client.iter_runs(type=type, order="asc", **filters):
            if run.id in seen:
                continue
            tree = client.related(run.id)
            seen.update(row.id for row in tree.rows)
            tree.root.run.user = run.user
            print_tree(tree.root)
            printed += 1
    return printed
