"""Writing files atomically: readers see the old complete file or the new one, never half of one, and temp files
of writers that died (a SIGKILL mid-save) are removed by the next writer."""
import json
import os
import re
import socket


def _tmp_prefix(dst):
    # Host name in the temp name: on a shared file system a pid only means
    # something on the machine that owns it.
    host = re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname()) or "host"
    return f"{dst}.tmp.{host}."


def remove_stale_tmp(dst):
    """Delete temp files of ``dst`` left by writers on this host that died.

    A SIGKILLed build (OOM killer, a cancelled job) leaves ``dst.tmp.<host>.<pid>``
    behind, which for a token cache can be gigabytes. Only temp files whose
    pid no longer runs here are removed, so a live concurrent writer is safe.
    """
    prefix = _tmp_prefix(dst)
    folder, name = os.path.split(prefix)
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return
    for entry in entries:
        pid = entry[len(name):]
        if not entry.startswith(name) or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: only checks that the process exists
            continue
        except ProcessLookupError:
            pass
        except OSError:  # exists but belongs to someone else
            continue
        try:
            os.remove(os.path.join(folder, entry))
        except OSError:
            pass


def atomic_write_bytes(dst, write_fn):
    """Write a file via ``write_fn(fileobj)`` into a temp file, then rename.

    ``os.replace`` is atomic, so a reader (another DDP rank, a crashed run
    restarting) sees either the old complete file or the new complete one,
    never a half-written cache. The temp name includes host and pid so
    concurrent writers do not clobber each other's temp files.
    """
    remove_stale_tmp(dst)
    tmp = f"{_tmp_prefix(dst)}{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write_fn(f)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_json(dst, obj):
    atomic_write_bytes(dst, lambda f: f.write(json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8")))
