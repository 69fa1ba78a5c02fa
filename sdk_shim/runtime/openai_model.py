"""A chat model behind any OpenAI-compatible endpoint, through the official ``openai`` client."""

from __future__ import annotations

from typing import Any

from sdk_shim.attributes import Usage, provider_for
from sdk_shim.runtime.models import ModelError, ModelRequest, ModelResponse, ToolCall


class OpenAIChatModel:
    """Chat Completions with tools; ``base_url`` may point at OpenAI, a gateway or a local server."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        provider: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        if client is None:
            try:
                from openai import AsyncOpenAI
            except ImportError as exc:  # pragma: no cover - only without the extra
                raise ImportError(
                    "OpenAIChatModel needs the openai package: pip install 'tracehouse[openai]'"
                ) from exc
            client = AsyncOpenAI(
                base_url=base_url,
                api_key=api_key or "unused",
                timeout=timeout_s,
                max_retries=max_retries,
            )
        self.model = model
        self.provider = provider or provider_for(model, base_url)
        self._client = client

    async def respond(self, request: ModelRequest) -> ModelResponse:
        kwargs: dict[str, Any] = {"model": self.model, "messages": request.chat_messages()}
        if request.tools:
            kwargs["tools"] = request.tools
        try:
            completion = await self._client.chat.completions.create(**kwargs)
        except Exception as exc:  # the provider's error, as one line the trace can show
            raise ModelError(f"{type(exc).__name__}: {exc}") from exc
        if not completion.choices:
            raise ModelError("the model returned no choices")
        message = completion.choices[0].message
        calls = [
            ToolCall(call.id, call.function.name, call.function.arguments or "{}")
            for call in (message.tool_calls or [])
            if getattr(call, "function", None) is not None
        ]
        usage = Usage.from_mapping(completion.usage) or Usage()
        return ModelResponse(message.content, calls, usage, completion.model or self.model)
