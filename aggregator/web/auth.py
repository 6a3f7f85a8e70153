"""Who may edit: editors' own tokens (``aggregator editors add``, each with a role) and the
shared admin token (``AGGREGATOR_ADMIN_TOKEN``, a bootstrap admin), checked as a Bearer header
on the JSON API and exchanged at /admin/login for a signed session cookie with a CSRF token.

Sessions are signed with itsdangerous (random nonce, editor name, the account's token key and
issue time, HMAC-SHA256 under a key derived from the admin token, or else from a random key in
the database, a salt per purpose); an account's session is checked against its row on every
request, so a revoked or rotated token ends its sessions at once. Logging out revokes the
session's nonce in this process. Failed token checks are rate-limited per client address.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import logging
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from itsdangerous import BadSignature, Signer, TimestampSigner

from aggregator.errors import StoreError
from aggregator.safety.tokens import token_key
from aggregator.safety.tokens import token_matches as hash_matches
from aggregator.store import Store
from aggregator.types import Role

ADMIN_PREFIX: Final = "/admin"
SESSION_COOKIE: Final = "aggregator_admin"
FLASH_COOKIE: Final = "aggregator_flash"
CSRF_FIELD: Final = "csrf"
EDITOR_HEADER: Final = "X-Editor"
DEFAULT_API_EDITOR: Final = "api"
DEFAULT_ADMIN_EDITOR: Final = "admin"
# An editor signs in for a working day; after that the cookie is refused and they log in again.
SESSION_SECONDS: Final = 12 * 3600
# A session issued "in the future" by more than this is refused (clock steps between processes).
CLOCK_SKEW_SECONDS: Final = 300
MAX_EDITOR_LENGTH: Final = 64
MAX_FLASH_LENGTH: Final = 500

DISABLED_MESSAGE: Final = (
    "editing is disabled: add an editor with `aggregator editors add NAME --role admin`, or "
    "set AGGREGATOR_ADMIN_TOKEN (16 characters or more) in the service's environment and "
    "restart it, to enable the /admin/ pages and the API's write methods"
)
NO_CREDENTIALS_MESSAGE: Final = (
    "this method needs an editor's token: send the header 'Authorization: Bearer <token>'"
)
BAD_CREDENTIALS_MESSAGE: Final = "the Bearer token is not an active editor's token"

# A client may fail this many token checks in a row, then one more every REFILL seconds.
FAILURE_BURST: Final = 10
FAILURE_REFILL_SECONDS: Final = 6.0
# Addresses remembered at once; the least recently failing one is forgotten beyond this.
MAX_TRACKED_ADDRESSES: Final = 10_000
RATE_LIMITED_MESSAGE: Final = "too many failed token checks from this address; retry later"

log = logging.getLogger("aggregator.web.auth")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SESSION_LABEL: Final = b"aggregator admin session v1"


def editor_name(raw: str | None, default: str) -> str:
    """The name recorded in the audit trail: trimmed, without control characters, bounded."""
    name = _CONTROL.sub("", raw or "").strip()[:MAX_EDITOR_LENGTH].strip()
    return name or default


@dataclass(frozen=True)
class Identity:
    """Who a token proves: an account (name and role from its row), or the shared admin
    token (``account`` False), whose users still name themselves."""

    name: str
    role: Role
    account: bool
    key: str | None = None


BOOTSTRAP: Final = Identity(name=DEFAULT_ADMIN_EDITOR, role=Role.ADMIN, account=False)


@dataclass(frozen=True)
class Session:
    nonce: str
    editor: str
    issued: int
    role: Role = Role.ADMIN
    account: bool = False


def acting_editor(request: Request, declared: str | None, default: str) -> str:
    """The name an edit is recorded under: the account's own; with the shared admin token,
    the name its user declares (``declared``), else ``default``."""
    identity: Identity | None = getattr(request.state, "identity", None)
    if identity is not None and identity.account:
        return identity.name
    return editor_name(declared, default)


def role_refusal(identity: Identity | Session, needed: Role) -> str | None:
    """Why ``identity`` may not do what needs ``needed``, or None when it may."""
    role = identity.role
    if role.allows(needed):
        return None
    name = identity.name if isinstance(identity, Identity) else identity.editor
    return (
        f"{name!r} has the {role.value} role, which cannot do this: it needs the "
        f"{needed.value} role"
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(given: str, expected: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters, which a cookie may hold.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


class FailureLimiter:
    """A token bucket per client address that only failures drain: guessing slows to one try
    every ``refill`` seconds after ``burst`` misses, while editors who type well never wait."""

    def __init__(
        self,
        *,
        burst: int = FAILURE_BURST,
        refill: float = FAILURE_REFILL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
    ) -> None:
        self.burst = burst
        self.refill = refill
        self.clock = clock
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, address: str, now: float) -> float:
        tokens, since = self._buckets.get(address, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - since) / self.refill)

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        with self._lock:
            now = self.clock()
            tokens = self._level(address, now)
            if tokens >= 1:
                return None
            return max(1, math.ceil((1 - tokens) * self.refill))

    def failed(self, address: str) -> None:
        with self._lock:
            now = self.clock()
            self._buckets[address] = (max(0.0, self._level(address, now) - 1), now)
            self._buckets.move_to_end(address)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)


class Auth:
    """The token and everything derived from it; built once by ``create_app``."""

    def __init__(
        self,
        token: str,
        *,
        secure_cookie: bool,
        clock: Callable[[], float] = time.time,
        limiter: FailureLimiter | None = None,
        accounts: Store | None = None,
    ) -> None:
        self._token = token.encode("utf-8")
        self.secure_cookie = secure_cookie
        self.clock = clock
        self.limiter = limiter or FailureLimiter()
        self.accounts = accounts
        # Nonce -> issue time of sessions logged out; kept until they would have expired.
        self._revoked: dict[str, int] = {}
        self._revoked_lock = threading.Lock()
        # Token key -> digest of the token last proven against its scrypt hash: scrypt costs
        # tens of milliseconds, so each process pays it once per token, not per request.
        self._proven: dict[str, bytes] = {}
        self._signers: tuple[_ClockSigner, Signer, Signer] | None = None

    def _keys(self) -> tuple[_ClockSigner, Signer, Signer]:
        if self._signers is None:
            secret = self._token
            if not secret and self.accounts is not None:
                secret = self.accounts.signing_secret().encode("ascii")
            # A separate key, so a leaked cookie or CSRF value says nothing about the secret.
            key = hmac.new(secret, _SESSION_LABEL, hashlib.sha256).digest()
            self._signers = (
                _ClockSigner(key, salt="session", clock=self.clock),
                Signer(key, salt="csrf", digest_method=hashlib.sha256),
                Signer(key, salt="flash", digest_method=hashlib.sha256),
            )
        return self._signers

    @property
    def _sessions(self) -> _ClockSigner:
        return self._keys()[0]

    @property
    def _csrf(self) -> Signer:
        return self._keys()[1]

    @property
    def _flash(self) -> Signer:
        return self._keys()[2]

    @property
    def enabled(self) -> bool:
        """Editing is on with the shared token or at least one active account."""
        if self._token:
            return True
        if self.accounts is None:
            return False
        try:
            return self.accounts.active_editor_count() > 0
        except StoreError:
            return False

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison with the shared admin token; False when none is set."""
        if not self._token:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "surrogatepass"), self._token)

    def identify(self, candidate: str) -> Identity | None:
        """Who ``candidate`` proves: an active account's token, or the shared admin token."""
        if self.token_matches(candidate):
            return BOOTSTRAP
        key = token_key(candidate)
        if key is None or self.accounts is None:
            return None
        found = self.accounts.editor_by_key(key)
        if found is None:
            return None
        editor, hashed = found
        digest = hashlib.sha256(candidate.encode("utf-8")).digest()
        proven = self._proven.get(key)
        if proven is None or not hmac.compare_digest(proven, digest):
            if not hash_matches(candidate, hashed):
                return None
            self._proven[key] = digest
        return Identity(name=editor.name, role=editor.role, account=True, key=key)

    def bearer_identity(self, authorization: str | None) -> Identity | None:
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return self.identify(value.strip())

    def bearer_matches(self, authorization: str | None) -> bool:
        return self.bearer_identity(authorization) is not None

    def editor_request(self, request: Request) -> bool:
        """True when a read carries an editor's Bearer token (any role); a wrong one counts as
        a failure, and a rate-limited address is treated as anonymous (no oracle)."""
        authorization = request.headers.get("authorization")
        if not authorization or not self.enabled:
            return False
        address = client_address(request)
        if self.limiter.retry_after(address) is not None:
            return False
        if self.bearer_matches(authorization):
            return True
        self.limiter.failed(address)
        log.warning(
            "action=api-auth outcome=refused client=%s method=%s path=%s",
            address,
            request.method,
            request.url.path,
        )
        return False

    def revoke(self, session: Session) -> None:
        """End ``session`` now: its cookie and CSRF token are refused from here on."""
        with self._revoked_lock:
            now = self.clock()
            self._revoked = {
                nonce: issued
                for nonce, issued in self._revoked.items()
                if now - issued <= SESSION_SECONDS
            }
            self._revoked[session.nonce] = session.issued

    def issue(self, editor: str, account_key: str | None = None) -> str:
        """A new session cookie value for ``editor``: ``nonce.name.time.signature``, with the
        account's token key after the name for an account's session."""
        body = f"{secrets.token_urlsafe(16)}.{_b64(editor.encode())}"
        if account_key is not None:
            body += f".{account_key}"
        return self._sessions.sign(body).decode("ascii")

    def session(self, value: str | None) -> Session | None:
        """The session a cookie value proves, or None (forged, expired, revoked, rotated, or
        editing off)."""
        if not self.enabled or not value or value.count(".") not in (3, 4):
            return None
        try:
            body, signed_at = self._sessions.unsign(value, return_timestamp=True)
            nonce, editor_text, *account = body.decode("ascii").split(".")
            editor = _unb64(editor_text).decode("utf-8")
        except (BadSignature, ValueError, binascii.Error):
            return None
        issued = int(signed_at.timestamp())
        age = self.clock() - issued
        if not -CLOCK_SKEW_SECONDS <= age <= SESSION_SECONDS:
            return None
        if nonce in self._revoked:
            return None
        if not account:
            if not self._token:
                return None  # the shared token was taken away: its sessions end
            return Session(
                nonce=nonce, editor=editor_name(editor, DEFAULT_ADMIN_EDITOR), issued=issued
            )
        found = self.accounts.editor_by_key(account[0]) if self.accounts else None
        if found is None or found[0].name != editor:
            return None
        return Session(nonce=nonce, editor=editor, issued=issued, role=found[0].role, account=True)

    def csrf_token(self, session: Session) -> str:
        """The hidden form value every admin POST of this session must carry."""
        return self._csrf.get_signature(session.nonce).decode("ascii")

    def csrf_matches(self, session: Session, value: str | None) -> bool:
        return bool(value) and _same(str(value), self.csrf_token(session))

    def flash(self, message: str) -> str:
        """A signed cookie value carrying ``message`` to the page after a redirect."""
        return self._flash.sign(_b64(message[:MAX_FLASH_LENGTH].encode("utf-8"))).decode("ascii")

    def read_flash(self, value: str | None) -> str | None:
        if not value or "." not in value:
            return None
        try:
            return _unb64(self._flash.unsign(value).decode("ascii")).decode("utf-8")
        except (BadSignature, ValueError, binascii.Error):
            return None


