"""The README's quick start, run literally: its curl commands against the shipped example
config (on free ports), with the outputs the README promises."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_LEASE = "lease_3c2f9e0a1b4d5e6f"


def quick_start_blocks() -> list[tuple[str, list[str]]]:
    """``(command, promised output lines)`` of every sh block of the Quick start section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        lines = block.splitlines()
        command = "\n".join(line for line in lines if not line.startswith("#"))
        promised = [line[2:] for line in lines if line.startswith("# ")]
        blocks.append((command, promised))
    return blocks


def on_ports(text: str, ports) -> str:
    return (
        text.replace("127.0.0.1:8080", f"127.0.0.1:{ports.ingress}")
        .replace("127.0.0.1:9443", f"127.0.0.1:{ports.pull}")
        .replace("127.0.0.1:2019", f"127.0.0.1:{ports.admin}")
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_quick_start_commands_do_what_the_readme_says(hookaido_process, ports):
    config = (ROOT / "examples" / "Hookaidofile").read_text(encoding="utf-8")
    hookaido_process(on_ports(config, ports)).start()
    send, dequeue, ack = quick_start_blocks()

    def run(command: str) -> str:
        return subprocess.run(
            ["bash", "-c", on_ports(command, ports)],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()

    sent = run(send[0])
    taken = json.loads(run(dequeue[0]))
    [item] = taken["items"]
    acked = run(ack[0].replace(README_LEASE, item["lease_id"]))

    assert sent == send[1][0]
    assert item["route"] == "/webhooks/github"
    assert f'"payload_b64":"{item["payload_b64"]}"' in "\n".join(dequeue[1])  # as curl prints it
    assert README_LEASE in "\n".join(dequeue[1]) and README_LEASE in ack[0]
    assert acked == ack[1][0]
