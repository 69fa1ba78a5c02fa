"""The tracing API: ``trace`` and the agent span types, as context managers and decorators.

Each span is a plain OTel span from the configured TracerProvider; nesting rides on OTel's
contextvars-based context, so it follows ``await`` and asyncio tasks by itself, and threads via
:func:`propagate` (or an explicit ``parent=``). The workflow's group id and the enclosing agent
travel in two more contextvars so every span carries ``gen_ai.conversation.id``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from sdk_shim import attributes as build
from sdk_shim import semconv as sc
from sdk_shim.attributes import Attributes, Usage
from sdk_shim.config import SCOPE_NAME, SCOPE_VERSION, current

F = TypeVar("F", bound=Callable[..., Any])

_GROUP: ContextVar[str | None] = ContextVar("sdk_shim_group", default=None)
_AGENT: ContextVar[str | None] = ContextVar("sdk_shim_agent", default=None)
_TRACE: ContextVar[SpanHandle | None] = ContextVar("sdk_shim_trace", default=None)


class SpanHandle:
    """The live span a ``with`` block gets: setters for what is only known at the end."""

    __slots__ = ("_sensitive", "agent", "group_id", "otel")

    def __init__(
        self, otel: otel_trace.Span, group_id: str | None, agent: str | None, sensitive: bool
    ) -> None:
        self.otel = otel
        self.group_id = group_id
        self.agent = agent
        self._sensitive = sensitive

    @property
    def trace_id(self) -> str:
        """The SDK-style trace id (``trace_<32 hex>``), equal to the OTel trace id."""
        return f"trace_{self.otel.get_span_context().trace_id:032x}"

    def set_attributes(self, attrs: Attributes) -> None:
        self.otel.set_attributes(attrs if self._sensitive else build.strip_sensitive(attrs))

    def set_usage(
        self, usage: Usage, response_model: str | None = None, response_id: str | None = None
    ) -> None:
        self.set_attributes(build.llm_result(usage, response_model, response_id=response_id))

    def set_output(self, messages: Any) -> None:
        self.set_attributes(build.llm_result(None, output_messages=messages))

    def set_result(self, result: Any) -> None:
        self.set_attributes(build.tool_result(result))

    def set_to_agent(self, to_agent: str) -> None:
        self.set_attributes({sc.HANDOFF_TO: to_agent})
        self.otel.update_name(build.handoff_name(self.agent, to_agent))

    def set_triggered(self, triggered: bool) -> None:
        self.set_attributes({sc.GUARDRAIL_TRIGGERED: bool(triggered)})

    def set_error(self, message: str, error_type: str | None = None, data: Any = None) -> None:
        """Mark the span failed without an exception (e.g. a tool error the model sees)."""
        self.otel.set_status(Status(StatusCode.ERROR, message))
        attrs: Attributes = {sc.ERROR_TYPE: error_type or message}
        if data is not None:
            attrs[sc.ERROR_DATA] = build.to_json(data)
        self.set_attributes(attrs)


class _Scope:
    """One span to be: enter it (sync or async ``with``) or decorate a function with it."""

    def __init__(
        self,
        name: str | None,
        attrs: Attributes,
        kind: SpanKind = SpanKind.INTERNAL,
        *,
        root: bool = False,
        group_id: str | None = None,
        agent: str | None = None,
        parent: SpanHandle | None = None,
        record_call: bool = False,
        fill: Callable[[str], tuple[str, Attributes]] | None = None,
    ) -> None:
        self.name, self.attrs, self.kind = name, attrs, kind
        self.root, self.group_id, self.agent, self.parent = root, group_id, agent, parent
        self.record_call, self.fill = record_call, fill
        # A stack, so one scope object may be entered again inside itself (e.g. recursion).
        self._open: list[tuple[SpanHandle, object, Any, Any, Any]] = []

    def _copy(self) -> _Scope:
        return _Scope(
            self.name,
            self.attrs,
            self.kind,
            root=self.root,
            group_id=self.group_id,
            agent=self.agent,
            parent=self.parent,
            record_call=self.record_call,
            fill=self.fill,
        )

    def __enter__(self) -> SpanHandle:
        handle = current()
        tracer = handle.tracer if handle else otel_trace.get_tracer(SCOPE_NAME, SCOPE_VERSION)
        sensitive = handle.include_sensitive_data if handle else True
        if self.root:
            ctx, group = otel_context.Context(), self.group_id
            agent = None
        elif self.parent is not None:
            ctx = otel_trace.set_span_in_context(self.parent.otel)
            group, agent = self.parent.group_id, self.parent.agent
        else:
            ctx, group, agent = None, _GROUP.get(), _AGENT.get()
        agent = self.agent or agent
        attrs = dict(self.attrs)
        if group:
            attrs[sc.CONVERSATION_ID] = group
        if agent and sc.AGENT_NAME not in attrs:
            attrs[sc.AGENT_NAME] = agent
        if not sensitive:
            attrs = build.strip_sensitive(attrs)
        span = tracer.start_span(self.name or "span", context=ctx, kind=self.kind, attributes=attrs)
        live = SpanHandle(span, group, agent, sensitive)
        token = otel_context.attach(otel_trace.set_span_in_context(span, ctx))
        group_token = _GROUP.set(group)
        agent_token = _AGENT.set(agent)
        trace_token = _TRACE.set(live) if self.root else None
        if self.root:
            span.set_attribute(sc.SDK_TRACE_ID, live.trace_id)
        self._open.append((live, token, group_token, agent_token, trace_token))
        return live

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live, token, group_token, agent_token, trace_token = self._open.pop()
        if exc is not None:
            message = str(exc) or type(exc).__name__
            live.otel.set_status(Status(StatusCode.ERROR, message))
            live.otel.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
            live.otel.record_exception(exc)
        live.otel.end()
        try:
            if trace_token is not None:
                _TRACE.reset(trace_token)
            _AGENT.reset(agent_token)
            _GROUP.reset(group_token)
            otel_context.detach(token)
        except ValueError:  # exited in another context (e.g. a generator finished elsewhere)
            pass

    async def __aenter__(self) -> SpanHandle:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        """Decorate ``fn``: each call runs in a fresh span (named after ``fn`` unless named)."""
        signature = inspect.signature(fn)

        def scope_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Scope:
            scope = self._copy()
            if scope.fill is not None:
                scope.name, extra = scope.fill(fn.__name__)
                scope.attrs = {**scope.attrs, **extra}
                if extra.get(sc.OPERATION_NAME) == sc.OP_AGENT:
                    scope.agent = fn.__name__
            if scope.record_call:
                try:
                    bound = signature.bind(*args, **kwargs)
                    scope.attrs = {
                        **scope.attrs,
                        sc.TOOL_CALL_ARGUMENTS: build.to_json(dict(bound.arguments)),
                    }
                except TypeError:
                    pass
            return scope

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with scope_for(args, kwargs) as live:
                    result = await fn(*args, **kwargs)
                    if self.record_call:
                        live.set_result(result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope_for(args, kwargs) as live:
                result = fn(*args, **kwargs)
                if self.record_call:
                    live.set_result(result)
                return result

        return wrapper  # type: ignore[return-value]


def trace(
    workflow_name: str, group_id: str | None = None, metadata: Mapping[str, Any] | None = None
) -> _Scope:
    """The root of one workflow run; ``group_id`` (a conversation) lands on every span below."""
    attrs = build.workflow(workflow_name, "", group_id, metadata)
    del attrs[sc.SDK_TRACE_ID]  # known only once the OTel trace id exists
    return _Scope(workflow_name, attrs, root=True, group_id=group_id)


def agent_span(
    name: str | None = None,
    handoffs: list[Any] | None = None,
    tools: list[Any] | None = None,
    output_type: str | None = None,
    parent: SpanHandle | None = None,
) -> _Scope:
    """One agent's turn(s); spans inside carry its name as ``gen_ai.agent.name``."""
    if callable(name):  # bare @agent_span
        return agent_span()(name)  # type: ignore[return-value]

    def fill(fn_name: str) -> tuple[str, Attributes]:
        return f"invoke_agent {fn_name}", build.agent(fn_name, handoffs, tools, output_type)

    if name is None:
        return _Scope(None, {}, SpanKind.INTERNAL, parent=parent, fill=fill)
    return _Scope(
        f"invoke_agent {name}",
        build.agent(name, handoffs, tools, output_type),
        SpanKind.INTERNAL,
        agent=name,
        parent=parent,
    )


