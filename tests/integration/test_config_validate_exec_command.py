"""``config validate`` splits every ``deliver exec`` command into words, so a quote left
open is a config error at the command, not a failure at the first delivery."""

import json

import pytest

from hookaido.cli import main

CONFIG = """\
ingress {{ listen 127.0.0.1:18080 }}
admin_api {{ listen 127.0.0.1:12019 }}
/hooks/build {{
  deliver exec {command} {{
    timeout 5s
  }}
}}
"""


@pytest.fixture
def validate(tmp_path, monkeypatch, capsys):
    """``validate(command_as_written)`` -> ``(exit code, JSON answer)``; a rejected file's
    answer is printed on stderr, an accepted one's on stdout."""
    monkeypatch.chdir(tmp_path)

    def run(command: str):
        (tmp_path / "Hookaidofile").write_text(CONFIG.format(command=command))
        code = main(["config", "validate"])
        out, err = capsys.readouterr()
        return code, json.loads(out if code == 0 else err)

    return run


def test_an_unbalanced_quote_is_rejected_at_the_command(validate):
    code, answer = validate('"unbalanced \'quote"')

    assert code == 1
    assert answer["ok"] is False
    [error] = answer["errors"]
    assert error.startswith("Hookaidofile:4:16: ")
    assert 'deliver exec "unbalanced \'quote"' in error
    assert "No closing quotation" in error


def test_an_apostrophe_in_unquoted_words_is_an_open_quote_too(validate):
    code, answer = validate("it's")

    assert code == 1
    [error] = answer["errors"]
    assert error.startswith("Hookaidofile:4:")
    assert "cannot split the command into words" in error


def test_balanced_quotes_and_escapes_are_accepted(validate):
    code, answer = validate("\"./notify --title 'build done' --note it\\\\'s\"")

    assert (code, answer) == (0, {"ok": True})
