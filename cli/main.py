"""``kubeopera``: run the demo, query the store, print cost reports."""

import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click
from click.core import ParameterSource

from kubeopera.cli import render
from kubeopera.cli.actions import actions
from kubeopera.cli.alerts import alerts
from kubeopera.cli.dashboards import dashboards
from kubeopera.cli.fleet import batch_size_option, duration_option, fleet_options, fleet_spec
from kubeopera.cli.report import report
from kubeopera.deploy.paths import default_path
from kubeopera.deploy.processes import stop_on_sigterm
from kubeopera.settings import Settings, load_settings
from kubeopera.settings.durations import format_duration, window_start
from kubeopera.settings.messages import first_line
from kubeopera.streams.detectors import NAMES as DETECTORS
from kubeopera.streams.object_diff import CATEGORIES

FC = TypeVar("FC", bound=Callable[..., Any])


def output_options(command: FC) -> FC:
    """``--format`` and ``-o``, the same for every command that prints rows
    (``render.write``)."""
    formats = click.option(
        "--format", "fmt", type=click.Choice(render.FORMATS), default="table", show_default=True
    )
    output = click.option(
        "--output",
        "-o",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write to a file instead of stdout.",
    )
    return formats(output(command))


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    assert settings is not None, "the group callback loads the settings"
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML settings file (default $KUBEOPERA_CONFIG).",
)
@click.version_option(package_name="kubeopera")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """KubeOpera: cost, rightsizing, change and risk analytics for Kubernetes fleets."""
    # the collector runs no processor (but with --embedded, which builds them itself):
    # it does not load them, nor polars and pyarrow (65 MiB of its 150 MiB budget)
    ctx.obj = load_settings(config, check_processors=ctx.invoked_subcommand != "collect")


@cli.command(short_help="Simulate a fleet through the embedded pipeline; print its costs.")
@fleet_options
@click.option("--keep", is_flag=True, help="Add to the store instead of emptying it first.")
@click.option(
    "--cluster",
    is_flag=True,
    help="Write one simulated cluster into a real kube-apiserver started for the demo, "
    "and let the real collector watch it.",
)
@click.option(
    "--cluster-state",
    type=click.Path(path_type=Path, file_okay=False),
    default=default_path("demo-cluster"),
    show_default=True,
    help="With --cluster: the API server's data and kubeconfig.",
)
@click.option(
    "--leave-cluster-running",
    is_flag=True,
    help="With --cluster: keep the API server up afterwards, for kubectl.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    /,
    keep: bool,
    cluster: bool,
    cluster_state: Path,
    leave_cluster_running: bool,
    **fleet: Any,
) -> None:
    """Simulate a fleet, run it through the embedded pipeline and print its costs.

    With --cluster, the simulated cluster is written into a real Kubernetes API server
    (objects, status, Events) and the collector watches it there, as in production."""
    from kubeopera.cli.demo import run_demo
    from kubeopera.cli.demo_cluster import ClusterOptions

    settings = _settings(ctx)
    options = None
    if cluster:
        if ctx.get_parameter_source("clusters") is ParameterSource.DEFAULT:
            fleet["clusters"] = 1
        elif fleet["clusters"] != 1:
            raise click.UsageError("--cluster replays one cluster: drop --clusters or set it to 1")
        options = ClusterOptions(cluster_state, leave_cluster_running)
    elif leave_cluster_running:
        raise click.UsageError("--leave-cluster-running needs --cluster")
    run_demo(settings, fleet_spec(settings.catalogue(), **fleet), keep, options)


