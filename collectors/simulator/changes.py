"""What happens to a cluster over the run: the scenario, played step by step.

Rollouts through each Deployment's usual manager, manual ``kubectl edit``, OOMKills,
a release that crash-loops and is rolled back, recurring Jobs, the pending pod's
repeating FailedScheduling and the one cost spike (a training burst on two big on-demand
nodes). Scripted moments are fixed when the scenario is made; random ones are drawn per
step at rates that keep long runs eventful but never drifting.
"""

import math
import random
from dataclasses import replace
from datetime import datetime, timedelta

from kubeopera.collectors.simulator.cluster import Cluster, Out
from kubeopera.collectors.simulator.fleet import PROCESSES
from kubeopera.collectors.simulator.inventory import (
    new_container,
    new_image,
    new_replica_set,
    new_workload,
)
from kubeopera.collectors.simulator.kube import MIB, cpu_text, memory_text, si
from kubeopera.collectors.simulator.spec import EPOCH, HOUR, FleetSpec
from kubeopera.collectors.simulator.state import (
    ContainerSpec,
    Injection,
    JobRun,
    Pod,
    ReplicaSet,
    Series,
    Workload,
    never,
)
from kubeopera.models.objects import ChangeType, ObjectRef

WEEKEND_JOB = ("analytics", "weekend-report")
"""The namespace and name of the batch job that runs every Saturday and Sunday."""
WEEKEND_RUN = (timedelta(hours=6), timedelta(hours=12))
"""When in the day it runs, UTC."""


def _on_a_weekday(spec: FleetSpec, step: int) -> int:
    """``step``, or when it falls on a weekend 09:00 of the next Monday (15:00 of the Friday
    before when the run ends first; ``step`` itself when the run has neither): a seasonal
    detector judges an hour of the week it has seen, and the run's weekdays come first."""
    t = spec.start + step * spec.resolution
    if t.weekday() < 5:
        return step
    monday = (t + timedelta(days=7 - t.weekday())).replace(hour=9, minute=0, second=0)
    friday = (t - timedelta(days=t.weekday() - 4)).replace(hour=15, minute=0, second=0)
    for moved in (monday, friday):
        if spec.start < moved < spec.start + spec.duration:
            return (moved - spec.start) // spec.resolution
    return step


def _on_the_hour(spec: FleetSpec, step: int) -> int:
    """The step that starts the hour of ``step`` (not step 0): an injection that starts on
    the hour fills all of the hour it starts in."""
    per_hour = HOUR // spec.resolution
    return max(step - step % per_hour, min(per_hour, step))


def _step_of(steps: int, fraction: float) -> int | None:
    """The step at a fraction of the run, never step 0 (that one holds the inventory)."""
    return min(steps - 1, max(1, round(fraction * steps))) if steps > 1 else None


