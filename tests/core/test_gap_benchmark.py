"""The AutoAttack gap benchmark's bookkeeping: which component explains each image the tested attack missed."""

import pytest


@pytest.fixture(scope="module")
def gap(benchmark_script):
    return benchmark_script("autoattack_gap")


def test_worst_case_bits_carry_a_break_at_a_smaller_eps_to_the_larger(gap):
    labels = {"0.1": ["", "apgd-ce", "", "clean"], "0.2": ["square", "", "", "clean"]}
    bits = gap.worst_case_bits(labels, [0.2, 0.1])
    assert bits == {"0.1": "1010", "0.2": "0010"}  # image 1: broken at 0.1, so broken at 0.2 too


def test_missed_images_are_named_by_the_component_that_broke_them_first(gap):
    labels = {"0.1": ["", "apgd-ce", "", "clean", ""], "0.2": ["square", "", "apgd-t", "clean", ""]}
    reference = gap.worst_case_bits(labels, [0.1, 0.2])["0.2"]  # 0, 0, 0, 0, 1
    ours = "11101"  # the tested attack broke none of the first three
    assert gap.missed_by_component(labels, reference, ours, 0.2, [0.1, 0.2]) == {"square": 1, "apgd-ce": 1, "apgd-t": 1}
    assert gap.missed_by_component(labels, reference, "00001", 0.2, [0.1, 0.2]) == {}
