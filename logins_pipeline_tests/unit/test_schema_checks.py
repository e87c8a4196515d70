"""The schema's two string checks settle "all pass" over the joined values; they must say exactly what a
regex per value would."""

import re

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from logins_pipeline.core.masking import TOKEN_PATTERN
from logins_pipeline.core.schema import CONTROL_CHARACTERS, is_token, no_control_characters

texts = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0xDFFF), max_size=12)
hex_like = st.text("0123456789abcdefABCDEF \n", min_size=62, max_size=66)


def series(values: list) -> pd.Series:
    return pd.Series(values, dtype="str")


@given(st.lists(st.none() | texts, max_size=8))
def test_no_control_characters_is_the_regex_per_value(values):
    expected = [v is None or re.search(CONTROL_CHARACTERS, v) is None for v in values]
    assert no_control_characters(series(values)).tolist() == expected


@given(st.lists(hex_like | st.binary(min_size=32, max_size=32).map(bytes.hex), max_size=8))
def test_is_token_is_the_regex_per_value(values):
    expected = [re.match(TOKEN_PATTERN, v) is not None for v in values]
    assert is_token(series(values)).tolist() == expected


def test_a_bad_value_among_good_ones_is_the_only_failure():
    good = [bytes([i]).hex() * 32 for i in (10, 11, 12)]
    assert is_token(series([*good, good[0].upper()])).tolist() == [True, True, True, False]
    assert no_control_characters(series(["ok", "tab\there", None, "\u00a0nbsp"])).tolist() == [True, False, True, True]
