"""Output locations: which batch output mappings would let two documents share an outcome name."""

from __future__ import annotations

from shared.batch.locations import OutputMapping, overlapping_pairs, shares_outcome_names


def mapping(input_prefix: str, output_prefix: str, owner: str = "run 'r'") -> OutputMapping:
    return OutputMapping(owner, input_prefix, output_prefix)


def test_the_same_mapping_and_mappings_extended_alike_never_collide() -> None:
    nightly = mapping("contracts/", "contracts/")
    assert not shares_outcome_names(nightly, mapping("contracts/", "contracts/"))
    # The nested run names contracts/2026/x as contracts/2026/x, as the outer one does.
    assert not shares_outcome_names(nightly, mapping("contracts/2026/", "contracts/2026/"))
    assert not shares_outcome_names(mapping("in/", "out/"), mapping("in/a/", "out/a/"))


def test_disjoint_output_prefixes_never_collide() -> None:
    assert not shares_outcome_names(mapping("a/", "out-a/"), mapping("b/", "out-b/"))
    assert not shares_outcome_names(mapping("a/", "x/"), mapping("a/", "y/"))


def test_one_output_prefix_for_two_input_prefixes_collides() -> None:
    # a/doc.txt and b/doc.txt would both be out/doc.txt.
    assert shares_outcome_names(mapping("a/", "out/"), mapping("b/", "out/"))


def test_a_nested_output_prefix_over_other_inputs_collides_either_way_round() -> None:
    outer, inner = mapping("in/", "out/"), mapping("other/", "out/2026/")
    assert shares_outcome_names(outer, inner) and shares_outcome_names(inner, outer)
    # in/2026/x and other/x would both be out/2026/x.


def test_every_colliding_pair_is_named() -> None:
    found = overlapping_pairs(
        [
            mapping("a/", "out/", "model 'm', batch 'one'"),
            mapping("b/", "out/", "model 'm', batch 'two'"),
            mapping("c/", "elsewhere/", "model 'm', batch 'three'"),
        ]
    )
    assert found == [
        "model 'm', batch 'two' writes outcomes under 'out/' (for 'b/'), which overlaps model "
        "'m', batch 'one''s 'out/' (for 'a/'): two different documents would share an outcome "
        "name. Choose an output prefix neither inside nor around the other"
    ]
