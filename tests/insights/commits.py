"""Test rows saved as if their transaction committed.

The DORA rollup is recomputed after a job's save commits (insights.receivers); a test's own
transaction never commits, so what its saves deferred to the commit runs when `committed()` exits,
as after the commit of a save outside a transaction. Inside an `atomic()` of the test it would run
before that block commits: there, save plainly and commit or roll back for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.test import TestCase


@contextmanager
def committed() -> Iterator[None]:
    with TestCase.captureOnCommitCallbacks(execute=True):
        yield
