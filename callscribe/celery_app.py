"""The workers' Celery app with its broker from the environment's settings, for Celery's own
command line: `celery --app callscribe.celery_app inspect ping` (the compose healthcheck).
`callscribe worker` configures the same app itself, with the tasks' context too."""

from callscribe.config import get_settings
from callscribe.parts import broker_config
from worker.app import app, configure_celery

configure_celery(app, broker_config(get_settings()))

__all__ = ["app"]
