"""Credentials out of anything printed or logged: `https://user:pass@host/x?token=...` becomes
`https://***@host/x?token=***`. Tracking URIs and data URLs may carry them."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = ("token", "key", "secret", "password", "sig", "signature", "credential")
URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def _secret(param: str) -> bool:
    return any(s in param.lower() for s in SECRET_PARAMS)


def _redact_one(url: str) -> str:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if "@" not in parts.netloc and not any(_secret(k) for k, _ in pairs):
        return url  # untouched: urlunsplit would rewrite e.g. sqlite://// paths
    netloc = "***@" + parts.netloc.rsplit("@", 1)[1] if "@" in parts.netloc else parts.netloc
    query = urlencode([(k, "***" if _secret(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_url(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by ***."""
    return URL.sub(lambda match: _redact_one(match.group(0)), text)
