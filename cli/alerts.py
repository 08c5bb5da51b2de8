"""``kubeopera alerts``: the notifier, and its subscriptions, silences and record."""

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubeopera.cli import render
from kubeopera.cli.fleet import duration_option
from kubeopera.settings import Settings
from kubeopera.settings.durations import parse_duration

if TYPE_CHECKING:
    from kubeopera.alerts.delivery import Poster
    from kubeopera.settings.subscriptions import Subscriptions

subscriptions_option = click.option(
    "--subscriptions",
    "-s",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="KUBEOPERA_SUBSCRIPTIONS",
    required=True,
    help="The subscriptions YAML file (default $KUBEOPERA_SUBSCRIPTIONS).",
)


@click.group(short_help="Send findings to Slack, PagerDuty and webhooks; silences.")
def alerts() -> None:
    """The notifier and its tools. Subscriptions (a YAML file) say which findings go to
    which receiver, grouped how; secrets come from environment variables or files."""


def _poster(subscriptions: "Subscriptions") -> "Poster":
    import requests

    from kubeopera.alerts.delivery import Poster

    session = requests.Session()
    session.headers["User-Agent"] = "KubeOpera-notifier"
    return Poster(subscriptions.delivery, session)


@alerts.command(short_help="Run the notifier.")
@subscriptions_option
@click.option(
    "--source",
    type=click.Choice(["kafka", "store"]),
    default="kafka",
    show_default=True,
    help="kafka: the findings topic (kafka.bootstrap_servers); store: the findings table, "
    "read every 5 s.",
)
@click.option("--stop-after", type=click.FloatRange(min=0), help="Seconds to run, then stop.")
@click.pass_obj
def run(settings: Settings, path: Path, source: str, stop_after: float | None) -> None:
    """Read findings, route them by the subscriptions, group and deduplicate them as
    Alertmanager does, deliver them and record every attempt (v_alert_deliveries). A
    restart tells nothing twice: what each group was told is read back from the store."""
    from kubeopera.alerts.notifier import Notifier
    from kubeopera.alerts.notifier import run as run_notifier
    from kubeopera.alerts.sources import FindingSource, StoreSource, TopicSource
    from kubeopera.settings.subscriptions import load_subscriptions

    subscriptions, secrets = load_subscriptions(path)  # nothing starts half-configured
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    if stop_after is not None:
        threading.Timer(stop_after, stop.set).start()
    with settings.open_store() as store:
        notifier = Notifier(subscriptions, secrets, store, _poster(subscriptions))
        reader: FindingSource
        if source == "kafka":
            kafka = settings.kafka
            quiet = logging.getLogger("kafka")
            quiet.setLevel(logging.CRITICAL)  # no broker yet: one line of ours says so
            reader = TopicSource(kafka.bootstrap_servers, **kafka.client_options())
            quiet.setLevel(logging.ERROR)
        else:
            reader = StoreSource(store)
        names = ", ".join(s.name for s in subscriptions.subscriptions)
        click.echo(
            f"notifier: {len(subscriptions.subscriptions)} subscriptions ({names}); "
            f"findings from {source}; {len(notifier.router.log)} groups told before; "
            f"store {store.describe()}",
            err=True,
        )
        try:
            run_notifier(notifier, reader, stop)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            reader.close()


@alerts.command(short_help="Send a sample finding to one subscription's receiver.")
@click.argument("subscription")
@subscriptions_option
@click.pass_obj
def test(settings: Settings, subscription: str, path: Path) -> None:
    """Send a sample finding through SUBSCRIPTION's real formatter and receiver (to
    PagerDuty a trigger, then its resolve, so no incident stays open). Its attempts are
    recorded; no group's log changes."""
    from kubeopera.alerts.delivery import hide_in_logs
    from kubeopera.alerts.notifier import test_notification
    from kubeopera.alerts.records import record_attempts
    from kubeopera.settings.subscriptions import load_subscriptions, read_subscriptions

    names = [s.name for s in read_subscriptions(path).subscriptions]
    if subscription not in names:
        raise click.BadParameter(
            f"{subscription!r} is not in {path} ({', '.join(names)})", param_hint="SUBSCRIPTION"
        )
    subscriptions, secrets = load_subscriptions(path, only=subscription)  # its secrets alone
    hide_in_logs(secrets.values())
    (chosen,) = [s for s in subscriptions.subscriptions if s.name == subscription]
    told, rows = test_notification(chosen, secrets, _poster(subscriptions), datetime.now(UTC))
    with settings.open_store() as store:
        record_attempts(store, rows)
    for row in rows:
        status = row["status_code"] if row["status_code"] is not None else "no answer"
        click.echo(
            f"{row['request']}: attempt {row['attempt']}: {status} {row['outcome']}"
            + (f" ({row['reason']})" if row["reason"] else "")
        )
    if not told:
        raise click.ClickException(f"{subscription}: the receiver did not take the sample")