@cli.command(short_help="Watch a cluster (or simulate a fleet); publish its streams.")
@click.option("--simulate", is_flag=True, help="Publish the fleet simulator's streams.")
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Watch the cluster of this kubeconfig.",
)
@click.option("--context", help="The kubeconfig context (default: its current one).")
@click.option("--in-cluster", is_flag=True, help="Watch the cluster this pod runs in.")
@click.option("--cluster-name", help="The cluster's name in every message and report.")
@click.option("--embedded", is_flag=True, help="Feed the embedded pipeline, not Kafka.")
@click.option(
    "--watch",
    "custom",
    multiple=True,
    metavar="GROUP/VERSION/KIND/PLURAL",
    help="Also watch this custom resource (repeatable), e.g. "
    "argoproj.io/v1alpha1/Application/applications.",
)
@click.option("--stop-after", type=click.FloatRange(min=0), help="Seconds to watch, then stop.")
@click.option(
    "--scrape-seconds",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    help="How often usage is scraped (0: never).",
)
@click.option(
    "--usage-source",
    type=click.Choice(["auto", "metrics-api", "summary"]),
    default="auto",
    show_default=True,
    help="metrics-api: metrics.k8s.io (two requests per scrape); summary: each node's "
    "kubelet summary through the node proxy (adds RSS and volume usage); auto: "
    "metrics.k8s.io when the cluster serves it.",
)
@fleet_options
@click.pass_context
def collect(
    ctx: click.Context,
    /,
    simulate: bool,
    kubeconfig: Path | None,
    context: str | None,
    in_cluster: bool,
    cluster_name: str | None,
    embedded: bool,
    custom: tuple[str, ...],
    stop_after: float | None,
    scrape_seconds: float,
    usage_source: str,
    **fleet: Any,
) -> None:
    """Publish object changes, events and prices to Kafka (kafka.bootstrap_servers):
    from a cluster (--kubeconfig or --in-cluster, with --cluster-name) or from the
    fleet simulator (--simulate)."""
    from kubeopera.cli.collect import collect_cluster, publish_fleet

    settings = _settings(ctx)
    if simulate:
        publish_fleet(settings, fleet_spec(settings.catalogue(), **fleet))
        return
    if (kubeconfig is None) == (not in_cluster):
        raise click.UsageError("give --kubeconfig PATH or --in-cluster (or --simulate)")
    if not cluster_name:
        raise click.UsageError("--cluster-name is required when watching a cluster")
    collect_cluster(
        settings,
        cluster_name,
        kubeconfig,
        context,
        embedded,
        list(custom),
        stop_after,
        scrape_seconds,
        usage_source,
    )


@cli.command(short_help="Replay recorded topic messages (JSON lines) into the store.")
@click.argument("file", type=click.File("rb"))
@batch_size_option(10_000, "Messages per pipeline batch.")
@click.pass_context
def replay(ctx: click.Context, file: BinaryIO, batch_size: int) -> None:
    """Feed recorded messages through the embedded pipeline into the store (added to
    it, not emptied first), then close every open hour. FILE holds one message a line,
    as the collectors publish them (- reads standard input):

    \b
    {"topic": "kubeopera.metrics.v1", "key": "c1/node-a", "value": {...}}

    A line that cannot be read is dead-lettered with its line number; the rest goes on."""
    from kubeopera.cli.replay import run_replay

    run_replay(_settings(ctx), file, batch_size)


@cli.command(short_help="Consume Kafka with the stream processors; write ClickHouse.")
@click.option("--app-id", default="kubeopera-worker", show_default=True, help="Consumer group.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=default_path("worker"),
    show_default=True,
)
@batch_size_option(
    2_000, "Messages taken from a topic at a time (or what arrived within a second)."
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="info shows rebalances, recovery and each batch committed.",
)
@duration_option("--progress-every", "1m", "How often to print a progress line.")
@duration_option(
    "--idle-after",
    "30s",
    "A partition read to its end and quiet this long closes its last hour "
    "(its watermark moves on by cost.allowed_lateness_minutes, never past now).",
)
@click.option(
    "--health-port",
    type=click.IntRange(1, 65535),
    help="Serve GET /healthz (liveness) and /readyz (readiness) on this port.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    app_id: str,
    data_dir: Path,
    batch_size: int,
    log_level: str,
    progress_every: timedelta,
    idle_after: timedelta,
    health_port: int | None,
) -> None:
    """Run the Faust worker: the same processors as the demo, on the Kafka topics. It
    prints a line when it holds its partitions and a progress line every minute."""
    from kubeopera.cli.worker import run_worker

    run_worker(
        _settings(ctx),
        app_id,
        data_dir,
        batch_size,
        log_level,
        progress_every,
        health_port,
        idle_after,
    )


