"""The skip grammar shared by every ADN backbone."""
import pytest

from mmadn.models.utils import all_skips, parse_skip, skip_to_str


@pytest.mark.parametrize('skip, expected', [
    ('TTFF', (True, True, False, False)),
    ('ttff', (True, True, False, False)),
    ('super', (False, ) * 4),
    ('base', (True, ) * 4),
    ([True, False, True, False], (True, False, True, False)),
    ((1, 0, 0, 1), (True, False, False, True)),
])
def test_accepted_forms(skip, expected):
    assert parse_skip(skip, 4) == expected


@pytest.mark.parametrize('skip, why', [
    ('TTF', '3 flags given'),
    ('TTFX', "unexpected character(s) ['X']"),
    (110, 'integer'),
    (True, 'got bool'),
    (None, 'got NoneType'),
    ([True, 'x', False, False], 'must hold bools'),
    ([True, False], '2 flags given'),
    (3.5, 'got float'),
])
def test_invalid_skip_says_what_is_valid(skip, why):
    with pytest.raises(ValueError) as err:
        parse_skip(skip, 4, 'ResNetADN')
    msg = str(err.value)
    assert why in msg
    assert 'ResNetADN with 4 skippable stages' in msg
    assert "'super' / 'base'" in msg


def test_all_skips_orders_super_to_base():
    skips = all_skips(3)
    assert len(skips) == 8 and len(set(skips)) == 8
    assert skips[0] == 'FFF' and skips[-1] == 'TTT'
    assert skip_to_str(parse_skip('TFT', 3)) == 'TFT'
