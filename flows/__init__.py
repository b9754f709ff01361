"""Prefect flows and the ``arhiva`` command line.

Importing the package sets Prefect's defaults (``flows.prefect_env.configure``) before any of its
modules imports Prefect.
"""
from flows.prefect_env import configure as _configure

_configure()
