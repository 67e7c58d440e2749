"""Which physical OpenSearch indices are live, kept for rollback, or orphaned — recorded in
the cluster itself, so every change is one atomic `_aliases` call.

- live: the alias `<alias>` points at exactly one physical index `<alias>-<stamp>-<rand>`.
- kept: every complete version carries a second alias, `<alias>.kept`; the live one too. Names
  sort by creation time, so "previous" is the newest kept index older than the live one.
- unfinished: a physical index of ours with neither alias is a build in progress or the
  leftover of a killed/aborted run. Its mapping `_meta.shoprank.builder` records the builder
  (host, pid, heartbeat); it is an orphan once that process is gone (same host) or its
  heartbeat is older than the build lease, and the next run deletes it.

A swap adds the live and kept aliases to the new index, moves the live alias off the old one
and takes the kept alias off versions beyond keep_versions in a single `_aliases` request
(atomic: a run killed before it leaves the old index live, after it the new one).
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any


def kept_alias(alias: str) -> str:
    """The alias that marks complete versions kept for rollback."""
    return f"{alias}.kept"


def version_pattern(alias: str) -> re.Pattern[str]:
    """Physical index names of this alias (engines.versions.new_version_name)."""
    return re.compile(re.escape(alias) + r"-\d{8}t\d{12}-[0-9a-f]{4}")


# Key under the mapping's `_meta.shoprank` of the bi-encoder version the index's vectors were made
# with; the plugin's shoprank_embed reads the same key (EmbedConfig.java).
BI_ENCODER_VERSION_META = "bi_encoder_version"


def bi_encoder_version_from_meta(meta: Any) -> str | None:
    """The bi-encoder version in a mapping `_meta`, or None when absent or unreadable."""
    try:
        value = meta["shoprank"][BI_ENCODER_VERSION_META]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class BuilderMark:
    """Who is filling an unfinished index, and when it last said so."""

    host: str
    pid: int
    heartbeat: float

    @classmethod
    def here(cls) -> BuilderMark:
        """A mark for this process, now."""
        return cls(socket.gethostname(), os.getpid(), time.time())

    def as_meta(self, alias: str, bi_encoder_version: str | None = None) -> dict[str, Any]:
        """The mapping `_meta` that records it (and the bi-encoder the vectors come from: a put_mapping
        replaces the whole `_meta`, so every write of it carries both)."""
        shoprank: dict[str, Any] = {
            "alias": alias,
            "builder": {"host": self.host, "pid": self.pid, "heartbeat": self.heartbeat},
        }
        if bi_encoder_version is not None:
            shoprank[BI_ENCODER_VERSION_META] = bi_encoder_version
        return {"shoprank": shoprank}

    @classmethod
    def from_meta(cls, meta: Any) -> BuilderMark | None:
        """The mark in a mapping `_meta`, or None when absent or unreadable."""
        try:
            builder = meta["shoprank"]["builder"]
            return cls(str(builder["host"]), int(builder["pid"]), float(builder["heartbeat"]))
        except (KeyError, TypeError, ValueError):
            return None

    def is_alive(self, lease_s: float, now: float | None = None) -> bool:
        """True while the builder may still be running: a recent heartbeat from a live process."""
        if (now if now is not None else time.time()) - self.heartbeat > lease_s:
            return False
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@dataclass
class VersionState:
    """The alias's physical indices as the cluster records them."""

    live: str | None = None
    kept: list[str] = field(default_factory=list)
    unfinished: dict[str, BuilderMark | None] = field(default_factory=dict)

    def history(self) -> list[str]:
        """Complete versions other than the live one, newest first."""
        return [name for name in self.kept if name != self.live]


def version_state(indices: dict[str, Any], alias: str) -> VersionState:
    """Read the state from an `indices.get('<alias>-*')` response (a pure function)."""
    pattern = version_pattern(alias)
    state = VersionState()
    for name in sorted(indices, reverse=True):
        if not pattern.fullmatch(name):
            continue
        info = indices[name] or {}
        aliases = info.get("aliases") or {}
        if alias in aliases:
            state.live = name
        if kept_alias(alias) in aliases or alias in aliases:
            state.kept.append(name)
        else:
            state.unfinished[name] = BuilderMark.from_meta((info.get("mappings") or {}).get("_meta"))
    if state.live is not None:
        state.kept = [state.live] + [name for name in state.kept if name != state.live]
    return state


def swap_actions(
    alias: str, new: str, state: VersionState, keep_versions: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """The one `_aliases` request that makes `new` live, and the versions it stops keeping."""
    kept = [name for name in state.kept if name != new]
    pruned = kept[max(keep_versions - 1, 0) :]
    actions: list[dict[str, Any]] = []
    if state.live is not None and state.live != new:
        actions.append({"remove": {"index": state.live, "alias": alias}})
    actions.append({"add": {"index": new, "alias": alias}})
    actions.append({"add": {"index": new, "alias": kept_alias(alias)}})
    actions.extend({"remove": {"index": name, "alias": kept_alias(alias)}} for name in pruned)
    return actions, pruned


def rollback_actions(alias: str, live: str, previous: str) -> list[dict[str, Any]]:
    """The one `_aliases` request that makes `previous` live again and stops keeping `live`."""
    return [
        {"remove": {"index": live, "alias": alias}},
        {"add": {"index": previous, "alias": alias}},
        {"remove": {"index": live, "alias": kept_alias(alias)}},
    ]
