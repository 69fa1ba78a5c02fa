"""Attribute keys the shim puts on the wire: GenAI semconv plus ``openai_agents.*``.

This is the one place these keys are spelled; the shape follows the ``sdk-processor`` column of
CONVENTIONS.md so the collector's normalizer recognises our spans like any other convention.
"""

from __future__ import annotations

# --- GenAI semantic conventions -------------------------------------------------------------
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_REASONING_TOKENS = "gen_ai.usage.reasoning_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
CONVERSATION_ID = "gen_ai.conversation.id"
WORKFLOW_NAME = "gen_ai.workflow.name"
ERROR_TYPE = "error.type"

# gen_ai.operation.name values
OP_WORKFLOW = "invoke_workflow"
OP_AGENT = "invoke_agent"
OP_CHAT = "chat"
OP_TOOL = "execute_tool"
OP_HANDOFF = "handoff"
OP_GUARDRAIL = "guardrail"

# --- openai_agents.* (what the SDK knows beyond GenAI semconv) --------------------------------
SPAN_TYPE = "openai_agents.span_type"
SDK_TRACE_ID = "openai_agents.trace_id"
SDK_SPAN_ID = "openai_agents.span_id"
METADATA_PREFIX = "openai_agents.metadata."
SPAN_DATA = "openai_agents.span_data"
ERROR_DATA = "openai_agents.error.data"
HANDOFF_FROM = "openai_agents.handoff.from_agent"
HANDOFF_TO = "openai_agents.handoff.to_agent"
GUARDRAIL_NAME = "openai_agents.guardrail.name"
GUARDRAIL_TRIGGERED = "openai_agents.guardrail.triggered"
AGENT_HANDOFFS = "openai_agents.agent.handoffs"
AGENT_TOOLS = "openai_agents.agent.tools"
AGENT_OUTPUT_TYPE = "openai_agents.agent.output_type"
CUSTOM_NAME = "openai_agents.custom.name"
MCP_SERVER = "openai_agents.mcp.server"
MCP_TOOLS = "openai_agents.mcp.tools"
SPEECH_INPUT = "openai_agents.speech.input"
SPEECH_OUTPUT = "openai_agents.speech.output"

# Span types (values of SPAN_TYPE), named after the SDK's span data types.
TYPE_TRACE = "trace"
TYPE_AGENT = "agent"
TYPE_GENERATION = "generation"
TYPE_RESPONSE = "response"
TYPE_FUNCTION = "function"
TYPE_HANDOFF = "handoff"
TYPE_GUARDRAIL = "guardrail"
TYPE_CUSTOM = "custom"
TYPE_TASK = "task"
TYPE_TURN = "turn"

# Keys whose values are user content: dropped when include_sensitive_data=False and masked by
# the file/console processors when they redact.
SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        INPUT_MESSAGES,
        OUTPUT_MESSAGES,
        SYSTEM_INSTRUCTIONS,
        TOOL_CALL_ARGUMENTS,
        TOOL_CALL_RESULT,
        SPEECH_INPUT,
        SPEECH_OUTPUT,
        ERROR_DATA,
    }
)
REDACTED = "<redacted>"
