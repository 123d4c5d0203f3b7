"""The catalog schema from the config, and bad catalog files as errors naming the file and line."""

from __future__ import annotations

import csv
import textwrap

import pytest
from paths import EXAMPLES, SHARED

from ragkit.apps.catalog.catalog import load_catalog
from ragkit.apps.catalog.settings import CatalogConfig
from ragkit.apps.catalog.units import canonical_unit, find_quantities, parse_number
from ragkit.cli import main
from ragkit.config import ConfigValidationError, parse_pipeline
from ragkit.errors import DataError

EXAMPLE = EXAMPLES / "product_qa"
ENERGYSTAR = (
    SHARED / "catalogs" / "energystar_residential_refrigerators" / "ENERGY_STAR_Certified_Residential_Refrigerators.csv"
)


def _csv(tmp_path, text: str, name: str = "items.csv"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _config(path, **extra) -> dict:
    return {
        "path": str(path),
        "fields": {"id": "Code", "model": "Model", "manufacturer": "Maker", "category": "Kind"},
        "price": "price",
        "attributes": {
            "volume": {"column": "Litres", "type": "number", "unit": "l"},
            "price": {"column": "Cost", "type": "number", "unit_column": "Cur"},
            "frost_free": {"column": "NoFrost"},
        },
        **extra,
    }


GOOD = """\
    Code,Model,Maker,Kind,Litres,Cost,Cur,NoFrost
    A1,VC-150 F,Dulas,Fridge,85,1562,GBP,yes
    A2,MK 204,Vestfrost,Fridge,75,639,EUR,no
    """


def test_the_lab_schema_comes_from_its_schema_file():
    cfg = CatalogConfig.model_validate(
        {"path": str(EXAMPLE / "catalog.json"), "schema_file": str(EXAMPLE / "catalog.schema.yaml")}
    )
    catalog = load_catalog(cfg)
    schema = catalog.schema
    volume = schema["volume_l"]
    assert volume.kind == "number" and volume.unit == "l" and volume.label("de") == "Nutzinhalt"
    assert volume.filterable and volume.sortable and volume.unit_label("l", "en") == "litres"
    assert schema["price"].units == {"eur", "usd", "chf"} and schema.price == "price"
    assert schema["alarms"].kind == "list" and schema["door"].values == ["glass", "solid"]
    temperature = schema["temperature"]
    assert temperature.is_group and temperature.is_range and schema.sort_member("temperature", "lower") == "temp_min_c"
    assert not schema["monitoring"].filterable and not schema["dimensions"].sortable
    assert {"manufacturer", "category"} <= set(schema.askable())
    assert schema.by_unit("l") == ["volume_l"] and schema.by_unit("kwh") == ["energy_kwh_per_day"]


def test_types_units_and_booleans_from_the_file(tmp_path):
    catalog = load_catalog(_config(_csv(tmp_path, GOOD)))
    a1 = catalog.get("a1")
    assert a1.values == {"volume": 85, "price": 1562, "frost_free": True} and a1.units == {"price": "GBP"}
    assert catalog.schema["frost_free"].kind == "bool" and catalog.schema["price"].units == {"gbp", "eur"}
    assert catalog.label(a1) == "Dulas VC-150 F (A1)"
    assert a1.payload()["price_unit"] == "GBP" and isinstance(a1.payload()["volume"], float)


def test_missing_column_names_the_column_and_line_1(tmp_path):
    path = _csv(tmp_path, GOOD.replace("Litres", "Liters"))
    with pytest.raises(DataError, match=r"items\.csv:1: missing column\(s\) 'Litres' \(attributes\.volume\)"):
        load_catalog(_config(path))


def test_non_numeric_value_names_the_line_and_column(tmp_path):
    path = _csv(tmp_path, GOOD.replace(",639,", ",about 600,"))
    with pytest.raises(DataError, match=r"items\.csv:3: column 'Cost': expected a number, got 'about 600'"):
        load_catalog(_config(path))


def test_duplicate_ids_name_both_lines(tmp_path):
    path = _csv(tmp_path, GOOD + "    A1,MK 144,Vestfrost,Fridge,48,559,EUR,no\n")
    with pytest.raises(DataError, match=r"items\.csv:4: duplicate product id 'A1' \(first on line 2\)"):
        load_catalog(_config(path))


def test_bad_yes_no_value_names_the_line(tmp_path):
    path = _csv(tmp_path, GOOD.replace(",no\n", ",maybe\n"))
    with pytest.raises(DataError, match=r"items\.csv:3: column 'NoFrost': expected yes/no"):
        load_catalog(
            _config(
                path, attributes={**_config(path)["attributes"], "frost_free": {"column": "NoFrost", "type": "bool"}}
            )
        )


def test_config_mistakes_are_reported_with_their_yaml_path(tmp_path):
    path = _csv(tmp_path, GOOD)
    for change, message in (
        ({"fields": {"colour": "Col"}}, "unknown role"),
        ({"groups": {"size": {"members": ["volume", "depth"]}}}, "not declared under attributes"),
        ({"price": "cost"}, "'cost' is not declared"),
        ({"id_pattern": "(["}, "id_pattern is not a valid regex"),
    ):
        with pytest.raises(ConfigValidationError, match=message) as e:
            parse_pipeline({"catalog": {**_config(path), **change}})
        assert "catalog" in str(e.value)


def test_cli_reports_a_bad_catalog_without_a_traceback(tmp_path, capsys, monkeypatch):
    path = _csv(tmp_path, GOOD.replace(",639,", ",n/a,"))
    yaml_path = tmp_path / "bot.yaml"
    yaml_path.write_text(
        "index_dir: " + str(tmp_path / "idx") + "\n"
        "catalog:\n"
        f"  path: {path}\n"
        "  fields: {id: Code, model: Model, manufacturer: Maker, category: Kind}\n"
        "  attributes:\n"
        "    price: {column: Cost, type: number, unit_column: Cur}\n",
        encoding="utf-8",
    )
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "x", "answers": []}\n', encoding="utf-8")
    code = main(["eval", "--qa", str(qa), "--config", str(yaml_path)])
    err = capsys.readouterr().err
    assert code != 0 and "items.csv:3: column 'Cost': expected a number, got 'n/a'" in err
    assert "Traceback" not in err


