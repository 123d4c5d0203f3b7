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
    return load_catalog({"path": str(HERE / "catalog.json"), "schema_file": str(HERE / "catalog.schema.yaml")})


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
        ("l", 288, None),
        ("l", 300, None),
        ("°c", 2, None),
        ("°c", 8, None),
        ("°c", -86, None),
        ("kwh", 1.1, None),
        ("mm", 600, None),
        ("mm", 640, None),
        ("mm", 1650, None),
        ("eur", 2490, "eur"),
        ("eur", 99, "eur"),
        ("usd", 4990, "usd"),
        ("chf", 12900, "chf"),
        ("mm", 820, None),
    ]


def test_german_units_and_decimal_comma():
    claims = extract_claims("Der Schrank hat 225 Liter, verbraucht 0,8 kWh und kostet 2.690,00 €; −30 °C bis −10 °C.")
    assert [(c.kind, c.value) for c in claims] == [("l", 225), ("kwh", 0.8), ("eur", 2690), ("°c", -30), ("°c", -10)]


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
    assert [(c.kind, c.value) for c in check.wrong] == [("l", 300)]


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


def test_units_from_the_schema_are_claims_and_names_are_not(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,model,litres,fuel,fuel_unit\nA,CB 18L,18,0.58,liters/day\nB,VC 2.6L,2.6,1.6,liters/charge\n")
    cat = load_catalog(
        {
            "path": str(path),
            "attributes": {
                "volume": {"column": "litres", "type": "number", "unit": "l"},
                "fuel": {"type": "number", "unit_column": "fuel_unit"},
            },
        }
    )
    assert check_claims("CB 18L uses 0.58 litres of kerosene per day.", cat).ok  # "18L" is part of the name
    wrong = check_claims("CB 18L uses 0.7 liters/day and holds 18 l.", cat)
    assert [c.text for c in wrong.wrong] == ["0.7 liters/day"] and wrong.n_claims == 2


def test_products_named_by_full_name_count(catalog):
    # A generated answer may name the product instead of its id; its numbers are still checked against it.
    check = check_claims("The Labofrost ExLine 140 holds 190 litres at 2 °C to 10 °C.", catalog)
    assert check.products == ("LABO-XP-140",)
    assert [c.text for c in check.wrong] == ["190 litres"]
