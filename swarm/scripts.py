"""The Lua scripts, loaded from package files and registered once per Redis client."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import redis

NAMES = ("admit", "settle", "claim", "stop", "cooldown", "sweep", "ledger", "retry", "resume")


@cache
def source(name: str) -> str:
    return (resources.files("swarm") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """Registered scripts of one client: ``scripts.admit(keys=..., args=...)``."""

    def __init__(self, client: redis.Redis) -> None:
        self._s = {name: client.register_script(source(name)) for name in NAMES}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._s[name]
        except KeyError:
            raise AttributeError(name) from None
