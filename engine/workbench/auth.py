"""Who is asking. Every API request carries ``Authorization: Bearer <JWT>``; the coder recorded on a decision is
the token's user, never a name the client sends.

- ``oidc`` (production): tokens from the hospital's identity provider. The signature is checked against the
  issuer's JWKS (its discovery document's ``jwks_uri`` unless ``ICDCODER_WORKBENCH_OIDC_JWKS_URL`` names it;
  keys cached, fetched again for an unknown ``kid``), and ``iss``, ``aud``, ``exp`` (required) and ``nbf``
  are checked with a small clock-skew allowance. Only asymmetric algorithms from the configured list are
  accepted. Roles come from a configured claim (a dotted path: ``roles``, ``realm_access.roles``...).
- ``local`` (demo, one machine): tokens signed with an EC P-256 key file that ``python -m engine workbench
  keygen`` writes; ``python -m engine workbench token`` mints them. Same checks, issuer ``LOCAL_ISSUER``,
  user in ``sub``, roles in ``roles``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine.worklist.feedback import check_coder_id
from schemas.settings import WorkbenchSettings

LOCAL_ISSUER = "urn:icd-coder:workbench-local"
LOCAL_ALGORITHM = "ES256"


@dataclass(frozen=True)
class Principal:
    user: str  # the coder id: a FHIR id, it becomes Practitioner/<id> on the feedback topic
    roles: frozenset[str]


class AuthError(Exception):
    """Not authenticated (401) or not allowed (403); the message says why without quoting the token."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class TokenVerifier:
    """Checks a bearer token and returns its Principal. ``key_for(token)`` gives the verification key."""

    def __init__(self, key_for: Callable[[str], Any], *, issuer: str, audience: str, algorithms: list[str], user_claim: str,
                 roles_claim: str, leeway_s: int) -> None:
        self.key_for = key_for
        self.issuer, self.audience, self.algorithms = issuer, audience, algorithms
        self.user_claim, self.roles_claim, self.leeway_s = user_claim, roles_claim, leeway_s

    @classmethod
    def from_settings(cls, wb: WorkbenchSettings) -> "TokenVerifier":
        if wb.auth == "local":
            public = load_local_key(wb.local_key_file).public_key()
            return cls(lambda token: public, issuer=LOCAL_ISSUER, audience=wb.oidc_audience, algorithms=[LOCAL_ALGORITHM],
                       user_claim="sub", roles_claim="roles", leeway_s=wb.clock_skew_s)
        algorithms = [a.strip() for a in wb.oidc_algorithms.split(",") if a.strip()]
        if not algorithms or any(a.startswith("HS") or a.lower() == "none" for a in algorithms):
            raise ValueError("ICDCODER_WORKBENCH_OIDC_ALGORITHMS: list asymmetric algorithms only (RS256, ES256, PS256...)")
        return cls(JwksKeys(wb.oidc_issuer, wb.oidc_jwks_url), issuer=wb.oidc_issuer, audience=wb.oidc_audience,
                   algorithms=algorithms, user_claim=wb.user_claim, roles_claim=wb.roles_claim, leeway_s=wb.clock_skew_s)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self.key_for(token), algorithms=self.algorithms, audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway_s, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired: sign in again") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"the token is not for this application (audience must be {self.audience!r})") from None
        except jwt.InvalidIssuerError:
            raise AuthError(f"the token was not issued by {self.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise AuthError("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as err:
            raise AuthError(f"the token has no {err.claim!r} claim") from None
        except jwt.PyJWKClientConnectionError:
            raise AuthError("cannot fetch the identity provider's signing keys (JWKS); try again", 503) from None
        except jwt.PyJWKClientError:
            raise AuthError("the token is signed with a key the identity provider does not publish") from None
        except jwt.InvalidTokenError as err:
            raise AuthError(f"the token is not valid ({type(err).__name__})") from None
        user = claims.get(self.user_claim)
        if not isinstance(user, str):
            raise AuthError(f"the token has no {self.user_claim!r} claim naming the user", 403)
        try:
            check_coder_id(user)
        except ValueError:
            raise AuthError(f"the token's {self.user_claim!r} claim is not usable as a coder id (1-64 of A-Z a-z 0-9 - .)", 403) from None
        return Principal(user, frozenset(_roles(claims, self.roles_claim)))


def _roles(claims: dict[str, Any], path: str) -> list[str]:
    """The roles at a dotted claim path: a list of strings, or one space-separated string."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return value.split()
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class JwksKeys:
    """The issuer's signing keys: PyJWKClient on the JWKS URL (from the discovery document unless given)."""

    def __init__(self, issuer: str, jwks_url: str | None, timeout_s: float = 5.0, refetch_cooldown_s: float = 30.0) -> None:
        # an unknown kid fetches the JWKS again at most once per cooldown (a rotated key waits at most that long)
        self.issuer, self.jwks_url, self.timeout_s, self.refetch_cooldown_s = issuer, jwks_url, timeout_s, refetch_cooldown_s
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                doc = json.load(resp)
        except (OSError, ValueError) as err:
            raise jwt.PyJWKClientConnectionError(f"discovery failed: {type(err).__name__}") from None
        if doc.get("issuer") != self.issuer or not doc.get("jwks_uri"):
            raise jwt.PyJWKClientError("the discovery document names another issuer or no jwks_uri")
        return doc["jwks_uri"]

    def __call__(self, token: str):
        with self._lock:
            if self._client is None:
                self._client = jwt.PyJWKClient(self.jwks_url or self._discover(), cache_keys=True, lifespan=300, timeout=self.timeout_s,
                                               cooldown_duration=self.refetch_cooldown_s)
        return self._client.get_signing_key_from_jwt(token).key


# -- local mode ------------------------------------------------------------------------------------------

def write_local_key(path: Path) -> Path:
    """A new EC P-256 private key in PEM, readable by its owner only. Refuses to overwrite."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: keep it (tokens signed with it stay valid) or delete it first")
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path


def load_local_key(path: Path | None) -> ec.EllipticCurvePrivateKey:
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"ICDCODER_WORKBENCH_LOCAL_KEY_FILE: no key file at {path} (python -m engine workbench keygen writes one)")
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key


def mint_local_token(key_file: Path, user: str, roles: list[str], audience: str, hours: float = 12.0) -> str:
    """A local-mode token for ``user`` with ``roles``, valid ``hours``."""
    check_coder_id(user)
    now = dt.datetime.now(dt.timezone.utc)
    claims = {"iss": LOCAL_ISSUER, "aud": audience, "sub": user, "roles": sorted(set(roles)), "iat": now,
              "exp": now + dt.timedelta(hours=hours)}
    return jwt.encode(claims, load_local_key(key_file), algorithm=LOCAL_ALGORITHM)
