"""Wall time and peak RSS of the default `kubeopera demo` (3 clusters, ~500 pods, 24 h at 1 min).

python benchmarks/demo.py [extra demo options]
python benchmarks/demo.py --cluster    # one cluster through a real kube-apiserver
"""

import os
import resource
import subprocess
import sys
import tempfile
import time

from machine import describe  # benchmarks/machine.py

from kubeopera.deploy.processes import stop_on_sigterm


def main() -> None:
    stop_on_sigterm()
    print(describe(), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "KUBEOPERA_STORAGE__PATH": folder}
        began = time.perf_counter()
        result = subprocess.run(
            ["kubeopera", "demo", *sys.argv[1:]],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for line in result.stdout.splitlines():
        if line.startswith(("Processed", "Through", "collector reported")):
            print(line)
    print(f"demo wall time {wall:.1f} s, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
