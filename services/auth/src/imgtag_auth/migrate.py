"""`python -m imgtag_auth.migrate`: apply the auth database's migrations and exit (the
deployment's migration Job), or with `--wait SECONDS` wait until they are applied (the
services' init containers, which then start with IMGTAG_AUTH_MIGRATE_ON_START=false)."""

from imgtag_auth.server import MIGRATIONS
from imgtag_auth.settings import AuthSettings
from imgtag_common.db import run_migrations

if __name__ == "__main__":
    run_migrations("auth", AuthSettings(), MIGRATIONS)
