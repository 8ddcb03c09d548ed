"""New-user finding 9: structural mistakes are reported where they are and say what they are."""

import pytest

from hookaido.config.parser import parse_text
from hookaido.errors import ConfigError


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as refused:
        parse_text(text, "Hookaidofile")
    return refused.value.problems[0]


def test_a_route_without_its_brace_is_reported_at_the_route():
    assert error_of("/a\n  pull { path /a }\n}\n") == (
        'Hookaidofile:1:1: route /a needs a block: expected "{" after it'
        ' (the "}" at 3:1 closes no block)'
    )


def test_a_stray_brace_with_no_block_missing_is_still_reported_at_the_brace():
    assert error_of("/a { pull { path /a } }\n}\n") == (
        'Hookaidofile:2:1: unexpected "}": no block is open here'
    )


def test_an_unclosed_placeholder_is_named_at_its_value():
    assert error_of("/a { pull { path /{$FOO } }\n") == (
        'Hookaidofile:1:18: unterminated placeholder "{$FOO"; expected "}" before the space'
        " that follows it"
    )


def test_a_control_character_is_shown_escaped_at_its_place():
    assert error_of("ingress { listen 127.0.0.1:1 }\x01") == (
        'Hookaidofile:1:31: control character "\\x01" is not allowed here'
    )


def test_a_nul_at_the_start_is_not_taken_as_a_word_character():
    assert error_of("\x00\x01garbage{{{") == (
        'Hookaidofile:1:1: control character "\\x00" is not allowed here'
    )


def test_a_control_character_inside_a_quoted_string_is_left_to_the_value_checks():
    document = parse_text('ingress { listen "a\x1fb" }\n', "Hookaidofile")
    assert document.items[0].block[0].args[0].text == "a\x1fb"
