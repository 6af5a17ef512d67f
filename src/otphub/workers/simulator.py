"""A simulated SIM bank for demos and tests.

It is a real provider: it owns numbers in the database, and a few seconds after one of
them is bought (or put back to retry) it sends a realistic SMS through the same HTTP
endpoint as real SIM-bank software, ``POST /agent/api/sms``, with its own provider key.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import structlog

from otphub.services import lifecycle
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.simulator")

_TEMPLATES: dict[str, str] = {
    "tg": "Telegram code: {code}\n\nYou can also tap on this link to log in: https://t.me/login/{code}",
    "wa": "Your WhatsApp code: {half1}-{half2}\nDon't share this code with others",
    "go": "G-{code6} is your Google verification code.",
    "vk": "VK: {code} - your confirmation code. Do not tell it to anyone!",
    "ig": "{half1} {half2} is your Instagram code. Don't share it.",
    "fb": "FB-{code6} is your Facebook confirmation code",
    "ds": "Your Discord verification code is: {code6}",
    "tw": "Your X verification code is {code6}.",
    "am": "{code6} is your Amazon OTP. Do not share it with anyone.",
    "mm": "Your Microsoft account security code is {code}",
}


def realistic_sms(service: str, service_name: str) -> str:
    digits6 = f"{secrets.randbelow(900_000) + 100_000}"
    code = f"{secrets.randbelow(90_000) + 10_000}"
    template = _TEMPLATES.get(service, "Your {name} verification code is {code}. Do not share it.")
    return template.format(
        code=code, code6=digits6, half1=digits6[:3], half2=digits6[3:], name=service_name
    )


class Simulator:
    def __init__(
        self,
        *,
        provider_id: int,
        key: str,
        base_url: str,
        delay: int = 3,
        silent_services: frozenset[str] = frozenset({"ot"}),
    ) -> None:
        self.provider_id = provider_id
        # Services whose SMS never comes, so that a demo can show a cancel and a refund.
        self.silent_services = silent_services
        self.key = key
        self.base_url = base_url.rstrip("/")
        self.delay = delay
        # smsId must be unique per agent across restarts: start from the wall clock.
        self._next_sms_id = int(time.time() * 1000)

    async def deliver_due(self, rt: Runtime, client: httpx.AsyncClient) -> int:
        due = await lifecycle.awaiting_sms(
            rt, provider_id=self.provider_id, bought_before=rt.clock.now() - self.delay
        )
        for act in due:
            if act.service in self.silent_services:
                continue
            self._next_sms_id += 1
            body = {
                "action": "PUSH_SMS",
                "key": self.key,
                "smsId": self._next_sms_id,
                "phone": int(act.phone),
                "phoneFrom": rt.catalog.services.get(act.service, act.service),
                "text": realistic_sms(act.service, rt.catalog.services.get(act.service, "")),
            }
            response = await client.post(f"{self.base_url}/agent/api/sms", json=body)
            if response.status_code != 200:
                log.warning("simulator_push_refused", status=response.status_code)
        return sum(1 for act in due if act.service not in self.silent_services)

    async def run(self, rt: Runtime) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                try:
                    await self.deliver_due(rt, client)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("simulator_failure")
                await asyncio.sleep(1)
