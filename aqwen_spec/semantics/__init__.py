"""What specs mean at run time, in one place: initial states, tool calls, verifier scores.

The compiler's gold check and the runtime's episodes both call these, so they cannot disagree.
"""

from aqwen_spec.semantics.state import copy_state, generate_state
from aqwen_spec.semantics.tools import ToolOutcome, ToolRunner
from aqwen_spec.semantics.verify import CheckResult, Evidence, Score, score

__all__ = [
    "CheckResult",
    "Evidence",
    "Score",
    "ToolOutcome",
    "ToolRunner",
    "copy_state",
    "generate_state",
    "score",
]
