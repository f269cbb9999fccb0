"""Registers the ``slow`` marker of the K >= 1000 parity tests (deselect with ``-m "not slow"``)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: K >= 1000 problems (tens of seconds on two cores)")
