"""The runtime: bundles loaded and run as episodes (tools, simulated users, verifiers), rollouts and training.

It reads bundles written by ``aqwen-compile``, never YAML.
"""

from runtime.episodes.bundle import Bundle, BundleError

__all__ = ["Bundle", "BundleError"]
