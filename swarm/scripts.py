"""The Lua scripts, loaded from package files and registered once per Redis client."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import redis

_LUA = resources.files("swarm") / "lua"
NAMES = tuple(sorted(f.name[:-4] for f in _LUA.iterdir() if f.name.endswith(".lua")))


@cache
def source(name: str) -> str:
    return (_LUA / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """Registered scripts of one client: ``scripts.admit(keys=..., args=...)``."""

    def __init__(self, client: redis.Redis) -> None:
        self._s = {name: client.register_script(source(name)) for name in NAMES}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._s[name]
        except KeyError:
            raise AttributeError(name) from None
