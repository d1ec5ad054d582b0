"""Write a folder or a file beside its target and rename it into place (readers never see
half of it).

    with atomic_folder("serving/tanh_cos/1", overwrite=True) as staging:
        write_everything_into(staging)
    # now serving/tanh_cos/1 is the complete folder

``staging`` is a fresh empty folder ``<parent>/.<name>.partial-XXXX`` in the
target's parent (the same file system, so the final ``os.replace`` is one
rename).  On success it becomes ``target``; an existing ``target`` (only with
``overwrite``) is first moved aside to ``<parent>/.<name>.old-XXXX/`` and
removed after the rename.  If the block raises, the staging folder is removed
and ``target`` is left as it was.  A reader polling ``<parent>`` (TF Serving
watching numeric version folders, a log viewer) sees the old folder, briefly
none, or the new one: never a partial one (the dot-names are not numeric).
"""

import contextlib
import os
import shutil
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_folder(target, overwrite=False):
    """Yield an empty staging folder that replaces ``target`` when the block succeeds.

    Raises ``FileExistsError`` (before creating anything) when ``target``
    exists and ``overwrite`` is false.  The parent folders are created.
    """
    target = os.path.abspath(os.fspath(target))
    parent, name = os.path.split(target)
    if os.path.lexists(target) and not overwrite:
        raise FileExistsError(f"{target} already exists (pass overwrite to replace it)")
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=parent)
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would hide it from a server
        if os.path.lexists(target):
            if not overwrite:  # appeared while the block ran
                raise FileExistsError(f"{target} already exists (pass overwrite to replace it)")
            old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.replace(target, os.path.join(old, name))
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and
    ``os.replace``: a reader sees the old file or the new one, never a part."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(staging, 0o666 & ~_umask())  # mkstemp's 0600, as open() would not
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return path
