"""``--dotenv`` files: the accepted line forms and which variables they may set."""

import pytest

from hookaido.server.run import StartupError, load_dotenv


def test_dotenv_lines_set_unset_variables(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment line\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        'DOUBLE="two words \\"quoted\\""\n'
        "SINGLE='kept $AS is'\n"
        "TRAILING=bare # a comment\n"
        "EMPTY=\n"
    )
    environ = {}

    load_dotenv(str(dotenv), environ)

    assert environ == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "DOUBLE": 'two words "quoted"',
        "SINGLE": "kept $AS is",
        "TRAILING": "bare",
        "EMPTY": "",
    }


def test_a_set_variable_wins_but_an_empty_one_is_filled(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("TOKEN=from-file\nBLANK=from-file\n")
    environ = {"TOKEN": "from-shell", "BLANK": ""}

    load_dotenv(str(dotenv), environ)

    assert environ == {"TOKEN": "from-shell", "BLANK": "from-file"}


def test_a_malformed_line_is_refused_with_its_place(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("GOOD=1\nthis is not an assignment\n")

    with pytest.raises(StartupError) as refused:
        load_dotenv(str(dotenv), {})

    assert refused.value.lines == [
        f"{dotenv}:2:1: expected KEY=VALUE, got 'this is not an assignment'"
    ]


def test_an_unreadable_dotenv_is_refused(tmp_path):
    with pytest.raises(StartupError, match="cannot read"):
        load_dotenv(str(tmp_path / "missing.env"), {})
