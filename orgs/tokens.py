"""The `tk_…` API token format.

`tk_` + 30 random base62 characters (~178 bits) + a 6-character base62 CRC32 of the
random part, like GitHub's tokens: a mistyped or made-up token fails the checksum and
is rejected without touching the database. Only the SHA-256 of the token is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib

PREFIX = "tk_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LEN = 30
_CHECK_LEN = 6
TOKEN_LEN = len(PREFIX) + _RANDOM_LEN + _CHECK_LEN
VISIBLE_PREFIX_LEN = 12


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK_LEN)


def generate() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LEN))
    return f"{PREFIX}{body}{_checksum(body)}"


def is_well_formed(token: str) -> bool:
    if len(token) != TOKEN_LEN or not token.startswith(PREFIX):
        return False
    body, check = token[len(PREFIX) : -_CHECK_LEN], token[-_CHECK_LEN:]
    if any(c not in _ALPHABET for c in body):
        return False
    return secrets.compare_digest(_checksum(body), check)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def visible_prefix(token: str) -> str:
    return token[:VISIBLE_PREFIX_LEN]
