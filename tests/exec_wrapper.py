"""How the Python tests start this build's programs.

An ARM build tested under qemu-user (cross/test.sh) has foreign binaries that
only the emulator can run, and there is no binfmt registration to do it for
us: cross/test.sh puts the emulator command in PICOFLOW_TEST_EXEC_WRAPPER
(words split at spaces, the first an absolute path), and command() puts it
before the program. Host programs (sshd, prometheus, ...) run as they are.
"""

import os

WRAPPER = os.environ.get('PICOFLOW_TEST_EXEC_WRAPPER', '').split()

# True when this build's programs run under an emulator: their /proc
# figures are then the emulator's.
EMULATED = bool(WRAPPER)


def command(program):
    """The argv prefix that runs `program` of this build: [wrapper..., program]."""
    return WRAPPER + [program]
