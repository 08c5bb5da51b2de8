"""Who is calling: a bearer token verified by the cluster's API server (TokenReview), or
one of the service's static tokens for automation (kept only as salted SHA-256 hashes:
the tokens are random, 32 bytes or more, so a fast hash is as safe as a slow one and
costs an unknown token microseconds, not a denial of service), and the roles the
service's settings bind to that user or its groups. A static token's caller is named
``static:NAME``, which no Kubernetes user is.

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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeopera.actions.policy import Role

RANKS: tuple[Role, ...] = (Role.VIEWER, Role.REQUESTER, Role.APPROVER, Role.ADMIN)

MIN_TOKEN = 32
"""The fewest characters a static token may have (``openssl rand -hex 32`` gives 64)."""

MAX_TOKEN = 8192
"""A bearer token longer than this is refused unread (Kubernetes' are about 1 KB)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Binding(_Strict):
    """``role`` for these ``users`` and members of these ``groups`` (as the API server
    names them: ``alice``, ``system:serviceaccount:ci:deployer``, ``sre``)."""

    role: Role
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class StaticToken(_Strict):
    """A token for automation: its ``name`` (the audit says ``static:NAME`` called), the
    ``hash`` ``kubeopera actions hash-token`` printed, and its ``roles``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    hash: str
    roles: list[Role] = Field(min_length=1)

    @field_validator("hash")
    @classmethod
    def _a_hash(cls, value: str) -> str:
        _parts(value)
        return value


def _parts(hashed: str) -> tuple[bytes, bytes]:
    """The salt and digest of a hash; ``ValueError`` for anything else."""
    kind, _, rest = hashed.partition("$")
    salt_text, _, digest_text = rest.partition("$")
    try:
        salt, digest = (base64.b64decode(t, validate=True) for t in (salt_text, digest_text))
    except ValueError:
        salt = digest = b""
    if kind != "sha256" or len(salt) != 16 or len(digest) != 32:
        raise ValueError("not a hash of kubeopera actions hash-token (sha256$SALT$DIGEST)")
    return salt, digest


def hash_token(token: str, salt: bytes | None = None) -> str:
    """The salted hash of ``token`` to keep in the settings: ``sha256$SALT$DIGEST``
    (base64; SHA-256 of the salt and the token). Raises ``ValueError`` for a token
    shorter than ``MIN_TOKEN``.

    >>> hashed = hash_token("s3cret" * 6, salt=b"0123456789abcdef")
    >>> hashed.split("$")[0], token_matches("s3cret" * 6, hashed), token_matches("x", hashed)
    ('sha256', True, False)
    """
    if len(token) < MIN_TOKEN:
        raise ValueError(
            f"a static token has {MIN_TOKEN} characters at least (openssl rand -hex 32)"
        )
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + token.encode()).digest()
    return "$".join(["sha256", *(base64.b64encode(b).decode() for b in (salt, digest))])


def token_matches(token: str, hashed: str) -> bool:
    """Whether ``token`` is the one ``hashed`` was made of (a constant-time compare)."""
    salt, digest = _parts(hashed)
    return hmac.compare_digest(hashlib.sha256(salt + token.encode()).digest(), digest)


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
        self._lock = threading.Lock()  # callers are the server's threads

    def identify(self, token: str) -> Identity | None:
        """Who holds ``token``. Raises what the review raises (the API server is down)."""
        key = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        with self._lock:
            known = self._known.get(key)
        if known is not None and known[0] > now:
            return known[1]
        found = self._identified(token)  # outside the lock: a review takes a while
        with self._lock:
            self._known[key] = (now + self.ttl, found)
            self._known.move_to_end(key)
            while len(self._known) > self.size:
                self._known.popitem(last=False)
        return found

    def _identified(self, token: str) -> Identity | None:
        if len(token) > MAX_TOKEN or not token.isprintable():
            return None
        for static in self.static_tokens:
            if token_matches(token, static.hash):
                return Identity(f"static:{static.name}", (), ranked(static.roles), "static")
        reviewed = self.review(token)
        if reviewed is None:
            return None
        name, groups = reviewed
        roles = [b.role for b in self.bindings if name in b.users or set(groups) & set(b.groups)]
        return Identity(name, tuple(groups), ranked(roles), "kubernetes")
