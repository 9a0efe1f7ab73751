"""Mint a development token signed with JWT_SECRET (HS256), carrying JWT_ISSUER / JWT_AUDIENCE when those are set.

python -m taskapi.token SUBJECT [--ttl SECONDS]      (JWT_SECRET from the environment or .env)
"""

import argparse
import os
import sys
import time

import jwt


def mint(secret, subject, ttl=3600, issuer=None, audience=None, now=None):
    now = int(time.time() if now is None else now)
    claims = {"sub": subject, "iat": now, "exp": now + ttl}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


def main(argv=None):
    from dotenv import load_dotenv

    from taskapi.config import JWT_SECRET_MIN_BYTES

    parser = argparse.ArgumentParser(prog="python -m taskapi.token", description=__doc__.splitlines()[0])
    parser.add_argument("subject", help="the token's `sub`: a UUID, or any identity-provider subject")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires (default 3600)")
    args = parser.parse_args(argv)
    load_dotenv()
    secret = os.environ.get("JWT_SECRET", "")
    if len(secret.encode()) < JWT_SECRET_MIN_BYTES:
        sys.exit(f"taskapi.token: JWT_SECRET must be set to at least {JWT_SECRET_MIN_BYTES} bytes.")
    issuer, audience = os.environ.get("JWT_ISSUER", "").strip(), os.environ.get("JWT_AUDIENCE", "").strip()
    print(mint(secret, args.subject, args.ttl, issuer or None, audience or None))


if __name__ == "__main__":
    main()
