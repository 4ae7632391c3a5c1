"""Shared test settings: deterministic seeds and single-threaded torch (the tests run tiny ops)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)  # small ops: one thread avoids OpenMP oversubscription slowdowns


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
