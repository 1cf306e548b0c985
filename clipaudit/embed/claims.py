"""Claims on shards, so that processes sharing a cache folder (ranks, array jobs, two audits)
never encode the same shard twice at the same time.

A claim is a file created atomically (``O_CREAT | O_EXCL``) next to the shard, holding its owner:
host, process id, pid namespace and a random token. The owner touches it every
:data:`HEARTBEAT_S` while it encodes. A claim is stale, and anyone may take it over, when its
owner is a process of this host (and pid namespace) that no longer runs, or when it has not been
touched for :data:`STALE_AFTER_S` (an owner on another node that died). So a run killed with
``kill -9`` never blocks the next one for long: on the same host not at all.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HEARTBEAT_S = 20.0
STALE_AFTER_S = 180.0


def this_owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_namespace": _pid_namespace()}


@dataclass
class Claim:
    """A claim this process holds; :meth:`release` removes it (only if it is still ours)."""

    path: Path
    token: str
    _stop: threading.Event = field(default_factory=threading.Event)

    def start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    os.utime(self.path)
                except OSError:
                    return
        threading.Thread(target=beat, name=f"heartbeat {self.path.name}", daemon=True).start()

    def release(self) -> None:
        self._stop.set()
        owner = read_owner(self.path)
        if owner is not None and owner.get("token") == self.token:
            self.path.unlink(missing_ok=True)


def try_claim(path: Path) -> Claim | None:
    """Claim ``path`` for this process: a Claim, or None when a live owner holds it."""
    for _ in range(3):
        token = secrets.token_hex(8)
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _took_over_stale(path):
                return None
            continue
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump({**this_owner(), "token": token, "claimed_at": time.time()}, stream)
        claim = Claim(path, token)
        claim.start_heartbeat()
        return claim
    return None


def read_owner(path: Path) -> dict | None:
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def holder(path: Path) -> str:
    """'host:pid' of the process holding the claim at ``path``, for progress messages."""
    return _owner_label(read_owner(path))


def _owner_label(owner: dict | None) -> str:
    owner = owner or {}
    return f"{owner.get('host', '?')}:{owner.get('pid', '?')}"


def is_stale(path: Path, owner: dict | None) -> bool:
    try:
        untouched_s = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False  # released meanwhile: not ours to judge, the caller tries again
    if untouched_s > STALE_AFTER_S:
        return True
    if owner is None:
        return False  # being written by its owner right now
    here = this_owner()
    same_process_table = owner.get("host") == here["host"] and owner.get("pid_namespace") == here["pid_namespace"]
    return same_process_table and not _process_runs(owner.get("pid"))


def _took_over_stale(path: Path) -> bool:
    """Remove a stale claim so that it can be claimed again; True if it was stale and is gone."""
    owner = read_owner(path)
    if not is_stale(path, owner):
        return False
    aside = path.with_name(f"{path.name}.stale-{secrets.token_hex(6)}")
    try:
        os.rename(path, aside)  # atomic: of several processes taking over, one moves it
    except FileNotFoundError:
        return True
    moved = read_owner(aside)
    if owner is not None and (moved or {}).get("token") != owner.get("token"):
        # Another process took it over between our read and the rename: put its fresh claim back.
        try:
            os.link(aside, path)
        except OSError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    print(f"clipaudit: note: {path.name}: the claim of {_owner_label(owner)} is stale (its process is gone); taking it over",
          file=sys.stderr)
    return True


def _process_runs(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
