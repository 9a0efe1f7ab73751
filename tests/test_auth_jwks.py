"""AUTH_MODE=jwt with JWT_JWKS_URL: public-key tokens checked against a JWKS served over real HTTP by the test,
key rotation without a restart, the last good key set kept while the endpoint is down, bounded refetching for
unknown `kid`s, and 503 when no key can be had."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from helpers import assert_error
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from test_auth import assert_unauthorized, hmac_signed

from taskapi import create_app
from taskapi.db import close_pool


class Jwks:
    """A JWKS endpoint the test controls: its keys, whether it answers, and how often it was asked."""

    def __init__(self):
        self.keys, self.up, self.fetches = [], True, 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode() if jwks.up else b"<html>down</html>"
                self.send_response(200 if jwks.up else 502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, kid, private_key, algorithm, alg):
        jwk = algorithm.to_jwk(private_key.public_key(), as_dict=True)
        self.keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def signed(private_key, alg, kid, subject=None, **claims):
    now = int(time.time())
    payload = {"sub": subject or str(uuid.uuid4()), "iat": now, "exp": now + 600, **claims}
    return {"Authorization": "Bearer " + jwt.encode(payload, private_key, algorithm=alg, headers={"kid": kid})}


@pytest.fixture
def jwks():
    endpoint = Jwks()
    endpoint.publish("rsa-1", RSA_KEY, RSAAlgorithm, "RS256")
    endpoint.publish("ec-1", EC_KEY, ECAlgorithm, "ES256")
    endpoint.publish("ed-1", ED_KEY, OKPAlgorithm, "EdDSA")
    yield endpoint
    endpoint.server.shutdown()


def jwks_app(database_url, jwks, **settings):
    return create_app(
        {"DATABASE_URL": database_url, "AUTH_MODE": "jwt", "JWT_JWKS_URL": jwks.url, **settings},
    )


@pytest.fixture
def app_for(database_url, jwks):
    apps = []

    def make(**settings):
        apps.append(jwks_app(database_url, jwks, **settings))
        return apps[-1].test_client()

    yield make
    for app in apps:
        close_pool(app)


@pytest.mark.parametrize(
    ("key", "alg", "kid"), [(RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1"), (ED_KEY, "EdDSA", "ed-1")]
)
def test_public_key_tokens_are_accepted(app_for, key, alg, kid):
    client = app_for()
    response = client.post("/users", json={}, headers=signed(key, alg, kid))
    assert response.status_code == 201, response.get_json()


def test_an_hmac_token_signed_with_the_public_key_is_refused(app_for):
    """Algorithm confusion: the RSA public key (as published) used as an HMAC secret must not verify."""
    client = app_for()
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for key_bytes in (pem, json.dumps(RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)).encode()):
        header = hmac_signed({"sub": str(uuid.uuid4()), "exp": int(time.time()) + 600}, key_bytes, kid="rsa-1")
        assert_unauthorized(client.get("/users/me", headers={"Authorization": header}))


def test_a_token_whose_alg_differs_from_its_key_is_refused(app_for):
    client = app_for()
    # RS384 with the RS256 key's kid: same key material, but the published key is bound to RS256.
    assert_unauthorized(client.get("/users/me", headers=signed(RSA_KEY, "RS384", "rsa-1")))


def test_jwt_algorithms_narrows_what_is_accepted(app_for):
    client = app_for(JWT_ALGORITHMS="RS256")
    assert client.post("/users", json={}, headers=signed(RSA_KEY, "RS256", "rsa-1")).status_code == 201
    assert_unauthorized(client.get("/users/me", headers=signed(EC_KEY, "ES256", "ec-1")))


def test_a_rotated_key_is_fetched_without_a_restart(app_for, jwks):
    client = app_for(JWT_JWKS_COOLDOWN_SECONDS="0")
    assert client.post("/users", json={}, headers=signed(RSA_KEY, "RS256", "rsa-1")).status_code == 201
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish("rsa-2", new_key, RSAAlgorithm, "RS256")
    assert client.post("/users", json={}, headers=signed(new_key, "RS256", "rsa-2")).status_code == 201


def test_made_up_kids_cannot_hammer_the_jwks(app_for, jwks):
    client = app_for()  # the default cooldown: one refetch per 30 s at most
    assert client.post("/users", json={}, headers=signed(RSA_KEY, "RS256", "rsa-1")).status_code == 201
    before = jwks.fetches
    for n in range(20):
        assert_unauthorized(client.get("/users/me", headers=signed(RSA_KEY, "RS256", f"made-up-{n}")))
    assert jwks.fetches - before <= 1


def test_jwks_down_with_no_cached_key_is_503(app_for, jwks):
    jwks.up = False
    client = app_for()
    response = client.get("/users/me", headers=signed(RSA_KEY, "RS256", "rsa-1"))
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"]


def test_jwks_unreachable_is_503(app_for, jwks):
    jwks.server.shutdown()
    jwks.server.server_close()
    response = app_for().get("/users/me", headers=signed(RSA_KEY, "RS256", "rsa-1"))
    assert_error(response, 503, "SERVICE_UNAVAILABLE")


def test_the_last_good_key_set_is_kept_while_the_jwks_is_down(app_for, jwks):
    client = app_for(JWT_JWKS_CACHE_SECONDS="1")
    headers = signed(RSA_KEY, "RS256", "rsa-1")
    assert client.post("/users", json={}, headers=headers).status_code == 201
    jwks.up = False
    time.sleep(1.2)  # the cached set has expired; its refetch fails
    assert client.get("/users/me", headers=headers).status_code == 200
    assert client.get("/users/me", headers=headers).status_code == 200


@pytest.mark.parametrize("outage", ["503", "connection dropped"])
def test_an_unknown_kid_while_the_jwks_is_down_is_503_and_cached_kids_keep_working(app_for, jwks, outage):
    """The kid may exist at the identity provider: a client told 401 would send its user to log in again, which
    cannot help while the keys cannot be fetched. Once a fetch succeeds again, an unknown kid is 401."""
    client = app_for(JWT_JWKS_COOLDOWN_SECONDS="0")
    cached = signed(RSA_KEY, "RS256", "rsa-1")
    assert client.post("/users", json={}, headers=cached).status_code == 201
    if outage == "503":
        jwks.up = False
    else:
        jwks.server.shutdown()
        jwks.server.server_close()
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = client.get("/users/me", headers=signed(new_key, "RS256", "rsa-2"))
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"]
    assert client.get("/users/me", headers=cached).status_code == 200
    if outage == "503":
        jwks.up = True
        assert_unauthorized(client.get("/users/me", headers=signed(new_key, "RS256", "rsa-2")))


def test_an_unknown_kid_during_the_refetch_cooldown_after_a_failed_fetch_is_still_503(app_for, jwks):
    client = app_for(JWT_JWKS_CACHE_SECONDS="1")  # the default cooldown: at most one refetch for unknown kids
    cached = signed(RSA_KEY, "RS256", "rsa-1")
    assert client.post("/users", json={}, headers=cached).status_code == 201
    jwks.up = False
    time.sleep(1.2)  # the cached set has expired: the next request's refetch fails, the last good set stays
    assert client.get("/users/me", headers=cached).status_code == 200
    for n in range(3):
        assert_error(client.get("/users/me", headers=signed(RSA_KEY, "RS256", f"new-{n}")), 503, "SERVICE_UNAVAILABLE")
    assert client.get("/users/me", headers=cached).status_code == 200