def generation_span(
    model: str | None = None,
    provider: str | None = None,
    input: Any = None,
    system_instructions: str | None = None,
    span_type: str = sc.TYPE_GENERATION,
    parent: SpanHandle | None = None,
) -> _Scope:
    """One LLM call; set the outcome with ``set_usage`` and ``set_output``."""
    attrs = build.llm(model, provider, span_type, input, system_instructions)
    return _Scope(build.llm_name(model), attrs, SpanKind.CLIENT, parent=parent)


def function_span(
    name: str | None = None,
    arguments: Any = None,
    call_id: str | None = None,
    parent: SpanHandle | None = None,
) -> _Scope:
    """One tool call. As a decorator it records the call's arguments and return value."""
    if callable(name):  # bare @function_span
        return function_span()(name)  # type: ignore[return-value]

    def fill(fn_name: str) -> tuple[str, Attributes]:
        return f"execute_tool {fn_name}", build.tool(fn_name)

    if name is None:
        return _Scope(None, {}, parent=parent, record_call=True, fill=fill)
    return _Scope(
        f"execute_tool {name}",
        build.tool(name, arguments, call_id),
        parent=parent,
        record_call=True,
    )


def handoff_span(
    from_agent: str | None = None, to_agent: str | None = None, parent: SpanHandle | None = None
) -> _Scope:
    """A handoff between agents; ``from_agent`` defaults to the enclosing agent."""
    source = from_agent or (parent.agent if parent else _AGENT.get())
    return _Scope(
        build.handoff_name(source, to_agent),
        build.handoff(source, to_agent),
        agent=source,
        parent=parent,
    )


def guardrail_span(name: str, triggered: bool = False, parent: SpanHandle | None = None) -> _Scope:
    """A guardrail check; ``set_triggered(True)`` when its tripwire fires."""
    return _Scope(f"guardrail {name}", build.guardrail(name, triggered), parent=parent)


def custom_span(
    name: str,
    data: Mapping[str, Any] | None = None,
    span_type: str = sc.TYPE_CUSTOM,
    parent: SpanHandle | None = None,
) -> _Scope:
    """Anything else worth a span (``span_type`` may be ``task`` or ``turn``)."""
    return _Scope(name, build.custom(name, data, span_type), parent=parent)


def current_trace() -> SpanHandle | None:
    """The innermost active ``trace()`` in this context, if any."""
    return _TRACE.get()


def propagate(fn: F) -> F:
    """Bind ``fn`` to the current span context, for running it in another thread."""
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        return ctx.copy().run(fn, *args, **kwargs)

    return bound  # type: ignore[return-value]
