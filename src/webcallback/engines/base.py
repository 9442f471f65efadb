"""Moved to `webcallback.domain`; this re-export keeps old imports working until they are updated."""

from webcallback.domain import *  # noqa: F403
from webcallback.domain import __all__ as __all__
