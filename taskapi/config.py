"""Settings, read once from the environment (and `.env` in development, loaded by the entry points)."""

import os

import psycopg
from psycopg.conninfo import conninfo_to_dict

PRODUCTION = "production"
MIGRATION_TABLE = "_yoyo_migration"  # yoyo's record of applied migrations (readiness compares it with sql/)


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line an operator can act on."""


def _int(environ, name, default, minimum=0):
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}.")
    return value


def _float(environ, name, default):
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}.") from None
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {raw}.")
    return value


def _on_off(environ, name, default):
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("on", "off"):
        raise ConfigError(f"{name} must be on or off, got {raw!r}.")
    return raw == "on"


def _prepare_threshold(environ):
    # psycopg prepares a statement server-side after this many executions; "none" turns that off,
    # which PgBouncer in transaction mode (and similar poolers) needs.
    raw = environ.get("DB_PREPARE_THRESHOLD", "").strip().lower()
    if raw in ("none", "off"):
        return None
    return _int(environ, "DB_PREPARE_THRESHOLD", 5)


def is_production(environ=os.environ):
    return environ.get("TASKAPI_ENV", "development").strip().lower() == PRODUCTION


def require_database_url(environ=os.environ):
    url = environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    if is_production(environ):
        raise ConfigError("DATABASE_URL is not set; TASKAPI_ENV=production never falls back to the embedded database.")
    raise ConfigError("DATABASE_URL is not set; `make run` starts the embedded database and sets it for you.")


def check_database_url(url):
    """The URL, either libpq form (`postgresql://a:5432,b:5432/db?...` or `host=a,b port=5432 dbname=db ...`), with
    one host or several. Several need target_session_attrs=read-write: with libpq's default (any) a new connection
    could land on a standby, and every write there would fail until it was replaced."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # libpq's message may quote the URL, password included: not repeated
        raise ConfigError("DATABASE_URL is not a PostgreSQL URL or key=value connection string.") from None
    hosts = max(len(params.get(key, "").split(",")) for key in ("host", "hostaddr"))
    if hosts > 1 and params.get("target_session_attrs") != "read-write":
        raise ConfigError(
            f"DATABASE_URL names {hosts} hosts but not target_session_attrs=read-write: connections could land on a"
            " standby, where every write fails."
        )
    return url


AUTH_MODES = ("none", "jwt")
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
PUBLIC_KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
JWT_SECRET_MIN_BYTES = 32


def _list(environ, name):
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def _auth(environ):
    """AUTH_MODE and, under jwt, exactly one key setting and the algorithms it allows."""
    mode = environ.get("AUTH_MODE", "").strip().lower() or ("jwt" if is_production(environ) else "none")
    if mode not in AUTH_MODES:
        raise ConfigError(f"AUTH_MODE must be one of {', '.join(AUTH_MODES)}, got {mode!r}.")
    settings = {
        "AUTH_MODE": mode,
        "JWT_SECRET": environ.get("JWT_SECRET", ""),
        "JWT_JWKS_URL": environ.get("JWT_JWKS_URL", "").strip(),
        "JWT_AUDIENCE": environ.get("JWT_AUDIENCE", "").strip() or None,
        "JWT_ISSUER": environ.get("JWT_ISSUER", "").strip() or None,
        "JWT_SUBJECT_CLAIM": environ.get("JWT_SUBJECT_CLAIM", "").strip() or "sub",
        "JWT_LEEWAY_SECONDS": _int(environ, "JWT_LEEWAY_SECONDS", 30),
        "JWT_JWKS_CACHE_SECONDS": _int(environ, "JWT_JWKS_CACHE_SECONDS", 300, minimum=1),
        "JWT_JWKS_COOLDOWN_SECONDS": _int(environ, "JWT_JWKS_COOLDOWN_SECONDS", 30),
        "JWT_ALGORITHMS": [],
    }
    if mode != "jwt":
        return settings
    secret, jwks_url = settings["JWT_SECRET"], settings["JWT_JWKS_URL"]
    if bool(secret) == bool(jwks_url):
        raise ConfigError("AUTH_MODE=jwt needs exactly one of JWT_SECRET (HMAC) or JWT_JWKS_URL (public keys).")
    if secret and len(secret.encode()) < JWT_SECRET_MIN_BYTES:
        raise ConfigError(f"JWT_SECRET must be at least {JWT_SECRET_MIN_BYTES} bytes, got {len(secret.encode())}.")
    if jwks_url and not jwks_url.lower().startswith(("http://", "https://")):
        raise ConfigError(f"JWT_JWKS_URL must be an http(s) URL, got {jwks_url!r}.")
    allowed = HMAC_ALGORITHMS if secret else PUBLIC_KEY_ALGORITHMS
    chosen = _list(environ, "JWT_ALGORITHMS") or list(allowed)
    refused = [alg for alg in chosen if alg not in allowed]
    if refused:
        kind = "JWT_SECRET" if secret else "JWT_JWKS_URL"
        raise ConfigError(
            f"JWT_ALGORITHMS {', '.join(refused)} not allowed with {kind}; choose from {', '.join(allowed)}."
        )
    settings["JWT_ALGORITHMS"] = chosen
    return settings


