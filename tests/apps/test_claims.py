"""The numeric claim checker against the example catalog."""

from __future__ import annotations

import json

import pytest
from paths import EXAMPLES

from ragkit.apps.catalog.catalog import load_catalog
from ragkit.apps.catalog.claims import ClaimChecker, check_claims, extract_claims

HERE = EXAMPLES / "product_qa"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog({"path": str(HERE / "catalog.json")})


@pytest.fixture(scope="module")
def raw():
    return {r["id"]: r for r in json.loads((HERE / "catalog.json").read_text(encoding="utf-8"))}


def test_extracts_every_unit():
    claims = extract_claims(
        "It has 288 litres (300 L), 2 °C to 8 °C, -86 °C, 1.1 kWh, 600 × 640 × 1650 mm, "
        "costs 2,490.00 EUR or € 99 or $4990 or 12 900 CHF and is 820 mm high."
    )
    got = [(c.kind, c.value, c.currency) for c in claims]
    assert got == [
        ("volume", 288, None),
        ("volume", 300, None),
        ("temperature", 2, None),
        ("temperature", 8, None),
        ("temperature", -86, None),
        ("energy", 1.1, None),
        ("length", 600, None),
        ("length", 640, None),
        ("length", 1650, None),
        ("price", 2490, "EUR"),
        ("price", 99, "EUR"),
        ("price", 4990, "USD"),
        ("price", 12900, "CHF"),
        ("length", 820, None),
    ]


def test_german_units_and_decimal_comma():
    claims = extract_claims("Der Schrank hat 225 Liter, verbraucht 0,8 kWh und kostet 2.690,00 €; −30 °C bis −10 °C.")
    assert [(c.kind, c.value) for c in claims] == [
        ("volume", 225),
        ("energy", 0.8),
        ("price", 2690),
        ("temperature", -30),
        ("temperature", -10),
    ]


def test_right_numbers_pass(catalog, raw):
    r = raw["LABO-288"]
    answer = (
        f"LABO-288 holds {r['volume_l']} litres at {r['temp_min_c']} °C to {r['temp_max_c']} °C, uses "
        f"{r['energy_kwh_per_day']} kWh per day, measures {r['width_mm']} × {r['depth_mm']} × {r['height_mm']} mm "
        f"and costs {r['price']:.2f} {r['currency']}."
    )
    check = check_claims(answer, catalog)
    assert check.n_claims == 8 and check.ok and check.correct_share == 1.0
    assert check.products == ("LABO-288",)


def test_wrong_number_is_caught(catalog):
    check = check_claims("LABO-288 has 300 litres and costs 2490 EUR.", catalog)
    assert check.n_claims == 2 and check.n_correct == 1
    assert [(c.kind, c.value) for c in check.wrong] == [("volume", 300)]


def test_value_of_another_product_is_wrong_when_a_product_is_named(catalog):
    # 300 litres is MED-COOL-300's volume: right for the catalog, wrong for LABO-288.
    assert not check_claims("LABO-288 has 300 litres.", catalog).ok
    assert check_claims("One model has 300 litres.", catalog).ok


def test_currency_must_match(catalog):
    assert not check_claims("LABO-288 costs $2490.", catalog).ok
    assert check_claims("ARC-XP-360 costs 4990 USD.", catalog).ok


def test_injected_free_price_is_wrong(catalog):
    check = check_claims("KN-LR-130 costs 0 EUR.", catalog)
    assert check.wrong and check.wrong[0].value == 0


def test_answer_without_numbers(catalog):
    check = ClaimChecker(catalog)("I don't know based on the provided sources.")
    assert check.n_claims == 0 and check.ok


def test_products_named_by_full_name_count(catalog):
    # A generated answer may name the product instead of its id; its numbers are still checked against it.
    check = check_claims("The Labofrost ExLine 140 holds 190 litres at 2 °C to 10 °C.", catalog)
    assert check.products == ("LABO-XP-140",)
    assert [c.text for c in check.wrong] == ["190 litres"]
