"""The ``kubeopera`` command line and the settings that wire the stages together."""
