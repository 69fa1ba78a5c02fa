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
    trace_key UBIGINT NOT NULL,  -- last 16 hex digits of trace_id as a number: fast joins/lookups
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

-- Files written before these columns existed get them (no-op afterwards). trace_summary is
-- derived data: a missing key is computed from the id, the same expression as collector/rollup.py.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS cost_usd DOUBLE;
ALTER TABLE trace_summary ADD COLUMN IF NOT EXISTS trace_key UBIGINT;
UPDATE trace_summary SET trace_key = coalesce(try_cast('0x' || right(trace_id, 16) AS UBIGINT), 0)
WHERE trace_key IS NULL;

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

-- ─── Analytics ──────────────────────────────────────────────────────────────────────────────
-- Written only by the analytics jobs (analytics/runner.py) through the writer. Every table is
-- derived from `spans` (plus the price table and rules) and recomputed per key, so re-running a
-- job changes nothing and a price change followed by a re-run recomputes past costs. Each row
-- carries the project of the spans it comes from (rollups, anomalies and alerts are computed per
-- project), so a project's key sees its own rows only (collector/project_scope.py).

-- Progress of each job: spans with received_at <= watermark are done. `fingerprint` is the
-- version of the prices/rules the results were computed with; a new one triggers a backfill.
CREATE TABLE IF NOT EXISTS analytics_state (
    job VARCHAR NOT NULL,
    watermark TIMESTAMP,
    fingerprint VARCHAR,
    updated_at TIMESTAMP NOT NULL
);

-- Cost of each LLM/embedding span, one row per span (see analytics/cost.py for the rules).
-- cost_usd is NULL when the model has no price (cost_status 'unpriced') or no usage was reported.
CREATE TABLE IF NOT EXISTS span_costs (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    start_time TIMESTAMP NOT NULL,
    project VARCHAR,
    service_name VARCHAR,
    session_id VARCHAR,
    agent_name VARCHAR,
    model VARCHAR,
    provider VARCHAR,
    input_tokens BIGINT,
    cached_tokens BIGINT,
    cache_write_tokens BIGINT,
    output_tokens BIGINT,
    reasoning_tokens BIGINT,
    price_model VARCHAR,
    accounting VARCHAR,
    cost_status VARCHAR NOT NULL,
    input_cost_usd DOUBLE,
    cached_cost_usd DOUBLE,
    cache_write_cost_usd DOUBLE,
    output_cost_usd DOUBLE,
    reasoning_cost_usd DOUBLE,
    cost_usd DOUBLE
);

-- One row per trace: the features the anomaly detectors score (first agent, loops, unpriced
-- calls, status). Recomputed from the trace's spans when any of them arrives; for browsing
-- traces use the `traces` view.
CREATE TABLE IF NOT EXISTS trace_features (
    trace_id VARCHAR NOT NULL,
    project VARCHAR,
    service_name VARCHAR,
    workflow_name VARCHAR,
    agent_name VARCHAR,  -- the first agent of the trace
    session_id VARCHAR,
    start_time TIMESTAMP NOT NULL,
    end_time TIMESTAMP NOT NULL,
    duration_ms DOUBLE NOT NULL,
    spans BIGINT NOT NULL,
    llm_calls BIGINT NOT NULL,
    tool_calls BIGINT NOT NULL,
    handoffs BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    cost_usd DOUBLE,  -- NULL when no call was priced
    unpriced_calls BIGINT NOT NULL,
    max_repeated_tool_calls BIGINT NOT NULL,  -- most calls of one tool with identical arguments
    repeated_tool VARCHAR,
    status VARCHAR NOT NULL  -- 'error' when any span failed
);

-- Per minute (of span start), service and agent: the dashboard overview's source. Trace counts
-- and latency are by the trace's start minute and first agent. latency_hist is a mergeable
-- log-bucket histogram of trace durations (bucket b covers 1.1^b .. 1.1^(b+1) ms), so quantiles
-- over hours stay within 5 % (analytics/rollups.py).
CREATE TABLE IF NOT EXISTS minute_rollup (
    minute TIMESTAMP NOT NULL,
    project VARCHAR,
    service_name VARCHAR,
    agent_name VARCHAR,
    spans BIGINT NOT NULL,
    llm_calls BIGINT NOT NULL,
    tool_calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    traces_started BIGINT NOT NULL,
    traces_failed BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    cost_usd DOUBLE,
    latency_sum_ms DOUBLE NOT NULL,
    latency_p50_ms DOUBLE,
    latency_p95_ms DOUBLE,
    latency_p99_ms DOUBLE,
    latency_hist STRUCT(b SMALLINT, n INTEGER)[]
);

-- Failed spans per minute, grouped by what failed: feeds "top errors".
CREATE TABLE IF NOT EXISTS error_minutes (
    minute TIMESTAMP NOT NULL,
    project VARCHAR,
    service_name VARCHAR,
    agent_name VARCHAR,
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    error_type VARCHAR,
    errors BIGINT NOT NULL,
    sample_message VARCHAR,  -- of the latest failure in the minute
    sample_trace_id VARCHAR  -- the trace of that failure
);
ALTER TABLE error_minutes ADD COLUMN IF NOT EXISTS sample_trace_id VARCHAR;

