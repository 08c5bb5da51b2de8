"""The stream processors, one module each; each registers itself (``streams.registry``)."""
