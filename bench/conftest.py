import pytest


def pytest_collection_modifyitems(items):
    for item in items:  # kernel cases are short: many rounds; epoch cases set their own
        if "bench_kernels" in item.nodeid:
            item.add_marker(pytest.mark.benchmark(min_rounds=5, warmup=True))
