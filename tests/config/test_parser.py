"""The Hookaidofile syntax: lexical rules, directive arity, structure and located errors."""

import pytest

from hookaido.config.parser import parse_file, parse_text
from hookaido.errors import ConfigError
from hookaido.plugins import Registry


def parse(text):
    """Parse with the core directives only, whatever plugins happen to be installed."""
    return parse_text(text, "Hookaidofile", registry=Registry())


def error_of(text) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert len(caught.value.problems) == 1
    return caught.value.problems[0]


def texts(directive):
    return [value.text for value in directive.args]


def shape(items):
    """Names, values and nesting of a list of directives, without places or comments."""
    return [
        (item.name, texts(item), item.channel, None if item.block is None else shape(item.block))
        for item in items
    ]


# -- lexical rules -----------------------------------------------------------------------


def test_bom_crlf_and_lone_cr_are_plain_whitespace():
    text = "\ufeffingress {\r\n  listen :8080\r}\r\n/a { pull { path /a } }"

    doc = parse(text)

    assert doc.items[0].block[0].location.line == 2
    assert texts(doc.items[0].block[0]) == [":8080"]
    assert doc.items[1].location.line == 4


def test_a_hash_starts_a_comment_even_inside_a_bare_word():
    doc = parse("/a { pull { path /a#rest of line\n } }")

    assert texts(doc.items[0].block[0].block[0]) == ["/a"]
    assert doc.items[0].block[0].block[0].trailing_comment == "#rest of line"


def test_quoted_strings_apply_known_escapes_and_keep_other_backslashes():
    doc = parse(r'ingress { tls { cert_file "C:\certs\x.pem" key_file "a\"b\\c\n\t\r" } }')

    tls = doc.items[0].block[0].block
    assert tls[0].args[0].text == "C:\\certs\\x.pem"
    assert tls[1].args[0].text == 'a"b\\c\n\t\r'
    assert tls[0].args[0].quoted


def test_a_raw_newline_inside_a_string_is_an_unterminated_string():
    assert error_of('ingress {\n  listen "abc\n}') == (
        "Hookaidofile:2:10: unterminated string; expected a closing '\"' on the same line"
    )


def test_semicolons_separate_like_whitespace():
    doc = parse("/a { auth hmac { provider github; secret env:X }; pull { path /a } }")

    assert shape(doc.items[0].block) == [
        (
            "auth",
            ["hmac"],
            None,
            [("provider", ["github"], None, None), ("secret", ["env:X"], None, None)],
        ),
        ("pull", [], None, [("path", ["/a"], None, None)]),
    ]


def test_placeholders_stay_inside_bare_words():
    doc = parse("vars { BASE /hooks }\n{vars.BASE}/build { pull { path {$P:/pull/x}/y } }")

    route = doc.items[1]
    assert texts(route) == ["{vars.BASE}/build"]
    assert texts(route.block[0].block[0]) == ["{$P:/pull/x}/y"]


def test_a_brace_not_followed_by_a_placeholder_prefix_opens_a_block():
    doc = parse("/a {pull {path /a}}")

    assert shape(doc.items) == [
        ("route", ["/a"], None, [("pull", [], None, [("path", ["/a"], None, None)])])
    ]


# -- arity from the directive table ------------------------------------------------------


def test_newlines_carry_no_meaning_and_arity_ends_a_directive():
    doc = parse("/a {\n auth hmac env:X pull\n {\n path\n /a } }")

    assert shape(doc.items[0].block) == [
        ("auth", ["hmac", "env:X"], None, None),
        ("pull", [], None, [("path", ["/a"], None, None)]),
    ]


def test_retry_options_are_read_up_to_the_next_deliver_directive():
    doc = parse('/a { deliver "https://x" { retry exponential max 8 base 2s timeout 5s } }')

    assert shape(doc.items[0].block[0].block) == [
        ("retry", ["exponential", "max", "8", "base", "2s"], None, None),
        ("timeout", ["5s"], None, None),
    ]


