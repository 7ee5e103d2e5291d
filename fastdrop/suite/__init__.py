"""The benchmark suite behind `fastdrop run` and `fastdrop sweep`.

datasets -> configs -> runner (joblib | Dask) -> records -> store; plots and the summary read
only stored records (fastdrop.plots, fastdrop.suite.summary).
"""
