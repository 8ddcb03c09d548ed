"""The Hookaidofile as plain data, the core JSON Schema, plugin fragments merged into it, and
``lint``: every schema violation as ``file:line:col: what: what was expected``.

The core schema checks structure only; value rules (durations, ranges, ...) are the
compiler's. A plugin fragment describes the options of one thing it registers:
``{"args": [values after the name], <block directive>: <value(s)>, ...}``.
"""

import copy
import json
import re

import jsonschema

from hookaido.config import directives as d
from hookaido.config.ast import Directive, Document
from hookaido.config.compile_reader import hide_text
from hookaido.errors import Location

_STRING = {"type": "string"}
_LIST = {"type": "array", "items": _STRING}
_PAIRS = {
    "type": "array",
    "items": {"type": "array", "items": _STRING, "minItems": 2, "maxItems": 2},
}
_BOOL_WORDS = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
_INTEGER = re.compile(r"[+-]?\d+\Z")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")


# -- plain data ----------------------------------------------------------------------------


class _Places:
    """Where each piece of the data came from: JSON path -> (location, label)."""

    def __init__(self):
        self.table: dict[tuple, tuple[Location, str]] = {}

    def add(self, path: tuple, location: Location, label: str) -> None:
        self.table.setdefault(path, (location, label))

    def find(self, path: tuple):
        path = tuple(path)
        while path:
            if path in self.table:
                return self.table[path]
            path = path[:-1]
        return self.table.get((), (None, ""))


def document_to_data(doc: Document, registry=None) -> tuple[dict, dict]:
    """The document as dicts, lists and strings, and a side table mapping each JSON path
    (a tuple of keys and indexes) to ``(Location, label)``."""
    places = _Places()
    tables = _plugin_tables(registry)
    data: dict = {}
    places.add((), Location(doc.file, 1, 1), "config")
    for item in doc.items:
        if item.name == "route":
            routes = data.setdefault("routes", [])
            path = ("routes", len(routes))
            route = {"path": item.args[0].text if item.args else ""}
            if item.channel:
                route["channel"] = item.channel
            places.add(path, item.location, f"route {route['path']}")
            route.update(_block(item.block or [], d.ROUTE, path, places, tables))
            routes.append(route)
        elif item.name == "matcher":
            matchers = data.setdefault("matchers", [])
            path = ("matchers", len(matchers))
            name = item.args[0].text if item.args else ""
            places.add(path, item.location, f"@{name}")
            matcher = {"name": name}
            matcher.update(_block(item.block or [], d.MATCHER, path, places, tables))
            matchers.append(matcher)
        elif item.name == "vars":
            places.add(("vars",), item.location, "vars")
            data["vars"] = {}
            for entry in item.block or []:
                places.add(("vars", entry.name), entry.location, f"vars {entry.name}")
                data["vars"][entry.name] = entry.args[0].text if entry.args else ""
        else:
            places.add((item.name,), item.location, item.name)
            table = d.GLOBAL_BLOCKS[item.name].block or {}
            data[item.name] = _block(item.block or [], table, (item.name,), places, tables)
    return data, places.table


def _plugin_tables(registry) -> d.PluginTables:
    try:
        return d.plugin_tables(registry)
    except Exception:  # a registry that cannot be read adds nothing
        return d.PluginTables()


def _block(
    children: list[Directive], table, path: tuple, places: _Places, tables, within: str = ""
) -> dict:
    """A block as data; ``within`` names the enclosing directive for messages."""
    data: dict = {}
    for child in children:
        spec = table.get(child.name) if isinstance(table, dict) else None
        if spec is None and table is d.QUEUE:
            spec = tables.backend_options.get(child.name)
        key = child.name
        if spec is not None and spec.special == d.MATCH and child.block is None:
            key = "match_refs"
        label = f"{within} {child.name}".strip()
        if spec is not None and spec.special in (d.AUTH, d.TOKEN_AUTH, d.SIGN, d.DELIVER):
            entries = data.setdefault(key, [])
            entry_path = path + (key, len(entries))
            kind = child.args[0].text if child.args else ""
            places.add(entry_path, child.location, f"{child.name} {kind}".strip())
            entries.append(_typed_entry(child, spec, entry_path, places, tables))
            continue
        entry_path = path + (key,)
        places.add(entry_path, child.location, label)
        entry = _entry(child, spec, entry_path, places, tables, label)
        if spec is not None and spec.args in (d.VARIADIC, d.PAIRS) or key == "match_refs":
            data[key] = data.get(key, []) + entry
        elif spec is not None and spec.repeatable:
            places.add(entry_path + (len(data.get(key, [])),), child.location, label)
            data.setdefault(key, []).append(entry)
        elif spec is None and key in data:
            previous = data[key]
            data[key] = (previous if isinstance(previous, list) else [previous]) + [entry]
        else:
            data[key] = entry
    return data


