-- The action service (kubeopera actions serve): its requests, the idempotency keys it has
-- answered, and its audit. A request is one row per version (ReplacingMergeTree keeps the
-- newest); body is the whole request as JSON (actions/lifecycle.py: ActionRequest).

CREATE TABLE IF NOT EXISTS action_requests
(
    id String,
    version UInt64,
    state LowCardinality(String),
    action LowCardinality(String),
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    kind LowCardinality(String),
    name String,
    requester String,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    body String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- What was answered to a caller's Idempotency-Key: the same call again gets the same
-- answer; the key with another call is refused. fingerprint: SHA-256 of method, path and
-- body.
CREATE TABLE IF NOT EXISTS action_idempotency
(
    caller String,
    key String,
    fingerprint String,
    status UInt16,
    response String,
    at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(at)
ORDER BY (caller, key)
TTL toDateTime(at) + INTERVAL 7 DAY;

-- Every call (accepted or refused), dry-run, approval, apply, undo and recovery. A plain
-- MergeTree: a row once written is never replaced by another with the same key.
CREATE TABLE IF NOT EXISTS action_audit
(
    at DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    audit_id String,
    event LowCardinality(String),
    result LowCardinality(String),
    who String,
    roles Array(LowCardinality(String)),
    method LowCardinality(String),
    route String,
    status UInt16,
    request_id String,
    action LowCardinality(String),
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    kind LowCardinality(String),
    name String,
    reason String,
    before Nullable(String),
    after Nullable(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, audit_id);

CREATE OR REPLACE VIEW v_actions_audit AS
SELECT at, event, result, who, roles, method, route, status, request_id, action, cluster,
       namespace, kind, name, reason, before, after, audit_id
FROM action_audit;
