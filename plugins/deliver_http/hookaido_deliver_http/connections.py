"""Connection pools whose responses are the target's final answer, never an interim one.

HTTP lets a server send informational answers (``102 Processing``, ``103 Early Hints``) before
the real one; ``http.client`` only skips ``100 Continue`` and would report the others as the
result. ``101 Switching Protocols`` ends the exchange, so it counts as the answer.
"""

import http.client

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# A server that keeps sending informational answers is broken; give up after this many.
MAX_INTERIM_RESPONSES = 10


class _FinalResponse(http.client.HTTPResponse):
    def _read_status(self):
        for _ in range(MAX_INTERIM_RESPONSES + 1):
            version, status, reason = super()._read_status()
            # 100 is left to http.client, which skips it the same way.
            if not 101 < status < 200:
                return version, status, reason
            http.client.parse_headers(self.fp)
        raise http.client.HTTPException(
            f"more than {MAX_INTERIM_RESPONSES} informational (1xx) responses"
        )


class _Connection(HTTPConnection):
    response_class = _FinalResponse


class _TLSConnection(HTTPSConnection):
    response_class = _FinalResponse


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


POOL_CLASSES = {"http": _Pool, "https": _TLSPool}
