-- The whole Tracehouse schema: the only DDL in the project. Idempotent; applied at every start
-- by collector.store. Bump SCHEMA_VERSION in store.py when this file changes.

CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One row per span, whatever convention it came in. Times are UTC.
-- Exactly-once: the writer skips a span whose (trace_id, span_id) is already stored.
CREATE TABLE IF NOT EXISTS spans (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    parent_span_id VARCHAR,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    span_kind VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    status_message VARCHAR,
    start_time TIMESTAMP NOT NULL,
    end_time TIMESTAMP NOT NULL,
    duration_ms DOUBLE NOT NULL,
    service_name VARCHAR,
    scope_name VARCHAR,
    convention VARCHAR NOT NULL,
    project VARCHAR NOT NULL DEFAULT 'default',
    session_id VARCHAR,
    user_id VARCHAR,
    workflow_name VARCHAR,
    agent_name VARCHAR,
    model VARCHAR,
    provider VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cached_tokens BIGINT,
    cache_write_tokens BIGINT,
    reasoning_tokens BIGINT,
    tool_name VARCHAR,
    handoff_from VARCHAR,
    handoff_to VARCHAR,
    guardrail_triggered BOOLEAN,
    error_type VARCHAR,
    input VARCHAR,
    output VARCHAR,
    payload_truncated BOOLEAN NOT NULL DEFAULT false,
    attributes JSON,
    resource JSON,
    events JSON,
    links JSON,
    received_at TIMESTAMP NOT NULL
);
