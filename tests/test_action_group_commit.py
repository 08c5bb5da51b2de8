"""The audit's group commit: concurrent callers' records written together, each exactly
once, each caller back only once its records are written, a failed write raised to the
callers whose records it held."""

import threading
import time
from datetime import UTC, datetime

import pytest

from kubeopera.actions.server import GroupCommit
from kubeopera.models.actions import ActionAudit, AuditEvent, AuditResult


def record(n: int) -> ActionAudit:
    at = datetime(2026, 3, 6, tzinfo=UTC)
    return ActionAudit(audit_id=str(n), at=at, event=AuditEvent.CALL, result=AuditResult.OK)


def test_concurrent_records_share_writes_and_each_is_written_once_before_its_caller_returns() -> (
    None
):
    writes: list[list[str]] = []
    written: set[str] = set()

    def write(audits: list[ActionAudit]) -> None:
        time.sleep(0.05)  # an insert
        writes.append([a.audit_id for a in audits])
        written.update(a.audit_id for a in audits)

    commit = GroupCommit(write)
    returned_unwritten: list[int] = []

    def call(n: int) -> None:
        commit([record(n)])
        if str(n) not in written:
            returned_unwritten.append(n)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [audit_id for batch in writes for audit_id in batch]
    assert sorted(everything, key=int) == [str(n) for n in range(40)]  # each once
    assert returned_unwritten == []
    assert len(writes) < 40  # shared: 40 callers, fewer inserts


def test_a_failed_write_is_raised_to_its_callers_and_the_next_write_goes_on() -> None:
    calls = 0

    def write(audits: list[ActionAudit]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("the store is gone")

    commit = GroupCommit(write)
    with pytest.raises(OSError, match="the store is gone"):
        commit([record(1)])
    commit([record(2)])  # the next write is made
    assert calls == 2


def test_no_caller_writes_for_others_longer_than_one_write_and_interrupts_free_the_turn() -> None:
    stop = threading.Event()
    commit = GroupCommit(lambda audits: time.sleep(0.02))

    def busy() -> None:
        while not stop.is_set():
            commit([record(0)])

    others = [threading.Thread(target=busy) for _ in range(8)]
    for thread in others:
        thread.start()
    try:
        began = time.monotonic()
        commit([record(1)])
        took = time.monotonic() - began
    finally:
        stop.set()
        for thread in others:
            thread.join()
    assert took < 0.02 * 10  # a write or two (waiting, then its own), not all the load's

    interrupted = GroupCommit(lambda audits: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        interrupted([record(2)])
    interrupted.write = lambda audits: None
    interrupted([record(3)])  # the turn was handed on
