"""Short-lived stream tokens: a browser cannot set headers on a WebSocket, so a back end
holding a tenant key mints a token and the page puts it in the URL (`?token=...`).

A token is `cst_<payload>.<signature>`: the payload (base64url JSON) names the key it was minted
from and its expiry; the signature is an HMAC with the server's token secret. Tokens are not
stored: revoking the key they came from ends them too, and they expire within the hour.
"""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from common.errors import Unauthorized

TOKEN_PREFIX = "cst_"
MAX_TTL_S = 3600


@dataclass(frozen=True)
class StreamToken:
    key_prefix: str
    tenant_id: str
    expires_at: int
    """Unix time."""


def mint(secret: bytes, key_prefix: str, tenant_id: str, ttl_s: int) -> tuple[str, StreamToken]:
    claims = StreamToken(key_prefix, tenant_id, int(time.time()) + min(ttl_s, MAX_TTL_S))
    payload = _b64(
        json.dumps({"k": claims.key_prefix, "t": claims.tenant_id, "e": claims.expires_at}).encode()
    )
    return f"{TOKEN_PREFIX}{payload}.{_sign(secret, payload)}", claims


def verify(secret: bytes, token: str) -> StreamToken:
    """The token's claims; raises `Unauthorized` when forged, malformed or expired."""
    body = token.removeprefix(TOKEN_PREFIX)
    payload, _, signature = body.partition(".")
    if (
        not token.isascii()  # what we mint is ASCII; compare_digest refuses other text
        or not token.startswith(TOKEN_PREFIX)
        or not signature
        or not hmac.compare_digest(signature, _sign(secret, payload))
    ):
        raise Unauthorized("the token is not valid")
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims = StreamToken(str(data["k"]), str(data["t"]), int(data["e"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthorized("the token is not valid") from exc
    if claims.expires_at < time.time():
        raise Unauthorized("the token has expired; mint a new one")
    return claims


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
