"""`python -m imgtag_auth.bootstrap`: apply migrations and create the first admin if none exists.

The local stack runs this in the foreground before starting the services, so a generated admin
password appears on the user's console (as `IMGTAG_INITIAL_ADMIN=<username> <password>` on
stdout) instead of in a log file. Prints nothing when an admin already exists."""

from __future__ import annotations

import asyncio

from imgtag_auth.db.repository import AuthRepository
from imgtag_auth.server import MIGRATIONS, AuthDomain
from imgtag_auth.settings import AuthSettings
from imgtag_common.blocking import BlockingExecutor
from imgtag_common.db import open_database, session_factory


async def main() -> None:
    settings = AuthSettings()
    engine = await open_database(settings, MIGRATIONS)
    executor = BlockingExecutor(2)
    try:
        domain = AuthDomain(settings, AuthRepository(session_factory(engine)), executor)
        generated = await domain.ensure_admin()
        if generated:
            print(f"IMGTAG_INITIAL_ADMIN={settings.initial_admin_username} {generated}", flush=True)
    finally:
        await engine.dispose()
        executor.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
