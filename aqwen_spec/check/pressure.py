"""Pressure lines: what an adversarial simulated user says, in the domain's own words.

``pressure:`` maps a spoken tactic (``tactics.SPOKEN``) to a line or lines, on a Domain (its users' default words)
or on a Persona (that user's own). A line said at a plant ("the line is down") can be a safety report at a utility,
so no line is built in: a persona that uses a spoken tactic in a domain where neither it nor the domain has words
for it gets a warning (AQ510), and its adversarial variants say nothing for that tactic.
"""

from __future__ import annotations

from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.diagnostics import did_you_mean
from aqwen_spec.resolved import SpecSet
from aqwen_spec.tactics import SPOKEN, TACTICS


def checked_pressure(c: DocChecker, declared: dict[str, Any]) -> dict[str, list[str]]:
    """``pressure:`` checked (known, spoken tactics; non-empty lines) and normalised to lists of lines."""
    out: dict[str, list[str]] = {}
    for tactic, value in declared.items():
        ypath = ("pressure", tactic)
        if tactic not in TACTICS:
            hint = did_you_mean(tactic, sorted(SPOKEN)) or "spoken tactics: " + ", ".join(sorted(SPOKEN))
            c.report("AQ406", f"unknown tactic '{tactic}'", ypath, hint, key=True)
            continue
        if tactic not in SPOKEN:
            c.report("AQ406", f"tactic '{tactic}' is applied by rule and says no pressure line", ypath,
                     "spoken tactics: " + ", ".join(sorted(SPOKEN)), key=True)
            continue
        lines = [value] if isinstance(value, str) else list(value)
        for i, line in enumerate(lines):
            if not line.strip():
                c.report("AQ106", "a pressure line is empty", (*ypath, i) if not isinstance(value, str) else ypath)
        kept = [line.strip() for line in lines if line.strip()]
        if kept:
            out[tactic] = kept
    return out


def check_unvoiced_tactics(specs: SpecSet, checkers: dict[str, DocChecker]) -> None:
    """AQ510: a persona using a spoken tactic in a domain where neither it nor the domain has lines for it."""
    for name, persona in specs.personas.items():
        c = checkers.get(name)
        if c is None:
            continue
        domains = sorted({wf.domain for wf in specs.workflows.values() if persona in specs.personas_for(wf)})
        for i, tactic in enumerate(persona.tactics):
            if tactic not in SPOKEN or tactic in persona.pressure:
                continue
            silent = [d for d in domains if d in specs.domains and tactic not in specs.domains[d].pressure]
            if silent:
                c.report("AQ510", f"persona '{name}' uses tactic '{tactic}' in domain '{silent[0]}', which has no "
                                  f"pressure line for it: its adversarial variants say nothing for this tactic",
                         ("tactics", i),
                         f"add the words this user would say here: pressure: {{{tactic}: \"...\"}} on the persona, "
                         f"or on domain '{silent[0]}' for all its users", warning=True)