def _entry(child: Directive, spec, path: tuple, places: _Places, tables, label: str):
    texts = [value.text for value in child.args]
    for index, value in enumerate(child.args):
        places.add(path + (index,), value.location, label)
    if child.block is not None:
        table = spec.block if spec else None
        inner = _block(child.block, table, path, places, tables, label)
        return {"args": texts, **inner} if texts and not (spec and spec.either) else inner
    if spec is None or spec.special == d.MATCH or spec.args == d.VARIADIC:
        return texts[0] if spec is None and len(texts) == 1 else texts
    if spec.args == d.PAIRS:
        return [texts[i : i + 2] for i in range(0, len(texts), 2)]
    if spec.args == 1 or spec.either:
        return texts[0] if texts else ""
    return texts


def _typed_entry(child: Directive, spec, path: tuple, places: _Places, tables) -> dict:
    texts = [value.text for value in child.args]
    options_path = path + ("options",)
    places.add(options_path, child.location, f"{child.name} {texts[0] if texts else ''}".strip())
    if spec.special == d.DELIVER:
        table = d.DELIVER_BLOCK
        plugin = tables.deliverers.get(texts[0]) if texts else None
        if texts and texts[0] != "exec" and plugin is not None:
            table = plugin.block if plugin.known else None
        options = _block(child.block or [], table, options_path, places, tables, "deliver")
        return {"target": texts[0] if texts else "", "args": texts[1:], "options": options}
    kind = texts[0] if texts else ""
    table: dict | None = {}
    if spec.special == d.AUTH:
        table = {"hmac": d.HMAC_AUTH, "forward": d.FORWARD_AUTH}.get(kind)
        plugin = tables.auth.get(kind)
        if table is None and plugin is not None:
            table = plugin.block if plugin.known else None
    elif spec.special == d.SIGN:
        plugin = tables.signers.get(kind)
        if plugin is not None and kind != "hmac":
            table = plugin.block if plugin.known else None
    options = {"args": texts[1:]} if len(texts) > 1 else {}
    within = f"{child.name} {kind}"
    options.update(_block(child.block or [], table or {}, options_path, places, tables, within))
    for index, value in enumerate(child.args[1:]):
        places.add(options_path + ("args", index), value.location, f"{child.name} {kind}")
    return {"type": kind, "options": options}


# -- schemas -------------------------------------------------------------------------------


def _table_schema(table: dict) -> dict:
    return {
        "type": "object",
        "properties": {name: _spec_schema(spec) for name, spec in table.items()},
        "additionalProperties": False,
    }


def _typed_schema(kinds_description: str) -> dict:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "description": kinds_description,
            "properties": {"type": _STRING, "options": {"type": "object"}},
            "required": ["type", "options"],
            "additionalProperties": False,
        },
    }


def _spec_schema(spec: d.Spec) -> dict:
    if spec.special == d.AUTH:
        return _typed_schema("auth NAME ...: options are the plugin's (args + block)")
    if spec.special == d.TOKEN_AUTH:
        return _typed_schema("auth token <secret ref>")
    if spec.special == d.SIGN:
        return _typed_schema("sign NAME ...")
    if spec.special == d.DELIVER:
        return {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "target": _STRING,
                    "args": _LIST,
                    "options": _table_schema(d.DELIVER_BLOCK),
                },
                "required": ["target", "options"],
                "additionalProperties": False,
            },
        }
    if spec.special == d.MATCH:
        # inline match blocks are repeatable entries: the data is a list of objects
        return {"type": "array", "items": _table_schema(d.MATCHER)}
    if spec.args == d.PAIRS:
        return _PAIRS
    if spec.args == d.VARIADIC:
        return _LIST
    if spec.either:
        block = _table_schema(spec.block)
        return {"type": ["string", "object"], **{k: v for k, v in block.items() if k != "type"}}
    if spec.block is not None:
        block = _table_schema(spec.block)
        if spec.args:
            block["properties"] = {"args": _LIST, **block["properties"]}
        return {"type": "array", "items": block} if spec.repeatable else block
    if spec.args == 1:
        return {"type": "array", "items": _STRING} if spec.repeatable else _STRING
    fixed = {"type": "array", "items": _STRING, "minItems": spec.args, "maxItems": spec.args}
    return {"type": "array", "items": fixed} if spec.repeatable else fixed


