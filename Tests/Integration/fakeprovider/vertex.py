"""Vertex AI's credentials, as the fake provider checks them: Google's OAuth token endpoint for
service accounts, and the bearer tokens Vertex AI's model endpoints accept.

A test registers a service account's public key (``register_service_account``); the token
endpoint (``POST /token``, the ``token_uri`` of the test's key file) then verifies the JWT the
gateway signed with the private key (RS256, ``iss`` = the account, ``aud`` = the token URI,
``scope`` = cloud-platform, at most an hour long) and answers an access token, as
oauth2.googleapis.com does; errors are OAuth's ``{"error", "error_description"}``. Tokens it
issued, and any a test allows (``allow_token``, for the ``access_token`` option), open the model
endpoints. Key pairs are made at test time (``new_service_account``): no private key is kept in
the repository. Needs ``cryptography`` (for the tests only; the rest of the fake is stdlib).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from urllib.parse import parse_qs

TOKEN_PATH = "/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLAUDE_VERSION = "vertex-2023-10-16"

_lock = threading.Lock()
_accounts: dict[str, object] = {}  # client_email -> public key
_tokens: set[str] = set()
_exchanges: list[dict] = []          # the claims of every successful exchange, oldest first


def new_service_account(token_uri: str, email: str = "sluice-test@fake-project.iam.gserviceaccount.com") -> dict:
    """A fresh key file (as Google's console downloads it) whose public key the fake knows."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    register_service_account(email, key.public_key())
    return {"type": "service_account", "project_id": "fake-project", "private_key_id": secrets.token_hex(20),
            "private_key": pem, "client_email": email, "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri}


def register_service_account(email: str, public_key) -> None:
    with _lock:
        _accounts[email] = public_key


def allow_token(token: str) -> None:
    with _lock:
        _tokens.add(token)


def token_is_valid(authorization: str | None) -> bool:
    if not authorization or not authorization.startswith("Bearer "):
        return False
    with _lock:
        return authorization[len("Bearer "):] in _tokens


def exchanges() -> list[dict]:
    with _lock:
        return list(_exchanges)


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _oauth_error(error: str, description: str) -> tuple[int, dict]:
    return 400, {"error": error, "error_description": description}


def exchange(form: bytes, token_uri: str) -> tuple[int, dict]:
    """The token endpoint: a JWT bearer grant in, an access token out."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    fields = {k: v[0] for k, v in parse_qs(form.decode("utf-8", "replace")).items()}
    if fields.get("grant_type") != GRANT_TYPE:
        return _oauth_error("unsupported_grant_type", "Invalid grant_type: " + fields.get("grant_type", ""))
    parts = fields.get("assertion", "").split(".")
    if len(parts) != 3:
        return _oauth_error("invalid_request", "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
    try:
        header, claims = json.loads(_b64decode(parts[0])), json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except ValueError:
        return _oauth_error("invalid_request", "Invalid JWT: not base64url JSON")
    if header.get("alg") != "RS256":
        return _oauth_error("invalid_grant", "Invalid JWT: alg must be RS256")
    with _lock:
        public_key = _accounts.get(claims.get("iss"))
    if public_key is None:
        return _oauth_error("invalid_grant", "Invalid grant: account not found")
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return _oauth_error("invalid_grant", "Invalid JWT Signature.")
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or not (iat - 300 <= now <= exp) or exp - iat > 3600:
        return _oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
    if claims.get("aud") != token_uri:
        return _oauth_error("invalid_grant", "Invalid JWT: Failed audience check.")
    if SCOPE not in str(claims.get("scope", "")).split():
        return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    token = "ya29.fake-" + secrets.token_urlsafe(24)
    with _lock:
        _tokens.add(token)
        _exchanges.append({"header": header, "claims": claims})
    return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
