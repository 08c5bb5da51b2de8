"""Who is calling: a bearer token verified by the cluster's API server (TokenReview), or
one of the service's static tokens for automation (kept only as salted scrypt hashes),
and the roles the service's settings bind to that user or its groups.

Roles are ranked, each holding what those below it may do: ``viewer`` reads,
``requester`` also asks for remediations, ``approver`` also approves and rejects them,
``admin`` all of it. Answers are kept for ``ttl`` seconds (hits and misses alike, a
bounded number of tokens), as the API server's own webhook authenticator caches them,
so a busy client costs one review, not one per call.
"""

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeopera.actions.policy import Role

RANKS: tuple[Role, ...] = (Role.VIEWER, Role.REQUESTER, Role.APPROVER, Role.ADMIN)

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # OWASP's minimum for scrypt (2023)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Binding(_Strict):
    """``role`` for these ``users`` and members of these ``groups`` (as the API server
    names them: ``alice``, ``system:serviceaccount:ci:deployer``, ``sre``)."""

    role: Role
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class StaticToken(_Strict):
    """A token for automation: its ``name`` (who the audit says called), the ``hash``
    ``kubeopera actions hash-token`` printed, and its ``roles``."""

    name: str = Field(min_length=1, max_length=128)
    hash: str
    roles: list[Role] = Field(min_length=1)

    @field_validator("hash")
    @classmethod
    def _a_hash(cls, value: str) -> str:
        parts = value.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("not a hash of kubeopera actions hash-token (scrypt$...)")
        return value


def hash_token(token: str, salt: bytes | None = None) -> str:
    """The salted hash of ``token`` to keep in the settings:
    ``scrypt$N$r$p$SALT$HASH`` (base64).

    >>> hashed = hash_token("s3cret", salt=b"0123456789abcdef")
    >>> hashed.split("$")[:4], token_matches("s3cret", hashed), token_matches("x", hashed)
    (['scrypt', '16384', '8', '1'], True, False)
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode(), salt=salt, maxmem=64 * 2**20, **_SCRYPT)
    encoded = [base64.b64encode(b).decode() for b in (salt, digest)]
    return "$".join(["scrypt", *(str(v) for v in _SCRYPT.values()), *encoded])


def token_matches(token: str, hashed: str) -> bool:
    """Whether ``token`` is the one ``hashed`` was made of (a constant-time compare)."""
    _, n, r, p, salt, digest = hashed.split("$")
    expected = base64.b64decode(digest)
    found = hashlib.scrypt(
        token.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=64 * 2**20,
        dklen=len(expected),
    )
    return hmac.compare_digest(found, expected)


def ranked(roles: Iterable[Role]) -> frozenset[Role]:
    """``roles`` with every role ranked below them.

    >>> sorted(ranked([Role.APPROVER]))
    [<Role.APPROVER: 'approver'>, <Role.REQUESTER: 'requester'>, <Role.VIEWER: 'viewer'>]
    """
    top = max((RANKS.index(role) for role in roles), default=-1)
    return frozenset(RANKS[: top + 1])


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: its name, groups, roles (ranked), and how it proved it
    (``kubernetes`` or ``static``)."""

    name: str
    groups: tuple[str, ...]
    roles: frozenset[Role]
    via: str


Review = Callable[[str], tuple[str, list[str]] | None]
"""A TokenReview: the user and groups holding a token, None when it is not valid."""


class Authenticator:
    """Tokens to identities (None: not authenticated)."""

    def __init__(
        self,
        bindings: list[Binding],
        static_tokens: list[StaticToken],
        review: Review,
        ttl: float = 10.0,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bindings, self.static_tokens, self.review = bindings, static_tokens, review
        self.ttl, self.size, self.clock = ttl, size, clock
        self._known: OrderedDict[bytes, tuple[float, Identity | None]] = OrderedDict()

    def identify(self, token: str) -> Identity | None:
        """Who holds ``token``. Raises what the review raises (the API server is down)."""
        key = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        known = self._known.get(key)
        if known is not None and known[0] > now:
            return known[1]
        found = self._identified(token)
        self._known[key] = (now + self.ttl, found)
        self._known.move_to_end(key)
        while len(self._known) > self.size:
            self._known.popitem(last=False)
        return found

    def _identified(self, token: str) -> Identity | None:
        for static in self.static_tokens:
            if token_matches(token, static.hash):
                return Identity(static.name, (), ranked(static.roles), "static")
        reviewed = self.review(token)
        if reviewed is None:
            return None
        name, groups = reviewed
        roles = [b.role for b in self.bindings if name in b.users or set(groups) & set(b.groups)]
        return Identity(name, tuple(groups), ranked(roles), "kubernetes")
