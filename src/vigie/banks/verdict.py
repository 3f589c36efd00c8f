"""What a hash means, stored as facets, with each classification scheme's label derived.

The schemes of the field do not nest (a UK "C" may be VICS 1 or 2; a VICS 3 may be
legal in one country and illegal in the next), so a verdict is kept as facets and
every scheme's label is computed from them. An imported label is kept as it came
(`source_scheme`, `source_profile`, `source_label`) so that an export gives it back
even where our derivation would say something else. See docs/categories.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

Legality = Literal["baseline", "national", "not_illegal", "unknown"]
AgeBand = Literal["infant", "prepubescent", "pubescent", "adult", "unknown"]
Severity = Literal["penetrative", "sexual_activity", "lascivious", "exploitive", "none", "unknown"]
Synthetic = Literal["no", "ai_generated", "drawn", "unknown"]

LEGALITY = ("baseline", "national", "not_illegal", "unknown")
AGE_BANDS = ("infant", "prepubescent", "pubescent", "adult", "unknown")
SEVERITIES = ("penetrative", "sexual_activity", "lascivious", "exploitive", "none", "unknown")
SYNTHETIC = ("no", "ai_generated", "drawn", "unknown")
#: Flags with a fixed meaning; others are kept as given.
KNOWN_FLAGS = ("comparison", "non_pertinent", "sadism", "bestiality", "self_generated", "series_known")

SCHEMES = ("interpol", "iccam", "vics_us", "uk", "tech_coalition")


@dataclass(frozen=True)
class Verdict:
    legality: Legality = "unknown"
    jurisdictions: tuple[str, ...] = ()
    age_band: AgeBand = "unknown"
    severity: Severity = "unknown"
    synthetic: Synthetic = "unknown"
    flags: tuple[str, ...] = ()
    source_scheme: str | None = None
    source_profile: str | None = None
    source_label: str | None = None

    def __post_init__(self):
        for name, allowed in (("legality", LEGALITY), ("age_band", AGE_BANDS),
                              ("severity", SEVERITIES), ("synthetic", SYNTHETIC)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        object.__setattr__(self, "flags", tuple(sorted(set(self.flags))))
        object.__setattr__(self, "jurisdictions", tuple(self.jurisdictions))

    @property
    def is_illegal(self) -> bool:
        return self.legality in ("baseline", "national")

    @property
    def baseline(self) -> bool:
        return self.legality == "baseline"

    def label(self, scheme: str) -> str | None:
        """This verdict's label in `scheme`, or None where the scheme has nothing to say."""
        if self.source_scheme == scheme and self.source_label is not None:
            return self.source_label
        return _DERIVE[scheme](self)

    def labels(self) -> dict[str, str | None]:
        return {s: self.label(s) for s in SCHEMES}

    def as_dict(self) -> dict:
        """Only the facets that say something: compact in the store (millions of rows)."""
        return _as_dict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Verdict | None:
        if not d:
            return None
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("jurisdictions", "flags"):
            if k in known:
                known[k] = tuple(known[k] or ())
        return cls(**known)

    def with_source(self, scheme: str, label: str | None, profile: str | None = None) -> Verdict:
        return replace(self, source_scheme=scheme, source_label=label, source_profile=profile)


@lru_cache(maxsize=4096)
def _as_dict_cached(v: Verdict) -> tuple:
    d = {}
    for name in ("legality", "age_band", "severity", "synthetic"):
        val = getattr(v, name)
        if val != "unknown":
            d[name] = val
    if v.jurisdictions:
        d["jurisdictions"] = list(v.jurisdictions)
    if v.flags:
        d["flags"] = list(v.flags)
    for name in ("source_scheme", "source_profile", "source_label"):
        val = getattr(v, name)
        if val is not None:
            d[name] = val
    return tuple(d.items())


def _as_dict(v: Verdict) -> dict:
    return {k: list(x) if isinstance(x, list) else x for k, x in _as_dict_cached(v)}


def _interpol(v: Verdict) -> str | None:
    return "baseline" if v.baseline else None


def _iccam(v: Verdict) -> str | None:
    return {"baseline": "baseline", "national": "nationally_illegal", "not_illegal": "not_illegal"}.get(v.legality)


