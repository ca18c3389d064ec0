from __future__ import annotations

import re

import pytest

from edgeport.errors import EdgeportError
from edgeport.spec import apply_dynamic, check_labels_consistent, parse_input


def test_parse_fixed_shape_defaults_to_float32() -> None:
    spec = parse_input("input:1x3x224x224")
    assert (spec.name, spec.dtype, spec.shape) == ("input", "float32", (1, 3, 224, 224))
    assert spec.dynamic_axes == {}


def test_parse_symbolic_dims_with_example_sizes_and_dtype() -> None:
    spec = parse_input("tokens:batch=2xseq=16:int64")
    assert spec.shape == ("batch", "seq")
    assert spec.examples == {"batch": 2, "seq": 16}
    assert spec.dtype == "int64"
    assert spec.concrete_shape() == (2, 16)
    assert spec.concrete_shape({"seq": 5}) == (2, 5)


def test_dynamic_marks_axis_and_keeps_example_size() -> None:
    (spec,) = apply_dynamic([parse_input("input:4x3x8x8")], ["input:0=batch"])
    assert spec.shape == ("batch", 3, 8, 8)
    assert spec.examples == {"batch": 4}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("input", r"cannot parse --input 'input'.*NAME:SHAPE\[:DTYPE\[:VALUES\]\]"),
        ("input:1x3xfoo", r"cannot parse dim 'foo'.*batch=1"),
        ("input:1x0x3", r"cannot parse dim '0'"),
        ("input:1x3:complex7", r"unknown dtype 'complex7'.*Available: .*float32"),
        ("ids:1x8:int64:5..5", r"value range 5..5 is empty"),
        ("ids:1x8:int64:lots", r"cannot parse values 'lots'.*LOW..HIGH"),
        ("x:1x8:float32:0..4", r"gives values for a float32 input.*only for integer inputs"),
    ],
)
def test_bad_input_specs_are_explained(text: str, match: str) -> None:
    with pytest.raises(EdgeportError, match=match):
        parse_input(text)


def test_dynamic_on_unknown_input_lists_declared_inputs() -> None:
    with pytest.raises(EdgeportError, match=r"names input 'img'.*Available: input"):
        apply_dynamic([parse_input("input:1x3")], ["img:0=batch"])


def test_dynamic_axis_out_of_range() -> None:
    with pytest.raises(EdgeportError, match=r"axis 5 is out of range for input with rank 2"):
        apply_dynamic([parse_input("input:1x3")], ["input:5=batch"])


def test_label_must_have_one_example_size() -> None:
    specs = [parse_input("a:batch=1x3"), parse_input("b:batch=2x3")]
    with pytest.raises(EdgeportError, match=r"'batch' has example size 1 .* and 2 in 'b'"):
        check_labels_consistent(specs)


def test_integer_inputs_hold_the_values_they_declare() -> None:
    """Token ids stay below the vocabulary, masks pad every row but the first, and both survive
    the manifest round trip, so golden sets, --sizes and random calibration all keep to them."""
    from edgeport.data import random_inputs
    from edgeport.manifest import parse_manifest
    from edgeport.spec import TensorSpec, Values

    ids = parse_input("ids:batch=4xseq=12:int64:3..30522")
    mask = parse_input("mask:batch=4xseq=12:int64:mask")
    assert ids.values == Values("range", 3, 30522)
    assert mask.values == Values("mask")
    feeds = random_inputs([ids, mask], {"batch": 4, "seq": 12}, seed=0)
    assert feeds["ids"].min() >= 3
    assert feeds["ids"].max() < 30522
    assert feeds["ids"].max() > 10  # not the default [0, 10)
    rows = feeds["mask"]
    assert rows[0].all()
    for row in rows[1:]:
        kept = int(row.sum())
        assert 6 <= kept < 12  # loses 1 to half its length
        assert row[:kept].all()
        assert not row[kept:].any()  # padding at the end
    assert TensorSpec.from_json(ids.to_json()) == TensorSpec(
        "ids", "int64", ("batch", "seq"), values=Values("range", 3, 30522)
    )
    manifest = {
        "schema": "edgeport.bundle/1",
        "inputs": [ids.to_json(), mask.to_json()],
        "input_examples": {"batch": 4, "seq": 12},
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 2]}],
        "artifacts": {},
    }
    parsed = parse_manifest(manifest)
    assert [s.values for s in parsed.inputs] == [Values("range", 3, 30522), Values("mask")]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kind": "zipf"}, "inputs[0].values.kind is 'zipf'; expected one of ('range', 'mask')"),
        ({"kind": "range", "low": 5, "high": 5}, "inputs[0].values.high is 5; expected an integer"),
        ({"kind": "range", "low": 0}, "inputs[0].values.high is missing"),
    ],
)
def test_bad_values_in_a_manifest_name_the_field(values: dict[str, object], message: str) -> None:
    from edgeport.manifest import ManifestError, parse_manifest

    manifest = {
        "schema": "edgeport.bundle/1",
        "inputs": [{"name": "ids", "dtype": "int64", "shape": [1, 4], "values": values}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": [1, 2]}],
        "artifacts": {},
    }
    with pytest.raises(ManifestError, match=re.escape(message)):
        parse_manifest(manifest)


def test_an_int32_input_cannot_hold_a_range_past_int32() -> None:
    from edgeport.data import random_inputs

    spec = parse_input("ids:1x4:int32:0..5000000000")
    with pytest.raises(EdgeportError, match=r"holds values 0..5000000000, outside int32"):
        random_inputs([spec], {}, seed=0)
