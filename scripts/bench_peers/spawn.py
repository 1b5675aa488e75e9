"""Starts one timed process and reports on it, so that its peak memory is
its own: `python3 -S -I spawn.py RESULT_FILE ARGV...`.

Linux carries the peak RSS of the process that starts a program across the
exec into the program's own ru_maxrss (with vfork, as subprocess uses, the
whole peak of the starter; with fork, the private memory it has). The
harness, with its imports, would put a floor of about 16 MB under every
figure; this starter, run without site packages, forks with about 4 MB.

Writes "WALL_SECONDS MAXRSS_KIB EXIT_CODE CPU_SECONDS" to RESULT_FILE: wall
time from fork to exit (monotonic), and the child's ru_maxrss and user +
system time from wait4.
"""

import os
import signal
import sys
import time


def main():
    result_file, argv = sys.argv[1], sys.argv[2:]
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    # Stopping the harness stops the tool too.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _frame: os.kill(pid, signum))
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - started
    with open(result_file, "w") as file:
        file.write(f"{wall} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} "
                   f"{usage.ru_utime + usage.ru_stime}\n")


main()
