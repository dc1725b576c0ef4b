"""Writing an output file whole or not at all: through ``NAME.partial``, into a folder made for it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def replace_atomically(target: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Create ``target``'s folder, let ``write(partial)`` fill ``target.partial``, then rename it to ``target``.

    On any failure the partial file is removed and the error raised: a reader never finds half a
    file under the real name, nor a ``.partial`` left behind.
    """
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(partial)
        os.replace(partial, target)
    except BaseException:
        try:
            partial.unlink(missing_ok=True)
        except OSError:  # the folder itself is what failed; the caller reports the first error
            pass
        raise
    return target
