"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: database reachable, schema current)."""

import logging

import psycopg
from flask import Blueprint, current_app

from taskapi import apidoc
from taskapi.config import MIGRATION_TABLE
from taskapi.db import connection
from taskapi.errors import ServiceUnavailable

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

APPLIED_MIGRATIONS = f"SELECT migration_id FROM {MIGRATION_TABLE}"
READY_TIMEOUT_SECONDS = 2.0


@bp.get("/healthz")
@apidoc.operation(
    "healthz",
    tag="health",
    summary="Liveness",
    description="The process answers; no database call.",
    success=apidoc.ok("Up.", "Status"),
)
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
@apidoc.operation(
    "readyz",
    tag="health",
    summary="Readiness",
    description="The database answers and no migration is pending; else 503.",
    success=apidoc.ok("Ready.", "Status"),
)
def readyz():
    try:
        with connection(timeout=min(READY_TIMEOUT_SECONDS, current_app.config["DB_POOL_TIMEOUT"])) as conn:
            applied = {row["migration_id"] for row in conn.execute(APPLIED_MIGRATIONS)}
    except psycopg.errors.UndefinedTable:
        applied = set()
    missing = [m for m in current_app.config["MIGRATION_IDS"] if m not in applied]
    if missing:
        log.warning("not ready: migrations pending: %s", ", ".join(missing))
        raise ServiceUnavailable("Database migrations are pending.")
    return {"status": "ok"}
