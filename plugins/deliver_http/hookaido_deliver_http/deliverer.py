"""One HTTP(S) deliver target: POST the payload through pooled keep-alive connections.

Every attempt passes the egress policy first and connects to the address the policy approved.
The deliverer classifies the answer; backoff and settling the lease are the dispatcher's job.
"""

import base64
import email.utils
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from hookaido.config.model import DeliverTarget
from hookaido.delivery import DeliveryContext, Outcome, error_text, header_bytes
from hookaido.egress import Destination, EgressDenied, EgressGuard, EgressUnresolved
from hookaido_deliver_http.connections import POOL_CLASSES

BODY_READ_LIMIT = 64 * 1024
MAX_REDIRECTS = 10
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
RETRYABLE_STATUSES = (408, 429)
# Framing and hop-by-hop headers belong to one connection: the HTTP client writes its own, so
# neither the stored ones (from the original request) nor configured ones are sent.
UNFORWARDED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "expect",
        "host",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


_RETRY_AFTER_CEILING = 86400


class _AttemptTimeout(Exception):
    """The whole attempt took longer than the target's timeout."""


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """The wait a ``Retry-After`` value asks for, or None when absent, invalid or not ahead."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        # Any hint is capped at 1 hour later, so a day stands in for absurdly long values.
        digits = text.lstrip("0")
        if not digits:
            return None
        seconds = int(digits) if len(digits) <= 6 else _RETRY_AFTER_CEILING
        return timedelta(seconds=min(seconds, _RETRY_AFTER_CEILING))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = when - now
    return wait if wait > timedelta(0) else None


def _basic_credentials(url: str) -> str | None:
    """``Basic ...`` for a URL with ``user:password@`` in it, as browsers and curl send it."""
    parts = urlsplit(url)
    if parts.username is None:
        return None
    user = unquote(parts.username)
    password = unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class HTTPDeliverer:
    """Delivers envelopes of one target URL. Safe to use from many worker threads at once."""

    def __init__(self, target: DeliverTarget, context: DeliveryContext):
        self.target = target
        self.guard = EgressGuard(context.egress, context.extra.get("resolver"))
        self.follow_redirects = context.egress.redirects
        self.timeout = target.timeout.total_seconds()
        self.signer = None
        if target.sign is not None and context.make_signer is not None:
            self.signer = context.make_signer(target.sign)
        concurrency = int(context.extra.get("concurrency", 20))
        self.pools = urllib3.PoolManager(num_pools=16, maxsize=concurrency, block=False)
        self.pools.pool_classes_by_scheme = POOL_CLASSES

    def deliver(self, envelope) -> Outcome:
        deadline = time.monotonic() + self.timeout
        url, method, body = self.target.target, "POST", envelope.payload
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                destination = self.guard.check(url)
            except EgressDenied as exc:
                return Outcome("dead", error=error_text(str(exc)), dead_reason="policy_denied")
            except EgressUnresolved as exc:
                return Outcome("retry", error=error_text(str(exc)))

            try:
                headers = self._headers(envelope, destination, method, url, body)
            except Exception as exc:  # a signer failing (no valid secret) is worth a retry
                return Outcome("retry", error=error_text(f"signing failed: {exc}"))

            try:
                status, response_headers = self._send(destination, method, body, headers, deadline)
            except NewConnectionError as exc:
                # urllib3 files a refused connection under its timeouts; report what happened.
                return Outcome("retry", error=error_text(str(exc)))
            except (_AttemptTimeout, urllib3.exceptions.TimeoutError):
                return Outcome("retry", error=f"timeout after {self.timeout:g}s")
            except (HTTPError, OSError) as exc:
                return Outcome("retry", error=error_text(str(exc) or type(exc).__name__))

            location = response_headers.get("location")
            if self.follow_redirects and status in REDIRECT_STATUSES and location:
                url = urljoin(url, location)
                if status == 303:
                    method, body = "GET", b""
                continue
            return self._classify(status, response_headers)
        return Outcome(
            "dead", status_code=status, error="too many redirects", dead_reason="no_retry"
        )

    def close(self) -> None:
        self.pools.clear()

    def _headers(self, envelope, destination: Destination, method: str, url: str, body: bytes):
        headers = urllib3.HTTPHeaderDict()
        for name, value in envelope.headers.items():
            if name.lower() not in UNFORWARDED_HEADERS:
                headers[name] = header_bytes(value)
        for name, value in self.target.headers:
            if name.lower() not in UNFORWARDED_HEADERS:
                headers[name] = header_bytes(value)
        credentials = _basic_credentials(url)
        if credentials is not None and "authorization" not in headers:
            headers["Authorization"] = credentials
        if self.signer is not None:
            for name, value in self.signer.sign(method, url, body, datetime.now(UTC)).items():
                headers[name] = value
        headers["Host"] = destination.host_header
        return headers

    def _send(self, destination: Destination, method, body, headers, deadline):
        """Send to the first approved address that accepts a connection; return the answer.

        Only addresses the policy approved are dialled, so the connection is re-checked by
        construction. Without resolved addresses the policy has no address rule to apply
        (rebinding protection off, no CIDR rules) and the host name is dialled.
        """
        error: Exception | None = None
        for address in destination.addresses or (destination.host,):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _AttemptTimeout()
            try:
                response = self._pool(destination, address).urlopen(
                    method,
                    destination.path,
                    body=body,
                    headers=headers,
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    timeout=urllib3.Timeout(total=remaining),
                    preload_content=False,
                )
            except (NewConnectionError, ConnectTimeoutError) as exc:
                error = exc
                continue
            self._discard_body(response, deadline)
            return response.status, response.headers
        raise error

    def _pool(self, destination: Destination, address: str):
        pool_kwargs = {}
        if destination.scheme == "https" and address != destination.host:
            # The socket goes to the approved address; TLS still names and verifies the host.
            pool_kwargs = {
                "server_hostname": destination.host,
                "assert_hostname": destination.host,
            }
        return self.pools.connection_from_host(
            address, destination.port, destination.scheme, pool_kwargs=pool_kwargs
        )

    @staticmethod
    def _discard_body(response, deadline: float) -> None:
        read = 0
        complete = False
        try:
            while read <= BODY_READ_LIMIT:
                if time.monotonic() > deadline:
                    raise _AttemptTimeout()
                chunk = response.read(8192, decode_content=False)
                if not chunk:
                    complete = True
                    break
                read += len(chunk)
        finally:
            if not complete:
                response.close()  # unread bytes make the connection unusable for keep-alive
            response.release_conn()

    def _classify(self, status: int, response_headers) -> Outcome:
        if 200 <= status < 300:
            return Outcome("acked", status_code=status)
        if status in RETRYABLE_STATUSES or 500 <= status < 600:
            hint = parse_retry_after(response_headers.get("retry-after"), datetime.now(UTC))
            return Outcome("retry", status_code=status, retry_after=hint)
        return Outcome("dead", status_code=status, dead_reason="no_retry")
