"""Entity resolution and question reading: products named as buyers name them, makers, categories, numbers."""

from __future__ import annotations

import textwrap

import pytest
from paths import EXAMPLES, SHARED

from ragkit.apps.catalog.catalog import load_catalog
from ragkit.apps.catalog.phrases import UnknownMention
from ragkit.apps.catalog.plan import rule_plan
from ragkit.apps.catalog.resolve import Resolver
from ragkit.apps.catalog.understand import Reader
from ragkit.config import load_pipeline

EXAMPLE = EXAMPLES / "product_qa"
WHO = SHARED / "catalogs" / "who_pqs_vaccine_fridges_hermes" / "fridgeTypeInfo.csv"
ENERGYSTAR = (
    SHARED / "catalogs" / "energystar_residential_refrigerators" / "ENERGY_STAR_Certified_Residential_Refrigerators.csv"
)

ROWS = (
    """\
    Code,Model,Display,Maker,Kind,Litres,Freezer,Cost,Cur,Days,Tech
    S1,VC-150 F,VC-150 F,Dulas,BPS,85,24,1562,GBP,0.2,battery solar
    S2,VC-65 F,VC-65 F,Dulas,BPS,37.5,16,1999,USD,0.158,battery solar
    S3,MK 204,MK 204,Vestfrost,Ice Lined Refrigerator - Compression,75,0,639,EUR,0.8375,compression
    S4,RCW25,CB RCW 25,Dometic/Electrolux,Cold Box,20,0,600,EUR,5.6083,ice
    S5,RCW12,CB RCW12,Dometic/Electrolux,Cold Box,7,0,473,EUR,4.7875,ice
    S6,TCW 3000 DC,TCW 3000 DC (cooler mode),Dometic/Electrolux,BPS,126.5,0,2219,EUR,0.975,battery solar
    S7,TCW 3000 DC,TCW 3000 DC (freezer mode),Dometic/Electrolux,BPS,0,48,2219,EUR,,battery solar
    S8,SJG2254FS,SJG2254FS,Sharp,Refrigerator - Solar Direct Drive,54.5,0,2300,USD,3.478,solar direct
    """
).replace("BPS", "Refrigerator/Freezer - Battery Powered Solar")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("resolve") / "items.csv"
    path.write_text(textwrap.dedent(ROWS), encoding="utf-8")
    return load_catalog(
        {
            "path": str(path),
            "fields": {"id": "Code", "model": "Model", "name": "Display", "manufacturer": "Maker", "category": "Kind"},
            "maker_synonyms": {"Dometic/Electrolux": ["Dometic"]},
            "category_synonyms": {"Cold Box": {"de": ["Kühlbox", "Kühlboxen"]}, "refrigerator": {"en": ["fridge"]}},
            "price": "price",
            "attributes": {
                "volume": {"column": "Litres", "type": "number", "unit": "l", "synonyms": {"en": ["storage volume"]}},
                "freezer_volume": {
                    "column": "Freezer",
                    "type": "number",
                    "unit": "l",
                    "synonyms": {"en": ["freezer", "freezer volume"], "de": ["Gefrierfach"]},
                },
                "price": {
                    "column": "Cost",
                    "type": "number",
                    "unit_column": "Cur",
                    "synonyms": {"en": ["price", "cost", "how much"], "de": ["kostet"]},
                    "lower": {"words": {"en": ["cheaper", "cheapest"], "de": ["günstiger"]}},
                },
                "holdover": {
                    "column": "Days",
                    "type": "number",
                    "unit": "days",
                    "synonyms": {"en": ["without power", "holdover", "keeps temperature"]},
                    "higher": {"words": {"en": ["longer"]}},
                },
                "technology": {"column": "Tech", "type": "text", "synonyms": {"en": ["technology"]}},
            },
        }
    )


@pytest.fixture(scope="module")
def resolver(catalog):
    return Resolver(catalog)


@pytest.mark.parametrize(
    "text",
    ["VC-150 F", "vc150f", "the VC 150F?", "Dulas VC-150 F", "DULAS vc-150f", "s1"],
)
def test_spacing_hyphens_case_and_maker_plus_model_name_one_product(resolver, text):
    found = resolver.find(f"What is the price of {text}")
    assert [m.ids for m in found.products] == [["S1"]] and not found.unknown


def test_display_name_and_model_both_resolve(resolver):
    assert resolver.find("the CB RCW 25").product_ids() == ["S4"]
    assert resolver.find("Dometic RCW25 cold box").product_ids() == ["S4"]


def test_a_misspelt_name_resolves_fuzzily_when_its_digits_agree(resolver):
    found = resolver.find("How tall is the Sharp SJG2254F?")
    assert found.product_ids() == ["S8"] and found.products[0].confidence < 1.0


