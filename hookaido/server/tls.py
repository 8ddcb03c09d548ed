"""TLS listeners: cheroot serving a WSGI app over a pyOpenSSL context built from ``tls { }``.

Certificate, key and client CA are checked before anything listens; a problem is a
``ConfigError`` naming the file. This module never binds to an address it was not given.
"""

import select
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.ssl.pyopenssl import pyOpenSSLAdapter
from cryptography import exceptions, x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from hookaido.config.model import TLSConfig
from hookaido.errors import ConfigError
from hookaido.observability.log import event
from hookaido.server.listeners import server_body_cap

EXPIRY_WARNING = timedelta(days=14)
MAX_REQUEST_HEADERS = 256 * 1024
MAX_REQUEST_BODY = 64 * 1024 * 1024

# client_auth mode -> (client certificate required, chain verified against client_ca)
CLIENT_AUTH_MODES = {
    "none": None,
    "off": None,
    "request": (False, False),
    "require_any": (True, False),
    "verify_if_given": (False, True),
    "require": (True, True),
    "require_and_verify": (True, True),
}


def _read(path: str, what: str) -> bytes:
    if not path:
        raise ConfigError(f"tls {what} is empty; name a PEM file")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"tls {what} {path!r}: cannot read ({reason})") from None


def _load_certificates(path: str, what: str) -> list[x509.Certificate]:
    data = _read(path, what)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise ConfigError(f"tls {what} {path!r}: no PEM certificate found in the file")
    return certificates


def _load_private_key(path: str):
    data = _read(path, "key_file")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(
            f"tls key_file {path!r}: the key is encrypted; give an unencrypted PEM key"
        ) from None
    except (ValueError, exceptions.UnsupportedAlgorithm):
        raise ConfigError(f"tls key_file {path!r}: no PEM private key found in the file") from None


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_tls_files(tls: TLSConfig) -> x509.Certificate:
    """Raise ``ConfigError`` unless cert, key and client CA load and the key matches the cert.

    Returns the server (leaf) certificate.
    """
    if tls.client_auth not in CLIENT_AUTH_MODES:
        modes = ", ".join(CLIENT_AUTH_MODES)
        raise ConfigError(f"tls client_auth {tls.client_auth!r} is unknown; use one of {modes}")
    leaf = _load_certificates(tls.cert_file, "cert_file")[0]
    key = _load_private_key(tls.key_file)
    if _public_bytes(leaf.public_key()) != _public_bytes(key.public_key()):
        raise ConfigError(
            f"tls key_file {tls.key_file!r} does not match the certificate in "
            f"cert_file {tls.cert_file!r}"
        )

    policy = CLIENT_AUTH_MODES[tls.client_auth]
    if policy and policy[1] and not tls.client_ca:
        raise ConfigError(f"tls client_auth {tls.client_auth} needs client_ca")
    if tls.client_ca:
        _load_certificates(tls.client_ca, "client_ca")
    return leaf


def warn_if_expiring(leaf: x509.Certificate, tls: TLSConfig, listener: str) -> None:
    """Log a warning when the server certificate has expired or expires within two weeks."""
    not_after = leaf.not_valid_after_utc
    remaining = not_after - datetime.now(UTC)
    if remaining <= timedelta(0):
        event(
            "tls_certificate_expired",
            level="warn",
            listener=listener,
            cert_file=tls.cert_file,
            not_after=not_after,
        )
    elif remaining < EXPIRY_WARNING:
        event(
            "tls_certificate_expiring",
            level="warn",
            listener=listener,
            cert_file=tls.cert_file,
            not_after=not_after,
            days_left=remaining.days,
        )


def _accept_any_certificate(connection, certificate, errnum, depth, ok) -> bool:
    # request / require_any: the client certificate is asked for but its chain is not judged.
    return True


