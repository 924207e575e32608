"""Model tests run torch on one thread: tiny networks gain nothing from a second one, and on a
shared 2-core machine the thread pool's contention makes them many times slower."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