def from_env(environ=os.environ):
    """The app's settings as a dict for `app.config`, validated so a bad value fails at start, not later."""
    pool_min = _int(environ, "DB_POOL_MIN_SIZE", 1, minimum=0)
    pool_max = _int(environ, "DB_POOL_MAX_SIZE", 4, minimum=1)
    if pool_max < pool_min:
        raise ConfigError(f"DB_POOL_MAX_SIZE ({pool_max}) is below DB_POOL_MIN_SIZE ({pool_min}).")
    return {
        "DATABASE_URL": check_database_url(require_database_url(environ)),
        "TASKAPI_ENV": environ.get("TASKAPI_ENV", "development").strip().lower() or "development",
        "DB_POOL_MIN_SIZE": pool_min,
        "DB_POOL_MAX_SIZE": pool_max,
        "DB_POOL_TIMEOUT": _float(environ, "DB_POOL_TIMEOUT", 3.0),
        "DB_CONNECT_TIMEOUT": _int(environ, "DB_CONNECT_TIMEOUT", 3, minimum=1),
        "DB_STATEMENT_TIMEOUT_MS": _int(environ, "DB_STATEMENT_TIMEOUT_MS", 5000),
        "DB_PREPARE_THRESHOLD": _prepare_threshold(environ),
        "TRUSTED_PROXY_COUNT": _int(environ, "TRUSTED_PROXY_COUNT", 0),
        "HEALTH_BIND": environ.get("TASKAPI_HEALTH_BIND", "127.0.0.1:8001").strip(),
        "METRICS": _on_off(environ, "TASKAPI_METRICS", True),
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
        "CORS_ORIGINS": _list(environ, "CORS_ORIGINS"),
        "IDEMPOTENCY_TTL_HOURS": _int(environ, "IDEMPOTENCY_TTL_HOURS", 24, minimum=1),
        "TASKS_PER_USER_MAX": _int(environ, "TASKS_PER_USER_MAX", 100_000, minimum=1),
        "LISTS_PER_USER_MAX": _int(environ, "LISTS_PER_USER_MAX", 1_000, minimum=1),
        "TOMBSTONE_RETENTION_DAYS": _int(environ, "TOMBSTONE_RETENTION_DAYS", 30, minimum=1),
        "TOMBSTONES_PER_USER_MAX": _int(environ, "TOMBSTONES_PER_USER_MAX", 10_000, minimum=1),
        "IDEMPOTENCY_KEYS_PER_USER_MAX": _int(environ, "IDEMPOTENCY_KEYS_PER_USER_MAX", 1_000, minimum=1),
        **_auth(environ),
    }


def start_warnings(settings):
    """What gunicorn logs at start, one warning line each: settings it accepts that leave the service open."""
    lines = []
    if settings["TASKAPI_ENV"] == PRODUCTION and settings["AUTH_MODE"] == "none":
        lines.append("AUTH_MODE=none in production: every client can act for every user.")
    if settings["AUTH_MODE"] == "jwt" and settings["JWT_JWKS_URL"]:
        unchecked = {  # what each unset one lets in, and what to set it to
            "JWT_AUDIENCE": ("tokens the provider issued to other clients", "this API's audience (`aud`)"),
            "JWT_ISSUER": ("tokens of any issuer signing with the same keys", "the provider's issuer (`iss`)"),
        }
        unset = [name for name in unchecked if not settings[name]]
        if unset:
            lines.append(
                f"AUTH_MODE=jwt with JWT_JWKS_URL but {' and '.join(unset)} unset: "
                + " and ".join(unchecked[name][0] for name in unset)
                + " are accepted; set "
                + " and ".join(f"{name} to {unchecked[name][1]}" for name in unset)
                + "."
            )
    return lines
