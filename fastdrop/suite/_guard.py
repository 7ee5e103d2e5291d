"""Kill a sweep's worker processes once the sweep itself is gone (Linux; run as a script, so
that it imports nothing of fastdrop).

A worker watches its parent from its first task on (runner._exit_with_parent), but a worker
still starting up when the sweep is SIGKILLed can block forever on a lock the dead sweep or
a sibling held. This guard, started by the sweep beside its pool, records the sweep's
children every ``INTERVAL`` seconds and, when the sweep dies, kills the ones it recorded
(matched by start time, so a reused pid is never hit). It exits when the sweep writes to its
stdin (the pool finished) or dies.

    python _guard.py SWEEP_PID
"""
import os
import select
import signal
import sys
import time

INTERVAL = 0.2


def _stat(pid):
    """(parent pid, start time) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19])


def _children(parent):
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None and stat[0] == parent:
                kids[int(name)] = stat[1]
    return kids


def main(sweep):
    # Ctrl-C reaches the whole terminal's process group: the sweep reports it in one line,
    # and the guard, which has nothing to say, goes on watching the sweep die
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seen = {}
    while os.getppid() == sweep:
        seen.update(_children(sweep))
        ready, _, _ = select.select([sys.stdin], [], [], INTERVAL)
        if ready:
            if sys.stdin.buffer.read1(1):
                return  # the sweep wrote: its pool is done
            break  # end of file without a word: the sweep is dying
    time.sleep(INTERVAL)  # it closes our stdin a moment before it is gone
    if os.getppid() == sweep:
        return
    for pid, started in seen.items():
        if pid != os.getpid() and (_stat(pid) or (0, None))[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    main(int(sys.argv[1]))
