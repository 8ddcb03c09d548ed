"""Helpers for the config-language tests: the spec's example configs and shape comparison."""

import re
from pathlib import Path
from textwrap import dedent

import pytest

from hookaido.config import directives as d
from hookaido.config.compile import compile_document
from hookaido.config.fmt import canonical_children, top_level_order
from hookaido.config.parser import parse_text
from hookaido.plugins import PluginInfo, Registry

INSTALLED = {
    "auth": ["basic", "forward", "hmac"],
    "backend": ["memory", "sqlite"],
    "deliverer": ["exec", "http", "https"],
    "signer": ["hmac"],
}


def make_registry(extra: dict | None = None) -> Registry:
    """A registry with the bundled plugin names (and ``extra`` ones) as placeholders."""
    registry = Registry()
    info = PluginInfo("test-plugins", "0", "test")
    for kind, names in INSTALLED.items():
        for name in names + (extra or {}).get(kind, []):
            registry.add(info, kind, name, object)
    return registry


def compile_text(text: str, registry: Registry | None = None):
    """The compiled ``Config`` of a Hookaidofile text (dedented), named ``Hookaidofile``."""
    registry = registry or make_registry()
    document = parse_text(dedent(text).lstrip("\n"), "Hookaidofile", registry)
    return compile_document(document, registry)


REPO = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)


def shared_dir() -> Path:
    for candidate in (REPO.parent / "shared", Path("/work/shared")):
        if (candidate / "spec" / "config.md").is_file():
            return candidate
    raise FileNotFoundError("the shared/ folder with spec/ is not next to the repository")


def _looks_like_config(body: str) -> bool:
    for line in body.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        first = words[0]
        return (
            first in d.GLOBAL_BLOCKS
            or first in d.CHANNELS
            or first.startswith("/")
            or first.startswith("@")
        )
    return False


def spec_examples() -> list[tuple[str, str]]:
    """``(id, text)`` of every Hookaidofile example in the spec, the deployment-modes page
    and the configuration guide."""
    shared = shared_dir()
    pages = sorted((shared / "spec").glob("*.md")) + [shared / "deployment-modes.md"]
    pages.append(REPO / "docs" / "configuration.md")
    examples = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            language, body = match.group(1), match.group(2)
            if language in ("", "hcl", "caddyfile", "hookaido") and _looks_like_config(body):
                line = text[: match.start()].count("\n") + 1
                examples.append((f"{page.name}:{line}", body))
    return examples


def _meaning(doc) -> list:
    """What a document says, in canonical order, without places or quoting."""

    def directive(item, within=None):
        children = None
        if item.block is not None:
            children = [directive(child, item.name) for child in canonical_children(item, within)]
        return (
            item.name,
            [value.text for value in item.args],
            item.channel,
            children,
            item.comments,
            item.trailing_comment,
            item.closing_comments if item.block else [],
            item.closing_trailing_comment,
        )

    return [directive(item) for item in top_level_order(doc.items)] + [doc.trailing_comments]


@pytest.fixture
def meaning():
    """What a document says, in canonical order, without places or quoting."""
    return _meaning


def pytest_generate_tests(metafunc):
    if "spec_example" in metafunc.fixturenames:
        found = spec_examples()
        metafunc.parametrize(
            "spec_example", [text for _, text in found], ids=[where for where, _ in found]
        )
