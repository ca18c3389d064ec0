from __future__ import annotations

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
        ("input", r"cannot parse --input 'input'.*NAME:SHAPE\[:DTYPE\]"),
        ("input:1x3xfoo", r"cannot parse dim 'foo'.*batch=1"),
        ("input:1x0x3", r"cannot parse dim '0'"),
        ("input:1x3:complex7", r"unknown dtype 'complex7'.*Available: .*float32"),
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
