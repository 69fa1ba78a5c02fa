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
    cost_usd DOUBLE,  -- filled by the analytics cost job; NULL = not priced (yet)
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

-- One row per trace, kept up to date from `spans` by collector.rollup (partial aggregates of
-- newly stored spans merged in, never a rescan): grouping 5 million spans per query is far too
-- slow for the `traces` view, a summary table of a tenth the rows with time zone maps is not.
-- Internal: query the `traces` view.
CREATE TABLE IF NOT EXISTS trace_summary (
    trace_id VARCHAR NOT NULL,
    project VARCHAR,
    has_root BOOLEAN NOT NULL,  -- the root span (no parent) has been seen
    root_name VARCHAR,  -- name of the root span, else of the earliest span seen
    workflow_name VARCHAR,
    service_name VARCHAR,
    session_id VARCHAR,
    user_id VARCHAR,
    start_time TIMESTAMP NOT NULL,
    end_time TIMESTAMP NOT NULL,
    duration_ms DOUBLE NOT NULL,
    span_count BIGINT NOT NULL,
    error_count BIGINT NOT NULL,
    llm_calls BIGINT NOT NULL,
    tool_calls BIGINT NOT NULL,
    handoffs BIGINT NOT NULL,
    agents VARCHAR[] NOT NULL,
    models VARCHAR[] NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost_usd DOUBLE
);

-- How far trace_summary has read `spans`: every span with received_at above the watermark is
-- still to be merged (the single writer stamps batches in commit order).
CREATE TABLE IF NOT EXISTS trace_summary_state (
    id INTEGER NOT NULL,
    watermark TIMESTAMP
);

-- One row per trace. status is 'error' when any span errored; cost_usd is NULL until a span of
-- the trace is priced.
CREATE OR REPLACE VIEW traces AS
SELECT trace_id, project, root_name, workflow_name, service_name, session_id, user_id,
       start_time, end_time, duration_ms,
       CASE WHEN error_count > 0 THEN 'error' ELSE 'ok' END AS status,
       span_count, error_count, llm_calls, tool_calls, handoffs, agents, models,
       input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_usd
FROM trace_summary;

-- One row per session (Agents SDK group id, session.id, gen_ai.conversation.id).
CREATE OR REPLACE VIEW sessions AS
SELECT session_id,
       any_value(project) AS project,
       any_value(user_id) AS user_id,
       min(start_time) AS first_seen,
       max(end_time) AS last_seen,
       count(*) AS trace_count,
       sum(span_count) AS span_count,
       sum(error_count) AS error_count,
       count(*) FILTER (WHERE error_count > 0) AS error_traces,
       sum(llm_calls) AS llm_calls,
       sum(tool_calls) AS tool_calls,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(cached_tokens) AS cached_tokens,
       sum(reasoning_tokens) AS reasoning_tokens,
       sum(cost_usd) AS cost_usd,
       list_sort(list_distinct(list(service_name))) AS services,
       list_sort(list_distinct(flatten(list(agents)))) AS agents
FROM trace_summary
WHERE session_id IS NOT NULL
GROUP BY session_id;
