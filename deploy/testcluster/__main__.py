"""``python -m kubeopera.deploy.testcluster build|up|down|status [--port N] [--state DIR]``."""

import argparse
import sys
from pathlib import Path

from kubeopera.deploy.paths import default_path
from kubeopera.deploy.testcluster import ClusterError, LocalCluster, build


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m kubeopera.deploy.testcluster", description=__doc__
    )
    parser.add_argument("action", choices=["build", "up", "down", "status"])
    parser.add_argument("--port", type=int, help="default: the port it last ran on, else 6443")
    parser.add_argument("--state", type=Path, default=default_path("cluster"))
    args = parser.parse_args()
    cluster = LocalCluster.at(args.state, args.port)
    try:
        if args.action == "build":
            print(build())
        elif args.action == "up":
            cluster.up()
            print(f"Kubernetes API server is up: KUBECONFIG={cluster.kubeconfig.resolve()}")
        elif args.action == "down":
            cluster.down()
            print("the API server is down")
        else:
            print(cluster.status())
    except ClusterError as error:
        print(f"testcluster: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
