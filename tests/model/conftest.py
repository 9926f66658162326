"""Tiny models run faster on one torch thread (a second one only adds synchronisation, badly so on a busy box)."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield
