-- Anomalies and budgets. series_hourly: every complete hour of every series the anomaly
-- processor scored (value, the band it expected, the score); budgets: the budgets set
-- with `kubeopera budgets set`, one row per definition (the latest counts); budget_status:
-- each budget's spend and forecast as of each hour, written by the budget processor.

CREATE TABLE IF NOT EXISTS series_hourly
(
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    series_id String,
    window_start DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    series_kind LowCardinality(String),
    scope LowCardinality(String),
    team LowCardinality(String),
    workload_kind LowCardinality(String),
    workload String,
    value Float64 CODEC(Gorilla, ZSTD),
    expected Nullable(Float64),
    lower Nullable(Float64),
    upper Nullable(Float64),
    score Float64,
    anomalous Bool
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (cluster, namespace, series_id, window_start);

CREATE TABLE IF NOT EXISTS budgets
(
    budget String,
    scope LowCardinality(String),
    target String,
    period LowCardinality(String),
    amount Float64,
    thresholds Array(Float64),
    recorded_at DateTime64(3, 'UTC'),
    deleted Bool
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY budget;

CREATE TABLE IF NOT EXISTS budget_status
(
    budget String,
    scope LowCardinality(String),
    target String,
    period LowCardinality(String),
    period_start DateTime64(3, 'UTC'),
    period_end DateTime64(3, 'UTC'),
    window_start DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    amount Float64,
    spend Float64,
    forecast Float64,
    forecast_low Float64,
    forecast_high Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (budget, window_start);

-- Anomalies open now: one row per anomalous series, with the hour it began, the value
-- that opened it and the band the detector expected then.
CREATE OR REPLACE VIEW v_anomalies_open AS
SELECT first_seen, last_seen, cluster, namespace, kind, name, severity,
       JSONExtractString(evidence, 'series_kind') AS series_kind,
       JSONExtractString(evidence, 'scope') AS scope,
       JSONExtractString(evidence, 'unit') AS unit,
       JSONExtractFloat(evidence, 'observed') AS observed,
       if(JSONType(evidence, 'expected') = 'Null', NULL, JSONExtractFloat(evidence, 'expected'))
           AS expected,
       if(JSONType(evidence, 'band') = 'Null', NULL, JSONExtractFloat(evidence, 'band', 2))
           AS upper,
       JSONExtractFloat(evidence, 'score') AS score,
       summary, JSONExtractString(evidence, 'series') AS series_id, fingerprint
FROM v_findings
WHERE finding_kind = 'anomaly' AND status = 'open';

-- Each budget in force: its latest status (spend so far in the period, forecast to its
-- end with the 90 % interval) and the share of the amount each is.
CREATE OR REPLACE VIEW v_budget_status AS
SELECT b.budget AS budget, b.scope AS scope, b.target AS target, b.period AS period,
       b.amount AS amount, s.period_start AS period_start, s.period_end AS period_end,
       s.as_of AS as_of, s.spend AS spend, s.forecast AS forecast,
       s.forecast_low AS forecast_low, s.forecast_high AS forecast_high,
       s.spend / b.amount AS spent_share, s.forecast / b.amount AS forecast_share
FROM (SELECT * FROM budgets FINAL WHERE NOT deleted) AS b
LEFT JOIN
(
    SELECT budget, argMax(period_start, window_start) AS period_start,
           argMax(period_end, window_start) AS period_end,
           max(window_start) + INTERVAL 1 HOUR AS as_of,
           argMax(spend, window_start) AS spend, argMax(forecast, window_start) AS forecast,
           argMax(forecast_low, window_start) AS forecast_low,
           argMax(forecast_high, window_start) AS forecast_high
    FROM budget_status FINAL
    GROUP BY budget
) AS s ON b.budget = s.budget
SETTINGS join_use_nulls = 1;
