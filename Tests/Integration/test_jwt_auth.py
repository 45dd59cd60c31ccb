"""The `jwt-auth` pipeline plugin: callers present a JSON Web Token instead of an API key.

Tokens are minted here with PyJWT: HS256 with shared secrets (one from the environment, one
inline), RS256 and ES256 with keys generated for the module and published in a JWKS file. A
valid token is served and never forwarded upstream; an expired, not-yet-valid, wrongly addressed,
wrongly issued, badly signed or unknown-key token is 401 ``authentication_error``; a model
outside the token's ``models`` claim is 403 ``permission_error``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness.constants import FAKE_PROVIDER_KEY
from harness.policy import CHAT, MESSAGES, anthropic_error, openai_error, start_gateway, upstream_calls, \
    with_pipeline
from harness.sluice import sluice_env

ISSUER = "https://issuer.sluice.test/"
AUDIENCE = "sluice-gateway"
ENV_SECRET = "jwt-env-secret-0123456789abcdefghijklmnop"    # ≥ 32 bytes: HS256 keys as long as the hash
INLINE_SECRET = "jwt-inline-secret-abcdefghijklmnop0123456789"
OTHER_SECRET = "not-the-configured-secret-0123456789abcdefgh"
HELLO = [{"role": "user", "content": "hello there"}]
DROP = object()  # mint(aud=DROP) leaves the claim out


# --- keys and tokens ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "other-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "other-ec": ec.generate_private_key(ec.SECP256R1()),
    }


def write_jwks(keys: dict[str, Any], path) -> None:
    rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(keys["rsa"].public_key(), as_dict=True)
    ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(keys["ec"].public_key(), as_dict=True)
    path.write_text(json.dumps({"keys": [
        {**rsa_jwk, "kid": "rsa-1", "alg": "RS256", "use": "sig"},
        {**ec_jwk, "kid": "ec-1", "alg": "ES256", "use": "sig"},
    ]}, indent=2))


def claims(**over: Any) -> dict:
    now = int(time.time())
    base = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    base.update(over)
    return {k: v for k, v in base.items() if v is not DROP}


def mint(keys: dict[str, Any], alg: str = "HS256", kid: str | None = None, key: Any = None, **over: Any) -> str:
    """A token signed with the configured key for ``alg`` (or ``key``), kid defaulting to its own."""
    default_key, default_kid = {"HS256": (ENV_SECRET, "hs-env"), "RS256": (keys["rsa"], "rsa-1"),
                                "ES256": (keys["ec"], "ec-1")}[alg]
    headers = {"kid": kid or default_kid} if kid != "" else {}
    return jwt.encode(claims(**over), key if key is not None else default_key, algorithm=alg, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, payload: dict, sign) -> str:
    """A token assembled by hand, for what PyJWT refuses to produce (alg none, key confusion)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def tampered(token: str, **over: Any) -> str:
    """The same signature over a changed payload."""
    head, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(over)
    return f"{head}.{b64url(json.dumps(data).encode())}.{signature}"


# --- gateways -------------------------------------------------------------------------------------

def jwt_auth(jwks_path, **more: Any) -> dict:
    config = {"hmac_secrets": [{"kid": "hs-env", "secret": {"env": "JWT_TEST_SECRET"}},
                               {"kid": "hs-inline", "secret": INLINE_SECRET}],
              "jwks_file": str(jwks_path), "issuer": ISSUER, "audience": AUDIENCE, "models_claim": "models",
              "models_claim_absent": "all"}  # (the default refuses; test_hardening.py checks it)
    config.update(more)
    return {"plugin": "jwt-auth", "config": config}


JWT_ENV = sluice_env({"JWT_TEST_SECRET": ENV_SECRET})


@pytest.fixture(scope="module")
def jwks_path(keys, tmp_path_factory):
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    write_jwks(keys, path)
    return path


@pytest.fixture(scope="module")
def jgw(sluice_bin, fake_provider, tmp_path_factory, jwks_path):
    """jwt-auth (two HMAC secrets, the JWKS, issuer, audience, models claim) → router."""
    manifest = with_pipeline(fake_provider.base_url, auth=jwt_auth(jwks_path))
    gw = start_gateway(sluice_bin, manifest, tmp_path_factory.mktemp("jwt"), "jwt", env=JWT_ENV)
    yield gw
    gw.stop()


def ask(gw, token: str | None, model: str = "local", headers: dict | None = None) -> httpx.Response:
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=gw.url, timeout=10, trust_env=False) as c:
        return c.post(CHAT, json={"model": model, "messages": HELLO}, headers=hdrs)


def assert_status(resp: httpx.Response, status: int, type_: str) -> None:
    assert resp.status_code == status, f"{resp.status_code}: {resp.text[:300]}"
    assert openai_error(resp.json())["type"] == type_, resp.text
    assert resp.headers.get("x-sluice-provider") == "none"


