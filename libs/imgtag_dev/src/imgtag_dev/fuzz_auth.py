"""schemathesis hook (SCHEMATHESIS_HOOKS=imgtag_dev.fuzz_auth): every generated request carries
a fresh access token of the user named by IMGTAG_FUZZ_URL / _USERNAME / _PASSWORD (tokens live
ten minutes, a run can take longer; a 401 fetches a new one)."""

from __future__ import annotations

import os

import httpx
import schemathesis


@schemathesis.auth(refresh_interval=240)
class SignedInUser:
    def get(self, case, context) -> str:
        reply = httpx.post(
            f"{os.environ['IMGTAG_FUZZ_URL']}/v1/auth:login",
            json={"login": os.environ["IMGTAG_FUZZ_USERNAME"], "password": os.environ["IMGTAG_FUZZ_PASSWORD"]},
            timeout=30,
        )
        reply.raise_for_status()
        return reply.json()["tokens"]["accessToken"]

    def set(self, case, data: str, context) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
