"""Text fit for logs, errors and /health: no passwords in URLs, no signed query strings, no API keys.

Secrets a process knows (users' keys) are replaced where they are known (the runtime's log filter).
This module catches the ones nobody registered, by their shape:

* a URL's password: `postgresql://bob:hunter2@db/x` -> `postgresql://bob:***@db/x` (also in text that
  is not a valid URL, `bob:hunter2@db` included, which is exactly when a parse error would echo it);
* a URL's query string: ccxt writes the request URL into its error messages, and a signed request's
  query carries the API key's signature and the timestamp it was signed at
  (`.../api/v3/order?symbol=...&signature=ab12...`) -> `.../api/v3/order?***`;
* `signature=`, `apiKey=`, `secret=`, `password=`, `token=` values and API-key headers wherever they
  appear on their own (a request body, a header dump).

What is left is still enough to debug with: the scheme, host, path, user name and the error itself.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@  (the password ends at the last '@' before the host's '/' or the text's end)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]*:)(?P<password>[^\s'\"]*)@")
# user:password@host without a scheme (a URL typed wrong is exactly what a parse error echoes)
_USERINFO = re.compile(r"(?P<head>(?:^|(?<=[\s'\"(]))[^\s:/@'\"]+:)(?P<password>[^\s'\"/@]+)@(?=[\w\[])")
# http(s)://host/path?query  (the query runs to whitespace or a quote)
_URL_QUERY = re.compile(r"(?P<url>\bhttps?://[^\s?'\"]+)\?[^\s'\"]+")
# key=value or "key": "value" or key: value, for names that hold credentials
_NAMED = re.compile(
    r"(?P<name>\b(?:signature|api[_-]?key|apikey|secret|password|passwd|token|x-mexc-apikey|"
    r"x-mbx-apikey|authorization)\b[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s&,;'\"}]+)",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    """`text` with URL passwords, URL query strings and named credentials masked."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _URL_QUERY.sub(lambda m: f"{m['url']}?{MASK}", text)
    return _NAMED.sub(lambda m: f"{m['name']}{MASK}", text)


def describe(error: BaseException, limit: int = 300) -> str:
    """One line naming `error` for a log field or /health: its class and the first line of its
    message, scrubbed and cut to `limit` characters."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {scrub(message)}".rstrip(": ")[:limit]
