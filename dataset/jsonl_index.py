"""Constant-memory random access over (possibly huge) jsonl files.

``JsonlIndex`` scans a jsonl file once, validates every line, and keeps only
the byte offset of each usable line (a numpy int64 array, 8 bytes per line).
``index[i]`` then seeks to that offset and parses one line, so a multi-GB
corpus costs a few MB of RAM instead of the whole file as Python objects
(upstream MiniMind loads everything into a list, which is what this replaces).

The offsets are cached on disk next to the data (or in a fallback cache
folder), keyed by the file's size + mtime and by the validator, so the scan
runs once per file version, not once per training run / DDP rank.
"""

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import types
import warnings
from array import array

import numpy as np

from model.atomic_file import atomic_write_bytes, atomic_write_json

# Files at least this big get a tqdm progress bar while scanning (by bytes).
PROGRESS_MIN_BYTES = 64 * 1024 * 1024
# How many ``file:line: reason`` strings of skipped lines we keep for reports.
MAX_BAD_EXAMPLES = 10
# Bump when the cache layout changes so stale caches are rebuilt, not misread.
CACHE_VERSION = 1
DEFAULT_CACHE_HOME = os.path.join(os.path.expanduser("~"), ".cache", "minimind")


def _dir_is_writable(d):
    return os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK)


def cache_dir_for(path, cache_dir=None, suffix=".idx"):
    """Folder that holds derived caches (index, token cache) of ``path``.

    Preferred: ``{path}{suffix}/`` beside the data, so the cache travels and is
    deleted with it. If the data folder is read-only (shared dataset mounts),
    fall back to ``cache_dir``, then ``~/.cache/minimind``, then the temp
    folder, in a sub-folder named after the file plus a hash of its absolute
    path so two ``train.jsonl`` in different folders do not collide. Returns
    None if nothing is writable (callers then simply skip caching).
    """
    path = os.path.abspath(path)
    if _dir_is_writable(os.path.dirname(path)):
        d = path + suffix
        try:
            os.makedirs(d, exist_ok=True)
            if _dir_is_writable(d):
                return d
        except OSError:
            pass
    tag = hashlib.sha1(path.encode("utf-8")).hexdigest()[:12]
    for home in (cache_dir, DEFAULT_CACHE_HOME, os.path.join(tempfile.gettempdir(), "minimind-cache")):
        if not home:
            continue
        d = os.path.join(home, f"{os.path.basename(path)}.{tag}{suffix}")
        try:
            os.makedirs(d, exist_ok=True)
            if _dir_is_writable(d):
                return d
        except OSError:
            continue
    return None


def file_signature(path):
    """What identifies one version of a file: size and modification time (ns).

    Hashing the contents would be exact but costs a full read of a GB file on
    every start; size + mtime_ns changes on any normal rewrite or append.
    """
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


@contextlib.contextmanager
def cache_lock(base):
    """Exclusive inter-process lock on ``{base}.lock`` while building a cache.

    Uses ``flock``, which the kernel releases if the holder dies, so a crashed
    build never leaves a stale lock. Where locking is unavailable (non-POSIX,
    odd file systems) we proceed unlocked: concurrent builders then only waste
    work, because writes are atomic anyway.
    """
    try:
        import fcntl
        fh = open(base + ".lock", "a")
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        fh.close()  # closing releases the flock


def _value_key(v):
    """A process-independent text for a constant or global a validator uses,
    or None for values we do not key on (modules, classes, big objects)."""
    if isinstance(v, (frozenset, set)):
        # set order depends on string hashing, which is randomized per process
        return "{" + ",".join(sorted(_value_key(x) or "?" for x in v)) + "}"
    if isinstance(v, (tuple, list)):
        return "(" + ",".join(_value_key(x) or "?" for x in v) + ")"
    if isinstance(v, re.Pattern):
        return f"re({v.pattern!r},{v.flags})"
    if v is None or isinstance(v, (str, bytes, int, float, complex, bool, type(Ellipsis))):
        return repr(v)
    return None


