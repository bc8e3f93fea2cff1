"""OIDC bearer tokens for real: RSA keys made here, the issuer's discovery document and JWKS served over HTTP on
loopback, tokens checked for signature, issuer, audience, expiry and roles (a dotted claim path); then a
workbench server in oidc mode accepts only such tokens."""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.workbench.auth import AuthError, TokenVerifier
from schemas.settings import WorkbenchSettings
from tests.fixtures.workbench import JsonServer

AUDIENCE = "icd-coder-workbench"


class Issuer:
    """A minimal identity provider: discovery document and JWKS over real HTTP; signs tokens with its keys."""

    def __init__(self) -> None:
        self.keys = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.requests = 0
        self.http = JsonServer(self._route)
        self.url = self.http.root + "/realms/h"

    def _route(self, request):
        self.requests += 1
        if request.path == "/realms/h/.well-known/openid-configuration":
            return 200, {"issuer": self.url, "jwks_uri": self.url + "/certs"}
        if request.path == "/realms/h/certs":
            return 200, {"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), "kid": kid, "use": "sig", "alg": "RS256"}
                                  for kid, k in self.keys.items()]}
        return 404, {"error": "not found"}

    def token(self, kid: str = "k1", key=None, **claims) -> str:
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "alice", "exp": time.time() + 300, "iat": time.time(),
                "realm_access": {"roles": ["coder", "offline_access"]}, **claims}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def stop(self) -> None:
        self.http.stop()


@pytest.fixture
def issuer():
    idp = Issuer()
    yield idp
    idp.stop()


def _verifier(issuer: Issuer) -> TokenVerifier:
    return TokenVerifier.from_settings(WorkbenchSettings(auth="oidc", oidc_issuer=issuer.url, roles_claim="realm_access.roles"))


def test_tokens_are_checked_against_the_issuers_jwks(issuer):
    verifier = _verifier(issuer)
    user = verifier.verify(issuer.token())
    assert user.user == "alice" and user.roles == {"coder", "offline_access"}
    assert issuer.requests == 2  # discovery document, then the JWKS; keys are cached after
    verifier.verify(issuer.token(sub="bob"))
    assert issuer.requests == 2
    intruder = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "expired": issuer.token(exp=time.time() - 120),
        "audience": issuer.token(aud="another-app"),
        "not issued by": issuer.token(iss="https://evil.example/realms/h"),
        "signature": issuer.token(key=intruder),  # right kid, wrong key
        "does not publish": issuer.token(kid="k9", key=intruder),
        "'exp'": issuer.token(exp=None),
        "not valid|does not publish": jwt.encode({"iss": issuer.url, "aud": AUDIENCE, "sub": "alice", "exp": time.time() + 60}, None, algorithm="none"),
    }
    for why, token in refused.items():
        with pytest.raises(AuthError, match=why) as err:
            verifier.verify(token)
        assert err.value.status == 401
    # a key rotated in at the issuer is fetched when a token names it (after the refetch cooldown, 0 here)
    verifier.key_for.refetch_cooldown_s = 0
    verifier.key_for._client = None
    verifier.verify(issuer.token())
    issuer.keys["k2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert verifier.verify(issuer.token(kid="k2")).user == "alice"
    # a user claim that cannot be a coder id (becomes Practitioner/<id>)
    with pytest.raises(AuthError, match="not usable as a coder id") as err:
        verifier.verify(issuer.token(sub="alice smith@hospital"))
    assert err.value.status == 403


def test_an_unreachable_identity_provider_is_a_503_and_symmetric_algorithms_are_refused(issuer):
    url = issuer.url
    token = issuer.token()
    issuer.stop()
    with pytest.raises(AuthError, match="cannot fetch") as err:
        TokenVerifier.from_settings(WorkbenchSettings(auth="oidc", oidc_issuer=url)).verify(token)
    assert err.value.status == 503
    with pytest.raises(ValueError, match="asymmetric"):
        TokenVerifier.from_settings(WorkbenchSettings(auth="oidc", oidc_issuer=url, oidc_algorithms="RS256,HS256"))


def test_a_workbench_in_oidc_mode_takes_the_identity_providers_tokens(issuer, tmp_path_factory, kafka_bootstrap, redis_url):
    from tests.fixtures.workbench import make_workbench

    wb = make_workbench(tmp_path_factory, kafka_bootstrap, redis_url, "oidc", workbench_auth="oidc", workbench_oidc_issuer=issuer.url,
                        workbench_roles_claim="realm_access.roles")
    try:
        with httpx.Client(base_url=wb.url) as client:
            me = client.get("/api/me", headers={"Authorization": f"Bearer {issuer.token()}"})
            assert me.status_code == 200 and me.json()["user"] == "alice" and me.json()["coder"]
            local = client.get("/api/me", headers={"Authorization": f"Bearer {wb.server.token('alice', 'coder')}"})
            assert local.status_code == 401  # a local-mode token means nothing here
            wrong_role = client.get("/api/evaluation", headers={"Authorization": f"Bearer {issuer.token()}"})
            assert wrong_role.status_code == 403 and "supervisor" in wrong_role.json()["detail"]
    finally:
        wb.server.stop()


def test_local_mode_key_and_tokens_from_the_command_line(cli, tmp_path, monkeypatch):
    key = tmp_path / "wb.pem"
    assert cli("engine", "workbench", "keygen", "--key-file", str(key)).returncode == 0
    assert key.stat().st_mode & 0o777 == 0o600
    again = cli("engine", "workbench", "keygen", "--key-file", str(key))
    assert again.returncode == 2 and "exists" in again.stderr
    minted = cli("engine", "workbench", "token", "--key-file", str(key), "--user", "coder-1", "--role", "coder", "--role", "supervisor")
    assert minted.returncode == 0
    user = TokenVerifier.from_settings(WorkbenchSettings(auth="local", local_key_file=key)).verify(minted.stdout.strip())
    assert user.user == "coder-1" and user.roles == {"coder", "supervisor"}
    bad = cli("engine", "workbench", "token", "--key-file", str(key), "--user", "Dr Smith", "--role", "coder")
    assert bad.returncode == 2 and "FHIR id" in bad.stderr
    missing = cli("engine", "workbench", "token", "--key-file", str(tmp_path / "none.pem"), "--user", "c1", "--role", "coder")
    assert missing.returncode == 2 and "keygen" in missing.stderr
    monkeypatch.setenv("ICDCODER_WORKBENCH_AUTH", "oidc")
    monkeypatch.delenv("ICDCODER_WORKBENCH_OIDC_ISSUER", raising=False)
    serve = cli("engine", "workbench", "--port", "0")
    assert serve.returncode == 2 and "ICDCODER_WORKBENCH_OIDC_ISSUER" in serve.stderr
