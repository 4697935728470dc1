"""What a Python test must know of a sanitized build (build-asan,
docs/testing.md); tests/sanitizers.h is the same for the C++ tests.

Under AddressSanitizer freed memory waits in its quarantine (up to 256 MiB)
and every allocation carries shadow and redzones, so a process's resident
memory says nothing about what the code keeps: bounds on RSS are checked
only when address_sanitized() is false; what they guard still runs.
"""

import functools


@functools.lru_cache(maxsize=None)
def address_sanitized(program):
    """True if the executable `program` is built with AddressSanitizer.

    Asked of the binary itself rather than of the environment (ASAN_OPTIONS,
    which meson's `sanitize` test setup sets): the answer is then right when a
    test is run by hand, outside meson, or under another test setup. clang
    links the ASan runtime into every instrumented executable, and that
    runtime defines (and exports, so it is in .dynstr even when stripped)
    __asan_init, which the instrumented code calls at start; no other
    binary of this project names it. An ARM binary under qemu-user is read
    the same way (its /proc figures are left out anyway: EMULATED).
    """
    needle = b'__asan_init'
    tail = b''
    with open(program, 'rb') as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return False
            if needle in tail + chunk:
                return True
            tail = chunk[-(len(needle) - 1):]
