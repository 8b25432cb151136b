"""Deprecated location of the method contract: import from `benchmark.contracts`."""
from benchmark.contracts.method import *  # noqa: F403
from benchmark.contracts.method import ALL, KINDS, SCHEDULE_DEFAULTS, DataInfo, Dependency, Method  # noqa: F401
