"""The SMSHub protocol's names for the catalog: countries by their English name in lower
case without spaces or punctuation (``russia``, ``unitedkingdom``), plus the protocol's own
spellings where they differ (``england``, ``usa``...), plus aliases the operator adds.

Pure values; the operator's aliases are read from ``country_aliases`` by the services.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_NOT_A_LETTER = re.compile(r"[^a-z0-9]")
_ALIAS = re.compile(r"[a-z0-9]{1,64}")

# Spellings the agents of this protocol use that the derivation does not give, by catalog
# country id. From the SMSHub / Grizzly partner lists and the common agent software: the
# agents name Great Britain "england", the US "usa" (derived too: id 187, "USA"), and use the
# short forms of long official names.
BUILT_IN_ALIASES: Mapping[str, int] = {
    "england": 16,  # United Kingdom
    "uk": 16,
    "greatbritain": 16,
    "unitedstates": 187,  # USA
    "korea": 190,  # South Korea
    "uae": 95,  # United Arab Emirates
    "czech": 63,  # Czech Republic
    "ivorycoast": 27,  # Cote d'Ivoire
    "drcongo": 18,  # Congo (Dem. Republic)
    "bosnia": 108,  # Bosnia and Herzegovina
}


def derived_name(name_en: str) -> str:
    """``United Kingdom`` -> ``unitedkingdom``; ``Cote d'Ivoire`` -> ``cotedivoire``."""
    return _NOT_A_LETTER.sub("", name_en.lower())


def alias_name(raw: str) -> str:
    """An operator's alias as stored: lower case, letters and digits only; refused (raises
    ``ValueError``) when nothing of it is left or it is longer than 64."""
    name = derived_name(raw.strip())
    if not _ALIAS.fullmatch(name):
        raise ValueError(f"an alias is 1 to 64 letters or digits, not {raw!r}")
    return name


def country_names(
    countries: Iterable[tuple[int, str]], operator_aliases: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Protocol name -> country id: derived names (the first country of a name wins, by
    id), then the built-in spellings, then the operator's aliases (which win over both)."""
    known = dict(countries)
    names: dict[str, int] = {}
    for country_id in sorted(known):
        names.setdefault(derived_name(known[country_id]), country_id)
    for name, country_id in BUILT_IN_ALIASES.items():
        if country_id in known:
            names.setdefault(name, country_id)
    for name, country_id in (operator_aliases or {}).items():
        if country_id in known:
            names[name] = country_id
    return names