def _vics_us(v: Verdict) -> str | None:
    if "comparison" in v.flags:
        return "4"
    if v.synthetic in ("drawn", "ai_generated"):
        return "3"
    if v.is_illegal:
        return "1"
    if v.severity == "exploitive" or (v.legality == "unknown" and v.age_band in ("pubescent", "unknown")
                                       and v.severity not in ("none", "unknown")):
        return "2"
    if v.legality == "not_illegal" or "non_pertinent" in v.flags:
        return "0"
    return None


def _uk(v: Verdict) -> str | None:
    if not v.is_illegal:
        return None
    if v.severity == "penetrative" or "sadism" in v.flags or "bestiality" in v.flags:
        return "A"
    if v.severity == "sexual_activity":
        return "B"
    if v.severity in ("lascivious", "exploitive", "unknown"):
        return "C"
    return None


def _tech_coalition(v: Verdict) -> str | None:
    age = {"infant": "A", "prepubescent": "A", "pubescent": "B"}.get(v.age_band)
    act = {"penetrative": "1", "sexual_activity": "1", "lascivious": "2"}.get(v.severity)
    return age + act if age and act else None


_DERIVE = {"interpol": _interpol, "iccam": _iccam, "vics_us": _vics_us, "uk": _uk,
           "tech_coalition": _tech_coalition}


@lru_cache(maxsize=1024)
def from_label(scheme: str, label: str, profile: str | None = None) -> Verdict:
    """The facets a scheme's label implies, keeping the label as its source.

    Raises ValueError for a label the scheme does not have. Cached: imports call it per row.
    """
    lab = str(label).strip()
    key = lab.upper()
    facets: dict = {}
    if scheme == "interpol":
        if key != "BASELINE":
            raise ValueError(f"INTERPOL has only the label 'baseline', not {label!r}")
        facets = {"legality": "baseline"}
    elif scheme == "iccam":
        facets = {"BASELINE": {"legality": "baseline"}, "NATIONALLY_ILLEGAL": {"legality": "national"},
                  "NATIONAL": {"legality": "national"}, "NOT_ILLEGAL": {"legality": "not_illegal"}}.get(key)
    elif scheme == "vics_us":
        facets = {"0": {"legality": "not_illegal", "flags": ("non_pertinent",), "severity": "none"},
                  "1": {"legality": "national"},
                  "2": {"severity": "exploitive"},
                  "3": {"synthetic": "drawn"},
                  "4": {"flags": ("comparison",)}}.get(key)
    elif scheme == "uk":
        facets = {"A": {"legality": "national", "severity": "penetrative"},
                  "B": {"legality": "national", "severity": "sexual_activity"},
                  "C": {"legality": "national", "severity": "lascivious"}}.get(key)
    elif scheme == "tech_coalition":
        if len(key) == 2 and key[0] in "AB" and key[1] in "12":
            facets = {"legality": "national",
                      "age_band": "prepubescent" if key[0] == "A" else "pubescent",
                      "severity": "sexual_activity" if key[1] == "1" else "lascivious"}
        else:
            facets = None
    else:
        raise ValueError(f"unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    if facets is None:
        raise ValueError(f"{scheme} has no label {label!r}")
    return Verdict(**facets, source_scheme=scheme, source_profile=profile, source_label=lab)


@dataclass
class VerdictSpec:
    """A verdict as a user writes it on the command line: `scheme:label` or facets `key=value,...`."""

    text: str
    parsed: Verdict = field(init=False)

    def __post_init__(self):
        self.parsed = parse_verdict(self.text)


def parse_verdict(text: str) -> Verdict:
    """`vics_us:1`, `uk:A`, or `legality=baseline,age_band=prepubescent,flags=comparison+sadism`."""
    t = text.strip()
    if "=" not in t and ":" in t:
        scheme, label = t.split(":", 1)
        return from_label(scheme.strip().lower(), label)
    facets: dict = {}
    for part in filter(None, (p.strip() for p in t.split(","))):
        if "=" not in part:
            raise ValueError(f"expected key=value in {part!r}")
        k, v = (x.strip() for x in part.split("=", 1))
        facets[k] = tuple(filter(None, v.split("+"))) if k in ("flags", "jurisdictions") else v
    unknown = set(facets) - set(Verdict.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown facet(s): {', '.join(sorted(unknown))}")
    return Verdict(**facets)
