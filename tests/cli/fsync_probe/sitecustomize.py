"""Records every ``os.fsync`` of a CLI subprocess, for the ledger tests.

Put this directory on ``PYTHONPATH`` and name a log file in
``PYNECTOR_TEST_FSYNC_LOG``: each call is still made, then one JSON line says
what was synced (its path, size, and for a directory what it held).
"""

from __future__ import annotations

import json
import os
import stat
import threading

_LOG = os.environ.get("PYNECTOR_TEST_FSYNC_LOG")

if _LOG:
    _fsync = os.fsync
    _lock = threading.Lock()
    _log_path: str = _LOG

    def _recorded(fd: object) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()  # type: ignore[attr-defined]
        _fsync(number)
        path = os.readlink(f"/proc/self/fd/{number}")
        info = os.fstat(number)
        entry: dict[str, object] = {"path": path, "size": info.st_size}
        if stat.S_ISDIR(info.st_mode):
            entry["listing"] = sorted(os.listdir(path))
        with _lock, open(_log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    os.fsync = _recorded
