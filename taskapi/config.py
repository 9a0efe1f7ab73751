"""Settings, read once from the environment (and `.env` in development, loaded by the entry points)."""

import os

PRODUCTION = "production"


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


def from_env(environ=os.environ):
    """The app's settings as a dict for `app.config`, validated so a bad value fails at start, not later."""
    pool_min = _int(environ, "DB_POOL_MIN_SIZE", 1, minimum=0)
    pool_max = _int(environ, "DB_POOL_MAX_SIZE", 4, minimum=1)
    if pool_max < pool_min:
        raise ConfigError(f"DB_POOL_MAX_SIZE ({pool_max}) is below DB_POOL_MIN_SIZE ({pool_min}).")
    return {
        "DATABASE_URL": require_database_url(environ),
        "TASKAPI_ENV": environ.get("TASKAPI_ENV", "development").strip().lower() or "development",
        "DB_POOL_MIN_SIZE": pool_min,
        "DB_POOL_MAX_SIZE": pool_max,
        "DB_POOL_TIMEOUT": _float(environ, "DB_POOL_TIMEOUT", 3.0),
        "DB_CONNECT_TIMEOUT": _int(environ, "DB_CONNECT_TIMEOUT", 3, minimum=1),
        "DB_STATEMENT_TIMEOUT_MS": _int(environ, "DB_STATEMENT_TIMEOUT_MS", 5000),
        "DB_PREPARE_THRESHOLD": _prepare_threshold(environ),
        "TRUSTED_PROXY_COUNT": _int(environ, "TRUSTED_PROXY_COUNT", 0),
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
    }
