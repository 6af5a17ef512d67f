"""Entry point for ``uvicorn --factory`` (used by ``otphub serve`` with several workers)."""

from __future__ import annotations

from starlette.applications import Starlette

from otphub.config import Settings
from otphub.http.app import create_app
from otphub.logs import configure_logging
from otphub.services.runtime import build_runtime


def build() -> Starlette:
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(build_runtime(settings))
