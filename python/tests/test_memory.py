"""The allocator setting the package applies at import (python/src/lib.rs): large buffers come
from the heap, not from fresh `mmap`s, as in the `relevance` binary; RELEVANCE_KEEP_FREED_MEMORY=0
leaves glibc's defaults. Checked on the process's own memory map, in a fresh interpreter each."""
import os
import platform
import subprocess
import sys

from conftest import skip

PROBE = r"""
import relevance

def anonymous_mappings(min_bytes):
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(v, 16) for v in fields[0].split("-"))
            if len(fields) == 5 and end - start >= min_bytes:  # no path: an anonymous mapping
                found.add(fields[0])
    return found

size = 96 << 20  # above glibc's largest mmap threshold (32 MiB)
before = anonymous_mappings(size)
buffer = bytearray(size)
print(len(anonymous_mappings(size) - before))
"""


def new_mappings(env_value):
    env = dict(os.environ)
    env.pop("RELEVANCE_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["RELEVANCE_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout
    return int(out.split()[-1])


def test_import_keeps_large_buffers_on_the_heap_unless_declined():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        skip("the setting is glibc's (mallopt); other platforms keep their allocator")
    assert new_mappings(None) == 0, "a 96 MiB buffer was mmap'd although the import set M_MMAP_MAX=0"
    assert new_mappings("0") == 1, "with RELEVANCE_KEEP_FREED_MEMORY=0 glibc's default mmap is expected"
