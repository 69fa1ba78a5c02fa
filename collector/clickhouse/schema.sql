-- The ClickHouse schema (TRACEHOUSE_STORE=clickhouse://... or chdb://...): the only ClickHouse
-- DDL in the project, the counterpart of collector/schema.sql. Idempotent; applied at every
-- start by the ClickHouse store. Column names and meanings are those of collector/schema.sql, so
-- the query API, analytics and dashboard see the same rows on either backend.
--
-- Times are UTC DateTime64(6). JSON documents (attributes, resource, events, links) are stored
-- as String holding JSON text: read them with JSONExtractString(attributes, 'gen_ai.system').

-- One row per span. Re-sent spans (same project, trace_id, span_id, hence the same start_time)
-- collapse in ReplacingMergeTree merges; the `spans` view below reads FINAL so a query never sees
-- a duplicate, merged yet or not. Ordered for the dashboard's reads: a project's time range,
-- then one trace's spans together. Partitioned by day so retention drops whole parts.
CREATE TABLE IF NOT EXISTS span_store (
    project LowCardinality(String) DEFAULT 'default',
    trace_id String,
    span_id String,
    parent_span_id Nullable(String),
    name String,
    kind LowCardinality(String),
    span_kind LowCardinality(String),
    status LowCardinality(String),
    status_message Nullable(String),
    start_time DateTime64(6, 'UTC'),
    end_time DateTime64(6, 'UTC'),
    duration_ms Float64,
    service_name LowCardinality(Nullable(String)),
    scope_name LowCardinality(Nullable(String)),
    convention LowCardinality(String),
    session_id Nullable(String),
    user_id Nullable(String),
    workflow_name Nullable(String),
    agent_name LowCardinality(Nullable(String)),
    model LowCardinality(Nullable(String)),
    provider LowCardinality(Nullable(String)),
    input_tokens Nullable(Int64),
    output_tokens Nullable(Int64),
    cached_tokens Nullable(Int64),
    cache_write_tokens Nullable(Int64),
    reasoning_tokens Nullable(Int64),
    cost_usd Nullable(Float64),
    tool_name Nullable(String),
    handoff_from Nullable(String),
    handoff_to Nullable(String),
    guardrail_triggered Nullable(Bool),
    error_type Nullable(String),
    input Nullable(String) CODEC(ZSTD(3)),
    output Nullable(String) CODEC(ZSTD(3)),
    payload_truncated Bool DEFAULT false,
    attributes Nullable(String) CODEC(ZSTD(3)),
    resource Nullable(String) CODEC(ZSTD(3)),
    events Nullable(String) CODEC(ZSTD(3)),
    links Nullable(String) CODEC(ZSTD(3)),
    received_at DateTime64(6, 'UTC'),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toDate(start_time)
ORDER BY (project, toStartOfHour(start_time), trace_id, span_id);

-- What users, the query API and the dashboard read: every span exactly once.
CREATE VIEW IF NOT EXISTS spans AS
SELECT * FROM span_store FINAL;

-- One row per trace, computed when read (DuckDB keeps a summary table instead, collector/rollup.py;
-- here any number of collectors write, and an aggregate over FINAL rows is exact without one).
-- Same columns as DuckDB's `traces`. Grouped by project too, so a trace id reused by another
-- project never mixes two projects' spans. Filters on trace_id reach the span scan.
CREATE VIEW IF NOT EXISTS traces AS
SELECT trace_id,
       project,
       argMin(spans.name, (isNotNull(spans.parent_span_id), spans.start_time)) AS root_name,
       argMin(spans.workflow_name, (isNotNull(spans.parent_span_id), spans.start_time)) AS workflow_name,
       argMin(spans.service_name, (isNotNull(spans.parent_span_id), spans.start_time)) AS service_name,
       argMin(spans.session_id, (isNotNull(spans.parent_span_id), spans.start_time)) AS session_id,
       argMin(spans.user_id, (isNotNull(spans.parent_span_id), spans.start_time)) AS user_id,
       min(spans.start_time) AS start_time,
       max(spans.end_time) AS end_time,
       dateDiff('microsecond', min(spans.start_time), max(spans.end_time)) / 1000.0 AS duration_ms,
       if(countIf(spans.status = 'error') > 0, 'error', 'ok') AS status,
       count() AS span_count,
       countIf(spans.status = 'error') AS error_count,
       countIf(spans.kind = 'llm') AS llm_calls,
       countIf(spans.kind = 'tool') AS tool_calls,
       countIf(spans.kind = 'handoff') AS handoffs,
       arraySort(groupUniqArray(spans.agent_name)) AS agents,
       arraySort(groupUniqArray(spans.model)) AS models,
       coalesce(sum(spans.input_tokens), 0) AS input_tokens,
       coalesce(sum(spans.output_tokens), 0) AS output_tokens,
       coalesce(sum(spans.cached_tokens), 0) AS cached_tokens,
       coalesce(sum(spans.reasoning_tokens), 0) AS reasoning_tokens,
       sum(spans.cost_usd) AS cost_usd
FROM spans
GROUP BY project, trace_id;

-- One row per session (Agents SDK group id, session.id, gen_ai.conversation.id); DuckDB's columns.
CREATE VIEW IF NOT EXISTS sessions AS
SELECT session_id,
       project,
       any(traces.user_id) AS user_id,
       min(traces.start_time) AS first_seen,
       max(traces.end_time) AS last_seen,
       count() AS trace_count,
       sum(traces.span_count) AS span_count,
       sum(traces.error_count) AS error_count,
       countIf(traces.error_count > 0) AS error_traces,
       sum(traces.llm_calls) AS llm_calls,
       sum(traces.tool_calls) AS tool_calls,
       sum(traces.input_tokens) AS input_tokens,
       sum(traces.output_tokens) AS output_tokens,
       sum(traces.cached_tokens) AS cached_tokens,
       sum(traces.reasoning_tokens) AS reasoning_tokens,
       sum(traces.cost_usd) AS cost_usd,
       arraySort(groupUniqArray(traces.service_name)) AS services,
       arraySort(arrayDistinct(arrayFlatten(groupArray(traces.agents)))) AS agents
FROM traces
WHERE session_id IS NOT NULL
GROUP BY project, session_id;

-- ─── Analytics ──────────────────────────────────────────────────────────────────────────────
-- The counterparts of the analytics tables of collector/schema.sql, written only by
-- analytics/clickhouse_runner.py. ClickHouse has no transactional DELETE + INSERT, so every
-- table is a ReplacingMergeTree keyed by the row's natural key: a recomputation inserts the rows
-- again with a higher `version` (and, for the per-minute tables, a row with `is_deleted = 1` for
-- a key that no longer exists), and the view of the same name as on DuckDB reads FINAL. Re-running
-- a job therefore changes nothing users can see. Nullable key columns (service, agent) keep
-- DuckDB's NULL semantics: allow_nullable_key. Columns are in DuckDB's order, so `SELECT *` reads
-- the same on both.

-- Progress of each job (see collector/schema.sql): the job's own row has project NULL. For the
-- per-span job there is also a row per project, its watermark the newest of that project's spans
-- processed: what a project's key sees (the dashboard reads how far the rollups are complete),
-- as on DuckDB (collector/project_scope.py), without telling when other projects' spans came.
CREATE TABLE IF NOT EXISTS analytics_state_store (
    job String,
    watermark Nullable(DateTime64(6, 'UTC')),
    fingerprint Nullable(String),
    updated_at DateTime64(6, 'UTC'),
    project Nullable(String),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (job, project)
SETTINGS allow_nullable_key = 1;

CREATE VIEW IF NOT EXISTS analytics_state AS
SELECT * EXCEPT (version) FROM analytics_state_store FINAL;

-- Cost of each LLM/embedding span (analytics/cost.py). Ordered by hour of start first: the
-- dashboard reads a time range.
CREATE TABLE IF NOT EXISTS span_costs_store (
    trace_id String,
    span_id String,
    start_time DateTime64(6, 'UTC'),
    project LowCardinality(Nullable(String)),
    service_name LowCardinality(Nullable(String)),
    session_id Nullable(String),
    agent_name LowCardinality(Nullable(String)),
    model LowCardinality(Nullable(String)),
    provider LowCardinality(Nullable(String)),
    input_tokens Nullable(Int64),
    cached_tokens Nullable(Int64),
    cache_write_tokens Nullable(Int64),
    output_tokens Nullable(Int64),
    reasoning_tokens Nullable(Int64),
    price_model Nullable(String),
    accounting LowCardinality(Nullable(String)),
    cost_status LowCardinality(String),
    input_cost_usd Nullable(Float64),
    cached_cost_usd Nullable(Float64),
    cache_write_cost_usd Nullable(Float64),
    output_cost_usd Nullable(Float64),
    reasoning_cost_usd Nullable(Float64),
    cost_usd Nullable(Float64),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(start_time)
ORDER BY (toStartOfHour(start_time), trace_id, span_id);

CREATE VIEW IF NOT EXISTS span_costs AS
SELECT * EXCEPT (version) FROM span_costs_store FINAL;

-- One row per trace (the anomaly detectors' features). Keyed by trace_id alone: a late span can
-- move a trace's start.
CREATE TABLE IF NOT EXISTS trace_features_store (
    trace_id String,
    project LowCardinality(Nullable(String)),
    service_name LowCardinality(Nullable(String)),
    workflow_name Nullable(String),
    agent_name LowCardinality(Nullable(String)),
    session_id Nullable(String),
    start_time DateTime64(6, 'UTC'),
    end_time DateTime64(6, 'UTC'),
    duration_ms Float64,
    spans Int64,
    llm_calls Int64,
    tool_calls Int64,
    handoffs Int64,
    errors Int64,
    input_tokens Int64,
    output_tokens Int64,
    total_tokens Int64,
    cost_usd Nullable(Float64),
    unpriced_calls Int64,
    max_repeated_tool_calls Int64,
    repeated_tool Nullable(String),
    status LowCardinality(String),
    version UInt64,
    INDEX idx_start start_time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
ORDER BY trace_id;

CREATE VIEW IF NOT EXISTS trace_features AS
SELECT * EXCEPT (version) FROM trace_features_store FINAL;

-- Per minute, project, service and agent: the overview's source (see collector/schema.sql).
-- latency_hist: the mergeable log-bucket histogram, as an array of named tuples.
CREATE TABLE IF NOT EXISTS minute_rollup_store (
    minute DateTime64(6, 'UTC'),
    project LowCardinality(Nullable(String)),
    service_name LowCardinality(Nullable(String)),
    agent_name LowCardinality(Nullable(String)),
    spans Int64,
    llm_calls Int64,
    tool_calls Int64,
    errors Int64,
    traces_started Int64,
    traces_failed Int64,
    input_tokens Int64,
    output_tokens Int64,
    total_tokens Int64,
    cost_usd Nullable(Float64),
    latency_sum_ms Float64,
    latency_p50_ms Nullable(Float64),
    latency_p95_ms Nullable(Float64),
    latency_p99_ms Nullable(Float64),
    latency_hist Array(Tuple(b Int16, n Int32)),
    version UInt64,
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, project, service_name, agent_name)
SETTINGS allow_nullable_key = 1;

CREATE VIEW IF NOT EXISTS minute_rollup AS
SELECT * EXCEPT (version, is_deleted) FROM minute_rollup_store FINAL WHERE is_deleted = 0;

-- Failed spans per minute, grouped by what failed: feeds "top errors".
CREATE TABLE IF NOT EXISTS error_minutes_store (
    minute DateTime64(6, 'UTC'),
    project LowCardinality(Nullable(String)),
    service_name LowCardinality(Nullable(String)),
    agent_name LowCardinality(Nullable(String)),
    kind LowCardinality(String),
    name String,
    error_type Nullable(String),
    errors Int64,
    sample_message Nullable(String),
    sample_trace_id Nullable(String),
    version UInt64,
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, project, service_name, agent_name, kind, name, error_type)
SETTINGS allow_nullable_key = 1;

CREATE VIEW IF NOT EXISTS error_minutes AS
SELECT * EXCEPT (version, is_deleted) FROM error_minutes_store FINAL WHERE is_deleted = 0;

-- Agent runs, tool calls, guardrail checks and handoffs per minute: the agents page.
CREATE TABLE IF NOT EXISTS call_minutes_store (
    minute DateTime64(6, 'UTC'),
    project LowCardinality(Nullable(String)),
    service_name LowCardinality(Nullable(String)),
    agent_name LowCardinality(Nullable(String)),
    kind LowCardinality(String),
    name Nullable(String),
    target Nullable(String),
    calls Int64,
    errors Int64,
    trips Int64,
    run_failures Int64,
    duration_sum_ms Float64,
    last_error Nullable(String),
    last_error_at Nullable(DateTime64(6, 'UTC')),
    latency_hist Array(Tuple(b Int16, n Int32)),
    version UInt64,
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, project, service_name, agent_name, kind, name, target)
SETTINGS allow_nullable_key = 1;

CREATE VIEW IF NOT EXISTS call_minutes AS
SELECT * EXCEPT (version, is_deleted) FROM call_minutes_store FINAL WHERE is_deleted = 0;

-- What the detectors found. anomaly_id is a hash of (kind, subject, window): stored once.
CREATE TABLE IF NOT EXISTS anomalies_store (
    anomaly_id String,
    detected_at DateTime64(6, 'UTC'),
    kind LowCardinality(String),
    detector LowCardinality(String),
    project LowCardinality(Nullable(String)),
    trace_id Nullable(String),
    service_name LowCardinality(Nullable(String)),
    agent_name LowCardinality(Nullable(String)),
    score Nullable(Float64),
    reason String,
    window_start DateTime64(6, 'UTC'),
    window_end DateTime64(6, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY anomaly_id;

CREATE VIEW IF NOT EXISTS anomalies AS
SELECT * EXCEPT (version) FROM anomalies_store FINAL;

-- Alerts: one row per firing episode of a rule for a subject; an update is a new version.
CREATE TABLE IF NOT EXISTS alerts_store (
    alert_id String,
    rule String,
    severity LowCardinality(String),
    project LowCardinality(Nullable(String)),
    subject String,
    state LowCardinality(String),
    value Nullable(Float64),
    threshold Nullable(Float64),
    message String,
    fired_at DateTime64(6, 'UTC'),
    last_seen_at DateTime64(6, 'UTC'),
    resolved_at Nullable(DateTime64(6, 'UTC')),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id;

CREATE VIEW IF NOT EXISTS alerts AS
SELECT * EXCEPT (version) FROM alerts_store FINAL;

-- Models called but missing from the price table: their calls have NULL cost, never $0.
CREATE VIEW IF NOT EXISTS unpriced_models AS
SELECT coalesce(model, '<none>') AS model, provider, count() AS calls,
       sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)
           + if(accounting = 'cache_separate',
                coalesce(cached_tokens, 0) + coalesce(cache_write_tokens, 0), 0)) AS tokens,
       min(start_time) AS first_seen, max(start_time) AS last_seen
FROM span_costs WHERE cost_status = 'unpriced'
GROUP BY model, provider;

-- Cost rollups. cost_usd sums priced calls; unpriced_calls > 0 means the total is a lower bound.
CREATE VIEW IF NOT EXISTS cost_by_trace AS
SELECT trace_id, min(start_time) AS start_time, any(service_name) AS service_name,
       count() AS llm_calls, sum(cost_usd) AS cost_usd,
       countIf(cost_status = 'unpriced') AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
FROM span_costs GROUP BY trace_id;

CREATE VIEW IF NOT EXISTS cost_by_day AS
SELECT toDate(start_time) AS day, count() AS llm_calls, sum(cost_usd) AS cost_usd,
       countIf(cost_status = 'unpriced') AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
FROM span_costs GROUP BY day;

CREATE VIEW IF NOT EXISTS cost_by_agent_day AS
SELECT toDate(start_time) AS day, agent_name, count() AS llm_calls, sum(cost_usd) AS cost_usd,
       countIf(cost_status = 'unpriced') AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
FROM span_costs GROUP BY day, agent_name;

CREATE VIEW IF NOT EXISTS cost_by_model_day AS
SELECT toDate(start_time) AS day, model, provider, count() AS llm_calls, sum(cost_usd) AS cost_usd,
       countIf(cost_status = 'unpriced') AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
       sum(output_tokens) AS output_tokens
FROM span_costs GROUP BY day, model, provider;

CREATE VIEW IF NOT EXISTS cost_by_session AS
SELECT session_id, min(start_time) AS first_call, max(start_time) AS last_call,
       uniqExact(trace_id) AS traces, count() AS llm_calls, sum(cost_usd) AS cost_usd,
       countIf(cost_status = 'unpriced') AS unpriced_calls
FROM span_costs WHERE session_id IS NOT NULL GROUP BY session_id;

-- Internal to the cost job: the new costs of one run (rows keyed 'run/trace_id/span_id'), joined
-- into span_store.cost_usd by a mutation (joinGet), then deleted by run, so collectors that run
-- the jobs at once never see each other's rows go. Not for queries.
CREATE TABLE IF NOT EXISTS span_cost_updates (
    run_id String,
    key String,
    cost_usd Nullable(Float64),
    present UInt8 DEFAULT 1  -- what the mutation's WHERE asks the join for
)
ENGINE = Join(ANY, LEFT, key)
SETTINGS join_use_nulls = 1;
