"""The CLI tests' fixtures (defined with the contract tests in test_cli.py), for every module
of this directory."""

from tests.cli.test_cli import url, world

__all__ = ["url", "world"]