@cli.group(short_help="Development services: a local Kafka broker and Kubernetes API.")
def dev() -> None:
    """Services for development and tests, on this machine only."""


@dev.command(short_help="Start, stop or show the local Kafka broker.")
@click.argument("action", type=click.Choice(["up", "down", "status"]))
@click.option("--port", type=click.IntRange(1, 65535), help="Default: its last port, else 9092.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    default=default_path("kafka"),
    show_default=True,
)
def kafka(action: str, port: int | None, state: Path) -> None:
    """A single-node Apache Kafka (KRaft, fetched from Maven Central) on 127.0.0.1."""
    from kubeopera.collectors.topics import ensure_topics
    from kubeopera.deploy.kafka import Broker

    broker = Broker.at(state, port)
    if action == "up":
        broker.up()
        created = ensure_topics(broker.bootstrap)
        click.echo(f"Kafka is up on {broker.bootstrap}; topics created: {len(created)}")
    elif action == "down":
        broker.down()
        click.echo("Kafka is down")
    else:
        click.echo(broker.status())


@dev.command(short_help="Start, stop or show a local Kubernetes API server.")
@click.argument("action", type=click.Choice(["up", "down", "status"]))
@click.option("--port", type=click.IntRange(1, 65535), help="Default: its last port, else 6443.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    default=default_path("cluster"),
    show_default=True,
)
def cluster(action: str, port: int | None, state: Path) -> None:
    """A real kube-apiserver with embedded etcd on 127.0.0.1 (built with Go on first use,
    ~5 minutes), with RBAC and an admin kubeconfig. No kubelet: create objects through
    the API. Every `up` starts an empty cluster."""
    from kubeopera.deploy.testcluster import LocalCluster

    local = LocalCluster.at(state, port)
    if action == "up":
        local.up()
        click.echo(f"Kubernetes API is up: export KUBECONFIG={local.kubeconfig.resolve()}")
    elif action == "down":
        local.down()
        click.echo("the Kubernetes API server is down")
    else:
        click.echo(local.status())


@cli.command(short_help="Run analyst SQL on the store (table, csv, json, parquet).")
@click.argument("query")
@output_options
@click.pass_context
def sql(ctx: click.Context, query: str, fmt: render.Format, output: Path | None) -> None:
    """Run analyst SQL (ClickHouse dialect) on the store, e.g. over v_cost_by_namespace_daily."""
    from kubeopera.reports import analyst_query

    with _settings(ctx).open_store() as store:
        result = analyst_query(store, query)
        render.write(result, fmt, output, notes=[f"Store: {store.describe()}"])


