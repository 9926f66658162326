"""Tiny models run faster on one torch thread (a second one only adds synchronisation, badly so on a busy box)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
