"""Notifiers: findings as the messages Slack, PagerDuty and webhooks take, and (later)
their delivery."""
