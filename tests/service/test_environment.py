"""The process-wide defaults: glibc's malloc keeps freed memory for reuse."""

import platform
import resource

import numpy as np
import pytest

from service.environment import keep_freed_memory

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


def page_faults_of_a_fresh_64_mb_array() -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    total = np.ones(8 << 20).sum()
    assert total == 8 << 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_large_block_freed_and_taken_again_costs_no_new_pages():
    assert keep_freed_memory()  # as set_default_environment() did for the tests (conftest)
    page_faults_of_a_fresh_64_mb_array()
    # Without the settings glibc maps it anew: 544 faults here (16,384 in 4 KB pages, fewer
    # where the kernel backs it with huge pages).
    assert page_faults_of_a_fresh_64_mb_array() < 100


def test_the_users_own_malloc_settings_are_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_TOP_PAD_", "0")
    assert not keep_freed_memory()