def assert_not_forwarded(fake, token: str) -> None:
    for record in upstream_calls(fake):
        assert record["headers"].get("authorization") == f"Bearer {FAKE_PROVIDER_KEY}", record["headers"]
        leaked = [name for name, value in record["headers"].items() if token in value]
        assert not leaked, f"the client's token went upstream in {leaked}"
        assert token not in json.dumps(record["body"])


# --- accepted -------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg,kid,secret", [("HS256", "hs-env", ENV_SECRET), ("HS256", "hs-inline", INLINE_SECRET),
                                            ("RS256", None, None), ("ES256", None, None)],
                         ids=["HS256-env-secret", "HS256-inline-secret", "RS256", "ES256"])
def test_valid_token_is_served(jgw, fake, keys, alg, kid, secret):
    token = mint(keys, alg, kid=kid, key=secret)
    with openai.OpenAI(base_url=jgw.base_url, api_key=token, max_retries=0, timeout=10) as sdk:
        answer = sdk.chat.completions.create(model="local", messages=HELLO)
    assert answer.choices[0].message.content == "echo: hello there"
    assert len(upstream_calls(fake)) == 1
    assert_not_forwarded(fake, token)


def test_streamed_answer_and_anthropic_front_door(jgw, fake, keys):
    token = mint(keys, "ES256")
    with openai.OpenAI(base_url=jgw.base_url, api_key=token, max_retries=0, timeout=10) as sdk:
        text = "".join(c.choices[0].delta.content or "" for c in
                       sdk.chat.completions.create(model="local", messages=HELLO, stream=True) if c.choices)
    assert text == "echo: hello there"
    headers = {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=jgw.url, timeout=10, trust_env=False) as c:
        ok = c.post(MESSAGES, json={"model": "local", "max_tokens": 16, "messages": HELLO}, headers=headers)
        refused = c.post(MESSAGES, json={"model": "local", "max_tokens": 16, "messages": HELLO},
                         headers={**headers, "authorization": f"Bearer {mint(keys, 'ES256', exp=1)}"})
    assert ok.status_code == 200, ok.text
    assert refused.status_code == 401, refused.text
    assert anthropic_error(refused.json())["type"] == "authentication_error"
    assert len(upstream_calls(fake)) == 2
    assert_not_forwarded(fake, token)


def test_clock_skew_within_the_leeway_is_accepted(jgw, keys):
    now = int(time.time())
    assert ask(jgw, mint(keys, "RS256", exp=now - 10)).status_code == 200   # leeway_s 30
    assert ask(jgw, mint(keys, "HS256", nbf=now + 10)).status_code == 200
    assert ask(jgw, mint(keys, "ES256", iat=now + 10)).status_code == 200


# --- refused: 401 ---------------------------------------------------------------------------------

def _rsa_public_pem(keys) -> bytes:
    return keys["rsa"].public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def _hs(secret: str | bytes, digest=hashlib.sha256):
    key = secret.encode() if isinstance(secret, str) else secret
    return lambda data: hmac.new(key, data, digest).digest()


NOW = lambda: int(time.time())  # noqa: E731 - tokens are minted when the test runs, not at import
REFUSED = {  # name -> token factory (keys -> token)
    "expired": lambda k: mint(k, "HS256", exp=NOW() - 120),
    "expired-beyond-leeway": lambda k: mint(k, "RS256", exp=NOW() - 45),
    "not-yet-valid": lambda k: mint(k, "ES256", nbf=NOW() + 120),
    "wrong-audience": lambda k: mint(k, "HS256", aud="someone-else"),
    "wrong-audience-list": lambda k: mint(k, "RS256", aud=["a", "b"]),
    "no-audience": lambda k: mint(k, "HS256", aud=DROP),
    "wrong-issuer": lambda k: mint(k, "ES256", iss="https://evil.test/"),
    "no-issuer": lambda k: mint(k, "HS256", iss=DROP),
    "hs256-wrong-secret": lambda k: mint(k, "HS256", key=OTHER_SECRET),
    "hs256-secret-of-another-kid": lambda k: mint(k, "HS256", kid="hs-inline", key=ENV_SECRET),
    "rs256-wrong-key": lambda k: mint(k, "RS256", key=k["other-rsa"]),
    "es256-wrong-key": lambda k: mint(k, "ES256", key=k["other-ec"]),
    "unknown-kid-hs256": lambda k: mint(k, "HS256", kid="hs-unknown"),
    "unknown-kid-rs256": lambda k: mint(k, "RS256", kid="rsa-2"),
    "kid-of-a-key-of-another-type": lambda k: mint(k, "RS256", kid="ec-1"),
    "tampered-payload": lambda k: tampered(mint(k, "HS256"), sub="mallory", models=["*"]),
    "alg-none": lambda k: hand_made({"alg": "none", "typ": "JWT"}, claims(), lambda _: b""),
    "alg-none-with-kid": lambda k: hand_made({"alg": "none", "kid": "hs-env"}, claims(), lambda _: b""),
    "hs256-keyed-with-the-rsa-public-key": lambda k: hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(), _hs(_rsa_public_pem(k))),
    "unsupported-alg-hs512": lambda k: hand_made({"alg": "HS512", "kid": "hs-env"}, claims(),
                                                 _hs(ENV_SECRET, hashlib.sha512)),
    "signature-stripped": lambda k: mint(k, "HS256").rsplit(".", 1)[0] + ".",
    "two-segments": lambda k: ".".join(mint(k, "HS256").split(".")[:2]),
    "not-a-jwt": lambda k: "definitely-not-a-token",
    "garbage-segments": lambda k: "a.b.c",
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_invalid_token_is_401(jgw, fake, keys, name):
    assert_status(ask(jgw, REFUSED[name](keys)), 401, "authentication_error")
    assert upstream_calls(fake) == []


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer"}, {"authorization": "Basic YWxpY2U6c2VjcmV0"},
                                     {"x-api-key": "client-secret-xyz789"}],
                         ids=["no-header", "empty-bearer", "basic", "api-key-instead"])