class Scenario:
    """The scripted and random changes of one cluster; `advance` plays one step of them."""

    def __init__(self, cluster: Cluster) -> None:
        """Plan the scripted moments of the run (rates add more of the same over long runs)."""
        self.cluster = cluster
        self.rng = cluster.rng
        self.spec = spec = cluster.spec
        self.repeat = max(1, math.ceil(timedelta(minutes=5) / spec.resolution))
        self.runs: dict[str, JobRun] = {}
        self.crash_pod: Pod | None = None
        rng, steps = self.rng, spec.steps
        self.at_rollout = _step_of(steps, 0.15 + rng.uniform(-0.05, 0.05))
        self.at_edit = _step_of(steps, 0.25 + rng.uniform(-0.05, 0.05))
        self.at_oom = _step_of(steps, 0.33 + rng.uniform(-0.05, 0.05))
        self.at_crash = _step_of(steps, 0.5) if cluster.crash_target else None
        self.at_fix = _step_of(steps, 0.7) if cluster.crash_target else None
        self.burst: tuple[int, int] | None = None
        length = min(round(3 * HOUR / spec.resolution), steps - 4)
        if cluster.index == 0 and length >= 1:
            begin = min(max(1, round(0.4 * steps - length / 2)), steps - 3 - length)
            begin = min(_on_a_weekday(spec, begin), steps - 3 - length)
            self.burst = (begin, begin + length)
        self.injections: list[Injection] = []
        self.leak: tuple[int, Workload] | None = None
        self.storm: tuple[int, int, Workload] | None = None
        self.storm_events: dict[str, Series] = {}  # pod uid -> its BackOff Event
        if cluster.index == 0:
            self._plan_injections()
        hours = spec.resolution / HOUR
        self.chance = {
            kind: 1 - math.exp(-rate * hours)
            for kind, rate in (("rollout", 0.2), ("edit", 0.03), ("oom", 0.04))
        }

    def _plan_injections(self) -> None:
        """The first cluster's ground truth for the anomaly detectors: the cost spike
        (the training burst), a memory leak and a restart storm, each on a weekday (a
        seasonal detector judges an hour of the week it has seen), and a batch job
        that runs every weekend (normal: no detector may flag it). Targets are drawn
        from a generator of their own, so the rest of the fleet is as it was."""
        spec, cluster, name = self.spec, self.cluster, self.cluster.name
        steps = spec.steps

        def at(step: int) -> datetime:
            return spec.start + step * spec.resolution

        if self.burst is not None:
            begin, over = self.burst
            minutes = int((at(begin) - EPOCH) / timedelta(minutes=1))
            job = f"train-ranker-{minutes}"
            self.injections.append(
                Injection("cost_spike", name, "ml-training", "Job", job, at(begin), at(over))
            )
        rng = random.Random(f"{spec.seed}/{name}/injections")
        targets = [
            w
            for w in cluster.workloads
            if w.kind == "Deployment" and w.team != "platform" and w is not cluster.crash_target
        ]
        if len(targets) < 2 or steps < 4:
            return
        leak, storm = rng.sample(targets, 2)
        length = max(1, round(2 * HOUR / spec.resolution))
        begin_leak = _on_the_hour(spec, _on_a_weekday(spec, _step_of(steps, 0.55) or 1))
        begin_storm = _on_the_hour(spec, _on_a_weekday(spec, _step_of(steps, 0.75) or 1))
        self.leak = (begin_leak, leak)
        self.storm = (begin_storm, min(steps, begin_storm + length), storm)
        end = spec.start + spec.duration
        self.injections += [
            Injection("memory_leak", name, leak.namespace, "Deployment", leak.name,
                      at(begin_leak), end),
            Injection("restart_storm", name, storm.namespace, "Deployment", storm.name,
                      at(begin_storm), at(self.storm[1])),
        ]  # fmt: skip
        day = spec.start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            run = day + WEEKEND_RUN[0]
            if day.weekday() >= 5 and spec.start <= run < end:
                self.injections.append(
                    Injection("weekend_batch", name, WEEKEND_JOB[0], "Job", WEEKEND_JOB[1],
                              run, min(end, day + WEEKEND_RUN[1]))
                )  # fmt: skip
            day += timedelta(days=1)

    def advance(self, step: int, t: datetime, out: Out) -> None:
        """Apply what happens at this step and emit the resulting objects and events."""
        self.cluster.step, self.cluster.t = step, t
        if step == 0:
            self.cluster.emit_inventory(out)
        else:
            self._retry_pending(out)
            self._run_burst(out)
            self._run_injections(out)
            self._run_jobs(out)
            self._run_crashloop(out)
            rolls = [self.rng.random() for _ in self.chance]
            if step == self.at_rollout or rolls[0] < self.chance["rollout"]:
                self._rollout(out)
            if step == self.at_edit or rolls[1] < self.chance["edit"]:
                self._edit(out, "scale" if step == self.at_edit else None)
            if step == self.at_oom or rolls[2] < self.chance["oom"]:
                self._oom(out)
        self._repeat_events(out)

    # -- rollouts and manual edits -----------------------------------------------------

    def _deployments(self) -> list[Workload]:
        """Team Deployments open to a change (not the one whose rollout is stalled)."""
        stalled = self.crash_pod.workload if self.crash_pod is not None else None
        return [
            w
            for w in self.cluster.workloads
            if w.kind == "Deployment" and w.pods and w is not stalled and w.team != "platform"
        ]

    def _rollout(self, out: Out) -> None:
        """A new image through the Deployment's usual manager (Argo CD, kubectl apply)."""
        candidates = self._deployments()
        if candidates:
            wl = self.rng.choice(candidates)
            main = wl.containers[0]
            self._roll(
                out,
                wl,
                [replace(main, image=self._bump(main.image)), *wl.containers[1:]],
                wl.manager,
            )

    def _roll(self, out: Out, wl: Workload, containers: list[ContainerSpec], manager: str) -> None:
        """New template: a new ReplicaSet, and every pod replaced where it ran if it fits."""
        self._new_revision(out, wl, containers, manager)
        for old in list(wl.pods):
            node = old.node
            self.cluster.delete_pod(out, old)
            self.cluster.schedule(out, self.cluster.new_pod(wl), prefer=node)

    def _new_revision(
        self,
        out: Out,
        wl: Workload,
        containers: list[ContainerSpec],
        manager: str,
        *,
        stalled: bool = False,
    ) -> ReplicaSet:
        """Deployment MODIFIED and a new ReplicaSet; older ones scale to 0 unless it stalls."""
        wl.containers = containers
        wl.generation += 1
        wl.revision = max(rs.revision for rs in wl.replica_sets) + 1
        self.cluster.emit_workload(out, wl, ChangeType.MODIFIED, manager)
        replicas = 1 if stalled else wl.replicas  # maxSurge 1: one new pod that never gets ready
        if not stalled:
            for old in wl.replica_sets:
                if old.replicas:
                    old.replicas, old.generation = 0, old.generation + 1
                    self.cluster.emit_rs(out, wl, old, ChangeType.MODIFIED)
        rs = new_replica_set(self.cluster, wl, replicas, containers)
        wl.replica_sets.append(rs)
        self.cluster.emit_rs(out, wl, rs, ChangeType.ADDED)
        if len(wl.replica_sets) > 3:  # revisionHistoryLimit: 2
            self.cluster.emit_rs(out, wl, wl.replica_sets.pop(0), ChangeType.DELETED)
        return rs

    def _bump(self, image: str) -> str:
        repo, _, tag = image.rpartition(":")
        major, minor, patch = (int(p) for p in tag.lstrip("v").split("."))
        if self.rng.random() < 0.7:
            return f"{repo}:v{major}.{minor}.{patch + 1}"
        return f"{repo}:v{major}.{minor + 1}.0"

    def _edit(self, out: Out, kind: str | None) -> None:
        """Someone ran kubectl edit: one replica more or fewer, or resources (rolls the pods)."""
        rng = self.rng
        candidates = self._deployments()
        if not candidates:
            return
        wl = rng.choice(candidates)
        kind = kind or rng.choice(("scale", "resources"))
        base = wl.first_main  # edits vary around the original, so nothing drifts over long runs
        if kind == "resources" and base.cpu_request is not None and base.memory_request is not None:
            cpu = max(0.05, round(si(base.cpu_request) * rng.choice((0.5, 1.5, 2)) * 20) / 20)
            memory = memory_text(si(base.memory_request) // MIB * 3 // 2 * MIB)
            edited = replace(
                wl.containers[0],
                cpu_request=cpu_text(cpu),
                memory_limit=memory if base.memory_limit else None,
            )
            self._roll(out, wl, [edited, *wl.containers[1:]], "kubectl-edit")
            return
        grow = wl.replicas <= wl.first_replicas
        wl.replicas += 1 if grow else -1
        wl.generation += 1
        self.cluster.emit_workload(out, wl, ChangeType.MODIFIED, "kubectl-edit")
        rs = wl.replica_sets[-1]
        rs.replicas, rs.generation = wl.replicas, rs.generation + 1
        self.cluster.emit_rs(out, wl, rs, ChangeType.MODIFIED)
        if grow:
            self.cluster.schedule(out, self.cluster.new_pod(wl))
        else:
            self.cluster.delete_pod(
                out, next((p for p in wl.pods if p.phase == "Pending"), wl.pods[-1])
            )

    # -- incidents ---------------------------------------------------------------------

    def _oom(self, out: Out) -> None:
        """The kernel kills a container at its memory limit; kubelet restarts it."""
        rng = self.rng
        candidates = [
            (spec.memory_usage / (spec.si.memory_limit_bytes or 1), pod, k)
            for node in self.cluster.nodes
            for pod in node.pods
            if pod.phase == "Running"
            for k, spec in enumerate(pod.containers)
            if spec.si.memory_limit_bytes
        ]
        if not candidates:
            return
        candidates.sort(key=lambda c: -c[0])
        _, pod, k = rng.choice(candidates[:5])
        node = pod.node or never()
        self.cluster.restart(pod, k, 1, "OOMKilled")
        pod.oom_at[k] = self.cluster.t
        self.cluster.emit_pod(out, pod, ChangeType.MODIFIED, "kubelet")
        limit = int((pod.containers[k].si.memory_limit_bytes or 0) // 1024)
        message = (
            f"Memory cgroup out of memory: Killed process {rng.randint(1000, 99999)} "
            f"({rng.choice(PROCESSES)}) total-vm:{limit * 2}kB, anon-rss:{limit}kB, "
            f"file-rss:{rng.randint(1000, 90000)}kB, shmem-rss:0kB, "
            f"UID:{rng.choice((0, 1000, 65532))} pgtables:{rng.randint(500, 9000)}kB "
            f"oom_score_adj:{rng.choice((-997, 936, 999))}"
        )
        involved = ObjectRef(kind="Node", name=node.name, uid=node.uid)
        self.cluster.event(
            out,
            "Warning",
            "OOMKilling",
            message,
            involved,
            "default",
            "kernel-monitor",
            node.name,
            None,
        )

    def _run_crashloop(self, out: Out) -> None:
        """A bad release: one new pod crash-loops, the rollout stalls, then a rollback."""
        wl = self.cluster.crash_target
        if wl is None:
            return
        if self.cluster.step == self.at_crash:
            bad = [
                replace(wl.containers[0], image=self._bump(wl.containers[0].image)),
                *wl.containers[1:],
            ]
            rs = self._new_revision(out, wl, bad, wl.manager, stalled=True)
            pod = self.cluster.new_pod(wl, rs=rs)
            pod.crashloop = True
            self.cluster.schedule(out, pod)
            if pod.phase == "Running":
                pod.series = self.cluster.series(pod.name)
                self.cluster.crashing.append(pod)
            self.crash_pod = pod
        elif self.cluster.step == self.at_fix and self.crash_pod is not None:
            pod, self.crash_pod = self.crash_pod, None
            bad_rs = wl.replica_sets.pop()
            good = wl.replica_sets.pop()
            wl.containers = good.containers
            wl.generation += 1
            wl.revision = good.revision = bad_rs.revision + 1
            wl.replica_sets += [bad_rs, good]
            self.cluster.emit_workload(out, wl, ChangeType.MODIFIED, wl.manager)
            self.cluster.emit_rs(out, wl, good, ChangeType.MODIFIED)
            self.cluster.delete_pod(out, pod)
            bad_rs.replicas, bad_rs.generation = 0, bad_rs.generation + 1
            self.cluster.emit_rs(out, wl, bad_rs, ChangeType.MODIFIED)

    # -- Jobs and the cost spike -------------------------------------------------------

    def _run_jobs(self, out: Out) -> None:
        step = self.cluster.step
        for tpl, period, offset, length in self.cluster.recurring:
            run = self.runs.get(tpl.name)
            if run is None and (step - offset) % period == 0:
                minutes = int((self.cluster.t - EPOCH) / timedelta(minutes=1))
                job = new_workload(
                    self.cluster,
                    "Job",
                    tpl.namespace,
                    f"{tpl.name}-{minutes}",
                    tpl.team,
                    tpl.pool,
                    1,
                    tpl.containers,
                    manager="kube-controller-manager",
                    created=self.cluster.t,
                )
                self.runs[tpl.name] = JobRun(job, step + length)
                self.cluster.emit_workload(out, job, ChangeType.ADDED, job.manager)
                self.cluster.schedule(out, self.cluster.new_pod(job))
            elif run is not None:
                self._advance_run(out, tpl.name, run)

    def _advance_run(self, out: Out, key: str, run: JobRun) -> None:
        """At the end step the pods finish; the step after, the Job and its pods go."""
        job = run.job
        if self.cluster.step == run.end_step:
            ok = all(p.phase == "Running" for p in job.pods)
            job.job_status = "Complete" if ok else "Failed"
            for pod in job.pods:
                if pod.phase == "Running":
                    self.cluster.complete(out, pod)
            self.cluster.emit_workload(out, job, ChangeType.MODIFIED, "kube-controller-manager")
        elif self.cluster.step == run.end_step + 1:
            for pod in list(job.pods):
                self.cluster.delete_pod(out, pod)
            self.cluster.workloads.remove(job)
            self.cluster.emit_workload(out, job, ChangeType.DELETED, "kube-controller-manager")
            for node in run.nodes:
                node.cordoned = True
                self.cluster.emit_node(out, node, ChangeType.MODIFIED)
        elif self.cluster.step == run.end_step + 2:
            for node in run.nodes:
                self.cluster.remove_node(out, node)
            del self.runs[key]

    def _run_burst(self, out: Out) -> None:
        """The cost spike: a training burst on two extra big on-demand nodes."""
        if self.burst is None:
            return
        begin, end = self.burst
        run = self.runs.get("ml-training")
        if self.cluster.step == begin:
            nodes = [self.cluster.open_node("ml-training", before=self.cluster.t) for _ in range(2)]
            for node in nodes:
                self.cluster.emit_node(out, node, ChangeType.ADDED)
                for pod in node.pods:
                    self.cluster.emit_pod(out, pod, ChangeType.ADDED, "kube-controller-manager")
            spec = new_container(
                self.cluster,
                "trainer",
                new_image(self.cluster, "ml", "ranker-trainer"),
                ("9", "16Gi"),
                "busy",
                requests=True,
                limits=("9", "16Gi"),
            )
            minutes = int((self.cluster.t - EPOCH) / timedelta(minutes=1))
            job = new_workload(
                self.cluster,
                "Job",
                "ml-training",
                f"train-ranker-{minutes}",
                "ml",
                "ml-training",
                6,
                [replace(spec, daily=0.0, weekend=1.0)],
                manager="kubectl-client-side-apply",
                created=self.cluster.t,
            )
            job.tolerates = True
            self.runs["ml-training"] = JobRun(job, end, nodes)
            self.cluster.emit_workload(out, job, ChangeType.ADDED, job.manager)
            for _ in range(job.replicas):
                self.cluster.schedule(out, self.cluster.new_pod(job))
        elif run is not None:
            self._advance_run(out, "ml-training", run)

    def _run_injections(self, out: Out) -> None:
        """The memory leak from its step on; the restart storm over its steps (every
        pod of the workload restarts about every two minutes, with kubelet's BackOff
        Events); the weekend batch job."""
        step, t = self.cluster.step, self.cluster.t
        if self.leak is not None and step == self.leak[0]:
            self.leak[1].leak_from = t
            self.cluster.usage = None  # rebuilt with the leak
        if self.storm is not None and self.storm[0] <= step < self.storm[1]:
            workload = self.storm[2]
            count = max(1, round(30 * self.spec.resolution / HOUR))
            for pod in [p for p in workload.pods if p.phase == "Running"]:
                self.cluster.restart(pod, 0, count)
                if (step - self.storm[0]) % self.repeat == 0:
                    involved = ObjectRef(
                        kind="Pod", namespace=workload.namespace, name=pod.name, uid=pod.uid
                    )
                    name = pod.containers[0].name
                    message = f"Back-off restarting failed container {name} in pod {pod.name}"
                    host = pod.node.name if pod.node is not None else ""
                    series = self.storm_events.setdefault(pod.uid, self.cluster.series(pod.name))
                    self.cluster.event(
                        out, "Warning", "BackOff", message, involved, workload.namespace,
                        "kubelet", host, series,
                    )  # fmt: skip
        for injection in self.injections:
            if injection.kind == "weekend_batch" and injection.start == t:
                self._start_weekend_batch(out, injection)
        run = self.runs.get(WEEKEND_JOB[1])
        if run is not None:
            self._advance_run(out, WEEKEND_JOB[1], run)

    def _start_weekend_batch(self, out: Out, injection: Injection) -> None:
        namespace, name = WEEKEND_JOB
        spec = new_container(
            self.cluster, name, new_image(self.cluster, "data", name), ("1", "2Gi"), "busy",
            requests=True,
        )  # fmt: skip
        job = new_workload(
            self.cluster, "Job", namespace, name, "data", None, 2,
            [replace(spec, daily=0.0, weekend=1.0)], manager="kube-controller-manager",
            created=self.cluster.t,
        )  # fmt: skip
        end = self.cluster.step + round((injection.end - injection.start) / self.spec.resolution)
        self.runs[name] = JobRun(job, end)
        self.cluster.emit_workload(out, job, ChangeType.ADDED, job.manager)
        for _ in range(job.replicas):
            self.cluster.schedule(out, self.cluster.new_pod(job))

    # -- the scheduler retrying, events repeating --------------------------------------

    def _retry_pending(self, out: Out) -> None:
        for pod in list(self.cluster.pending):
            if self.cluster.place(pod) is not None:
                self.cluster.pending.remove(pod)
                pod.series = None
                pod.started = self.cluster.t
                self.cluster.emit_pod(out, pod, ChangeType.MODIFIED, "kubelet")

    def _repeat_events(self, out: Out) -> None:
        """FailedScheduling and BackOff repeat (count + 1) about every five minutes."""
        for pod in self.cluster.pending:
            series = pod.series or never()
            if (self.cluster.step - series.start_step) % self.repeat == 0:
                involved = ObjectRef(
                    kind="Pod", namespace=pod.workload.namespace, name=pod.name, uid=pod.uid
                )
                self.cluster.event(
                    out,
                    "Warning",
                    "FailedScheduling",
                    self.cluster.unschedulable(pod),
                    involved,
                    pod.workload.namespace,
                    "default-scheduler",
                    "",
                    series,
                )
        restarts = max(1, round(self.spec.resolution / timedelta(minutes=5)))
        for pod in self.cluster.crashing:
            series = pod.series or never()
            if (self.cluster.step - series.start_step) % self.repeat == 0:
                self.cluster.restart(pod, 0, restarts)
                name = pod.containers[0].name
                ns = pod.workload.namespace
                message = (
                    f"Back-off restarting failed container {name} in pod {pod.name}_{ns}({pod.uid})"
                )
                involved = ObjectRef(kind="Pod", namespace=ns, name=pod.name, uid=pod.uid)
                host = pod.node.name if pod.node is not None else ""
                self.cluster.event(
                    out, "Warning", "BackOff", message, involved, ns, "kubelet", host, series
                )