def core_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a Hookaidofile's plain data, without plugins."""
    properties = {
        name: _table_schema(spec.block)
        for name, spec in d.GLOBAL_BLOCKS.items()
        if spec.block is not None
    }
    properties["vars"] = {
        "type": "object",
        "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": _STRING,
    }
    matcher = _table_schema(d.MATCHER)
    matcher["properties"] = {"name": {"type": "string", "minLength": 1}, **matcher["properties"]}
    matcher["required"] = ["name"]
    properties["matchers"] = {"type": "array", "items": matcher}
    route = _table_schema(d.ROUTE)
    route["properties"] = {
        "path": _STRING,
        "channel": {"enum": list(d.CHANNELS)},
        "match_refs": {"type": "array", "items": {"type": "string", "pattern": "^@.+"}},
        **route["properties"],
    }
    route["required"] = ["path"]
    properties["routes"] = {"type": "array", "items": route}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Hookaidofile",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def _when(field: str, condition: dict, then: dict) -> dict:
    return {
        "if": {"properties": {field: condition}, "required": [field]},
        "then": {"properties": {"options": then}},
    }


def merged_schema(registry) -> dict:
    """The core schema with every fragment the plugins in ``registry`` registered."""
    schema = core_schema()
    if registry is None:
        return schema
    route_props = schema["properties"]["routes"]["items"]["properties"]
    auth_rules = [
        _when("type", {"const": r.name}, r.schema)
        for r in registry.registrations("auth")
        if isinstance(r.schema, dict)
    ]
    if auth_rules:
        route_props["auth"]["items"]["allOf"] = auth_rules
    deliver_rules = []
    for registration in registry.registrations("deliverer"):
        if not isinstance(registration.schema, dict):
            continue
        if registration.name in ("http", "https"):
            condition = {"type": "string", "pattern": f"(?i)^{registration.name}://"}
        else:
            condition = {"const": registration.name}
        deliver_rules.append(_when("target", condition, registration.schema))
    if deliver_rules:
        route_props["deliver"]["items"]["allOf"] = deliver_rules
        # A plugin's options replace the core deliver block for its keyword.
        route_props["deliver"]["items"]["properties"]["options"] = {"type": "object"}
        core = _table_schema(d.DELIVER_BLOCK)
        keywords = [r.name for r in registry.registrations("deliverer")]
        route_props["deliver"]["items"]["allOf"].append(
            {
                "if": {"properties": {"target": {"enum": keywords}}, "required": ["target"]},
                "else": {"properties": {"options": core}},
            }
        )
    sign_items = route_props["deliver"]["items"]
    sign_rules = [
        _when("type", {"const": r.name}, r.schema)
        for r in registry.registrations("signer")
        if isinstance(r.schema, dict)
    ]
    if sign_rules:
        options = sign_items["properties"]["options"]
        if options.get("properties", {}).get("sign"):
            options["properties"]["sign"]["items"]["allOf"] = sign_rules
        else:
            core_sign = _table_schema(d.DELIVER_BLOCK)["properties"]["sign"]
            core_sign["items"]["allOf"] = sign_rules
            for rule in route_props["deliver"]["items"]["allOf"]:
                if "else" in rule:
                    rule["else"]["properties"]["options"]["properties"]["sign"] = core_sign
    backend_rules = [
        {
            "if": {"properties": {"backend": {"const": r.name}}, "required": ["backend"]},
            "then": r.schema,
        }
        for r in registry.registrations("backend")
        if isinstance(r.schema, dict)
    ]
    if backend_rules:
        queue = route_props["queue"]
        queue["allOf"] = backend_rules
        queue["additionalProperties"] = True
    return schema


