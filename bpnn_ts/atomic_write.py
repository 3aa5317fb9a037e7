"""Writing files atomically: into a temporary file beside the target, then one rename.

The temporary file is created as `open(path, "w")` would create the target: mode 0o666 less
the process umask (or the folder's default ACL), so that model files and checkpoints are as
readable by other users and batch jobs as any other file the user writes.
`tempfile.mkstemp` would give 0o600 whatever the umask. The kernel applies the umask at
creation (`os.open(..., 0o666)`), so it is never read or changed here: no race with threads.
"""

import os
import secrets
from pathlib import Path
from typing import Callable, Union

_ATTEMPTS = 100  # names tried before giving up (each a fresh 32-bit random tag)


def _create_temporary(path: Path) -> Path:
    """A new, empty file `<name>.<random>.tmp` beside `path`, created exclusively (O_EXCL: never
    an existing file or a symlink) with mode 0o666 & ~umask."""
    for _ in range(_ATTEMPTS):
        candidate = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name beside {path} after {_ATTEMPTS} attempts")


def write_atomically(path: Union[str, Path], write: Callable[[str], None]) -> Path:
    """Call `write(temporary_path)` and rename the result to `path`; on any failure the
    target is untouched and the temporary file is removed. The file gets the mode a plain
    `open(path, "w")` gives (0o666 & ~umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = str(_create_temporary(path))
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def write_text_atomically(path: Union[str, Path], text: str) -> Path:
    """`text` into the file `path`, atomically (write_atomically)."""
    def write(temporary: str) -> None:
        Path(temporary).write_text(text)
    return write_atomically(path, write)
