"""Editors' tokens: made at random, kept only as scrypt hashes, checked in constant time.

A token reads ``agg_<key>_<secret>``: the key is stored in clear to find the account's row,
the whole token only as ``scrypt$n$r$p$salt$hash``, so a copy of the database gives no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "agg_"
# scrypt at n=2**14, r=8 (16 MiB, tens of milliseconds): OWASP's floor for interactive use.
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
_TOKEN_RE = re.compile(r"^agg_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$")
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class NewToken:
    """A token as shown once to its editor, with what the store keeps of it."""

    token: str
    key: str
    hashed: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(token: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        token.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32
    )


def hash_token(token: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(token, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def new_token() -> NewToken:
    key = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))
    token = f"{PREFIX}{key}_{secrets.token_urlsafe(32)}"
    return NewToken(token=token, key=key, hashed=hash_token(token))


def token_key(token: str) -> str | None:
    """The stored key a token names, or None when it is not an editor's token at all."""
    match = _TOKEN_RE.match(token)
    return match.group(1) if match else None


def token_matches(token: str, hashed: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = hashed.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        found = _scrypt(token, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(found, expected)
