"""Credentials out of anything shown or logged: URL userinfo (``redis://user:PASS@host``, a Triton URL with
``user:pass@``) and credential-like query parameters (``?password=...``, ``&token=...``).

``SecretStr`` settings are masked by pydantic already; these are the secrets that hide inside plain strings.
``mask_secrets`` is applied to every string ``describe_settings`` shows (``engine config``), to every error a
command prints (``schemas.cli``) and to every log line the engine writes (``engine.observability``), so a
client library echoing its connection URL cannot leak a password either.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "****"

# userinfo: [scheme://]user[:password]@host. Without a scheme only the user:password@ form counts, so an
# e-mail-like "name@host" in free text stays readable.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/@?#]*@")
_BARE_USERINFO = re.compile(r"(?P<start>^|[\s,;'\"(=\[])[^\s/@:?#,;'\"]+:[^\s/@?#,;'\"]*@(?=[A-Za-z0-9\[])")
# credential-like query parameters or key=value pairs in a connection string
_QUERY_SECRET = re.compile(
    r"(?P<key>(?:[?&;]|\b)(?:password|passwd|pwd|pass|secret|token|access_token|auth|auth_token|authorization|"
    r"api_key|apikey|key|sig|signature|credential|credentials|sas|client_secret)=)(?P<value>[^&\s;#'\"]*)",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    """``text`` with URL userinfo and credential-like query values replaced by ``****``."""
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
        text = _BARE_USERINFO.sub(lambda m: f"{m['start']}{MASK}@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}" if m["value"] else m[0], text)
    return text


def mask_all(value: Any) -> Any:
    """``mask_secrets`` applied to every string inside dicts, lists and tuples (a settings dump, log fields)."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: mask_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_all(v) for v in value)
    return value