@cli.command(short_help="Print a cost-allocation report by any key.")
@click.option(
    "--by",
    default="namespace",
    show_default=True,
    help="cluster, node, namespace, controller, controller_kind, pod, container, team, "
    "label:<k>, annotation:<k>; comma-separate to combine.",
)
@duration_option("--window", "7d", "How far back from now.", reaching_back=True)
@click.option(
    "--idle",
    type=click.Choice(["none", "weighted"]),
    help="Keep idle apart or spread it (default from settings).",
)
@click.option(
    "--share-namespaces", help="Comma-separated namespaces whose cost is spread over the others."
)
@click.option(
    "--share-split",
    type=click.Choice(["even", "weighted"]),
    help="How shared namespaces are spread: evenly, or by cost before idle.",
)
@click.option(
    "--share-over",
    type=click.Choice(["all", "cluster"]),
    help="Spread shared namespaces over every group of the report (OpenCost) or of "
    "their own cluster.",
)
@output_options
@click.pass_context
def cost(
    ctx: click.Context,
    by: str,
    window: timedelta,
    idle: str | None,
    share_namespaces: str | None,
    share_split: str | None,
    share_over: str | None,
    fmt: render.Format,
    output: Path | None,
) -> None:
    """Print a cost-allocation report from the store."""
    settings = _settings(ctx)
    overrides: dict[str, Any] = {
        "idle": idle,
        "shared_split": share_split,
        "shared_over": share_over,
    }
    if share_namespaces is not None:
        overrides["shared_namespaces"] = tuple(
            n.strip() for n in share_namespaces.split(",") if n.strip()
        )
    sharing = replace(settings.sharing(), **{k: v for k, v in overrides.items() if v is not None})
    with settings.open_store() as store:
        from kubeopera.reports import cost_report, pricing_notes

        since = window_start(window, datetime.now(UTC))
        report = cost_report(store, by, since, sharing=sharing)
        notes = [*pricing_notes(store, since), f"Store: {store.describe()}"]
    title = f"Cost by {by}, last {format_duration(window)} (idle: {sharing.idle})"
    total = f"Total: {render.money(float(report['total_cost'].sum()))}"
    if report.is_empty():  # the notes say why
        render.write(report, fmt, output, notes=notes, empty_table=False)
    else:
        render.write(report, fmt, output, title=title, notes=[total, *notes])


@cli.command(short_help="What changed, field by field, newest first (the change timeline).")
@click.option("--cluster", help="Only this cluster.")
@click.option("--namespace", help="Only this namespace.")
@click.option("--kind", help="Only objects of this kind (Deployment, ConfigMap, ...).")
@click.option("--name", help="Only this object, or the objects under this top controller.")
@click.option("--category", type=click.Choice(CATEGORIES), help="Only changes of this kind.")
@duration_option("--since", "24h", "How far back from now.", reaching_back=True)
@output_options
@click.pass_context
def timeline(
    ctx: click.Context,
    /,
    since: timedelta,
    fmt: render.Format,
    output: Path | None,
    **filters: str | None,
) -> None:
    """Print the change timeline from the store (written by the changes processor, which
    runs by default): each object version's changed fields, old and new, and who
    changed them."""
    from kubeopera.reports import change_timeline

    with _settings(ctx).open_store() as store:
        rows = change_timeline(
            store,
            window_start(since, datetime.now(UTC)),
            {k: v for k, v in filters.items() if v is not None},
        )
        notes = [f"Store: {store.describe()}"]
    if rows.is_empty():
        notes.insert(0, f"No changes in the last {format_duration(since)} that match.")
    if fmt == "table":
        render.emit(render.diff(rows), output, notes)
    else:
        render.write(rows, fmt, output, notes=notes)


def _filters(**given: str | None) -> dict[str, str]:
    return {k: v for k, v in given.items() if v is not None}


