"""Run a command that is sent SIGTERM when its parent process dies (Linux).

    python -I exec_with_parent.py PARENT_PID COMMAND [ARG ...]

`ManagedProcess` starts Rasa and its action server through this, so that a `teller
serve` killed with SIGKILL (the OOM killer, `kill -9`, a crashed supervisor) does not
leave them running, holding about 1 GB and their ports. A stop by SIGTERM or Ctrl-C
never needs it: `teller serve` stops them itself.

It asks the kernel for SIGTERM on the parent's death (`prctl(PR_SET_PDEATHSIG)`, which
survives `exec`), gives up if the parent already died before that call (its parent is
then no longer PARENT_PID), and replaces itself with COMMAND, so the pid the parent
holds is COMMAND's. `prctl` is one system call that no maintained package wraps without
a C build (python-prctl needs libcap headers), hence ctypes. Standard library only: it
runs before any environment is trusted (`-I`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
EXIT_PARENT_GONE = 75  # EX_TEMPFAIL: the parent died while this was starting


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not argv[1].isdigit():
        sys.stderr.write("usage: exec_with_parent.py PARENT_PID COMMAND [ARG ...]\n")
        return 2
    parent, command = int(argv[1]), argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        sys.stderr.write(f"exec_with_parent: prctl failed: {os.strerror(errno)}\n")
        return 1
    if os.getppid() != parent:
        return EXIT_PARENT_GONE
    os.execvp(command[0], command)
    return 1  # not reached: execvp returns only by raising


if __name__ == "__main__":
    sys.exit(main(sys.argv))
