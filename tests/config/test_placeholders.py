"""Placeholders: vars first, then environment and file forms, with located problems."""

import pytest

from hookaido.config.parser import parse_text
from hookaido.config.placeholders import resolve_document
from hookaido.errors import ConfigError


def resolve(text, environ=None):
    doc = parse_text(text, "Hookaidofile")
    return resolve_document(doc, environ or {})


def pull_path(doc, route=0):
    return doc.items[route].block[0].block[0].args[0].text


def route_items(doc):
    return [item for item in doc.items if item.name == "route"]


def test_environment_placeholders_and_defaults():
    doc, warnings = resolve(
        "/a { pull { path /{$A}/{$B:dflt}/{$C:dflt}/{env.A} } }", {"A": "x", "C": ""}
    )

    assert pull_path(doc) == "/x/dflt//x"
    assert warnings == []


def test_unset_environment_variables_become_empty_with_a_located_warning():
    doc, warnings = resolve("/a {\n  pull { path /p{$MISSING}{env.GONE} }\n}")

    assert pull_path(doc) == "/p"
    assert warnings == [
        'Hookaidofile:2:15: environment variable MISSING is not set; using ""',
        'Hookaidofile:2:15: environment variable GONE is not set; using ""',
    ]


def test_file_placeholders_insert_the_whole_file_verbatim(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("line one\n  padded  \n")

    doc, _ = resolve(f'/a {{ pull {{ path "{{file.{secret}}}" }} }}')

    assert pull_path(doc) == "line one\n  padded  \n"


def test_an_unreadable_file_is_a_located_error(tmp_path):
    missing = tmp_path / "nope"

    with pytest.raises(ConfigError) as caught:
        resolve(f"/a {{\n pull {{ path {{file.{missing}}} }} }}")

    assert caught.value.problems[0].startswith(f'Hookaidofile:2:14: cannot read file "{missing}"')


def test_vars_are_substituted_first_everywhere_including_route_paths():
    doc, _ = resolve(
        "vars {\n BASE /hooks\n FULL {vars.BASE}/{$ENVPART}\n}\n"
        "{vars.FULL}/x { pull { path {vars.BASE} } }",
        {"ENVPART": "gh"},
    )

    route = route_items(doc)[0]
    assert route.args[0].text == "/hooks/gh/x"
    assert route.block[0].block[0].args[0].text == "/hooks"


def test_vars_block_itself_is_left_as_written():
    doc, _ = resolve("vars { A {$X:1} }\n/a { pull { path /a } }")

    assert doc.items[0].block[0].args[0].text == "{$X:1}"


def test_a_resolved_value_is_never_read_again_for_placeholders():
    doc, _ = resolve("/a { pull { path {$A} } }", {"A": "{$B}"})

    assert pull_path(doc) == "{$B}"


def test_a_vars_cycle_is_an_error_naming_the_cycle():
    with pytest.raises(ConfigError) as caught:
        resolve("vars {\n A {vars.B}\n B x{vars.A}\n}\n/a { pull { path /a } }")

    assert caught.value.problems == ["Hookaidofile:2:4: vars cycle detected: A -> B -> A"]


def test_unknown_vars_are_errors_located_at_the_reference():
    with pytest.raises(ConfigError) as caught:
        resolve("/a {\n pull { path {vars.NOPE} } }")

    assert caught.value.problems == ['Hookaidofile:2:14: unknown variable "NOPE" in "{vars.NOPE}"']


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"{$X"', 'unterminated placeholder "{$X"; expected "}"'),
        ('"{env.}"', 'empty name in placeholder "{env.}"'),
        ('"{$:d}"', 'empty name in placeholder "{$:d}"'),
    ],
)
def test_malformed_placeholders_are_errors(value, message):
    with pytest.raises(ConfigError) as caught:
        resolve(f"/a {{ pull {{ path {value} }} }}")

    assert caught.value.problems == [f"Hookaidofile:1:18: {message}"]


def test_resolution_leaves_the_parsed_document_untouched():
    doc = parse_text("/a { pull { path {$A} } }", "Hookaidofile")

    resolve_document(doc, {"A": "/x"})

    assert pull_path(doc) == "{$A}"