@cli.group(
    invoke_without_command=True,
    short_help="Drift from declared manifests or approved state, or across clusters.",
)
@click.option("--cluster", help="Only this cluster (with --baseline: the cluster compared).")
@click.option("--namespace", help="Only this namespace.")
@click.option("--kind", help="Only objects of this kind.")
@click.option("--name", help="Only this object.")
@click.option(
    "--baseline",
    "source",
    metavar="DIR|FILE|GIT_URL@REF",
    help="Compare the store's live objects of --cluster with these manifests (plain YAML, "
    "multi-document; Kustomize or Helm output rendered to files), and record them as "
    "the cluster's declared baseline.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="With --baseline: normalise the manifests by a server-side dry-run apply on this "
    "cluster (defaults, canonical quantities), as Argo CD's server-side diff does.",
)
@click.option("--context", help="The kubeconfig context (default: its current one).")
@click.option(
    "--across",
    metavar="CLUSTER,CLUSTER[,...]",
    help="Where the same workloads differ between these clusters (or environments).",
)
@click.option(
    "--identity-label",
    metavar="LABEL",
    help="With --across: workloads are the same when this label's value (and kind) match, "
    "not their namespace and name.",
)
@click.option(
    "--publish",
    is_flag=True,
    help="With --baseline: send the baselines to Kafka for the running workers, "
    "instead of comparing here.",
)
@output_options
@click.pass_context
def drift(
    ctx: click.Context,
    /,
    source: str | None,
    kubeconfig: Path | None,
    context: str | None,
    across: str | None,
    identity_label: str | None,
    publish: bool,
    fmt: render.Format,
    output: Path | None,
    **filters: str | None,
) -> None:
    """Print open drift (drift findings of the drift processor: live objects against their
    declared or approved baseline), one row per drifted field. With --baseline, compare
    the store's live objects of a cluster with a manifest set first; with --across,
    compare clusters with each other."""
    if ctx.invoked_subcommand is not None:
        return
    from kubeopera.cli import drift as drifts
    from kubeopera.reports import open_drift

    settings, given = _settings(ctx), _filters(**filters)
    if source is not None and across is not None:
        raise click.UsageError("give --baseline or --across, not both")
    if (kubeconfig or publish) and source is None:
        raise click.UsageError("--kubeconfig and --publish go with --baseline")
    if identity_label and across is None:
        raise click.UsageError("--identity-label goes with --across")
    if source is not None and "cluster" not in given:
        raise click.UsageError("--baseline needs --cluster: the cluster it declares")
    with settings.open_store() as store:
        if across is not None:
            rows, notes = drifts.across_report(store, across, given, identity_label)
            render.write(rows, fmt, output, title="Differences across clusters", notes=notes)
            return
        notes = []
        if source is not None:
            declared = drifts.Declared(source, given["cluster"], kubeconfig, context)
            note = drifts.load_declared(settings, store, declared, given, publish)
            if publish:
                click.echo(note)
                return
            notes.append(note)
            given["baseline"] = "declared"
        rows = open_drift(store, given)
        notes.append(f"Store: {store.describe()}")
    if rows.is_empty():
        notes.insert(0, "No open drift that matches.")
    render.write(rows, fmt, output, title="Open drift", notes=notes)


@drift.command(short_help="Record the live state of a scope as its approved baseline.")
@click.option("--cluster", help="Only this cluster (default: every cluster in the store).")
@click.option("--namespace", required=True, help="The namespace to approve.")
@click.option("--kind", help="Only objects of this kind.")
@click.option("--name", help="Only this object.")
@click.option("--publish", is_flag=True, help="Send to Kafka for the running workers.")
@click.pass_context
def approve(ctx: click.Context, /, publish: bool, **filters: str | None) -> None:
    """Record the store's live objects of a namespace (objects a controller made left
    out) as their approved baseline: changes after it are drift until approved again.
    Open drift from the approved baseline in the scope resolves."""
    from kubeopera.cli import drift as drifts

    settings, given = _settings(ctx), _filters(**filters)
    who = drifts.approver()
    with settings.open_store() as store:
        baselines = drifts.approved_baselines(store, given, who)
        if not baselines:
            scope = ", ".join(f"{k} {v}" for k, v in sorted(given.items()))
            raise click.ClickException(f"no live objects in the store match {scope}")
        if publish:
            from kubeopera.cli.publish import publish as send
            from kubeopera.models import Topic

            send(settings, Topic.BASELINES, baselines, "baselines")
        else:
            drifts.compare(settings, store, baselines)
    clusters = sorted({b.cluster for b in baselines})
    click.echo(
        f"approved {len(baselines)} objects in {', '.join(clusters)} as their baseline "
        f"(by {who})" + (": published" if publish else "")
    )