# -- lint ----------------------------------------------------------------------------------


def _coerce(data, schema):
    """Turn the text of plugin options into the numbers and booleans their schema asks for;
    text that does not convert stays text, so the schema reports it."""
    if not isinstance(schema, dict):
        return data
    kind = schema.get("type")
    if isinstance(data, dict):
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {key: _coerce(value, properties.get(key)) for key, value in data.items()}
    if isinstance(data, list):
        items = schema.get("items")
        return [_coerce(value, items) for value in data]
    if isinstance(data, str):
        kinds = kind if isinstance(kind, list) else [kind]
        if "integer" in kinds and _INTEGER.match(data):
            return int(data)
        if "number" in kinds and _NUMBER.match(data):
            return float(data)
        if "boolean" in kinds and data.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[data.lower()]
    return data


def _coerce_plugin_options(data: dict, registry) -> dict:
    data = copy.deepcopy(data)
    if registry is None:
        return data
    for route in data.get("routes", []):
        for entry in route.get("auth", []):
            registration = _registration(registry, "auth", entry.get("type"))
            if registration is not None:
                entry["options"] = _coerce(entry["options"], registration.schema)
        for target in route.get("deliver", []):
            registration = _registration(registry, "deliverer", target.get("target"))
            if registration is not None:
                target["options"] = _coerce(target["options"], registration.schema)
            for sign in target.get("options", {}).get("sign", []) or []:
                if isinstance(sign, dict):
                    registration = _registration(registry, "signer", sign.get("type"))
                    if registration is not None:
                        sign["options"] = _coerce(sign["options"], registration.schema)
    return data


def _registration(registry, kind: str, name):
    try:
        registration = registry.get(kind, name) if isinstance(name, str) else None
    except Exception:
        return None
    if registration is None or not isinstance(registration.schema, dict):
        return None
    return registration


def _describe(error: jsonschema.ValidationError) -> str:
    validator = error.validator
    if validator == "required" and isinstance(error.instance, dict):
        missing = [key for key in error.validator_value if key not in error.instance]
        return f'missing required option "{missing[0] if missing else "?"}"'
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = [key for key in error.instance if key not in allowed]
        expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f'unknown option "{extra[0] if extra else "?"}"{expected}'
    if validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {_article(expected)}, found {json.dumps(error.instance)}"
    if validator == "enum":
        choices = ", ".join(str(choice) for choice in error.validator_value)
        return f"{json.dumps(error.instance)} is not allowed; expected one of: {choices}"
    if validator == "const":
        return f"expected {json.dumps(error.validator_value)}, found {json.dumps(error.instance)}"
    if validator == "pattern":
        pattern = error.validator_value
        return f"{json.dumps(error.instance)} does not match the expected pattern {pattern}"
    return error.message


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def lint(doc: Document, registry=None) -> list[str]:
    """Every place where ``doc`` breaks the merged schema, as located messages."""
    data, table = document_to_data(doc, registry)
    places = _Places()
    places.table = table
    schema = merged_schema(registry)
    data = _coerce_plugin_options(data, registry)
    try:
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        problems = []
        for error in _leaf_errors(errors):
            location, label = places.find(error.absolute_path)
            text = _describe(error)
            prefix = f"{location}: " if location else ""
            problems.append(f"{prefix}{label}: {text}" if label else f"{prefix}{text}")
    except (jsonschema.SchemaError, re.error, TypeError, ValueError, RecursionError) as exc:
        return [f"{doc.file}: a plugin's JSON Schema fragment cannot be used: {exc}"]
    return list(dict.fromkeys(_unfilled(doc, problem) for problem in problems))


def _unfilled(doc: Document, message: str) -> str:
    """``message`` with every filled-in placeholder value shown as written in the file."""
    filled: dict[str, str] = {}
    pending = list(doc.items)
    while pending:
        directive = pending.pop()
        for value in directive.args:
            if value.written is not None and value.text:
                filled[value.text] = value.written
        pending.extend(directive.block or ())
    for text in sorted(filled, key=len, reverse=True):
        message = hide_text(message, text, filled[text])
    return message


def _leaf_errors(errors):
    for error in errors:
        if error.context and error.validator in ("anyOf", "oneOf"):
            yield from _leaf_errors(error.context)
        else:
            yield error
