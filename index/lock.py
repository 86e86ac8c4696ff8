"""One writer at a time per index, across processes: `qa add` in a shell and an upload to the server."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from index.store import IndexStoreError

WAIT_S = 600  # an update of a large corpus can take minutes; a second writer waits its turn


@contextlib.contextmanager
def writing(target: Path, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold the index's writer lock (a file beside it, released by the OS if the holder dies)."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target.with_name(f".{target.name}.lock")))
    try:
        with lock.acquire(timeout=wait_s):
            yield
    except Timeout:
        raise IndexStoreError(f"another process has been changing the index at {target} for over {wait_s:.0f} s; "
                              "try again when it is done") from None
