"""Bodies over a TLS listener arrive whole however the client paces them, and large
responses reach a slow reader intact."""

import hashlib
import http.client
import socket
import ssl
import time


def echo_digest(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    answer = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return [answer]


def big_download(environ, start_response):
    chunk = bytes(range(256)) * 256  # 64 KiB
    start_response("200 OK", [("Content-Length", str(len(chunk) * 128))])
    return [chunk] * 128


def tls_socket(port: int, certs) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    certs.ca.configure_trust(context)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_response(stream: ssl.SSLSocket) -> tuple[bytes, bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        received += stream.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        .split(b":")[1]
        .strip()
    )
    while len(body) < length:
        chunk = stream.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head, body


def test_a_body_sent_after_a_pause_is_read_whole(tls_listener, certs):
    server = tls_listener("none", app=echo_digest, client_ca=False)
    body = b'{"event":"push"}'
    stream = tls_socket(server.port, certs)

    stream.sendall(
        b"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    time.sleep(0.3)
    stream.sendall(body)
    head, answer = read_response(stream)
    stream.close()

    assert head.startswith(b"HTTP/1.1 200 OK")
    assert answer == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def test_a_large_body_in_many_records_is_read_whole(tls_listener, certs):
    server = tls_listener("none", app=echo_digest, client_ca=False)
    body = bytes(range(256)) * 4096  # 1 MiB
    stream = tls_socket(server.port, certs)

    stream.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(body))
    for start in range(0, len(body), 100_000):
        stream.sendall(body[start : start + 100_000])
        time.sleep(0.01)
    head, answer = read_response(stream)
    stream.close()

    assert head.startswith(b"HTTP/1.1 200 OK")
    assert answer == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def test_a_slow_reader_gets_a_large_response_intact(tls_listener, certs):
    server = tls_listener("none", app=big_download, client_ca=False)
    stream = tls_socket(server.port, certs)

    stream.sendall(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(0.5)  # 8 MiB overflow the socket buffers: the server has to wait for the reader
    head, body = read_response(stream)
    stream.close()

    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == (bytes(range(256)) * 256) * 128


def test_a_body_over_the_listener_limit_is_refused_before_it_is_read(certs, free_port):
    from hookaido.config.model import TLSConfig
    from hookaido.server.listeners import server_body_cap
    from hookaido.server.tls import make_tls_server

    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b""]

    tls = TLSConfig(cert_file=certs.cert_file, key_file=certs.key_file)
    server = make_tls_server(app, "127.0.0.1", free_port, tls, max_body=1024)
    server.start()
    try:
        stream = tls_socket(server.port, certs)
        # The server's own cap sits far above max_body (the app answers in between).
        over = server_body_cap(1024) + 1
        stream.sendall(
            f"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {over}\r\n\r\n".encode()
        )
        head = stream.recv(65536)
        stream.close()
    finally:
        server.stop(timeout=2)

    assert head.startswith(b"HTTP/1.1 413")
    assert calls == []


def test_repeated_headers_reach_the_app_joined_with_a_bare_comma(tls_listener, certs):
    def echo(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{environ.get('HTTP_X_TAG')}|{environ.get('HTTP_ACCEPT')}".encode("latin-1")]

    server = tls_listener("none", app=echo)
    context = ssl.create_default_context()
    certs.ca.configure_trust(context)
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=5)
    try:
        connection.putrequest("GET", "/", skip_accept_encoding=True)
        for name, value in (("X-Tag", "a"), ("x-tag", " b "), ("Accept", "x/y"), ("Accept", "z/w")):
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert body == b"a,b|x/y,z/w"