def test_units_and_numbers_as_people_write_them():
    assert [canonical_unit(u) for u in ("liters/day", "KwH/day", "kWh im Jahr", "€", "cubic feet", "Kg/day")] == [
        "l/day",
        "kwh/day",
        "kwh/yr",
        "eur",
        "ft3",
        "kg/day",
    ]
    assert [parse_number(t) for t in ("54,5", "0.255", "1,500", "2,490.00", "−30")] == [54.5, 0.255, 1500, 2490, -30]
    found = find_quantities("uses 0.58 liters/day, costs € 1.500 and holds 23.5 cubic feet; 2 in the list")
    assert [(q.value, q.unit) for q in found] == [(0.58, "l/day"), (1.5, "eur"), (23.5, "ft3")]
    assert found[1].money_value == 1500


@pytest.mark.skipif(not ENERGYSTAR.exists(), reason="shared ENERGY STAR catalog not present")
def test_energystar_reads_with_its_byte_order_mark_and_every_row():
    from ragkit.config import load_pipeline

    cfg = load_pipeline(EXAMPLE / "energystar.yaml").sections["catalog"]
    catalog = load_catalog(cfg)
    with ENERGYSTAR.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(catalog) == len(rows) == 2962
    p = catalog.get(rows[0]["ENERGY STAR Unique ID"])
    assert p.model == rows[0]["Model Number"] and p.values["annual_energy"] == float(
        rows[0]["Annual Energy Use (kWh/yr)"]
    )
    assert catalog.schema["ice_maker"].kind == "bool" and catalog.schema["capacity"].unit == "ft3"
