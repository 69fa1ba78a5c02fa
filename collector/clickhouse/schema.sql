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
