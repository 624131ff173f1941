"""A user module whose import fails, as when a dependency is missing."""

import distgan_test_missing_dependency  # noqa: F401
