"""Plain data, the core schema, plugin fragments merged into it, and located lint messages."""

import jsonschema

from hookaido.config.parser import parse_text
from hookaido.config.schema import core_schema, document_to_data, lint, merged_schema
from hookaido.plugins import PluginInfo, Registry

APIKEY_SCHEMA = {
    "type": "object",
    "properties": {
        "header": {"type": "string", "minLength": 1},
        "keys": {"type": "array", "items": {"type": "string"}},
        "max_age": {"type": "integer", "minimum": 1},
        "strict": {"type": "boolean"},
        "cache": {"type": "object", "properties": {"size": {"type": "integer"}}},
    },
    "required": ["header"],
    "additionalProperties": False,
}


def apikey_registry() -> Registry:
    registry = Registry()
    info = PluginInfo("apikey", "1.0", "hookaido-apikey")
    registry.plugins[info.name] = info
    registry.add(info, "auth", "apikey", object, APIKEY_SCHEMA)
    return registry


def parse(text, registry=None):
    return parse_text(text, "Hookaidofile", registry=registry)


def test_the_core_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(core_schema())
    jsonschema.Draft202012Validator.check_schema(merged_schema(apikey_registry()))


def test_a_document_becomes_plain_data_with_places():
    doc = parse(
        "pull_api { listen :9443\n auth token env:T }\n@gh { method POST header X-A 1 }\n"
        'outbound /o { deliver "https://x" { timeout 5s\n header A b sign hmac env:S } }\n'
        "/p { match @gh pull { path /p } }"
    )

    data, places = document_to_data(doc)

    assert data == {
        "pull_api": {
            "listen": ":9443",
            "auth": [{"type": "token", "options": {"args": ["env:T"]}}],
        },
        "matchers": [{"name": "gh", "method": ["POST"], "header": [["X-A", "1"]]}],
        "routes": [
            {
                "path": "/o",
                "channel": "outbound",
                "deliver": [
                    {
                        "target": "https://x",
                        "args": [],
                        "options": {
                            "timeout": "5s",
                            "header": [["A", "b"]],
                            "sign": [{"type": "hmac", "options": {"args": ["env:S"]}}],
                        },
                    }
                ],
            },
            {"path": "/p", "match_refs": ["@gh"], "pull": {"path": "/p"}},
        ],
    }
    assert str(places[("pull_api", "auth", 0)][0]) == "Hookaidofile:2:2"
    assert str(places[("routes", 0, "deliver", 0, "options", "timeout")][0]) == (
        "Hookaidofile:4:37"
    )


def test_the_data_of_every_parsable_config_fits_the_core_schema():
    doc = parse(
        "ingress { listen :1 tls { cert_file a key_file b } rate_limit { rps 1 } }\n"
        "observability { access_log { enabled on output file path /x } metrics on }\n"
        "defaults { egress { allow a b deny c } deliver { retry exponential max 2 } }\n"
        'secrets { secret "v1" { value env:A valid_from 2026-01-01T00:00:00Z } }\n'
        "vars { A 1 }\n"
        "/a { publish { direct off } queue memory auth basic u p auth basic v q\n"
        ' deliver exec "run" { env A b env C d } }'
    )

    assert lint(doc, Registry()) == []


def test_plugin_option_blocks_take_their_arity_from_the_fragment():
    doc = parse(
        "/a {\n auth apikey { header X-Key keys k1 k2 max_age 5 cache { size 10 } }\n"
        " pull { path /a } }",
        apikey_registry(),
    )

    data, _ = document_to_data(doc, apikey_registry())

    assert data["routes"][0]["auth"] == [
        {
            "type": "apikey",
            "options": {
                "header": "X-Key",
                "keys": ["k1", "k2"],
                "max_age": "5",
                "cache": {"size": "10"},
            },
        }
    ]
    assert lint(doc, apikey_registry()) == []


def test_a_missing_required_plugin_option_is_located_at_the_directive():
    doc = parse("/a {\n  auth apikey { strict on }\n  pull { path /a } }", apikey_registry())

    assert lint(doc, apikey_registry()) == [
        'Hookaidofile:2:3: auth apikey: missing required option "header"'
    ]


def test_plugin_option_values_are_checked_against_their_declared_types():
    doc = parse(
        "/a { auth apikey { header X\n  max_age soon strict maybe } pull { path /a } }",
        apikey_registry(),
    )

    assert lint(doc, apikey_registry()) == [
        'Hookaidofile:2:3: max_age: expected an integer, found "soon"',
        'Hookaidofile:2:16: strict: expected a boolean, found "maybe"',
    ]


def test_fragments_of_installed_plugins_are_enforced(monkeypatch):
    doc = parse("/a {\n auth hmac env:X { provider gitlab }\n pull { path /a } }\n")

    from hookaido.plugins import registry

    problems = lint(doc, registry())

    assert len(problems) == 1
    assert problems[0].startswith('Hookaidofile:2:20: provider: "gitlab" is not allowed')


def test_merged_schema_contains_each_fragment():
    schema = merged_schema(apikey_registry())

    rules = schema["properties"]["routes"]["items"]["properties"]["auth"]["items"]["allOf"]
    assert {
        "if": {"properties": {"type": {"const": "apikey"}}, "required": ["type"]},
        "then": {"properties": {"options": APIKEY_SCHEMA}},
    } in rules
