"""Encryption of the credentials a QA package uses against its target.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with keys derived by HKDF from
settings.QA_SECRET_KEYS (QA_SECRET_KEY, else SECRET_KEY), so any string works as a key and the
Django signing key itself is never used as an encryption key. Several keys rotate: the first
encrypts, all decrypt.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"openspc qa_runs target credentials"


class SecretUnreadable(Exception):
    """A stored secret that none of the configured keys decrypts (the key changed)."""


def _fernet(secret: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _keys() -> MultiFernet:
    # Read on every call rather than cached, so tests and a key rotation see the current settings.
    return MultiFernet([_fernet(key) for key in settings.QA_SECRET_KEYS])


def secret_encrypt(value: str) -> str:
    """The token to store for `value` (text, safe in a TextField)."""
    return _keys().encrypt(value.encode()).decode("ascii")


def secret_decrypt(token: str) -> str:
    """The value a token from secret_encrypt holds; SecretUnreadable if no key opens it."""
    try:
        return _keys().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise SecretUnreadable("the stored credential cannot be decrypted with QA_SECRET_KEY") from exc
