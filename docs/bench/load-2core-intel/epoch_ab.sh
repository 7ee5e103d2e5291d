# run from the repository root; /tmp/fd/base: a worktree of the base commit, built in place
vs=(base new fixed)
for r in 0 1 2 3 4 5 6 7 8; do
  for p in 0.0; do
    for i in 0 1 2; do
      v=${vs[$(( (i + r) % 3 ))]}
      if [ $v = base ]; then pp=/tmp/fd/base; e=""; elif [ $v = new ]; then pp=/work/main; e=""; else pp=/work/main; e="FASTDROP_ADAPTIVE_THREADS=0"; fi
      t=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=$pp $e /work/main/.venv/bin/python docs/bench/load-2core-intel/epoch_ab_one.py $p)
      echo "$r $p $v $t"
    done
  done
done