def test_other_digits_are_another_product_not_a_typo(resolver):
    found = resolver.find("Was kostet der Dulas VC-300 F?")
    assert not found.products
    [unknown] = found.unknown
    assert unknown.text == "VC-300 F" and unknown.maker == "Dulas" and "S1" in unknown.suggestions


def test_a_shared_name_is_ambiguous_with_every_candidate(resolver):
    [mention] = resolver.find("What is the volume of the TCW 3000 DC?").products
    assert mention.ambiguous and mention.ids == ["S6", "S7"]


def test_unknown_maker_and_unknown_product_are_reported(resolver, catalog):
    found = resolver.find("How much does a Haier HBC-120 cost?")
    assert not found.products and found.unknown[0].text.endswith("HBC-120")
    assert isinstance(resolver.resolve("Liebherr XYZ 9"), UnknownMention)
    reader = Reader(catalog, resolver)
    assert reader.read("Do you have anything by Liebherr?").unknown_makers == ["Liebherr"]


def test_makers_and_categories_resolve_like_products(catalog, resolver):
    reader = Reader(catalog, resolver)
    u = reader.read("Wie viele Kühlboxen von Dometic gibt es?")
    assert u.categories == ["Cold Box"] and u.entities.maker_values() == ["Dometic/Electrolux"] and u.count
    u = reader.read("Which battery-powered solar fridge has the longest holdover?")
    assert u.categories == ["Refrigerator/Freezer - Battery Powered Solar"]
    assert u.asked() == ["holdover"] and u.way == "higher"


def test_reading_numbers_comparators_and_directions(catalog, resolver):
    reader = Reader(catalog, resolver)
    u = reader.read("Welche Kühlbox kostet mehr als 500 EUR?")
    [c] = u.conditions
    assert (c.attributes, c.op, c.value, c.unit) == (("price",), ">", 500, "eur") and u.way is None
    u = reader.read("Which one holds 54,5 litres?")
    assert u.conditions[0].attributes == ("volume", "freezer_volume") and u.conditions[0].op == "="
    u = reader.read("Which is cheaper, the VC-150 F or the MK 204?")
    assert u.entities.product_ids() == ["S1", "S3"] and u.way == "lower" and u.asked() == ["price"]
    u = reader.read("Which has a bigger freezer, the VC-150 F or the VC-65 F?")
    assert u.asked() == ["freezer_volume"]


def test_attributes_the_catalog_lacks_are_noticed(catalog, resolver):
    reader = Reader(catalog, resolver)
    assert reader.read("What warranty comes with the MK 204?").lacking == ["warranty"]
    assert reader.read("In welcher Farbe gibt es den MK 204?").lacking == ["colour"]
    assert reader.read("How much does the MK 204 cost?").lacking == []  # this catalog has prices


def test_german_declined_words_meet_the_schemas_words(catalog, resolver):
    """A declined adjective ("kleinsten", "günstigeren") meets the schema's or the generic word; names stay exact."""
    reader = Reader(catalog, resolver)
    u = reader.read("Welche Kühlboxen haben das kleinste Gefrierfach?")
    assert u.categories == ["Cold Box"] and u.asked() == ["freezer_volume"] and u.way == "lower"
    u = reader.read("Welches ist das günstigere Gerät, VC-150 F oder MK 204?")
    assert u.way == "lower" and u.asked() == ["price"]
    u = reader.read("Welche Kühlbox hat den geringsten Preis in EUR?")  # the generic "least", declined
    assert u.way == "lower" and u.categories == ["Cold Box"]


def test_a_less_or_more_word_applies_to_an_attribute_known_only_by_its_unit(catalog, resolver):
    u = Reader(catalog, resolver).read("Welche Kühlbox hat am wenigsten Liter?")
    assert u.way == "lower" and u.weak_attributes[:1] == ["volume"]


def test_a_negation_excludes_every_category_it_lists(catalog, resolver):
    reader = Reader(catalog, resolver)
    everything = set(catalog.categories())
    u = reader.read("Which products that aren't cold boxes or ice lined refrigerators keep cold the longest?")
    assert set(u.categories) == everything - {"Cold Box", "Ice Lined Refrigerator - Compression"}
    u = reader.read("Which products except cold boxes last longest without power?")
    assert set(u.categories) == everything - {"Cold Box"}
    u = reader.read("Welche Geräte, weder Kühlboxen noch eisgekühlte, halten am längsten ohne Strom?")
    assert set(u.categories) == everything - {"Cold Box"}


def test_a_topic_word_inside_a_named_attributes_phrase_is_not_lacking(catalog, resolver):
    reader = Reader(catalog, resolver)
    assert reader.read("How long does the MK 204 hold its temperature without power?").lacking == []
    assert reader.read("What temperature does the MK 204 reach?").lacking == ["temperature"]