@cli.group(invoke_without_command=True, short_help="Anomalies found (and the detectors' eval).")
@duration_option("--since", "24h", "How far back from now.", reaching_back=True)
@click.option(
    "--kind",
    type=click.Choice(["cost", "usage", "restarts", "warnings"]),
    help="Only anomalies of cost, of usage (CPU, memory), of restarts (OOM kills too) or "
    "of Warning Events.",
)
@output_options
@click.pass_context
def anomalies(
    ctx: click.Context,
    /,
    since: timedelta,
    kind: str | None,
    fmt: render.Format,
    output: Path | None,
) -> None:
    """Print the anomaly episodes open now or ended within --since (written by the
    anomalies processor, which runs by default), newest first: when each began and
    ended, the series, what it was when it opened against the most its detector
    expected."""
    if ctx.invoked_subcommand is not None:
        return
    from kubeopera.reports import anomalies as found

    with _settings(ctx).open_store() as store:
        rows = found(store, window_start(since, datetime.now(UTC)), kind)
        notes = [f"Store: {store.describe()}"]
    if rows.is_empty():
        notes.insert(0, f"No anomalies in the last {format_duration(since)} that match.")
    if fmt == "table":
        rows = render.anomaly_rows(rows)
    render.write(rows, fmt, output, title="Anomalies (UTC)", notes=notes)


@anomalies.command("eval", short_help="Score the detectors the NAB way on a NAB-style corpus.")
@click.option(
    "--nab",
    "folder",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder laid out like NAB's: data/<group>/<series>.csv, labels/combined_windows.json.",
)
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    type=click.Choice(DETECTORS),
    help="Only these detectors (repeatable; default: all).",
)
@click.option("--verbose", is_flag=True, help="Each series' raw score and counts too.")
@output_options
def evaluate_detectors(
    folder: Path,
    detectors: tuple[str, ...],
    verbose: bool,
    fmt: render.Format,
    output: Path | None,
) -> None:
    """Score every detector on the corpus under NAB's three profiles (standard,
    reward_low_FP_rate, reward_low_FN_rate), each at the threshold that scores best
    there; 0 is detecting nothing, 100 every window at its first point."""
    import polars as pl

    from kubeopera.reports.anomaly_eval import evaluate
    from kubeopera.reports.nab_corpus import load_corpus

    corpus = load_corpus(folder)
    results = evaluate(corpus, detectors or DETECTORS)
    if verbose:
        rows = pl.DataFrame(
            [
                {"detector": r.detector, "profile": r.profile, "series": name, "raw": raw,
                 "windows_detected": tp, "false_positives": fp, "windows_missed": fn}
                for r in results
                for name, (raw, tp, fp, fn) in r.series.items()
            ]
        )  # fmt: skip
    else:
        rows = (
            pl.DataFrame(
                [{"detector": r.detector, "profile": r.profile, "score": r.score} for r in results]
            )
            .pivot("profile", index="detector", values="score")
            .sort("standard", descending=True)
        )
    windows = sum(len(s.windows) for s in corpus)
    notes = [f"{len(corpus)} series, {windows} anomaly windows, from {folder}"]
    render.write(
        rows, fmt, output, title="NAB scores (0: nothing detected, 100: perfect)", notes=notes
    )


def _target(
    team: str | None, namespace: str | None, cluster: str | None, label: str | None
) -> tuple[str, str]:
    named = (("team", team), ("namespace", namespace), ("cluster", cluster), ("label", label))
    given = [(scope, target.strip()) for scope, target in named if target is not None]
    if len(given) != 1:
        raise click.UsageError(
            "name one of --team, --namespace CLUSTER/NAMESPACE, --cluster, --label KEY=VALUE"
        )
    scope, target = given[0]
    if not target:
        raise click.UsageError(f"--{scope} is empty")
    if scope == "namespace" and not re.fullmatch(r"[^/\s]+/[^/\s]+", target):
        raise click.UsageError(f"--namespace takes CLUSTER/NAMESPACE, got {target!r}")
    if scope == "label" and not re.fullmatch(r"[^=\s]+=[^=\s]*", target):
        raise click.UsageError(f"--label takes KEY=VALUE, got {target!r}")
    return scope, target


