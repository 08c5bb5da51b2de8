"""Where KubeOpera keeps what it writes when no path is given: one documented place,
found the same way from any directory.

``data_home()`` is ``$KUBEOPERA_HOME`` when set, else the user's data directory
(platformdirs: ``~/.local/share/kubeopera`` on Linux, honouring ``$XDG_DATA_HOME``). The
embedded store is ``clickhouse/`` there, the worker's local state ``worker/``, the
development broker ``kafka/``, the test API servers ``cluster/`` and ``demo-cluster/``.
"""

import os
from pathlib import Path

import platformdirs


def data_home() -> Path:
    """The folder KubeOpera's default paths live in (not created here)."""
    home = os.environ.get("KUBEOPERA_HOME")
    return Path(home).expanduser().absolute() if home else platformdirs.user_data_path("kubeopera")


def default_path(name: str) -> Path:
    """``name`` in ``data_home()``: ``clickhouse``, ``worker``, ``kafka``, ``cluster``..."""
    return data_home() / name
