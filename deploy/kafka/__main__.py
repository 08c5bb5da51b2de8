"""``python -m kubeopera.deploy.kafka fetch|up|down|status [--port N] [--state DIR]``."""

import argparse
import sys
from pathlib import Path

from kubeopera.deploy.kafka import Broker, BrokerError, fetch
from kubeopera.deploy.paths import default_path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m kubeopera.deploy.kafka", description=__doc__)
    parser.add_argument("action", choices=["fetch", "up", "down", "status"])
    parser.add_argument("--port", type=int, help="default: the port it last ran on, else 9092")
    parser.add_argument("--state", type=Path, default=default_path("kafka"))
    args = parser.parse_args()
    broker = Broker.at(args.state, args.port)
    try:
        if args.action == "fetch":
            print(fetch())
        elif args.action == "up":
            broker.up()
            print(f"Kafka {broker.bootstrap} is up ({broker.status()})")
        elif args.action == "down":
            broker.down()
            print("Kafka is down")
        else:
            print(broker.status())
    except BrokerError as error:
        print(f"kafka: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