def budget_target(command: FC) -> FC:
    """The options naming a budget's target and period."""
    for option in reversed(
        [
            click.option("--team", help="The team's cost (across its clusters)."),
            click.option("--namespace", metavar="CLUSTER/NAMESPACE", help="A namespace's cost."),
            click.option("--cluster", help="A cluster's cost (its idle included)."),
            click.option(
                "--label",
                metavar="KEY=VALUE",
                help="The cost of the pods with this label (KEY must be in the settings' "
                "cost.series_labels).",
            ),
        ]
    ):
        command = option(command)
    return command


@cli.group(short_help="Budgets per team, namespace or cluster, with forecasts.")
def budgets() -> None:
    """Weekly or monthly budgets (UTC weeks from Monday, calendar months), stored in
    ClickHouse; the budgets processor forecasts each to the end of its period and opens
    findings at its thresholds."""


@budgets.command("set", short_help="Set (or replace) a budget.")
@budget_target
@click.option("--monthly", type=float, metavar="USD", help="The amount per calendar month.")
@click.option("--weekly", type=float, metavar="USD", help="The amount per week (from Monday).")
@click.option(
    "--thresholds",
    default="0.8,1.0",
    show_default=True,
    metavar="SHARE,...",
    help="Shares of the amount at which actual or forecast spend opens a finding.",
)
@click.option("--publish", is_flag=True, help="Send it to Kafka for the running workers too.")
@click.pass_context
def set_budget(
    ctx: click.Context,
    /,
    team: str | None,
    namespace: str | None,
    cluster: str | None,
    label: str | None,
    monthly: float | None,
    weekly: float | None,
    thresholds: str,
    publish: bool,
) -> None:
    """Set the budget of a team, a namespace or a cluster (setting it again replaces it).
    Spend so far in the period counts: the status is worked out from the store's costs."""
    from pydantic import ValidationError

    from kubeopera.models import Budget
    from kubeopera.reports import record_budgets

    scope, target = _target(team, namespace, cluster, label)
    settings = _settings(ctx)
    key = target.partition("=")[0]
    if scope == "label" and key not in settings.cost.series_labels:
        raise click.UsageError(
            f"--label {key}=...: add {key} to cost.series_labels in the settings first "
            "(the cost processor sends cost series for those label keys)"
        )
    if (monthly is None) == (weekly is None):
        raise click.UsageError("give --monthly USD or --weekly USD")
    try:
        shares = [float(t) for t in thresholds.split(",") if t.strip()]
    except ValueError as error:
        raise click.UsageError(f"--thresholds takes shares like 0.8,1.0: {error}") from error
    try:
        budget = Budget(
            scope=scope, target=target, period="monthly" if monthly is not None else "weekly",
            amount=monthly if monthly is not None else weekly, thresholds=shares,
            recorded_at=datetime.now(UTC),
        )  # fmt: skip
    except (ValueError, ValidationError) as error:
        raise click.UsageError(_first_error(error)) from error
    if publish:  # first: a budget the workers cannot have is not recorded either
        from kubeopera.cli.publish import publish as send
        from kubeopera.models import Topic

        send(settings, Topic.BUDGETS, [budget], "budgets")
    with settings.open_store() as store:
        record_budgets(store, [budget], datetime.now(UTC))
    click.echo(
        f"budget {budget.name()}: ${budget.amount:,.2f} a {budget.period.removesuffix('ly')}"
        f"{' (published)' if publish else ''}"
    )


