"""The Kubernetes collector: list + watch of a cluster's objects, turned into the
``objects`` stream's changes (redacted, with owner chains and last field managers)."""
