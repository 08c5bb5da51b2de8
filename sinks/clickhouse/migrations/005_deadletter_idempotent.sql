-- A message dead-lettered, then replayed after a crash, is one dead letter: the key no
-- longer includes the time of rejection, only where the message came from and its bytes.

CREATE TABLE IF NOT EXISTS deadletter_by_source
(
    at DateTime64(3, 'UTC'),
    source_topic LowCardinality(String),
    partition Int32,
    offset Int64,
    key String,
    raw String CODEC(ZSTD(3)),
    error String
)
ENGINE = ReplacingMergeTree
ORDER BY (source_topic, partition, offset, cityHash64(raw));

INSERT INTO deadletter_by_source SELECT at, source_topic, partition, offset, key, raw, error FROM deadletter;

DROP VIEW IF EXISTS v_deadletter_by_reason;

DROP TABLE deadletter;

RENAME TABLE deadletter_by_source TO deadletter;

CREATE OR REPLACE VIEW v_deadletter_by_reason AS
SELECT source_topic, error, count() AS messages, min(at) AS first_at, max(at) AS last_at
FROM deadletter FINAL
GROUP BY source_topic, error;
