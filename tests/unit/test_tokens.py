"""Browser stream tokens: signed, expiring, and bound to the key that minted them."""

import pytest

from admin_api import tokens
from common.errors import Unauthorized

SECRET = b"test-secret"


def test_a_token_carries_its_key_and_tenant():
    token, claims = tokens.mint(SECRET, "cs_1234abcd", "acme", ttl_s=60)
    assert token.startswith("cst_")
    assert tokens.verify(SECRET, token) == claims
    assert claims.key_prefix == "cs_1234abcd" and claims.tenant_id == "acme"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # signature changed
        lambda t: "cst_" + t[5:],  # payload changed
        lambda t: t.replace("cst_", "cs_"),  # not a token
        lambda t: t.split(".")[0],  # no signature
    ],
)
def test_tampered_tokens_are_refused(tamper):
    token, _ = tokens.mint(SECRET, "cs_1234abcd", "acme", ttl_s=60)
    with pytest.raises(Unauthorized):
        tokens.verify(SECRET, tamper(token))


def test_another_servers_secret_and_expiry(monkeypatch):
    token, _ = tokens.mint(SECRET, "cs_1234abcd", "acme", ttl_s=60)
    with pytest.raises(Unauthorized):
        tokens.verify(b"other-secret", token)
    later = tokens.time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(SECRET, token)


def test_lifetime_is_capped_at_an_hour():
    _, claims = tokens.mint(SECRET, "cs_1234abcd", "acme", ttl_s=10**9)
    assert claims.expires_at - tokens.time.time() <= tokens.MAX_TTL_S + 1