def test_missing_token_is_401(jgw, fake, headers):
    assert_status(ask(jgw, None, headers=headers), 401, "authentication_error")
    assert upstream_calls(fake) == []


def test_sdk_sees_authentication_error(jgw, keys):
    with openai.OpenAI(base_url=jgw.base_url, api_key=mint(keys, "HS256", exp=int(time.time()) - 3600),
                       max_retries=0, timeout=10) as sdk, pytest.raises(openai.AuthenticationError) as err:
        sdk.chat.completions.create(model="local", messages=HELLO)
    assert err.value.status_code == 401


# --- models claim: 403 ----------------------------------------------------------------------------

@pytest.mark.parametrize("models,allowed", [
    (["smol"], {"smol"}),
    ("smol other-model", {"smol"}),            # a space-separated string
    (["local", "smol"], {"local", "smol"}),
    (DROP, {"local", "smol"}),                 # no claim: every model (models_claim_absent: all)
    ([], set()),                               # an empty list: none
], ids=["array", "space-separated", "both", "absent", "empty"])
def test_models_claim(jgw, fake, keys, models, allowed):
    token = mint(keys, "RS256", models=models)
    for model in ("local", "smol"):
        resp = ask(jgw, token, model=model)
        if model in allowed:
            assert resp.status_code == 200, f"{model}: {resp.status_code} {resp.text[:200]}"
        else:
            assert_status(resp, 403, "permission_error")
    assert len(upstream_calls(fake)) == len(allowed)


def test_model_list_follows_the_claim(jgw, keys):
    with httpx.Client(base_url=jgw.url, timeout=10, trust_env=False) as c:
        resp = c.get("/v1/models", headers={"authorization": f"Bearer {mint(keys, 'HS256', models=['smol'])}"})
        refused = c.get("/v1/models")
    assert resp.status_code == 200, resp.text
    assert [m["id"] for m in resp.json()["data"]] == ["smol"]
    assert refused.status_code == 401


# --- other configurations ---------------------------------------------------------------------------

def test_algorithms_setting_limits_what_is_accepted(start_sluice, fake, keys, jwks_path):
    gw = start_sluice(with_pipeline(fake.base_url, auth=jwt_auth(jwks_path, algorithms=["RS256"])), env=JWT_ENV)
    assert ask(gw, mint(keys, "RS256")).status_code == 200
    assert_status(ask(gw, mint(keys, "HS256")), 401, "authentication_error")
    assert_status(ask(gw, mint(keys, "ES256")), 401, "authentication_error")
    assert len(upstream_calls(fake)) == 1


def test_single_secret_needs_no_kid(start_sluice, fake, keys):
    auth = {"plugin": "jwt-auth", "config": {"hmac_secrets": [{"secret": INLINE_SECRET}]}}
    gw = start_sluice(with_pipeline(fake.base_url, auth=auth))
    assert ask(gw, mint(keys, "HS256", kid="", key=INLINE_SECRET, iss=DROP, aud=DROP)).status_code == 200
    assert_status(ask(gw, mint(keys, "HS256", kid="", key=OTHER_SECRET)), 401, "authentication_error")
    assert_status(ask(gw, mint(keys, "RS256")), 401, "authentication_error")  # no JWKS configured


def test_name_claim_names_the_caller(start_sluice, fake, keys, jwks_path):
    """With rate-limit ``by: key`` after jwt-auth, each caller (named by ``name_claim``) has its own bucket."""
    gw = start_sluice(with_pipeline(fake.base_url, {"plugin": "rate-limit", "config": {"requests_per_minute": 1}},
                                    auth=jwt_auth(jwks_path, name_claim="email")), env=JWT_ENV)
    ann = mint(keys, "HS256", sub="u1", email="ann@example.test")
    ann_again = mint(keys, "ES256", sub="u2", email="ann@example.test")  # another sub, the same name
    bob = mint(keys, "RS256", sub="u1", email="bob@example.test")         # the same sub, another name
    assert [ask(gw, t).status_code for t in (ann, ann_again, bob)] == [200, 429, 200]
