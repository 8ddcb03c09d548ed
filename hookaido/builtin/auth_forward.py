"""Built-in ``auth forward``: ask an HTTP service whether to accept each webhook.

A 2xx answer allows, 401/403 is passed back to the sender, and anything else (another
status, a refused connection, a timeout) refuses with 503: it never fails open.
"""

from datetime import timedelta

import urllib3

from hookaido.auth import InboundRequest, Verdict
from hookaido.errors import ConfigError
from hookaido.hookspecs import hookimpl
from hookaido.observability.log import event

DEFAULT_TIMEOUT = timedelta(seconds=2)
RESPONSE_READ_LIMIT = 64 * 1024
# Framing and hop-by-hop headers describe the inbound connection, not the call-out.
NOT_FORWARDED = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
HTTP_TOKEN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"

SCHEMA = {
    "type": "object",
    "description": "auth forward <url> { timeout; copy_headers <name>...; body_limit }",
    "properties": {
        "args": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1},
        "timeout": {"type": "string", "minLength": 1},
        "copy_headers": {"type": "array", "items": {"type": "string", "pattern": HTTP_TOKEN}},
        "body_limit": {"type": "string", "minLength": 1},
    },
    "additionalProperties": False,
}


@hookimpl
def register_auth(register):
    register("forward", ForwardVerifier.from_options, schema=SCHEMA)


def _clean_path(raw: str) -> str:
    segments: list[str] = []
    for segment in raw.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return "/" + "/".join(segments)


def _canonical(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class ForwardVerifier:
    """Calls ``url`` with the inbound method, headers and (possibly truncated) body."""

    def __init__(
        self,
        route: str,
        url: str,
        timeout: timedelta = DEFAULT_TIMEOUT,
        copy_headers=(),
        body_limit: int | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"auth forward URL {url!r} must be http:// or https://")
        if timeout <= timedelta(0):
            raise ConfigError("auth forward timeout must be positive")
        self.route = route
        self.url = url
        self.copy_headers = tuple(copy_headers)
        self.body_limit = body_limit or None  # 0 and off both mean the whole body
        self.pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=timeout.total_seconds()),
            retries=False,
            maxsize=8,
            block=False,
        )

    @classmethod
    def from_options(cls, options: dict, context) -> "ForwardVerifier":
        url = options.get("url")
        if not url and options.get("args"):
            url = options["args"][0]
        if not url:
            raise ConfigError("auth forward needs a URL")
        return cls(
            context.route,
            url,
            options.get("timeout") or DEFAULT_TIMEOUT,
            options.get("copy_headers") or (),
            options.get("body_limit"),
        )

    def verify(self, request: InboundRequest) -> Verdict:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in NOT_FORWARDED
        }
        headers["X-Hookaido-Original-Path"] = _clean_path(request.path)
        headers["X-Hookaido-Original-Method"] = request.method
        body = request.body
        if self.body_limit is not None:
            body = body[: self.body_limit]

        try:
            response = self.pool.request(
                request.method,
                self.url,
                body=body,
                headers=headers,
                redirect=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            return self._unavailable(f"transport: {type(exc).__name__}")
        try:
            response.read(RESPONSE_READ_LIMIT)
            reusable = not response.read(1)
        except urllib3.exceptions.HTTPError as exc:
            response.close()
            return self._unavailable(f"transport: {type(exc).__name__}")
        if reusable:
            response.release_conn()
        else:
            response.close()  # a long answer body is not worth reading to the end

        status = response.status
        if 200 <= status < 300:
            return Verdict.allow(headers=self._copied(response))
        if status == 401:
            return Verdict.deny("the authorization service refused the request")
        if status == 403:
            return Verdict.deny(
                "the authorization service forbids the request", status=403, code="forbidden"
            )
        return self._unavailable(f"status {status}")

    def _copied(self, response) -> dict[str, str]:
        copied = {}
        for name in self.copy_headers:
            values = response.headers.getlist(name)
            if values:
                copied[_canonical(name)] = ",".join(values)
        return copied

    def _unavailable(self, reason: str) -> Verdict:
        event("forward_auth_unavailable", level="warn", route=self.route, reason=reason)
        return Verdict.deny(
            "the authorization service is unavailable", status=503, code="auth_unavailable"
        )

    def close(self) -> None:
        self.pool.clear()
