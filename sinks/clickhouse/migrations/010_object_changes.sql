-- The change timeline: one row per changed field of an object version (the changes
-- processor, streams/processors/change_timeline.py). A replayed version writes rows
-- whose key the table already holds, and ReplacingMergeTree keeps one.

CREATE TABLE IF NOT EXISTS object_changes
(
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    kind LowCardinality(String),
    name String,
    uid String,
    observed_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    resource_version String,
    change LowCardinality(String),
    path String,
    field_change LowCardinality(String),
    old Nullable(String),
    new Nullable(String),
    category LowCardinality(String),
    manager LowCardinality(String),
    operation LowCardinality(String),
    top_kind LowCardinality(String),
    top_name String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(observed_at)
ORDER BY (cluster, namespace, kind, name, observed_at, uid, resource_version, path);

-- What changed, newest rows first when read with ORDER BY at DESC: one row per field.
CREATE OR REPLACE VIEW v_changes AS
SELECT observed_at AS at, cluster, namespace, top_kind, top_name, kind, name, uid, change,
       path, field_change, old, new, category, manager, operation
FROM object_changes FINAL;

-- One workload's history: the changes of its objects and the Events of its objects (its
-- Pods' included), each under the top controller of its owner chain, to read by time.
CREATE OR REPLACE VIEW v_object_history AS
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
LEFT JOIN
(
    SELECT cluster, uid,
           argMax(JSONExtractString(owner_chain, -1, 'kind'), observed_at) AS top_kind,
           argMax(JSONExtractString(owner_chain, -1, 'name'), observed_at) AS top_name
    FROM raw_objects
    GROUP BY cluster, uid
) AS o ON e.cluster = o.cluster AND e.involved_uid = o.uid;