class _ClockSigner(TimestampSigner):
    """Sessions' signer, on the same clock as the rest of ``Auth`` (tests move it); the age
    check is ``Auth.session``'s, which tolerates a little clock skew between processes."""

    def __init__(self, key: bytes, *, salt: str, clock: Callable[[], float]) -> None:
        super().__init__(key, salt=salt, digest_method=hashlib.sha256)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())

    def timestamp_to_datetime(self, ts: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def bearer_scheme() -> HTTPBearer:
    """The OpenAPI security scheme of the write methods (checked by ``token_route_class``)."""
    return HTTPBearer(
        auto_error=False,
        scheme_name="adminToken",
        description="An editor's token (`aggregator editors add`; its role "
        "decides what it may do), or the shared "
        "AGGREGATOR_ADMIN_TOKEN, with which the optional header "
        f"{EDITOR_HEADER} names the editor for the audit trail.",
    )


def rate_limited(retry_after: int) -> JSONResponse:
    return JSONResponse(
        {"detail": RATE_LIMITED_MESSAGE}, status_code=429, headers={"Retry-After": str(retry_after)}
    )


def api_refusal(auth: Auth, request: Request, needed: Role = Role.EDITOR) -> Response | None:
    """The answer to a request without a token of role ``needed`` or above, or None when it
    may go ahead (with ``request.state.identity`` set)."""
    if not auth.enabled:
        return JSONResponse({"detail": DISABLED_MESSAGE}, status_code=403)
    authorization = request.headers.get("authorization")
    address = client_address(request)
    if authorization:
        wait = auth.limiter.retry_after(address)
        if wait is not None:
            return rate_limited(wait)
    identity = auth.bearer_identity(authorization)
    if identity is not None:
        refusal = role_refusal(identity, needed)
        if refusal is not None:
            log.warning(
                "action=api-auth outcome=forbidden editor=%r role=%s method=%s path=%s",
                identity.name,
                identity.role,
                request.method,
                request.url.path,
            )
            return JSONResponse({"detail": refusal}, status_code=403)
        request.state.identity = identity
        return None
    if authorization:
        auth.limiter.failed(address)
        log.warning(
            "action=api-auth outcome=refused client=%s method=%s path=%s",
            address,
            request.method,
            request.url.path,
        )
    message = BAD_CREDENTIALS_MESSAGE if authorization else NO_CREDENTIALS_MESSAGE
    return JSONResponse(
        {"detail": message},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="aggregator"'},
    )


def token_route_class(auth: Auth, needed: Role | None = None) -> type[APIRoute]:
    """Routes that check the Bearer token and its role before anything else, the request body
    included, so a caller without the token learns nothing from validation errors.
    ``needed`` None: reads need a viewer, every other method an editor."""

    class TokenRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                role = needed or (Role.VIEWER if request.method in ("GET", "HEAD") else Role.EDITOR)
                # The check reads the database and may hash (scrypt): off the event loop.
                refusal = await run_in_threadpool(api_refusal, auth, request, role)
                return refusal if refusal is not None else await handler(request)

            return guarded

    return TokenRoute