-- Agent runs, tool calls, guardrail checks and handoffs per minute (of span start), service, agent
-- and what was called (name: the agent for runs, the tool, the guardrail span's name, the handoff's
-- source; target: the handoff's target): the dashboard's agents page. run_failures counts calls
-- whose trace failed; latency_hist as in minute_rollup, of the calls' durations.
CREATE TABLE IF NOT EXISTS call_minutes (
    minute TIMESTAMP NOT NULL,
    project VARCHAR,
    service_name VARCHAR,
    agent_name VARCHAR,
    kind VARCHAR NOT NULL,
    name VARCHAR,
    target VARCHAR,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    trips BIGINT NOT NULL,
    run_failures BIGINT NOT NULL,
    duration_sum_ms DOUBLE NOT NULL,
    last_error VARCHAR,
    last_error_at TIMESTAMP,
    latency_hist STRUCT(b SMALLINT, n INTEGER)[]
);

-- What the detectors found (analytics/anomaly.py). anomaly_id is a hash of (kind, subject,
-- window) so a re-run never adds a duplicate.
CREATE TABLE IF NOT EXISTS anomalies (
    anomaly_id VARCHAR NOT NULL,
    detected_at TIMESTAMP NOT NULL,
    kind VARCHAR NOT NULL,
    detector VARCHAR NOT NULL,  -- rule, isolation_forest or robust_z
    project VARCHAR,
    trace_id VARCHAR,  -- when about one trace
    service_name VARCHAR,
    agent_name VARCHAR,
    score DOUBLE,
    reason VARCHAR NOT NULL,
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL
);

-- Alerts (analytics/alerts.py): one row per firing episode of a rule for a subject.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    project VARCHAR,  -- rules are evaluated per project: a subject is one project's service/agent
    subject VARCHAR NOT NULL,  -- service/agent the rule fired for
    state VARCHAR NOT NULL,  -- firing or resolved
    value DOUBLE,
    threshold DOUBLE,
    message VARCHAR NOT NULL,
    fired_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP
);

-- Analytics are per project (schema 6): files written before get the column; their rows are
-- brought over once by collector.store (migrations) and the rollups recomputed (ROLLUP_VERSION).
ALTER TABLE minute_rollup ADD COLUMN IF NOT EXISTS project VARCHAR;
ALTER TABLE error_minutes ADD COLUMN IF NOT EXISTS project VARCHAR;
ALTER TABLE call_minutes ADD COLUMN IF NOT EXISTS project VARCHAR;
ALTER TABLE anomalies ADD COLUMN IF NOT EXISTS project VARCHAR;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS project VARCHAR;

-- Models called but missing from the price table: their calls have NULL cost, never $0.
CREATE OR REPLACE VIEW unpriced_models AS
SELECT coalesce(model, '<none>') AS model, provider, count(*) AS calls,
       sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)
           + CASE WHEN accounting = 'cache_separate'
                  THEN coalesce(cached_tokens, 0) + coalesce(cache_write_tokens, 0) ELSE 0 END) AS tokens,
       min(start_time) AS first_seen, max(start_time) AS last_seen
FROM span_costs WHERE cost_status = 'unpriced'
GROUP BY ALL;

-- Cost rollups. cost_usd sums priced calls; unpriced_calls > 0 means the total is a lower bound.
CREATE OR REPLACE VIEW cost_by_trace AS
SELECT trace_id, min(start_time) AS start_time, any_value(service_name) AS service_name,
       count(*) AS llm_calls, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cost_status = 'unpriced') AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
FROM span_costs GROUP BY trace_id;

CREATE OR REPLACE VIEW cost_by_day AS
SELECT CAST(start_time AS DATE) AS day, count(*) AS llm_calls, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cost_status = 'unpriced') AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
FROM span_costs GROUP BY ALL;

CREATE OR REPLACE VIEW cost_by_agent_day AS
SELECT CAST(start_time AS DATE) AS day, agent_name, count(*) AS llm_calls, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cost_status = 'unpriced') AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
FROM span_costs GROUP BY ALL;

CREATE OR REPLACE VIEW cost_by_model_day AS
SELECT CAST(start_time AS DATE) AS day, model, provider, count(*) AS llm_calls, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cost_status = 'unpriced') AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
       sum(output_tokens) AS output_tokens
FROM span_costs GROUP BY ALL;

CREATE OR REPLACE VIEW cost_by_session AS
SELECT session_id, min(start_time) AS first_call, max(start_time) AS last_call,
       count(DISTINCT trace_id) AS traces, count(*) AS llm_calls, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cost_status = 'unpriced') AS unpriced_calls
FROM span_costs WHERE session_id IS NOT NULL GROUP BY session_id;

-- API keys (collector/keys.py, `tracehouse keys`). Only a SHA-256 of the secret part is stored;
-- key_id (public, part of the key) finds the row, the hash is compared in constant time.
-- kind: 'ingest' (OTLP export) or 'read' (query API, SQL, dashboard), of one project; 'admin'
-- (key management, every project, /metrics) or 'metrics' (/metrics only), project '*'.
-- Internal: not queryable through /api/sql (GET /api/keys lists keys).
CREATE TABLE IF NOT EXISTS api_keys (
    key_id VARCHAR NOT NULL,
    project VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    name VARCHAR,
    secret_sha256 VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    revoked_at TIMESTAMP
);
