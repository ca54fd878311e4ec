"""``aqwen-lint``: check spec trees and report every problem, for people, editors and CI."""

from aqwen_spec.lint.run import lint_paths

__all__ = ["lint_paths"]
