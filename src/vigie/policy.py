"""What a verdict triggers: the one place where legality becomes action.

Every consumer of a match asks this module, never the verdict's facets directly: the crawler
(is a sighting known, and does it go to a notice), report statuses (founded or not), takedown
(which providers may be noticed), statistics (how a known item counts) and review (whether a
match spares analysts a second look).

The rules, from an entry's verdict (its own, else its bank's default):

| legality            | founded report | notice                                        | statistics    | spares review |
|---------------------|----------------|-----------------------------------------------|---------------|---------------|
| baseline            | yes            | every provider                                | illegal       | yes           |
| national            | yes            | providers in its jurisdictions (else the      | illegal       | yes           |
|                     |                | deployment's `jurisdiction`; none set: every) |               |               |
| not_illegal         | no             | never                                         | not_illegal   | yes           |
| unknown, AI-made    | `policy_ai_generated` (default illegal: as baseline, else as not_illegal)     | yes |
| unknown             | `policy_unclassified` (default illegal: a list without categories is a list   | yes |
|                     | of known abuse material)                                                       |     |

Every match spares review: known material is never shown to a person, whatever its verdict,
and a "not illegal" entry exists precisely so that nobody looks at that picture again.

When several entries match one file, the most severe verdict decides (baseline > national >
AI-generated or unclassified taken as illegal > not illegal): a partner's "illegal" outweighs
our own "not illegal", because a notice too many is a smaller harm than abuse left online.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigie.banks.verdict import Verdict

#: Statistics buckets of a known item.
BUCKETS = ("illegal", "not_illegal")


@dataclass(frozen=True)
class Action:
    """What one verdict triggers."""

    illegal: bool
    #: Whether a sighting of it goes into takedown notices at all (see `may_notice` for a given provider).
    notice: bool
    #: Providers whose country is one of these may be noticed; () means any provider.
    jurisdictions: tuple[str, ...]
    #: Statistics bucket: illegal | not_illegal.
    bucket: str
    #: Known material is never shown again (always True; kept explicit for readers of the rule).
    spares_review: bool
    reason: str

    @property
    def founds_report(self) -> bool:
        return self.illegal

    def may_notice(self, provider_country: str | None) -> bool:
        """Whether a provider in `provider_country` may be sent a notice for it."""
        if not self.notice:
            return False
        if not self.jurisdictions:
            return True
        return bool(provider_country) and provider_country.upper() in self.jurisdictions

    def as_dict(self) -> dict:
        return {"illegal": self.illegal, "notice": self.notice, "jurisdictions": list(self.jurisdictions),
                "bucket": self.bucket, "spares_review": self.spares_review, "reason": self.reason}


def _setting(settings, name: str, default: str) -> str:
    return str(getattr(settings, name, None) or default) if settings is not None else default


def action_for(verdict: Verdict | None, settings=None) -> Action:
    """What a match on an entry with this verdict triggers (see the module docstring)."""
    v = verdict or Verdict()
    if v.legality == "baseline":
        return Action(True, True, (), "illegal", True, "illegal everywhere (baseline)")
    if v.legality == "national":
        juris = tuple(sorted({j.upper() for j in v.jurisdictions if j}))
        if not juris:
            here = getattr(settings, "jurisdiction", None) if settings is not None else None
            juris = (here.upper(),) if here else ()
        where = ", ".join(juris) if juris else "this deployment's country"
        return Action(True, True, juris, "illegal", True, f"illegal under national law ({where})")
    if v.legality == "not_illegal":
        return Action(False, False, (), "not_illegal", True, "classified not illegal")
    if v.synthetic == "ai_generated":
        if _setting(settings, "policy_ai_generated", "illegal") == "illegal":
            return Action(True, True, (), "illegal", True, "AI-generated (treated as illegal by policy)")
        return Action(False, False, (), "not_illegal", True, "AI-generated (treated as not illegal by policy)")
    if _setting(settings, "policy_unclassified", "illegal") == "illegal":
        return Action(True, True, (), "illegal", True, "known, without a category (treated as illegal by policy)")
    return Action(False, False, (), "not_illegal", True, "known, without a category (treated as not illegal)")


def _severity(verdict: Verdict | None, a: Action) -> int:
    """baseline 3 > national 2 > taken as illegal by policy 1 > not illegal 0 (see the module docstring)."""
    legality = verdict.legality if verdict is not None else "unknown"
    return {"baseline": 3, "national": 2}.get(legality, 1 if a.illegal else 0)


def strongest(matches, settings=None):
    """(match, action) of the most severe of `matches` (objects with a `.verdict` and a `.distance`), nearest
    first among equals; (None, None) when there is none."""
    best = None
    for m in matches:
        v = getattr(m, "verdict", None)
        a = action_for(v, settings)
        key = (_severity(v, a), -getattr(m, "distance", 0), getattr(m, "signal", "") not in ("pdq", "vpdq"))
        if best is None or key > best[0]:
            best = (key, m, a)
    return (best[1], best[2]) if best else (None, None)


def action_of_dict(verdict: dict | None, settings=None) -> Action:
    return action_for(Verdict.from_dict(verdict), settings)
