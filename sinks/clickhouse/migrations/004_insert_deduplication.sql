-- Replays must not add up twice. A block of hourly cost rows is inserted with a
-- deduplication token derived from its content; ClickHouse skips a block whose token it
-- has seen, in the table and in the materialized views it feeds.

ALTER TABLE cost_allocation_hourly MODIFY SETTING non_replicated_deduplication_window = 100000;

ALTER TABLE cost_by_namespace_daily MODIFY SETTING non_replicated_deduplication_window = 100000;

ALTER TABLE cost_by_team_daily MODIFY SETTING non_replicated_deduplication_window = 100000;