def test_a_range_reads_its_lower_bound_once(catalog, resolver):
    u = Reader(catalog, resolver).read("Which cold box has between 5 and 10 litres and costs under 550 EUR?")
    got = sorted((c.attributes[0], c.op, c.value) for c in u.conditions)
    assert got == [("price", "<", 550), ("volume", "<=", 10), ("volume", ">=", 5)]


def test_german_compounds_meet_their_front_word(catalog, resolver):
    reader = Reader(catalog, resolver)
    assert reader.read("Welche Kühlboxmodelle gibt es von Dometic?").categories == ["Cold Box"]
    assert reader.read("Welche Garantiezeit hat der MK 204?").lacking == ["warranty"]
    assert reader.read("Which fridges are lockable?").lacking == ["lock"]  # whole English words only


def test_a_misspelt_maker_is_that_maker(catalog, resolver):
    reader = Reader(catalog, resolver)
    u = reader.read("Which Vestfrsot has the largest volume?")
    assert u.entities.maker_values() == ["Vestfrost"] and not u.unknown_makers
    assert reader.read("Which Sharpe fridge is cheapest?").entities.maker_values() == []  # too short to guess


def test_numbers_that_count_items_and_words_that_only_look_like_topics(catalog, resolver):
    reader = Reader(catalog, resolver)
    u = reader.read("Wir brauchen 40 kleine Kühlboxen. Was kostet die RCW25 laut Katalog?")
    assert u.conditions == [] and u.lacking == [] and u.asked() == ["price"]
    assert reader.read("Wie laut ist die RCW25?").lacking == ["noise"]
    u = reader.read("How many items are priced in USD?")
    plan = rule_plan(u, catalog)
    assert plan.kind == "tools" and plan.calls[0].args["count_only"] and plan.calls[0].args["in_units"] == ["usd"]


@pytest.mark.skipif(not WHO.exists(), reason="shared WHO/HERMES catalog not present")
def test_who_questions_with_german_lists_ranges_and_exclusions():
    catalog = load_catalog(load_pipeline(EXAMPLE / "who.yaml").sections["catalog"])
    reader = Reader(catalog, Resolver(catalog))
    fridges_and_freezers = set(reader.read("Welche Kühlgeräte oder Gefriergeräte gibt es?").categories)
    u = reader.read("Welche Kühl- oder Gefriergeräte gibt es?")  # the cut-off word is "Kühlgeräte"
    assert set(u.categories) == fridges_and_freezers and len(fridges_and_freezers) >= 5
    u = reader.read("Welches Gerät, Kühlboxen und Impfstoffträger ausgenommen, hält am längsten ohne Strom?")
    assert u.categories and not {"Cold Box", "Vaccine Carrier"} & set(u.categories) and "Cold Room" in u.categories
    u = reader.read("Wie viele Geräte haben mindestens 20 Liter Kühlraum?")  # measured: the volume, not a cold room
    assert u.categories is None and [c.attributes for c in u.conditions] == [("volume",)]
    assert reader.read("Was kostet der Kühlraum?").categories == ["Cold Room"]
    u = reader.read("Welcher Vestfrost hat den größten Kühlraum?")
    assert u.categories is None and u.way_attribute == "volume" and u.entities.maker_values() == ["Vestfrost"]
    u = reader.read("How many mains-electric units (not the gas or kerosene hybrids) use under 3 kWh per day?")
    assert u.values == [("energy_source", "E")]
    u = reader.read("Which units don't run on gas?")
    assert ("energy_source", "GE") not in u.values and ("energy_source", "E") in u.values


@pytest.mark.skipif(not WHO.exists(), reason="shared WHO/HERMES catalog not present")
def test_who_products_as_buyers_name_them():
    catalog = load_catalog(load_pipeline(EXAMPLE / "who.yaml").sections["catalog"])
    resolver = Resolver(catalog)
    for text, pid in (
        ("the Vestfrost MK 204", "Std_MK204_E"),
        ("sibir V110 KE", "Std_V110KE_KE"),
        ("fortum cfs49 isi", "Std_CFS49ISI_S"),
        ("Zero PR 245 K/E", "Std_PR245KE_KE"),
        ("Dometic TCW 1152/CF", "Std_TCW1152CF_E"),
    ):
        assert resolver.find(text).product_ids() == [pid], text


@pytest.mark.skipif(not ENERGYSTAR.exists(), reason="shared ENERGY STAR catalog not present")
def test_energystar_models_with_wildcards_resolve_among_thousands():
    catalog = load_catalog(load_pipeline(EXAMPLE / "energystar.yaml").sections["catalog"])
    resolver = Resolver(catalog)
    by_model = {}
    for p in catalog:
        by_model.setdefault(p.model, []).append(p.id)
    for model in ("BI-36R/*/**", "ARD298C*14R/L", "FAB28UL*#", "HRQ16N3B**"):
        assert resolver.find(f"the {model}").product_ids() == by_model[model], model
    assert not resolver.find("What type is the Absocold ARD999X*14R/L?").products
