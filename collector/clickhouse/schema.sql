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
