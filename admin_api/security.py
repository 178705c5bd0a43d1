"""API keys: random secrets, shown once, stored as a hash, looked up by their public prefix."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "cs"


@dataclass(frozen=True)
class NewKey:
    prefix: str
    secret: str
    """The whole key, `cs_<prefix>_<secret>`: shown to the caller once."""
    secret_hash: str


def generate_key() -> NewKey:
    public = f"{KEY_PREFIX}_{secrets.token_hex(4)}"
    secret = f"{public}_{secrets.token_urlsafe(24)}"
    return NewKey(public, secret, hash_key(secret))


def hash_key(secret: str) -> str:
    # Keys are 192-bit random tokens, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(secret.encode()).hexdigest()


def split_prefix(secret: str) -> str | None:
    """The public prefix of a presented key, or None when it is not shaped like one."""
    parts = secret.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        return None
    return f"{parts[0]}_{parts[1]}"


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(secret), stored_hash)
