-- The notifier's record (kubeopera alerts): every attempt at delivering a notification,
-- and the silences. The attempt that settled a notification (delivered, or refused for
-- good) has told = 1 and carries what the group's receiver now knows (firing and resolved
-- fingerprints): the latest such row of a group is its notification log entry, read back
-- when the notifier starts, so a restart notifies nothing twice.

CREATE TABLE IF NOT EXISTS alert_deliveries
(
    at DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    subscription LowCardinality(String),
    receiver LowCardinality(String),
    group_key String,
    request String,
    attempt UInt16,
    status_code Nullable(UInt16),
    outcome LowCardinality(String),
    reason String,
    seconds Float64,
    due_at DateTime64(3, 'UTC'),
    firing Array(String),
    resolved Array(String),
    told UInt8
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (subscription, group_key, at)
TTL toDateTime(at) + INTERVAL 90 DAY;

-- Every attempt, newest first in queries: latency_ms is from the flush that made the
-- notification to the attempt's end.
CREATE OR REPLACE VIEW v_alert_deliveries AS
SELECT at, subscription, receiver, group_key, request, attempt, status_code, outcome,
       reason, round(seconds * 1000, 1) AS request_ms,
       round(dateDiff('millisecond', due_at, at) + seconds * 1000, 1) AS latency_ms,
       length(firing) AS firing, length(resolved) AS resolved, told = 1 AS told
FROM alert_deliveries;

-- Silences (kubeopera alerts silence): the latest version of each id; unsilencing ends one
-- now. matchers is a JSON object, field -> regular expression.
CREATE TABLE IF NOT EXISTS alert_silences
(
    id String,
    matchers String,
    starts_at DateTime64(3, 'UTC'),
    ends_at DateTime64(3, 'UTC'),
    created_by String,
    comment String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

CREATE OR REPLACE VIEW v_alert_silences AS
SELECT id, matchers, starts_at, ends_at, created_by, comment,
       if(ends_at <= now64(3), 'expired', if(starts_at > now64(3), 'pending', 'active')) AS state
FROM alert_silences FINAL;