def build_context(tls: TLSConfig) -> SSL.Context:
    """A server ``SSL.Context`` for ``tls``: TLS 1.2+, the client-certificate policy applied."""
    check_tls_files(tls)
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    # A session id context is needed once client certificates are involved: without it
    # OpenSSL refuses resumed sessions.
    context.set_session_id(b"hookaido")
    try:
        context.use_certificate_chain_file(tls.cert_file)
        context.use_privatekey_file(tls.key_file)
        context.check_privatekey()
    except SSL.Error as error:
        raise ConfigError(
            f"tls cert_file {tls.cert_file!r} / key_file {tls.key_file!r}: "
            f"OpenSSL refused them ({error})"
        ) from None

    if tls.client_ca:
        try:
            context.load_verify_locations(tls.client_ca)
            context.load_client_ca(tls.client_ca.encode())
        except SSL.Error as error:
            raise ConfigError(
                f"tls client_ca {tls.client_ca!r}: OpenSSL refused it ({error})"
            ) from None

    policy = CLIENT_AUTH_MODES[tls.client_auth]
    if policy is None:
        context.set_verify(SSL.VERIFY_NONE)
        return context
    required, verified = policy
    mode = SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE
    if required:
        mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    context.set_verify(mode, None if verified else _accept_any_certificate)
    return context


class _TLSConnection(SSL.Connection):
    """A server-side TLS connection that behaves like a socket with a timeout.

    The accepted socket has a timeout, so it is non-blocking underneath and OpenSSL reports
    "want read/write" whenever a record is incomplete, e.g. a request body arriving after its
    headers. cheroot retries that only for some calls; here every read and write waits for
    the socket instead (until the socket's timeout), so a slow client is never a 500.
    """

    def __init__(self, context: SSL.Context, sock: socket.socket):
        super().__init__(context, sock)
        self.set_accept_state()

    def _patiently(self, call, *args):
        timeout = self.gettimeout()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return call(*args)
            except SSL.WantReadError:
                events = select.POLLIN
            except SSL.WantWriteError:
                events = select.POLLOUT
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("TLS peer too slow")
            # poll, not select: a busy process may hold descriptors above select's limit.
            poller = select.poll()
            poller.register(self.fileno(), events)
            poller.poll(None if remaining is None else remaining * 1000)

    def do_handshake(self) -> None:
        self._patiently(super().do_handshake)

    def recv(self, bufsiz, flags=None):
        return self._patiently(super().recv, bufsiz)

    read = recv

    def recv_into(self, buffer, nbytes=None, flags=None):
        return self._patiently(super().recv_into, buffer, nbytes)

    def send(self, buf, flags=0):
        return self._patiently(super().send, buf)

    write = send

    def sendall(self, buf, flags=0):
        # Partial writes are enabled on every pyOpenSSL context, so a write that had to wait
        # is resumed from the first unsent byte, never repeated.
        view = memoryview(buf).cast("B")
        sent = 0
        while sent < len(view):
            sent += self.send(view[sent : sent + 16384])
        return sent


class _ContextAdapter(pyOpenSSLAdapter):
    """cheroot's pyOpenSSL adapter, fed a ready context and wrapping each accepted socket."""

    def __init__(self, context: SSL.Context):
        super().__init__(certificate=None, private_key=None)
        self.context = context
        self._environ = self.get_environ()

    def bind(self, sock):
        # The listening socket stays a plain socket; ``wrap`` handles each connection.
        return sock

    def wrap(self, sock):
        return _TLSConnection(self.context, sock), self._environ.copy()


class _Gateway(wsgi.Gateway_10):
    """Adds the client certificate, the way mod_ssl names it, to every request's environ.

    ``SSL_CLIENT_VERIFY`` is ``SUCCESS`` (verified against client_ca), ``GENEROUS`` (sent but
    not verified: ``request``/``require_any``) or ``NONE`` (no certificate).
    """

    def get_environ(self):
        environ = super().get_environ()
        connection = self.req.conn.socket
        certificate = None
        if hasattr(connection, "get_peer_certificate"):
            certificate = connection.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            environ["SSL_CLIENT_VERIFY"] = "NONE"
            return environ
        verified = self.req.server.client_certificates_verified
        environ["SSL_CLIENT_VERIFY"] = "SUCCESS" if verified else "GENEROUS"
        environ["SSL_CLIENT_S_DN"] = certificate.subject.rfc4514_string()
        environ["SSL_CLIENT_I_DN"] = certificate.issuer.rfc4514_string()
        return environ


