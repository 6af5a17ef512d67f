"""The SMSHub protocol's country names (pure)."""

from __future__ import annotations

import pytest

from otphub.domain.protocol_names import alias_name, country_names, derived_name
from otphub.services.catalog import packaged_countries


def catalog() -> list[tuple[int, str]]:
    return [(int(str(c["id"])), str(c["name_en"])) for c in packaged_countries()]


def test_derived_names_are_the_english_name_in_lower_case_without_punctuation() -> None:
    assert derived_name("Russia") == "russia"
    assert derived_name("United Kingdom") == "unitedkingdom"
    assert derived_name("Cote d'Ivoire") == "cotedivoire"
    assert derived_name("Congo (Dem. Republic)") == "congodemrepublic"


def test_every_catalog_country_has_its_name_and_the_protocols_spellings_map() -> None:
    names = country_names(catalog())
    assert names["russia"] == 0
    assert names["kazakhstan"] == 2
    assert names["unitedkingdom"] == 16 and names["england"] == 16
    assert names["usa"] == 187
    assert names["southafrica"] == names[derived_name("South Africa")]
    every = {country_id for _, country_id in names.items()}
    assert every == {country_id for country_id, _ in catalog()}


def test_operator_aliases_win_and_aliases_of_unknown_countries_are_ignored() -> None:
    names = country_names(catalog(), operator_aliases={"england": 0, "mars": 99_999})
    assert names["england"] == 0
    assert "mars" not in names


@pytest.mark.parametrize("raw", ["", "!!!", "x" * 65])
def test_malformed_aliases_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        alias_name(raw)
