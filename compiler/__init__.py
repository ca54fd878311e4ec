"""The compiler: checked specs expanded into task generators and versioned environment bundles.

``compile_specs`` (:mod:`compiler.project`) checks and expands a spec tree; ``write_bundles``
(:mod:`compiler.bundle`) writes ``manifest.json``, ``bundle.json`` and ``tasks.jsonl`` per domain; a
``TaskGenerator`` (:mod:`compiler.generate`) draws new tasks on demand.
"""

from compiler.bundle import FORMAT_VERSION, write_bundles
from compiler.generate import Task, TaskGenerator
from compiler.project import DEFAULT_SEED, CompiledProject, compile_specs

__all__ = ["DEFAULT_SEED", "FORMAT_VERSION", "CompiledProject", "Task", "TaskGenerator", "compile_specs",
           "write_bundles"]