def _first_error(error: Exception) -> str:
    """A model's refusal as one line: the field and why."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return str(error)


@budgets.command("delete", short_help="Withdraw a budget.")
@budget_target
@click.option("--period", type=click.Choice(["weekly", "monthly"]), required=True)
@click.option("--publish", is_flag=True, help="Send the deletion to Kafka too.")
@click.pass_context
def delete_budget(
    ctx: click.Context,
    /,
    team: str | None,
    namespace: str | None,
    cluster: str | None,
    label: str | None,
    period: str,
    publish: bool,
) -> None:
    """Withdraw a budget: it is no longer reported, and opens no finding."""
    from kubeopera.reports import record_budgets, recorded_budgets

    scope, target = _target(team, namespace, cluster, label)
    settings = _settings(ctx)
    with settings.open_store() as store:
        known = {b.name(): b for b in recorded_budgets(store) if not b.deleted}
        name = f"{scope}/{target}/{period}"
        if name not in known:
            raise click.ClickException(f"no budget {name} (see kubeopera budgets status)")
        gone = known[name].model_copy(update={"deleted": True, "recorded_at": datetime.now(UTC)})
        if publish:
            from kubeopera.cli.publish import publish as send
            from kubeopera.models import Topic

            send(settings, Topic.BUDGETS, [gone], "budgets")
        record_budgets(store, [gone], datetime.now(UTC))
    click.echo(f"budget {name} deleted")


@budgets.command("status", short_help="Spend so far, forecast and its interval per budget.")
@output_options
@click.pass_context
def budget_status(ctx: click.Context, /, fmt: render.Format, output: Path | None) -> None:
    """Each budget: its amount, the spend so far in the current period, the forecast to
    the period's end from the hourly cost's weekly pattern, with its 90 % interval."""
    from kubeopera.reports import budget_report

    with _settings(ctx).open_store() as store:
        rows = budget_report(store, datetime.now(UTC))
        notes = [f"Store: {store.describe()}"]
    if rows.is_empty():
        notes.insert(0, "No budgets: set one with kubeopera budgets set --team T --monthly USD.")
    render.write(rows, fmt, output, title="Budgets", notes=notes)


cli.add_command(alerts)
cli.add_command(actions)
cli.add_command(dashboards)
cli.add_command(report)


@cli.command(short_help="Apply pending ClickHouse schema migrations.")
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply pending ClickHouse migrations (also done by every command that opens the store)."""
    from kubeopera.reports import schema_status

    settings = _settings(ctx)
    with settings.open_store() as store:
        latest, count = schema_status(store)
        click.echo(f"{store.describe()}: schema at migration {latest} ({count} applied)")


def main() -> None:
    """Entry point: a user error prints one line and exits non-zero.

    ``KUBEOPERA_DEBUG=1`` shows the traceback instead.
    """
    stop_on_sigterm()  # what a command started stops with it (the worker: Faust's own)
    try:
        code = cli.main(standalone_mode=False, prog_name="kubeopera")
    except click.exceptions.Abort:
        click.echo("kubeopera: aborted", err=True)
        sys.exit(130)
    except click.UsageError as error:
        click.echo(
            f"kubeopera: error: {' '.join(error.format_message().split())} "
            f"(see {_command(error)} --help)",
            err=True,
        )
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"kubeopera: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except Exception as error:
        if not isinstance(error, _user_errors()) or os.environ.get("KUBEOPERA_DEBUG"):
            raise
        click.echo(
            f"kubeopera: error: {first_line(error)}",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean the user must change something: one line, no traceback. Imported
    only once one happened: they live in modules a light command never loads."""
    from kafka.errors import KafkaError
    from urllib3.exceptions import HTTPError

    from kubeopera.collectors.simulator.replay import ReplayError
    from kubeopera.deploy.kafka import BrokerError
    from kubeopera.deploy.testcluster import ClusterError
    from kubeopera.models.catalogue import CatalogueError
    from kubeopera.settings import SettingsError
    from kubeopera.sinks.clickhouse import ClickHouseError

    return (
        SettingsError,
        CatalogueError,
        ClickHouseError,
        BrokerError,
        ClusterError,
        ReplayError,
        KafkaError,
        HTTPError,  # an API server that cannot be reached
        ValueError,
        OSError,
    )


def _command(error: click.UsageError) -> str:
    """The command the error is about, as typed (``kubeopera dev kafka``)."""
    return error.ctx.command_path if error.ctx else "kubeopera"
