"""Requests to receivers, retried as their APIs ask, every attempt kept.

A 2xx answer delivers. 429 and 5xx (and no answer: refused, reset, timed out) are
retried, up to ``Delivery.max_attempts`` in all, after an exponential backoff with full
jitter (AWS Architecture Blog, "Exponential Backoff and Jitter": a uniform wait in
[0, min(max_backoff, initial_backoff x 2^n)]), or after the answer's ``Retry-After``
when that is longer. Any other 4xx is refused at once, with the receiver's reason: the
same request would be refused again. A request's URL holds its secret (a webhook URL,
or PagerDuty's routing key in the body): neither is ever in an attempt's reason.
"""

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from kubeopera.settings.subscriptions import Delivery

MAX_REASON = 300

LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "kubeopera.alerts")
"""Loggers whose lines can show a request's URL (urllib3 logs each request's path)."""


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"  # this attempt failed; another follows
    FAILED = "failed"  # retries used up, or no answer worth retrying: told again later
    REFUSED = "refused"  # 4xx other than 429: the same request is refused for good
    EMPTY = "empty"  # nothing to show (every finding resolved, send_resolved off): no request
    INVALID = "invalid"  # the receiver's format cannot take a finding of it: not sent


@dataclass(frozen=True)
class Request:
    """One POST: ``url`` (a secret), its JSON ``body`` (which may hold a secret, as a
    PagerDuty routing key), and ``what`` it says (``trigger 3f9c…``), for the record."""

    url: SecretStr
    body: dict[str, Any] = field(repr=False)
    what: str = ""


@dataclass(frozen=True)
class Attempt:
    """One try of a request: when it began (UTC), its number (1-based), the answer's
    status (None: no answer), the outcome, why (the receiver's words, or the error's
    kind) and how long it took (seconds)."""

    request: Request
    at: datetime
    number: int
    status: int | None
    outcome: Outcome
    reason: str
    seconds: float


def retry_after(header: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: delay-seconds or an HTTP-date); None when
    absent or unreadable.

    >>> retry_after("2", datetime(2026, 1, 1, tzinfo=UTC))
    2.0
    >>> retry_after("Thu, 01 Jan 2026 00:00:05 GMT", datetime(2026, 1, 1, tzinfo=UTC))
    5.0
    >>> retry_after("Thu Jan  1 00:00:07 2026", datetime(2026, 1, 1, tzinfo=UTC))  # asctime
    7.0
    >>> retry_after("soon", datetime(2026, 1, 1, tzinfo=UTC)) is None
    True
    """
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" dates: HTTP-dates are always UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff(number: int, delivery: Delivery, chance: random.Random) -> float:
    """The wait (seconds) after failed attempt ``number`` (1-based): full jitter."""
    ceiling = min(
        delivery.max_backoff.total_seconds(),
        delivery.initial_backoff.total_seconds() * 2 ** (number - 1),
    )
    return chance.uniform(0, ceiling)


@dataclass
class Poster:
    """Sends requests with one HTTP session (connections kept alive). ``sleep`` and
    ``chance`` are the waits' clock and dice (tests measure them)."""

    delivery: Delivery
    session: requests.Session
    sleep: Callable[[float], None] = time.sleep
    chance: random.Random = field(default_factory=random.Random)

    def post(self, request: Request) -> list[Attempt]:
        """Every attempt at ``request``, the last one delivered, failed or refused."""
        attempts: list[Attempt] = []
        for number in range(1, self.delivery.max_attempts + 1):
            at = datetime.now(UTC)
            began = time.perf_counter()
            status, reason, wait = self._once(request, at)
            seconds = time.perf_counter() - began
            if status is not None and 200 <= status < 300:
                outcome = Outcome.DELIVERED
            elif status is not None and status < 500 and status != 429:
                outcome = Outcome.REFUSED
            elif number == self.delivery.max_attempts:
                outcome = Outcome.FAILED
            else:
                outcome = Outcome.RETRYING
            longest = self.delivery.max_backoff.total_seconds()
            if outcome == Outcome.RETRYING and wait is not None and wait > longest:
                outcome = Outcome.FAILED  # not worth blocking on: the next flush tries again
                reason = f"Retry-After {wait:.0f} s is over max_backoff; {reason}".rstrip("; ")
            attempts.append(Attempt(request, at, number, status, outcome, reason, seconds))
            if outcome != Outcome.RETRYING:
                break
            self.sleep(max(wait or 0.0, backoff(number, self.delivery, self.chance)))
        return attempts

    def _once(self, request: Request, at: datetime) -> tuple[int | None, str, float | None]:
        """(status, reason, Retry-After seconds) of one POST."""
        try:
            answer = self.session.post(
                request.url.get_secret_value(),
                json=request.body,
                timeout=self.delivery.timeout.total_seconds(),
            )
        except requests.Timeout:
            return None, "no answer within the timeout", None
        except requests.ConnectionError:
            return None, "could not connect", None
        except requests.RequestException as error:  # its text may hold the URL: not kept
            return None, f"request failed ({type(error).__name__})", None
        reason = _reason(answer.text, request)
        return answer.status_code, reason, retry_after(answer.headers.get("Retry-After"), at)


def _reason(text: str, request: Request) -> str:
    """The receiver's answer, one line, without the request's secrets (hidden before
    the line is cut, so no part of one stays)."""
    line = " ".join(text.split())
    key = request.body.get("routing_key")
    secrets = [request.url.get_secret_value(), key if isinstance(key, str) else ""]
    for form in secret_forms(secrets):
        line = line.replace(form, "***")
    return line[:MAX_REASON]


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """What to hide for each secret, longest first: itself, and for a URL its path with
    its query and its query alone (servers and urllib3 show them without the host).

    >>> secret_forms(["https://h.example/s/k3y?x=1"])
    ['https://h.example/s/k3y?x=1', '/s/k3y?x=1', '/s/k3y', 'x=1']
    """
    forms: set[str] = set()
    for secret in secrets:
        forms.add(secret)
        parts = urlsplit(secret)
        if parts.scheme and parts.netloc:
            path = parts.path if parts.path not in ("", "/") else ""
            forms.update({path + (f"?{parts.query}" if parts.query else ""), path, parts.query})
    return sorted((f for f in forms if f), key=lambda f: (-len(f), f))


class _HideSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets  # longest first: a URL before its path

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for secret in self.secrets:
            text = text.replace(secret, "***")
        record.msg, record.args = text, ()
        return True


def hide_in_logs(secrets: Iterable[SecretStr]) -> None:
    """From now on, ``secrets`` in each of their forms (``secret_forms``) show as ``***``
    in every line of ``LOGGERS``, at any level."""
    hide = _HideSecrets(secret_forms(s.get_secret_value() for s in secrets))
    for name in LOGGERS:
        logging.getLogger(name).addFilter(hide)
