"""Fake LangChain components shaped like real providers (usage, model ids, tool calls)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool

USAGE = {"input_tokens": 11, "output_tokens": 3, "total_tokens": 14}


class UsageFakeChatModel(BaseChatModel):
    """Reports usage like a provider: ``usage_metadata`` on invoke and on the last chunk."""

    model_name: str = "fake-gpt-1"
    temperature: float = 0.2
    max_tokens: int = 64
    api_key: str = "sk-secret-do-not-send"

    @property
    def _llm_type(self) -> str:
        return "usage-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        msg = AIMessage(
            content="hello there friend",
            usage_metadata={**USAGE, "input_token_details": {"cache_read": 4}},  # type: ignore[typeddict-item]
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return ChatResult(
            generations=[ChatGeneration(message=msg)],
            llm_output={
                "token_usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
                "model_name": self.model_name,
            },
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for tok in ("hello", " there", " friend"):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=tok))
            if run_manager:
                run_manager.on_llm_new_token(tok, chunk=chunk)
            yield chunk
        last = AIMessageChunk(content="", chunk_position="last", usage_metadata=USAGE)  # type: ignore[arg-type]
        yield ChatGenerationChunk(message=last)


class ToolCallingFakeModel(BaseChatModel):
    """Asks for ``multiply(3, 4)`` until it sees a tool result, then answers with it."""

    model: str = "fake-tools-1"
    temperature: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "tool-calling-fake"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            msg = AIMessage(content=f"The answer is {last.content}.", usage_metadata=USAGE)
        else:
            msg = AIMessage(
                content="",
                tool_calls=[{"name": "multiply", "args": {"a": 3, "b": 4}, "id": "call_1"}],
                usage_metadata={"input_tokens": 20, "output_tokens": 5, "total_tokens": 25},
            )
        return ChatResult(generations=[ChatGeneration(message=msg)])


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class KeywordRetriever(BaseRetriever):
    """Returns the documents containing the query (case-insensitive)."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [d for d in self.docs if query.lower() in d.page_content.lower()]


TOOLS: list[BaseTool] = [multiply]