def _code_key(code, globals_, h, seen):
    """Feed ``code`` into hash ``h``: bytecode, constants (nested code objects,
    i.e. comprehensions / generator expressions / inner functions, recursively
    instead of by their ``repr``, which contains a memory address), and what
    its global names resolve to: helper functions (recursively, so editing a
    helper the validator calls changes the key too) and simple constants."""
    h.update(code.co_code)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_key(c, globals_, h, seen)
        else:
            h.update((_value_key(c) or type(c).__qualname__).encode("utf-8", "surrogatepass"))
    h.update(repr(code.co_names).encode("utf-8"))
    for name in code.co_names:
        if name not in globals_:
            continue  # attribute names, builtins
        v = globals_[name]
        if isinstance(v, types.FunctionType):
            if id(v) not in seen:
                seen.add(id(v))
                h.update(f"def {v.__module__}.{v.__qualname__}".encode("utf-8"))
                _code_key(v.__code__, v.__globals__, h, seen)
        else:
            k = _value_key(v)
            if k is not None:
                h.update(f"{name}={k}".encode("utf-8", "surrogatepass"))


def check_line(raw: bytes, validate=None):
    """(obj, reason, note) for one non-blank line: reason is None if the line is usable, else why not (and obj is
    None); note is the validator's remark on a usable but odd line, else None."""
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError as e:
        return None, f"invalid UTF-8 ({e.reason} at byte {e.start})", None
    except json.JSONDecodeError as e:
        return None, f"malformed JSON ({e.msg} at column {e.colno})", None
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}", None
    note = None
    if validate is not None:
        try:
            note = validate(obj)
        except ValueError as e:
            return None, str(e), None
    return obj, None, note if isinstance(note, str) else None


def validator_name(validate):
    """A stable name for a validator, used in the cache key.

    A cached index is only valid for the validator that built it (a line that
    passes ``text``-validation may fail SFT validation). A validator may set a
    ``cache_key`` attribute; otherwise we use its qualified name plus a hash of
    its code: bytecode and constants, nested code objects, and the module-level
    helper functions and constants it refers to (transitively), so editing the
    validator or a helper it calls invalidates old caches, while the same code
    gives the same name in every process (no memory addresses, no set order).
    """
    if validate is None:
        return "json"
    key = getattr(validate, "cache_key", None)
    if key:
        return str(key)
    name = f"{getattr(validate, '__module__', '')}.{getattr(validate, '__qualname__', type(validate).__qualname__)}"
    code = getattr(validate, "__code__", None)
    if code is not None:
        h = hashlib.sha1()
        _code_key(code, getattr(validate, "__globals__", {}), h, {id(validate)})
        name = f"{name}-{h.hexdigest()[:10]}"
    return name