def test_value_or_block_directives_accept_both_forms():
    doc = parse("observability { access_log on\n runtime_log { level debug } metrics off }")

    assert shape(doc.items[0].block) == [
        ("access_log", ["on"], None, None),
        ("runtime_log", [], None, [("level", ["debug"], None, None)]),
        ("metrics", ["off"], None, None),
    ]


def test_route_shorthands_and_forms():
    doc = parse(
        "/a { publish.direct on\n match @a @b\n auth hmac secret_ref S1 { tolerance 5m }\n"
        ' deliver exec "/bin/run --x" {}\n deliver "https://y" { sign hmac secret_ref A B\n'
        " sign secret_selection oldest_valid env K V } }"
    )

    assert shape(doc.items[0].block) == [
        ("publish.direct", ["on"], None, None),
        ("match", ["@a", "@b"], None, None),
        ("auth", ["hmac", "secret_ref", "S1"], None, [("tolerance", ["5m"], None, None)]),
        ("deliver", ["exec", "/bin/run --x"], None, []),
        (
            "deliver",
            ["https://y"],
            None,
            [
                ("sign", ["hmac", "secret_ref", "A", "B"], None, None),
                ("sign", ["secret_selection", "oldest_valid"], None, None),
                ("env", ["K", "V"], None, None),
            ],
        ),
    ]


def test_channels_are_flattened_onto_their_routes():
    doc = parse(
        'outbound /o { deliver "https://x" {} }\ninternal {\n /j1 { pull { path /j1 } }\n'
        " /j2 { pull { path /j2 } } }\n/in { pull { path /in } }"
    )

    assert [(texts(item), item.channel) for item in doc.items] == [
        (["/o"], "outbound"),
        (["/j1"], "internal"),
        (["/j2"], "internal"),
        (["/in"], None),
    ]


def test_named_matchers_lose_their_at_sign():
    doc = parse("@gh { method POST GET header X-A 1 X-B 2 }\n/a { match @gh pull { path /a } }")

    assert shape(doc.items[:1]) == [
        (
            "matcher",
            ["gh"],
            None,
            [
                ("method", ["POST", "GET"], None, None),
                ("header", ["X-A", "1", "X-B", "2"], None, None),
            ],
        )
    ]


# -- structure errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "Hookaidofile:1:1: empty config: expected at least one block or route"),
        ("# nothing\n", "Hookaidofile:1:1: empty config: expected at least one block or route"),
        (
            "ingress {\n listen :1",
            'Hookaidofile:2:11: unexpected end of file; expected "}" to close the block opened '
            "at 1:9",
        ),
        ("}", 'Hookaidofile:1:1: unexpected "}": no block is open here'),
        ("ingress { listen }", 'Hookaidofile:1:18: listen expects 1 value, found "}"'),
        (
            "ingress { listen :1\n listen :2 }",
            "Hookaidofile:2:2: duplicate listen in ingress (first at Hookaidofile:1:11)",
        ),
        (
            "ingress {}\ningress {}",
            "Hookaidofile:2:1: duplicate ingress block (first at Hookaidofile:1:1)",
        ),
        (
            "ingress { lisen :1 }",
            'Hookaidofile:1:11: unknown directive "lisen" in ingress; expected one of: listen, '
            "rate_limit, tls",
        ),
        (
            '/a { deliver "https://x" }',
            'Hookaidofile:1:26: deliver "https://x" needs a block: expected "{", found "}"',
        ),
        (
            "/a { auth jwt x }",
            'Hookaidofile:1:11: unknown auth type "jwt"; installed: basic, forward, hmac',
        ),
    ],
)
def test_parse_errors_are_located_and_say_what_was_expected(text, expected):
    assert error_of(text) == expected