class _HeaderReader(cheroot_server.HeaderReader):
    """Request headers with every repeated name joined by ``,`` (no space), as ingress.md §6
    stores them; cheroot kept only the last value of most repeated headers."""

    def __call__(self, rfile, hdict=None):
        headers = {} if hdict is None else hdict
        name = None
        while True:
            line = rfile.readline()
            if not line:
                raise ValueError("Illegal end of headers.")
            if line == b"\r\n":
                return headers
            if not line.endswith(b"\r\n"):
                raise ValueError("HTTP requires CRLF terminators")
            if line[:1] in (b" ", b"\t"):
                if name is None:
                    raise ValueError("Illegal header line.")
                headers[name] += b" " + line.strip()  # obsolete folding: one space
                continue
            raw_name, colon, value = line.partition(b":")
            if not colon:
                raise ValueError("Illegal header line.")
            name = self._transform_key(raw_name)
            if not self._allow_header(name):
                name = None
                continue
            value = value.strip()
            headers[name] = headers[name] + b"," + value if name in headers else value


class _Request(cheroot_server.HTTPRequest):
    header_reader = _HeaderReader()


class _Connection(cheroot_server.HTTPConnection):
    RequestHandlerClass = _Request


class _Server(wsgi.Server):
    ConnectionClass = _Connection
    listener_name = "tls"
    client_certificates_verified = False

    def error_log(self, msg="", level=20, traceback=False):
        # cheroot's own complaints become runtime events instead of raw stderr text. A peer
        # that hangs up mid-response (an SSE client leaving, a refused handshake) is routine.
        failure = sys.exc_info()[1]
        if isinstance(failure, (SSL.Error, ConnectionError, TimeoutError)):
            event(
                "tls_connection_closed",
                level="debug",
                listener=self.listener_name,
                error=str(msg),
            )
        elif level >= 40:
            event("tls_server_error", level="error", listener=self.listener_name, error=str(msg))
        else:
            event("tls_server_notice", level="debug", listener=self.listener_name, note=str(msg))


class TLSServer:
    """A TLS listener with the ``start()``/``stop()`` shape of every listener.

    ``start`` binds (raising ``OSError``) and serves on a daemon thread; ``stop`` closes the
    socket and waits up to ``timeout`` seconds for requests in flight. ``address`` is the
    bound ``(host, port)``.
    """

    def __init__(
        self,
        app,
        host: str,
        port: int,
        context: SSL.Context,
        name: str,
        threads: int,
        verified: bool,
        max_body: int = MAX_REQUEST_BODY,
    ):
        self._server = _Server((host or "0.0.0.0", port), app, numthreads=threads)
        self._server.server_name = "hookaido"
        # The same outer limits as the plain listeners: refused with 413 before reading.
        self._server.max_request_header_size = MAX_REQUEST_HEADERS
        self._server.max_request_body_size = server_body_cap(max_body)
        self._server.listener_name = name
        self._server.gateway = _Gateway
        self._server.client_certificates_verified = bool(verified)
        self._server.ssl_adapter = _ContextAdapter(context)
        self._thread: threading.Thread | None = None
        self.name = name

    @property
    def address(self) -> tuple[str, int]:
        return self._server.bind_addr[0], self._server.bind_addr[1]

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> None:
        self._server.prepare()
        self._thread = threading.Thread(
            target=self._serve, name=f"hookaido-{self.name}", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._server.serve()
        except Exception as error:  # the listener is gone; say so once, structured
            event("http_server_error", level="error", listener=self.name, error=repr(error))

    def set_max_body(self, max_body: int) -> None:
        """Resize the body cap of the running server; requests already being read keep theirs."""
        self._server.max_request_body_size = server_body_cap(max_body)

    def stop(self, timeout: float = 5.0) -> None:
        self._server.shutdown_timeout = timeout
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def make_tls_server(
    app,
    host: str,
    port: int,
    tls: TLSConfig,
    *,
    name: str = "tls",
    threads: int = 8,
    max_body: int = MAX_REQUEST_BODY,
) -> TLSServer:
    """A TLS listener for ``app`` on ``host:port``; nothing listens until ``start()``.

    ``max_body`` is the largest request body read at all (the apps apply their own limits).
    Raises ``ConfigError`` (naming the file) for unreadable or mismatched certificate files.
    """
    warn_if_expiring(check_tls_files(tls), tls, name)
    context = build_context(tls)
    policy = CLIENT_AUTH_MODES[tls.client_auth]
    verified = bool(policy and policy[1])
    return TLSServer(app, host, port, context, name, threads, verified, max_body)
