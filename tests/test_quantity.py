"""parse_quantity against hand-worked values and the Kubernetes quantity grammar."""

import math
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeopera.models.quantity import QuantityError, parse_quantity

# Written independently of the module: decimal SI as powers of ten, binary SI as powers of two.
DECIMAL_MULTIPLIERS = {
    "n": Decimal(10) ** -9,
    "u": Decimal(10) ** -6,
    "m": Decimal(10) ** -3,
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
}
BINARY_MULTIPLIERS = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
ALL_MULTIPLIERS = DECIMAL_MULTIPLIERS | BINARY_MULTIPLIERS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # decimal SI, integer numbers
        ("5n", 5e-9),
        ("5u", 5e-6),
        ("5m", 0.005),
        ("5", 5.0),
        ("5k", 5000.0),
        ("5M", 5_000_000.0),
        ("5G", 5_000_000_000.0),
        ("5T", 5e12),
        ("5P", 5e15),
        ("5E", 5e18),
        # decimal SI, fractional numbers
        ("2.5n", 2.5e-9),
        ("0.5u", 5e-7),
        ("100m", 0.1),
        ("250m", 0.25),
        ("1500m", 1.5),
        ("0.1", 0.1),
        ("1.5k", 1500.0),
        ("0.5M", 500_000.0),
        ("1.25G", 1_250_000_000.0),
        ("0.001T", 1e9),
        ("2.5P", 2.5e15),
        ("1.5E", 1.5e18),
        # binary SI, integer numbers
        ("1Ki", 1024.0),
        ("1Mi", 1_048_576.0),
        ("1Gi", 1_073_741_824.0),
        ("1Ti", 1_099_511_627_776.0),
        ("1Pi", 1_125_899_906_842_624.0),
        ("1Ei", 1_152_921_504_606_846_976.0),
        ("3Ki", 3072.0),
        ("512Mi", 536_870_912.0),
        ("64Gi", 68_719_476_736.0),
        # binary SI, fractional numbers
        ("0.5Ki", 512.0),
        ("1.5Mi", 1_572_864.0),
        ("1.5Gi", 1_610_612_736.0),
        ("0.25Ti", 274_877_906_944.0),
        ("0.5Pi", 562_949_953_421_312.0),
        ("0.125Ei", 144_115_188_075_855_872.0),
        # decimal exponents
        ("1e3", 1000.0),
        ("1E3", 1000.0),
        ("1.5e-3", 0.0015),
        ("2e+2", 200.0),
        ("2E+2", 200.0),
        ("-1e3", -1000.0),
        ("5e0", 5.0),
        ("12e-1", 1.2),
        (".5e1", 5.0),
        ("5.e-1", 0.5),
        ("1e-9", 1e-9),
        # signs, bare fractions, zeros
        ("+1", 1.0),
        ("-1", -1.0),
        ("-100m", -0.1),
        ("+1.5Gi", 1_610_612_736.0),
        ("-2Ki", -2048.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("+.5", 0.5),
        ("-.5", -0.5),
        ("5.Mi", 5_242_880.0),
        (".5Gi", 536_870_912.0),
        ("0", 0.0),
        ("0m", 0.0),
        ("0Gi", 0.0),
        ("007", 7.0),
        # the Kubernetes docs' four spellings of roughly the same memory
        ("128974848", 128_974_848.0),
        ("129e6", 129_000_000.0),
        ("129M", 129_000_000.0),
        ("123Mi", 128_974_848.0),
    ],
)
def test_parses_hand_worked_values(text: str, expected: float) -> None:
    assert parse_quantity(text) == expected


def test_e_suffix_is_exa_but_e_with_digits_is_an_exponent() -> None:
    assert parse_quantity("1E") == 1e18
    assert parse_quantity("1E3") == 1000.0
    assert parse_quantity("1e3") == 1000.0
    assert parse_quantity("2E") == 2e18
    assert parse_quantity("2E18") == 2e18
    with pytest.raises(QuantityError):
        parse_quantity("1e")  # lower-case e is never a suffix on its own


def test_negative_zero_is_plain_zero() -> None:
    assert math.copysign(1.0, parse_quantity("-0")) == 1.0
    assert math.copysign(1.0, parse_quantity("-0.0Gi")) == 1.0


def test_decimal_math_is_exact_before_the_float() -> None:
    # A float 0.1 times 3 is 0.30000000000000004; the decimal route gives the nearest float to 0.3.
    assert parse_quantity("300m") == 0.3
    assert parse_quantity("0.3") == 0.3
    assert parse_quantity("0.1Ki") == 102.4
    # 27 significant digits times 2**60 survives without rounding in the middle.
    digits = "123456789012345678901234567"
    assert parse_quantity(f"{digits}Ei") == float(Decimal(digits) * 2**60)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0.0), (2, 2.0), (-3, -3.0), (10**18, 1e18), (0.5, 0.5), (1e-9, 1e-9), (-2.5, -2.5)],
)
def test_numbers_pass_through_as_si(value: int | float, expected: float) -> None:
    result = parse_quantity(value)
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " ",
        "None",
        "null",
        "abc",
        "12parsecs",
        "1.2.3",
        "Mi",
        "Gi",
        "m",
        "e3",
        ".",
        "+",
        "-",
        "+-1",
        "--1",
        "++1",
        "1 Mi",
        " 1",
        "1 ",
        "1\n",
        "\t1Gi",
        "1mi",
        "1MI",
        "1KB",
        "1K",
        "1Kb",
        "1kb",
        "1ki",
        "1b",
        "1B",
        "1Gib",
        "1e",
        "1E+",
        "1e-",
        "1e1.5",
        "1e.5",
        "1e3m",
        "1e3Ki",
        "1Mie3",
        "1mm",
        "1,5",
        "1_000",
        "0x10",
        "1/2",
        "\u0661",  # ARABIC-INDIC DIGIT ONE
        "\uff11Gi",  # FULLWIDTH DIGIT ONE
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e999",
        "1e99999999999999999999999999",
        None,
        True,
        False,
        math.nan,
        math.inf,
        -math.inf,
        10**400,
        b"1Gi",
        ["1Gi"],
        Decimal("1"),
    ],
)
def test_rejects_garbage_naming_the_input(bad: object) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(bad)  # type: ignore[arg-type]
    message = str(caught.value)
    assert repr(bad) in message
    assert "\n" not in message


def test_error_message_says_what_is_accepted() -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity("12parsecs")
    assert str(caught.value) == (
        "invalid Kubernetes quantity '12parsecs': expected a number with an optional suffix"
        " (m, k, M, G, Ki, Mi, Gi, ... or e<exp>)"
    )
    assert isinstance(caught.value, ValueError)


@given(
    n=st.integers(min_value=-(10**30), max_value=10**30),
    suffix=st.sampled_from(sorted(ALL_MULTIPLIERS)),
)
def test_integer_with_any_suffix_matches_the_independent_table(n: int, suffix: str) -> None:
    with localcontext(prec=100):  # exact product, so the only rounding is the float() below
        expected = float(Decimal(n) * ALL_MULTIPLIERS[suffix])
    assert parse_quantity(f"{n}{suffix}") == expected


@given(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False))
def test_repr_of_a_float_parses_back_to_the_same_float(value: float) -> None:
    assert parse_quantity(repr(value)) == value
