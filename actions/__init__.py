"""The action service: authenticated, policy-checked, dry-run-first remediations with
approval, audit and undo (``kubeopera actions``)."""