class JsonlIndex:
    """Byte-offset index over the usable lines of a jsonl file.

    Args:
        path: the jsonl file (one JSON object per line; blank lines ignored).
        validate: optional ``validate(obj)`` raising ValueError(reason) for a
            line whose content is unusable. Runs on every line during the
            scan, so bad data is reported before training starts. It may also
            return a string: the line is usable but odd (e.g. a chat that ends
            with a user turn); it is kept, counted in ``n_flagged`` (first few
            ``file:line: note`` in ``flagged_examples``) and one warning with
            the count is issued. Any other return value is ignored.
        skip_bad_lines: False (default): the first bad line raises
            ``ValueError("path:lineno: reason")``. True: bad lines are left out
            of the index, counted in ``n_bad`` (first few reasons in
            ``bad_examples``) and a warning with the count is issued.
        cache_dir: where to cache the index if the data's folder is not
            writable (default ``~/.cache/minimind``).
        use_cache: set False to always rescan and never write a cache.
        show_progress: None = a tqdm bar for files >= 64 MB, or force on/off.

    Attributes: ``path``, ``n_bad``, ``bad_examples``, ``n_flagged``,
    ``flagged_examples``, ``from_cache`` (True if the offsets were loaded
    rather than scanned), ``cache_path``.
    """

    def __init__(self, path, validate=None, skip_bad_lines=False, cache_dir=None,
                 use_cache=True, show_progress=None):
        self.path = os.path.abspath(path)
        self.validate = validate
        self.skip_bad_lines = skip_bad_lines
        self.show_progress = show_progress
        self.from_cache = False
        self.cache_path = None
        self._fh = None
        self._fh_pid = None

        sig = file_signature(self.path)
        vname = validator_name(validate)
        key = {"version": CACHE_VERSION, "validator": vname, **sig}
        # File-system friendly stem for this validator's cache files.
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", vname)[:120]

        cdir = cache_dir_for(self.path, cache_dir) if use_cache else None
        if cdir is None:
            offsets, linenos, meta = self._scan()
        else:
            self.cache_path = os.path.join(cdir, stem)
            cached = self._load_cache(self.cache_path, key)
            if cached is None:
                # Several processes (DDP ranks, parallel jobs) may open the same
                # new file at once: one scans, the others wait and then load.
                with cache_lock(self.cache_path):
                    cached = self._load_cache(self.cache_path, key)
                    if cached is None:
                        offsets, linenos, meta = self._scan()
                        self._save_cache(self.cache_path, key, offsets, linenos, meta)
            if cached is not None:
                offsets, linenos, meta = cached
                self.from_cache = True

        self._offsets = offsets
        # None means "line i is line i+1 of the file" (no blank/bad line before
        # the last kept one), which saves a second 8-byte array on clean data.
        self._linenos = linenos
        self.n_bad = meta["n_bad"]
        self.bad_examples = meta["bad_examples"]
        self.n_flagged = meta.get("n_flagged", 0)
        # Stored as (line, note) so a cache that moved with its file names the current path.
        flagged = meta.get("flagged", [])
        self.flagged_examples = [f"{self.path}:{lineno}: {note}" for lineno, note in flagged]

        if self.n_bad:
            if not skip_bad_lines:
                # A cached index may have been built with skip_bad_lines=True;
                # a strict caller must still get the error, not a silently
                # filtered dataset.
                raise ValueError(self.bad_examples[0])
            msg = (f"{self.path}: skipped {self.n_bad} bad line(s) of {self.n_bad + len(self)}; "
                   f"first: {self.bad_examples[0]}")
            warnings.warn(msg, stacklevel=2)
        if self.n_flagged:
            # One line per file, however many rows: the count, the reason of
            # the first and where the first few are.
            where = ", ".join(str(lineno) for lineno, _ in flagged)
            more = ", ..." if self.n_flagged > len(flagged) else ""
            warnings.warn(f"{self.path}: {self.n_flagged} of {len(self)} line(s) kept but flagged "
                          f"(first: {flagged[0][1]}) at lines {where}{more}", stacklevel=2)

    # ------------------------------------------------------------------ scan
    def _scan(self):
        """Read the file once and return (offsets, linenos or None, meta)."""
        offsets = array("q")  # 8 bytes per line, unlike a list of Python ints
        # Line numbers are only stored once some kept line is NOT line i+1
        # (after a blank or bad line); clean files need no second array.
        linenos = None
        n_bad, bad_examples = 0, []
        n_flagged, flagged = 0, []
        size = os.path.getsize(self.path)

        bar = None
        show = self.show_progress if self.show_progress is not None else size >= PROGRESS_MIN_BYTES
        if show:
            from tqdm import tqdm
            bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"indexing {os.path.basename(self.path)}")
        pending = 0  # bytes not yet reported to the bar (updating per line is slow)

        pos = 0
        # Binary mode + a 1 MB buffer: the file is read in chunks and only one
        # line is alive at a time, so memory does not grow with the file.
        with open(self.path, "rb", buffering=1 << 20) as f:
            for lineno, raw in enumerate(f, start=1):
                start = pos
                pos += len(raw)
                if bar is not None:
                    pending += len(raw)
                    if pending >= (1 << 22):
                        bar.update(pending)
                        pending = 0
                if not raw.strip():
                    continue
                _, reason, note = check_line(raw, self.validate)
                if reason is not None:
                    msg = f"{self.path}:{lineno}: {reason}"
                    if not self.skip_bad_lines:
                        if bar is not None:
                            bar.close()
                        raise ValueError(msg)
                    n_bad += 1
                    if len(bad_examples) < MAX_BAD_EXAMPLES:
                        bad_examples.append(msg)
                    continue
                if note is not None:
                    n_flagged += 1
                    if len(flagged) < MAX_BAD_EXAMPLES:
                        flagged.append([lineno, note])
                offsets.append(start)
                if linenos is not None:
                    linenos.append(lineno)
                elif lineno != len(offsets):
                    linenos = array("q", range(1, len(offsets)))  # the contiguous ones so far
                    linenos.append(lineno)
        if bar is not None:
            bar.update(pending)
            bar.close()

        offsets = np.frombuffer(offsets, dtype=np.int64).copy() if offsets else np.zeros(0, np.int64)
        if linenos is not None:
            linenos = np.frombuffer(linenos, dtype=np.int64).copy()
        offsets.flags.writeable = False
        meta = {"n_lines": int(len(offsets)), "n_bad": n_bad, "bad_examples": bad_examples,
                "n_flagged": n_flagged, "flagged": flagged}
        return offsets, linenos, meta

    # ----------------------------------------------------------------- cache
    def _load_cache(self, base, key):
        """(offsets, linenos, meta) from the cache if its key matches, else None."""
        try:
            with open(base + ".json", "r", encoding="utf-8") as f:
                meta = json.load(f)
            if meta.get("key") != key:
                return None  # file changed (size/mtime) or another validator version
            # mmap: pages are loaded on demand and shared between DataLoader
            # workers / DDP ranks on the same machine via the page cache.
            offsets = np.load(base + ".offsets.npy", mmap_mode="r")
            linenos = np.load(base + ".linenos.npy", mmap_mode="r") if meta.get("has_linenos") else None
            if len(offsets) != meta["n_lines"] or (linenos is not None and len(linenos) != len(offsets)):
                return None  # torn / mismatched files: rebuild
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return None
        return offsets, linenos, meta

    def _save_cache(self, base, key, offsets, linenos, meta):
        """Best effort: a failure to cache only costs a rescan next time."""
        try:
            # Arrays first, the json last: the json (with the key) is the
            # commit marker, and the loader checks the array lengths against it.
            atomic_write_bytes(base + ".offsets.npy", lambda f: np.save(f, offsets))
            if linenos is not None:
                atomic_write_bytes(base + ".linenos.npy", lambda f: np.save(f, linenos))
            atomic_write_json(base + ".json", {"key": key, "has_linenos": linenos is not None, **meta})
        except OSError as e:
            print(f"warning: could not write index cache {base}: {e}", file=sys.stderr)

    # ---------------------------------------------------------------- access
    @property
    def offsets(self):
        """Byte offset of each indexed line (read-only int64 array)."""
        return self._offsets

    def __len__(self):
        return len(self._offsets)

    def _file(self):
        # Open lazily and re-open in a new process: after fork() the child
        # shares the parent's file *position*, so concurrent seek+read from
        # DataLoader workers would interleave and return garbage.
        pid = os.getpid()
        if self._fh is None or self._fh_pid != pid:
            self._fh = open(self.path, "rb")
            self._fh_pid = pid
        return self._fh

    def _check_index(self, i):
        n = len(self._offsets)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} lines")
        return int(i)

    def raw(self, i):
        """The bytes of line ``i`` (without parsing)."""
        i = self._check_index(i)
        f = self._file()
        f.seek(int(self._offsets[i]))
        return f.readline()

    def __getitem__(self, i):
        return json.loads(self.raw(i))

    def line_number(self, i):
        """1-based line number in the file of item ``i`` (for error messages)."""
        i = self._check_index(i)
        return i + 1 if self._linenos is None else int(self._linenos[i])

    def where(self, i):
        """``"path:lineno"`` of item ``i``."""
        return f"{self.path}:{self.line_number(i)}"

    def __iter__(self):
        """Items in file order. Sequential reads: seeks that land inside the
        read buffer are free, so this streams the file at disk speed."""
        with open(self.path, "rb", buffering=1 << 20) as f:
            for off in self._offsets:
                f.seek(int(off))
                yield json.loads(f.readline())

    # --------------------------------------------------------------- pickling
    def __getstate__(self):
        # File handles cannot be pickled (spawned DataLoader workers, DDP);
        # the child re-opens lazily. Cached memmaps are re-mapped from their
        # files instead of being copied into the pickle.
        state = self.__dict__.copy()
        state["_fh"] = None
        state["_fh_pid"] = None
        # The validator is only needed for the scan (and may be a lambda,
        # which cannot be pickled).
        state["validate"] = None
        for name, suffix in (("_offsets", ".offsets.npy"), ("_linenos", ".linenos.npy")):
            if isinstance(state[name], np.memmap) and self.cache_path:
                state[name] = ("__mmap__", self.cache_path + suffix)
        return state

    def __setstate__(self, state):
        for name in ("_offsets", "_linenos"):
            v = state.get(name)
            if isinstance(v, tuple) and len(v) == 2 and v[0] == "__mmap__":
                state[name] = np.load(v[1], mmap_mode="r")
        self.__dict__.update(state)

    def __del__(self):
        fh = getattr(self, "_fh", None)
        if fh is not None and getattr(self, "_fh_pid", None) == os.getpid():
            try:
                fh.close()
            except Exception:
                pass

    def __repr__(self):
        return f"JsonlIndex({self.path!r}, lines={len(self)}, bad={self.n_bad})"
