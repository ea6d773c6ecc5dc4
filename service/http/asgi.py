"""The ASGI application for `timeline serve` workers: settings from the environment.

Projections run in their own process (`timeline project`) unless
TIMELINE_RUN_PROJECTIONS=true asks each API process to run them as well.
"""

from __future__ import annotations

import os

from litestar import Litestar

from service.http.app import create_app
from service.process import tune_gc
from service.settings import Settings


def app() -> Litestar:
    tune_gc()  # each worker of `timeline serve --workers N` is a process of its own
    run = os.environ.get("TIMELINE_RUN_PROJECTIONS", "").lower() in ("1", "true", "yes", "on")
    return create_app(Settings(), run_projections=run)
