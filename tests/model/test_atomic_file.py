import os

from model import atomic_file


def test_stale_tmp_of_dead_writer_is_removed(tmp_path):
    dst = str(tmp_path / "cache.bin")
    dead = atomic_file._tmp_prefix(dst) + "999999999"  # no such pid
    alive = atomic_file._tmp_prefix(dst) + str(os.getppid())  # a running process
    for p in (dead, alive):
        open(p, "wb").close()
    atomic_file.atomic_write_bytes(dst, lambda f: f.write(b"ok"))
    assert open(dst, "rb").read() == b"ok"
    assert not os.path.exists(dead) and os.path.exists(alive)
