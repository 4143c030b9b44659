"""The embedded default: runs with no environment at all (SQLite, eager tasks, demo secret)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-not-secret-3c2f0c1e5b8a4d7f9e6a1b2c3d4e5f60")
