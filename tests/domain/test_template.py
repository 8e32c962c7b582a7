"""The <Placeholder> grammar, rendering, and mapping checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smslink.domain.errors import Action, Remedy
from smslink.domain.models import MAX_PLACEHOLDERS
from smslink.domain.template import (
    MissingValue,
    Template,
    TemplateError,
    check_mapping,
    parse_template,
)

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,10}(?: [A-Za-z0-9]{1,5})?", fullmatch=True)
plain_text = st.text().map(lambda s: s.replace("<", "«"))  # no "<", hence no placeholder


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi <FirstName>!", ("FirstName",)),
        ("<First Name> <Last-Name> <a.b> <_x1>", ("First Name", "Last-Name", "a.b", "_x1")),
        ("<Prénom> <Имя>", ("Prénom", "Имя")),
        ("<A> <B> <A>", ("A", "B")),
        ("<<Name>>", ("Name",)),
        ("<name> <Name>", ("name", "Name")),
    ],
)
def test_placeholders_in_order_of_first_use(text: str, expected: tuple[str, ...]) -> None:
    assert parse_template(text).placeholders == expected


@pytest.mark.parametrize(
    "text",
    [
        "a < b",
        "a < b > c",
        "I <3 you",
        "<>",
        "<<",
        "unclosed <Name",
        "< b>",
        "<b >",
        "<First  Name>",
        "<2 for 1>",
        "<²x>",
        "<a\tb>",
        "<a/b>",
    ],
)
def test_text_that_is_not_a_placeholder_passes_through(text: str) -> None:
    template = parse_template(text)
    assert template.placeholders == ()
    assert template.render({}) == text


def test_render_substitutes_every_occurrence() -> None:
    template = parse_template("<A>, <A> and <First Name>")
    assert template.render({"A": "x", "First Name": "Zoë"}) == "x, x and Zoë"


def test_values_are_not_re_expanded() -> None:
    template = parse_template("Hi <A>")
    assert template.render({"A": "<B>", "B": "oops"}) == "Hi <B>"


@pytest.mark.parametrize("values", [{}, {"FirstName": ""}, {"FirstName": "  \t"}])
def test_missing_or_blank_value_raises(values: dict[str, str]) -> None:
    with pytest.raises(MissingValue) as info:
        parse_template("Hi <FirstName>").render(values)
    assert info.value.name == "FirstName"
    assert "<FirstName>" in str(info.value)
    assert isinstance(info.value, TemplateError)


def test_names_are_case_sensitive() -> None:
    with pytest.raises(MissingValue):
        parse_template("Hi <FirstName>").render({"firstname": "Ann"})


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_message_is_rejected(text: str) -> None:
    with pytest.raises(TemplateError, match="empty"):
        parse_template(text)


def test_at_most_five_distinct_placeholders() -> None:
    five = " ".join(f"<P{i}>" for i in range(MAX_PLACEHOLDERS))
    assert len(parse_template(five + " <P0> <P1>").placeholders) == MAX_PLACEHOLDERS
    with pytest.raises(TemplateError, match=r"6 placeholders.*at most 5"):
        parse_template(five + " <P5>")


def test_check_mapping_accepts_a_complete_mapping() -> None:
    template = parse_template("Hi <FirstName> from <City>")
    check_mapping(template, "Phone", {"FirstName": "first_name", "City": "city"})
    check_mapping(parse_template("No fields"), "Phone", {})


def test_check_mapping_names_each_unmapped_placeholder_by_field_with_its_remedy() -> None:
    template = parse_template("Hi <FirstName> <Last Name>")
    with pytest.raises(TemplateError) as info:
        check_mapping(template, "Phone", {})
    problems = info.value.problems
    assert [p.field for p in problems] == ["mapping.FirstName", "mapping.Last Name"]
    assert [p.message for p in problems] == [
        "<FirstName> is not mapped",
        "<Last Name> is not mapped",
    ]
    assert [p.remedy for p in problems] == [
        Remedy(Action.MAP_FIELD, {"placeholder": "FirstName"}),
        Remedy(Action.MAP_FIELD, {"placeholder": "Last Name"}),
    ]
    assert "--" not in str(info.value)  # no command-line words below the faces


def test_check_mapping_rejects_a_mapping_for_a_placeholder_not_in_the_message() -> None:
    template = parse_template("Hi <FirstName>")
    with pytest.raises(TemplateError, match="<Town> is mapped, but it is not in the message"):
        check_mapping(template, "Phone", {"FirstName": "fn", "Town": "city"})
    with pytest.raises(TemplateError, match="did you mean <FirstName>") as info:
        check_mapping(template, "Phone", {"FirstName": "fn", "firstname": "fn"})
    assert [p.field for p in info.value.problems] == ["mapping.firstname"]


def test_message_problems_concern_the_message_field() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("  ")
    assert [p.field for p in info.value.problems] == ["message"]


@pytest.mark.parametrize("phone", ["", "  "])
def test_check_mapping_requires_the_phone_column(phone: str) -> None:
    with pytest.raises(TemplateError, match="phone number column is not set"):
        check_mapping(parse_template("Hi"), phone, {})


def test_check_mapping_rejects_an_empty_column() -> None:
    with pytest.raises(TemplateError, match="<A> is mapped to an empty column"):
        check_mapping(parse_template("<A>"), "Phone", {"A": " "})


@given(plain_text)
def test_text_without_placeholders_renders_to_itself(text: str) -> None:
    if text.strip():
        assert parse_template(text).render({}) == text


@given(st.lists(st.tuples(plain_text, names), max_size=5), plain_text, st.data())
def test_render_substitutes_exactly(
    parts: list[tuple[str, str]], tail: str, data: st.DataObject
) -> None:
    text = "".join(f"{before}<{name}>" for before, name in parts) + tail
    if not text.strip():
        return
    template = parse_template(text)
    assert set(template.placeholders) == {name for _, name in parts}
    values = {
        name: data.draw(st.text(min_size=1).filter(str.strip)) for name in template.placeholders
    }
    expected = "".join(before + values[name] for before, name in parts) + tail
    assert template.render(values) == expected


@given(names, st.text(min_size=1).filter(str.strip))
def test_values_are_never_re_expanded(name: str, other: str) -> None:
    template = parse_template(f"<{name}>")
    value = f"<{name}> <Other>"
    assert template.render({name: value, "Other": other}) == value


def test_template_is_a_value() -> None:
    assert parse_template("Hi <A>") == Template("Hi <A>", ("A",))
