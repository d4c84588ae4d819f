import logging
import os
import sys

import pytest
import torch
from mmengine.logging import MMLogger

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mmadn  # noqa: E402,F401  (registers modules in mmdet / mmpretrain)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _no_default_scope_leaks():
    """A Runner built in a test makes its ``default_scope`` (mmdet or mmpretrain) mmengine's current scope for
    every later test of the process, and builds from the other library's registry then fail (``ImageClassifier
    is not in the mmdet::model registry``): which tests fail would depend on the order the tests run in."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        del DefaultScope._instance_dict[name]


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def log_capture():
    """The messages logged to mmengine's current logger while the test runs."""
    logger = MMLogger.get_current_instance()
    handler = _Capture()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)
