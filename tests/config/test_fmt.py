"""``config fmt``: canonical, idempotent, meaning-preserving, comments kept."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookaido.config.ast import Value
from hookaido.config.fmt import format_document, format_value
from hookaido.config.parser import parse_text
from hookaido.errors import ConfigError, Location


def fmt(text: str) -> str:
    return format_document(parse_text(text, "Hookaidofile"))


def bare(text):
    return Value(text, False, Location("f", 1, 1))


def quoted(text):
    return Value(text, True, Location("f", 1, 1))


def test_every_spec_example_parses_and_round_trips(spec_example, meaning):
    once = fmt(spec_example)

    assert fmt(once) == once
    assert meaning(parse_text(once, "x")) == meaning(parse_text(spec_example, "x"))


def test_blocks_are_ordered_and_separated_by_one_blank_line():
    text = (
        "/b { pull { path /b } }\n@m { method GET }\ndefaults { max_body 1mb }\n"
        "ingress { listen :8080 }\n\n\n/a { pull { path /a } }\n"
    )

    assert fmt(text) == (
        "ingress {\n  listen :8080\n}\n\ndefaults {\n  max_body 1mb\n}\n\n"
        "@m {\n  method GET\n}\n\n/b {\n  pull {\n    path /b\n  }\n}\n\n"
        "/a {\n  pull {\n    path /a\n  }\n}\n"
    )


def test_route_and_deliver_directives_take_their_canonical_order():
    text = (
        '/a { deliver "https://x" { env K V sign hmac env:S header A b timeout 5s '
        "retry exponential max 2 } queue memory auth hmac env:I match { method POST } "
        "match @m application app endpoint_name ep }"
    )

    assert fmt(text) == (
        "/a {\n"
        "  application app\n"
        "  endpoint_name ep\n"
        "  match @m\n"
        "  match {\n    method POST\n  }\n"
        "  auth hmac env:I\n"
        "  queue memory\n"
        '  deliver "https://x" {\n'
        "    retry exponential max 2\n    timeout 5s\n    header A b\n    sign hmac env:S\n"
        "    env K V\n"
        "  }\n"
        "}\n"
    )


def test_consecutive_routes_of_one_channel_share_a_wrapper():
    text = (
        'outbound /a { deliver "https://a" {} }\noutbound { /b { deliver "https://b" {} } }\n'
        "internal { /c { pull { path /c } } }\n/d { pull { path /d } }\n"
    )

    assert fmt(text) == (
        "outbound {\n"
        '  /a {\n    deliver "https://a" {}\n  }\n'
        '  /b {\n    deliver "https://b" {}\n  }\n'
        "}\n\n"
        "internal /c {\n  pull {\n    path /c\n  }\n}\n\n"
        "/d {\n  pull {\n    path /d\n  }\n}\n"
    )


def test_comments_stay_with_their_statements():
    text = (
        "# the edge\ningress { # listener\n  # port\n  listen :8080 # public\n"
        "  # nothing after\n}\n# the end\n"
    )

    assert fmt(text) == (
        "# the edge\ningress { # listener\n  # port\n  listen :8080 # public\n"
        "  # nothing after\n}\n\n# the end\n"
    )


def test_a_comment_after_a_closing_brace_stays_after_it():
    text = (
        "/h { pull { path /x } } # one-line route\n"
        "/g {\n  pull { path /y } # inner\n} # after g\n"
        "ingress { listen :1 } # a\n"
        "admin_api { # opening\n} # closing\n"
    )

    once = fmt(text)

    assert once == (
        "ingress {\n  listen :1\n} # a\n\n"
        "admin_api {} # opening # closing\n\n"
        "/h {\n  pull {\n    path /x\n  }\n} # one-line route\n\n"
        "/g {\n  pull {\n    path /y\n  } # inner\n} # after g\n"
    )
    assert fmt(once) == once


def test_output_is_lf_without_bom_with_one_trailing_newline():
    out = fmt("\ufeffingress {\r\n listen :1\r\n}\r\n\r\n\r\n")

    assert out == "ingress {\n  listen :1\n}\n"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (bare(":8080"), ":8080"),
        (quoted(":8080"), '":8080"'),
        (quoted('a"b\\c\n\t\r'), '"a\\"b\\\\c\\n\\t\\r"'),
        (bare("{$X:default}"), "{$X:default}"),
        (bare("{vars.BASE}/build"), '"{vars.BASE}/build"'),
        (bare("a b"), '"a b"'),
        (bare("a;b"), '"a;b"'),
        (bare("a#b"), '"a#b"'),
        (quoted(""), '""'),
    ],
)
def test_values_keep_their_quoting_unless_a_bare_word_would_not_read_back(value, written):
    assert format_value(value) == written


def test_placeholders_are_written_unresolved():
    assert fmt("/a { pull { path {$P:/x} } }") == "/a {\n  pull {\n    path {$P:/x}\n  }\n}\n"


# -- properties --------------------------------------------------------------------------

_BARE = st.sampled_from(
    ["on", "off", "5s", "/p", "a.b", "x-y", "env:X", "{$X}", "{vars.A}/b", "{$Y:d}", "1", "é"]
)
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)
_COMMENT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")), max_size=10
).map(lambda text: "#" + text)
_SEPARATOR = st.sampled_from([" ", "\n", "  ", "\t", ";", " ;\n", "\r\n"])


def _quote(text: str) -> str:
    return format_value(quoted(text))


_VALUE = st.one_of(_BARE, _TEXT.map(_quote))


@st.composite
def _directive(draw, name, count=1, block=None):
    parts = [name] + [draw(_VALUE) for _ in range(count)]
    if block is not None:
        parts.append("{" + draw(_SEPARATOR) + draw(block) + draw(_SEPARATOR) + "}")
    return " ".join(parts)


@st.composite
def _statements(draw, options, at_least=0):
    chosen = draw(st.lists(st.sampled_from(options), min_size=at_least, max_size=5, unique=True))
    pieces = []
    for make in chosen:
        if draw(st.booleans()) and draw(st.booleans()):
            pieces.append(draw(_SEPARATOR) + draw(_COMMENT) + "\n")
        pieces.append(draw(make))
    return "".join(draw(_SEPARATOR) + piece for piece in pieces)


_TLS = _statements([_directive("cert_file"), _directive("key_file")])
_MATCHER = _statements(
    [_directive("method", 2), _directive("header", 2), _directive("host", 1)], at_least=1
)
_DELIVER = _statements(
    [
        _directive("retry", 3),
        _directive("timeout"),
        _directive("header", 2),
        _directive("sign hmac"),
        _directive("env", 2),
    ]
)
_ROUTE = _statements(
    [
        _directive("application"),
        _directive("max_body"),
        _directive("publish.direct"),
        _directive("queue"),
        st.just("match @m @n"),
        _directive("match", 0, _MATCHER),
        _directive("auth basic", 2),
        _directive("auth hmac", 1, _statements([_directive("tolerance")])),
        _directive("pull", 0, _statements([_directive("path"), _directive("auth token")], 1)),
        _directive("deliver", 1, _DELIVER),
        _directive("deliver exec", 1, _DELIVER),
    ]
)
_TOP = [
    _directive("ingress", 0, _statements([_directive("listen"), _directive("tls", 0, _TLS)], 1)),
    _directive("observability", 0, _statements([_directive("access_log")])),
    st.just("vars { A 1 B {vars.A}/x }"),
    _directive("@m", 0, _MATCHER),
    _directive("/r1", 0, _ROUTE),
    _directive("outbound /r2", 0, _ROUTE),
    _directive('internal { "/r3" {} /r4', 0, _ROUTE).map(lambda text: text + " }"),
    _directive("/r5", 0, _ROUTE),
]
_CONFIG = (
    st.lists(st.sampled_from(range(len(_TOP))), min_size=1, max_size=6, unique=True)
    .flatmap(lambda picks: st.tuples(*(_TOP[index] for index in picks)))
    .map(lambda items: "\n".join(items))
)

_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(_CONFIG)
def test_fmt_is_idempotent_and_preserves_meaning(meaning, text):
    doc = parse_text(text, "Hookaidofile")

    once = format_document(doc)

    assert format_document(parse_text(once, "Hookaidofile")) == once
    assert meaning(parse_text(once, "Hookaidofile")) == meaning(doc)


_SOUP = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "{",
                "}",
                '"',
                "#",
                ";",
                "\n",
                " ",
                "@m",
                "/p",
                "ingress",
                "listen",
                "auth",
                "hmac",
                "deliver",
                "exec",
                "pull",
                "path",
                "match",
                "vars",
                "outbound",
                "internal",
                "{$X",
                "{vars.A}",
                "secret_ref",
                "\\",
                "\r",
                "\ufeff",
                "sign",
                "retry",
                "access_log",
            ]
        ),
        _TEXT,
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_SOUP)
def test_any_text_either_parses_or_raises_a_located_config_error(text):
    try:
        doc = parse_text(text, "F")
    except ConfigError as error:
        assert error.problems and error.problems[0].startswith("F:")
        return

    assert format_document(parse_text(format_document(doc), "F")) == format_document(doc)