@alerts.command(short_help="Print what would have been sent over past findings.")
@subscriptions_option
@duration_option("--since", "24h", "How far back the findings go.", reaching_back=True)
@click.pass_obj
def preview(settings: Settings, path: Path, since: timedelta) -> None:
    """Replay the findings of the last --since through the subscriptions (grouping and
    silences as they were then) and print each message that would have been sent,
    without sending. Secrets are not needed."""
    from kubeopera.alerts.preview import preview as replay
    from kubeopera.alerts.records import finding_states, silences, subject_labels
    from kubeopera.settings.subscriptions import read_subscriptions

    subscriptions = read_subscriptions(path)
    now = datetime.now(UTC)
    with settings.open_store() as store:
        store.read_only()
        states = finding_states(store, now - since)
        labels = subject_labels(store, (f.subject for f in states))
        notifications = replay(subscriptions.subscriptions, states, silences(store), labels, now)
        described = store.describe()
    if not notifications:
        click.echo(f"Nothing would have been sent: {len(states)} finding states since then.")
    for n in notifications:
        what = f"{len(n.firing)} firing, {len(n.resolved)} resolved"
        click.echo(f"{n.due_at:%Y-%m-%d %H:%M:%S} {n.subscription.name} [{n.group_key}] {what}")
        for finding in (*n.firing, *n.resolved):
            click.echo(
                f"    {finding.status.value:<8} {finding.severity.value:<8} {finding.summary}"
            )
    click.echo(f"Store: {described}")


@alerts.command(short_help="Silence findings that match, for a while.")
@click.option(
    "--match",
    "-m",
    "matchers",
    multiple=True,
    required=True,
    metavar="FIELD=REGEX",
    help="kind, severity, cluster, namespace, subject_kind, name or fingerprint "
    "(regular expression, matched in full); repeat: all must match.",
)
@click.option("--for", "duration", default="2h", show_default=True, metavar="DURATION")
@click.option("--comment", "-c", required=True, help="Why (shown by alerts silences).")
@click.option("--by", default=lambda: _who(), help="Who (default: the user running it).")  # noqa: PLW0108 - called when run
@click.pass_obj
def silence(
    settings: Settings, matchers: tuple[str, ...], duration: str, comment: str, by: str
) -> None:
    """Silence every finding all --match matchers match, from now for --for."""
    from kubeopera.alerts.records import save_silence
    from kubeopera.alerts.silences import Silence

    try:
        length = parse_duration(duration)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--for") from None
    if not comment.strip():
        raise click.BadParameter("say why (it is shown with the silence)", param_hint="--comment")
    now = datetime.now(UTC)
    created = Silence.create(list(matchers), now, length, by, comment)
    with settings.open_store() as store:
        save_silence(store, created, now)
    click.echo(f"Silence {created.id} until {created.ends_at:%Y-%m-%d %H:%M} UTC")


def _who() -> str:
    from kubeopera.cli.drift import approver  # the drift commands' imports: when it runs

    return approver()


@alerts.command(short_help="List the silences.")
@click.option("--all", "everything", is_flag=True, help="Also those ended.")
@click.pass_obj
def silences(settings: Settings, everything: bool) -> None:
    """The silences active or pending (with --all, also those ended), newest first."""
    import polars as pl

    from kubeopera.alerts.records import silences as stored

    now = datetime.now(UTC)
    with settings.open_store() as store:
        store.read_only()
        found = [s for s in stored(store) if everything or s.ends_at > now]
    rows = pl.DataFrame(
        [
            {
                "id": s.id,
                "matchers": ", ".join(f"{k}={v}" for k, v in s.matchers.items()),
                "starts_at": f"{s.starts_at:%Y-%m-%d %H:%M}",
                "ends_at": f"{s.ends_at:%Y-%m-%d %H:%M}",
                "state": "active" if s.active(now) else "ended" if s.ends_at <= now else "pending",
                "created_by": s.created_by,
                "comment": s.comment,
            }
            for s in found
        ],
        schema=["id", "matchers", "starts_at", "ends_at", "state", "created_by", "comment"],
    )
    notes = [] if found else ["No silences" + ("." if everything else " active or pending.")]
    render.write(rows, "table", title="Silences (UTC)", notes=notes, empty_table=False)


@alerts.command(short_help="End a silence now.")
@click.argument("silence_id")
@click.pass_obj
def unsilence(settings: Settings, silence_id: str) -> None:
    """End the silence SILENCE_ID now (it stays listed with --all)."""
    from kubeopera.alerts.records import save_silence
    from kubeopera.alerts.records import silences as stored

    now = datetime.now(UTC)
    with settings.open_store() as store:
        found = {s.id: s for s in stored(store)}.get(silence_id)
        if found is None:
            raise click.ClickException(
                f"no silence {silence_id!r}: kubeopera alerts silences lists them"
            )
        if found.ends_at > now:
            save_silence(
                store, found.model_copy(update={"ends_at": max(now, found.starts_at)}), now
            )
    click.echo(f"Silence {silence_id} ended")