def test_unknown_top_level_word_lists_what_may_stand_there():
    message = error_of("ingres { }")

    assert message.startswith('Hookaidofile:1:1: unknown block "ingres"; expected one of ingress,')
    assert "a route path (/...)" in message


def test_pull_only_directives_are_rejected_in_admin_api():
    assert error_of("admin_api { max_batch 5 }").startswith(
        'Hookaidofile:1:13: unknown directive "max_batch" in admin_api'
    )


def test_duplicate_variables_and_matchers_are_errors():
    assert "duplicate variable A" in error_of("vars { A 1 A 2 }")
    assert "duplicate named matcher @m" in error_of("@m { method GET }\n@m { method POST }")


def test_parse_file_reports_invalid_utf8_with_its_place(tmp_path):
    path = tmp_path / "Hookaidofile"
    path.write_bytes(b"ingress {\n  listen \xff\n}\n")

    with pytest.raises(ConfigError) as caught:
        parse_file(path)

    assert caught.value.problems == [
        f"{path}:2:10: invalid UTF-8 (byte 0xff); the file must be UTF-8 encoded"
    ]


def test_a_channel_keyword_at_the_end_of_the_file_says_so():
    assert error_of("inbound") == (
        'Hookaidofile:1:8: inbound expects a route path or "{", found end of file'
    )


def test_parse_file_reports_an_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse_file(tmp_path / "missing")

    assert "cannot read config file" in caught.value.problems[0]


# -- comments ----------------------------------------------------------------------------


def test_comments_are_attached_to_the_statements_around_them():
    doc = parse(
        "# about ingress\ningress { # edge listener\n  # the port\n  listen :8080 # public\n"
        "  # last words\n}\n# the end\n"
    )

    ingress = doc.items[0]
    assert ingress.comments == ["# about ingress"]
    assert ingress.trailing_comment == "# edge listener"
    assert ingress.block[0].comments == ["# the port"]
    assert ingress.block[0].trailing_comment == "# public"
    assert ingress.closing_comments == ["# last words"]
    assert doc.trailing_comments == ["# the end"]


def test_a_comment_after_a_closing_brace_belongs_after_the_block():
    doc = parse("/h { # opening\n  pull { path /x } # after pull\n} # after route\n")

    route = doc.items[0]
    assert route.trailing_comment == "# opening"
    assert route.closing_trailing_comment == "# after route"
    assert route.block[0].trailing_comment is None
    assert route.block[0].closing_trailing_comment == "# after pull"


def test_a_comment_ends_a_list_of_values():
    message = error_of("@m { method GET # and\n POST }")

    assert message.startswith('Hookaidofile:2:2: unknown directive "POST" in matcher @m')


def test_an_inline_match_block_may_appear_only_once():
    message = error_of("/a { match { method GET } match { method POST } pull { path /a } }")

    assert message.startswith("Hookaidofile:1:27: duplicate match {} in route /a")


def test_deep_nesting_is_a_located_error_not_a_crash():
    message = error_of("/a { pull " + "{" * 5000 + "}" * 5000 + " }")

    assert message == 'Hookaidofile:1:12: unexpected "{" in pull block; expected a directive name'


def test_auth_hmac_secret_ref_shorthand_with_two_ids_points_to_the_block_form():
    message = error_of('/h {\n  auth hmac secret_ref old "new"\n  pull { path /x }\n}\n')

    assert message.startswith("Hookaidofile:2:28: auth hmac secret_ref takes one secret ID")
    assert message.endswith("auth hmac { secret_ref old new }")


def test_auth_hmac_secret_ref_shorthand_may_be_followed_by_options_or_the_next_directive():
    doc = parse("/h { auth hmac secret_ref old { tolerance 5m } pull { path /x } }\n")

    auth, pull = doc.items[0].block
    assert texts(auth) == ["hmac", "secret_ref", "old"] and auth.block[0].name == "tolerance"
    assert pull.name == "pull"
