"""``kubeopera demo --cluster``: the simulated cluster written into a real kube-apiserver
started for the demo, and watched there by the real collector."""

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubeopera.cli.fleet import simulated
from kubeopera.collectors.simulator import FleetSpec
from kubeopera.models import Message

if TYPE_CHECKING:  # the Kubernetes client loads only for --cluster
    from kubeopera.collectors.simulator.replay import Replay


@dataclass(frozen=True)
class ClusterOptions:
    state: Path  # the API server's data, certificates and kubeconfig
    leave_running: bool = False  # for kubectl afterwards

    def still_running(self) -> str | None:
        """How to reach and stop the API server the demo left running."""
        from kubeopera.deploy.testcluster import LocalCluster

        if not self.leave_running:
            return None
        kubeconfig = LocalCluster(state=self.state).kubeconfig.resolve()
        return (
            f"The API server keeps running: export KUBECONFIG={kubeconfig}\n"
            f"Stop it with: kubeopera dev cluster down --state {self.state}"
        )


@contextmanager
def replayed(
    spec: FleetSpec, options: ClusterOptions
) -> "Iterator[tuple[Generator[list[Message]], Replay, str]]":
    """The collector's view of the replayed cluster, the replay (for its counts) and the
    API server's URL; the server stops afterwards unless asked to stay."""
    from kubernetes import config

    from kubeopera.collectors.simulator.fleet import cluster_identity
    from kubeopera.collectors.simulator.replay import Replay, through_api_server
    from kubeopera.deploy.kafka import free_port
    from kubeopera.deploy.testcluster import LocalCluster

    LocalCluster.at(options.state).down()  # one an earlier demo left running: start afresh
    local = LocalCluster(state=options.state, port=free_port())
    click.echo(
        "starting a Kubernetes API server (the first start builds it with Go: ~5 minutes)",
        err=True,
    )
    local.up()
    stream = None
    try:
        with config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(local.kubeconfig)
        ) as api:
            replay = Replay(api)
            steps = simulated(spec, "replaying into the API server")
            stream = through_api_server(replay, cluster_identity(0)[0], steps)
            yield stream, replay, local.url
    finally:
        if stream is not None:
            stream.close()  # stops the collector if the run ended early
        if not options.leave_running:
            local.down()
