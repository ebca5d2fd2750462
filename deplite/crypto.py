"""Secrets at rest: MultiFernet over DEPLITE_ENCRYPTION_KEYS (newest key first).

The newest key encrypts; every listed key decrypts, so keys rotate by prepending a new
one and running `manage.py rotate_encryption_keys`, which re-encrypts every
`EncryptedTextField` of every model with the newest key.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise DecryptionError("DEPLITE_ENCRYPTION_KEYS is empty.")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.DEPLITE_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _current().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError("A stored secret could not be decrypted with the configured keys.") from None


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the newest key (no-op in meaning, new bytes)."""
    try:
        return _current().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError("A stored secret could not be decrypted with the configured keys.") from None


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code sees the plaintext.

    Never filter on it (ciphertexts differ on every write). Serializers and forms must
    treat it as write-only; admin must mask it.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found
