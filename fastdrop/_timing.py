"""How fastdrop times things, shared by `fastdrop bench` (bench/) and `fastdrop run`: interleaved rounds
(every case once per round, in an order rotated each round, so a drifting load on a shared
machine hits all cases alike) and a best-of loop for short kernels."""
import time


def rotated_round(runners, round_index, times, settle_s=0.0):
    """Run each callable of ``runners`` once, starting at ``round_index`` modulo their count;
    append each one's seconds to ``times`` (a list per runner). ``settle_s`` of idle before
    each lets the previous case's spinning thread pools stop."""
    k = round_index % len(runners)
    for i in list(range(k, len(runners))) + list(range(k)):
        if settle_s:
            time.sleep(settle_s)
        t = time.perf_counter()
        runners[i]()
        times[i].append(time.perf_counter() - t)


def interleaved(runners, rounds, *, burn_in=1, settle_s=0.0):
    """{name: [seconds per timed round]} of ``runners`` ({name: callable}), after ``burn_in``
    untimed rounds (allocation, first touch, JIT)."""
    names, calls = list(runners), list(runners.values())
    times = [[] for _ in calls]
    for r in range(burn_in + rounds):
        rotated_round(calls, r, times, settle_s)
    return {name: ts[burn_in:] for name, ts in zip(names, times)}


def benchmark_rounds(benchmark, runners, rounds, settle_s=0.0):
    """``interleaved`` under pytest-benchmark: ``rounds`` timed rounds after one burn-in
    round, each a ``benchmark.pedantic`` round; [seconds per timed round] per runner."""
    times = [[] for _ in runners]
    state = {"round": 0}

    def one_round():
        rotated_round(runners, state["round"], times, settle_s)
        state["round"] += 1

    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=1, iterations=1)
    return [ts[1:] for ts in times]  # without the burn-in round


def best_time(fn, budget=0.05):
    """The shortest of repeated calls of ``fn`` within ``budget`` seconds (after one warm-up
    call): the kernel's time with the least interference."""
    fn()
    best, spent = float("inf"), 0.0
    while spent < budget or best == float("inf"):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best, spent = min(best, dt), spent + dt
    return best
