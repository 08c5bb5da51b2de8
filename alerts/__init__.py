"""The notifier: findings routed, grouped and deduplicated as Alertmanager does, delivered
to Slack, PagerDuty and webhooks, every attempt recorded (``kubeopera alerts``)."""
