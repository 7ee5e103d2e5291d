#!/usr/bin/env bash
# Epoch times at several core counts, one process per count confined with taskset (so that
# every library, JAX's fixed thread pool included, sees that many cores). Meant for a many-core
# machine; run from a checkout:  bash bench/thread_scaling.sh OUT_DIR [CORE COUNTS...]
# Builds the extensions in place if needed; writes OUT_DIR/epochs_t<N>.json and a summary.
set -u
out=${1:?usage: bench/thread_scaling.sh OUT_DIR [cores ...]}
shift
counts=${*:-"2 4 8 16"}
mkdir -p "$out"
export JAX_PLATFORMS=cpu PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE  # benchmark runs only: they slow numpy's BLAS
python3 -c "import fastdrop._nn_kernels" 2>/dev/null || python3 setup.py build_ext --inplace -q
python3 -m fastdrop info | tee "$out/info.txt"
for n in $counts; do
    FASTDROP_BENCH_THREADS=$n FASTDROP_BENCH_ROUNDS=${FASTDROP_BENCH_ROUNDS:-2} \
        taskset -c "0-$((n - 1))" python3 -m pytest bench/bench_epochs.py -k synthetic -q \
        -p no:cacheprovider --benchmark-only --benchmark-json="$out/epochs_t$n.json" \
        > "$out/pytest_t$n.log" 2>&1 || echo "cores=$n: pytest failed, see $out/pytest_t$n.log"
    python3 - "$out/epochs_t$n.json" <<'PY' | tee -a "$out/summary.txt"
import json, statistics, sys
try:
    e = json.load(open(sys.argv[1]))["benchmarks"][0]["extra_info"]
except (OSError, ValueError, IndexError, KeyError):
    sys.exit(0)
med = {f"{i}{'/' + str(p) if p else ''}": statistics.median(t)
       for (i, p), t in zip(e["cases"], e["epoch_times"])}
print(f"cores={e['n_threads']} optimizer={e.get('optimizer_simd')} "
      + " ".join(f"{k}={v:.3f}" for k, v in med.items()))
PY
done
