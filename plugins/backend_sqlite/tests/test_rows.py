"""Row encoding: maps and lists leave as compact JSON text that SQLite's JSON functions read."""

import json

from hookaido_backend_sqlite.rows import from_json, to_json, to_json_list


def test_maps_and_lists_are_compact_json_that_reads_back_equal():
    headers = {"Content-Type": "application/json", "X-Naïve": "ünïcode ✓"}
    assert to_json(headers) == '{"Content-Type":"application/json","X-Naïve":"ünïcode ✓"}'
    assert from_json(to_json(headers)) == headers
    assert to_json({}) == "{}"
    assert to_json_list([[1, "lease_a"], [2, "lease_b"]]) == '[[1,"lease_a"],[2,"lease_b"]]'


def test_a_string_the_fast_encoder_refuses_still_encodes():
    text = to_json({"k": "lone \ud800 surrogate"})
    assert json.loads(text) == {"k": "lone \ud800 surrogate"}
