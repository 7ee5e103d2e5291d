"""pytest-benchmark files, installed as ``fastdrop._bench`` so `fastdrop bench` runs them."""
