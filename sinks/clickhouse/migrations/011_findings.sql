-- Findings (drift now; anomalies, budgets, risks later): one row per state of a finding,
-- as the processors emit them (opened, changed, resolved), keyed by its fingerprint. A
-- replayed state writes a row whose key the table holds, and ReplacingMergeTree keeps one.
-- The latest row of a fingerprint is its state: v_findings. Retention (TTL) on this table
-- and object_changes is applied at start-up from settings (storage.history_retention_days).

CREATE TABLE IF NOT EXISTS findings
(
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    finding_kind LowCardinality(String),
    fingerprint String,
    last_seen DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    first_seen DateTime64(3, 'UTC'),
    status LowCardinality(String),
    severity LowCardinality(String),
    kind LowCardinality(String),
    name String,
    summary String,
    evidence String CODEC(ZSTD(3)),
    remediation Nullable(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(last_seen)
ORDER BY (cluster, namespace, finding_kind, fingerprint, last_seen);

-- Every finding in its latest state (kind and name are the subject's).
CREATE OR REPLACE VIEW v_findings AS
SELECT fingerprint, argMax(finding_kind, at) AS finding_kind,
       argMax(cluster, at) AS cluster, argMax(namespace, at) AS namespace,
       argMax(kind, at) AS kind, argMax(name, at) AS name,
       argMax(status, at) AS status, argMax(severity, at) AS severity,
       argMax(first_seen, at) AS first_seen, max(at) AS last_seen,
       argMax(summary, at) AS summary, argMax(evidence, at) AS evidence,
       argMax(remediation, at) AS remediation
FROM (SELECT *, last_seen AS at FROM findings FINAL)
GROUP BY fingerprint;

-- Drift open now: one row per drifted field of each open drift finding, with the value
-- the baseline wants and the live one (JSON; NULL where the field is absent).
CREATE OR REPLACE VIEW v_drift_open AS
SELECT first_seen, last_seen, cluster, namespace, kind, name,
       JSONExtractString(evidence, 'baseline') AS baseline,
       JSONExtractString(evidence, 'origin') AS origin,
       JSONExtractString(entry, 'path') AS path,
       JSONExtractString(entry, 'change') AS change,
       if(JSONType(entry, 'expected') = 'Null', NULL, JSONExtractString(entry, 'expected'))
           AS expected,
       if(JSONType(entry, 'live') = 'Null', NULL, JSONExtractString(entry, 'live')) AS live,
       fingerprint
FROM v_findings
ARRAY JOIN JSONExtractArrayRaw(evidence, 'entries') AS entry
WHERE finding_kind = 'drift' AND status = 'open';

-- A workload's history now also holds the findings of its objects (each state: opened,
-- changed, resolved), under the top controller of the subject's owner chain.
CREATE OR REPLACE VIEW v_object_history AS
WITH owners AS
(
    SELECT cluster, namespace, kind, name, uid,
           argMax(JSONExtractString(owner_chain, -1, 'kind'), observed_at) AS top_kind,
           argMax(JSONExtractString(owner_chain, -1, 'name'), observed_at) AS top_name
    FROM raw_objects
    GROUP BY cluster, namespace, kind, name, uid
)
SELECT observed_at AS at, cluster, namespace, top_kind, top_name, kind, name,
       'change' AS entry, category AS detail, path, old, new, manager AS who
FROM object_changes FINAL
UNION ALL
SELECT e.last_time AS at, e.cluster AS cluster, e.namespace AS namespace,
       if(o.top_kind = '', e.involved_kind, o.top_kind) AS top_kind,
       if(o.top_name = '', e.involved_name, o.top_name) AS top_name,
       e.involved_kind AS kind, e.involved_name AS name,
       'event' AS entry, e.reason AS detail, '' AS path,
       CAST(NULL AS Nullable(String)) AS old, CAST(e.message AS Nullable(String)) AS new,
       e.source_component AS who
FROM raw_events AS e FINAL
LEFT JOIN owners AS o ON e.cluster = o.cluster AND e.involved_uid = o.uid
UNION ALL
SELECT f.last_seen AS at, f.cluster AS cluster, f.namespace AS namespace,
       if(o.top_kind = '', f.kind, o.top_kind) AS top_kind,
       if(o.top_name = '', f.name, o.top_name) AS top_name,
       f.kind AS kind, f.name AS name,
       'finding' AS entry, concat(f.finding_kind, ' ', f.status) AS detail, '' AS path,
       CAST(NULL AS Nullable(String)) AS old, CAST(f.summary AS Nullable(String)) AS new,
       'kubeopera' AS who
FROM findings AS f FINAL
LEFT JOIN
(
    SELECT cluster, namespace, kind, name, argMax(top_kind, 1) AS top_kind,
           argMax(top_name, 1) AS top_name
    FROM owners GROUP BY cluster, namespace, kind, name
) AS o ON f.cluster = o.cluster AND f.namespace = o.namespace AND f.kind = o.kind
    AND f.name = o.name;

-- Drift baselines as they were recorded (topic baselines; the archive processor): what
-- each object should be, declared (a manifest set) or approved (kubeopera drift approve).
-- An empty object withdraws the baseline. Embedded runs read the latest of each back as
-- reference data.
CREATE TABLE IF NOT EXISTS baselines
(
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    kind LowCardinality(String),
    name String,
    baseline LowCardinality(String),
    recorded_at DateTime64(3, 'UTC'),
    api_version LowCardinality(String),
    origin String,
    object String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
ORDER BY (cluster, namespace, kind, name, baseline, recorded_at);
