"""Where results go: ClickHouse tables (embedded chDB or a server) and, later, alerts."""
