"""The fake provider's certificate and key, and the server side of TLS made from them.

The files are made at test time (harness/tls.py, a throwaway CA), never committed: the gateway
trusts that CA only through a provider's ``ca_file``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class TLSFiles:
    cert: str  # PEM: the server certificate (and any intermediates)
    key: str   # PEM: its private key
    ca: str | None = None  # PEM: the CA that signed cert, which clients must trust

    def server_context(self, http2: bool) -> ssl.SSLContext:
        """TLS 1.2 or later, as the providers' APIs; ALPN offers ``h2`` first when ``http2``."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        # RFC 9113 §9.2.2: HTTP/2 over TLS 1.2 needs an ephemeral key exchange and an AEAD cipher.
        context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
        context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
        return context
