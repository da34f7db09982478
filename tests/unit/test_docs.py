"""The documentation says what the code does: the grants a DBA runs are the ones the local
engine runs, every `myshift` command it shows exists with the options it shows, every
link resolves, and the repository stands on its own."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from myshift.cli.main import cli
from myshift.local.engine import warehouse_grants

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GUIDES = [ROOT / "README.md", ROOT / "docs" / "operations.md"]


def test_the_operations_guide_shows_the_grants_the_local_engine_runs() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    grants = (ROOT / "docs" / "warehouse-grants.sql").read_text(encoding="utf-8")
    assert grants in guide
    assert [s.split()[0] for s in warehouse_grants()] == ["CREATE", "GRANT"]
    assert all("{user}" in s for s in warehouse_grants())


def test_the_docs_link_nothing_outside_the_repository() -> None:
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "DESIGN.md" not in text, path


def test_the_readme_links_the_architecture_and_the_operations_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/architecture.md)" in readme and "(docs/operations.md)" in readme


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(path: Path) -> None:
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: {target}"


def shown_commands(text: str) -> list[list[str]]:
    """Each `myshift …` command line of the text's shell blocks and inline code, as words
    (a trailing comment, `[…]` optional parts and `|` alternatives dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    lines += re.findall(r"`(myshift [^`]+)`", text)
    commands = []
    for line in lines:
        line = line.split("#", 1)[0]
        if "myshift " not in line or "python" in line:
            continue
        line = line[line.index("myshift ") :].split("&&")[0]
        line = re.sub(r"\[[^\]]*\]", "", line).replace("<", "'<").replace(">", ">'")
        line = line.replace("…", "")
        words = shlex.split(line)[1:]
        commands.append(words)
    return commands


def options_of(command: click.Command) -> dict[str, click.Parameter]:
    return {
        name: parameter
        for parameter in command.params
        for name in [*parameter.opts, *parameter.secondary_opts]
        if name.startswith("-")
    } | {"--help": click.Option(["--help"], is_flag=True), "-h": click.Option(["-h"], is_flag=True)}


def check(words: list[str]) -> click.Command:
    """The command the words name; an AssertionError for an unknown command or option (an
    option's value is skipped, so a value is never taken for a command)."""
    command: click.Command = cli
    words = list(words)
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            parameter = options_of(command).get(word.split("=")[0])
            assert parameter is not None, f"{command.name}: unknown option {word}"
            takes_value = not (isinstance(parameter, click.Option) and parameter.is_flag)
            if takes_value and "=" not in word and words:
                words.pop(0)
        elif isinstance(command, click.Group):
            found = command.get_command(click.Context(command), word)
            assert found is not None, f"no command {word!r} under {command.name}"
            command = found
    return command


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.name)
def test_every_cli_command_shown_exists_with_its_options(path: Path) -> None:
    commands = shown_commands(path.read_text(encoding="utf-8"))
    assert len(commands) >= 5, path
    for words in commands:
        if "|" in words:  # `myshift local up | status | down`: each
            head = words[: words.index("|") - 1]
            alternatives = [w for w in words[len(head) :] if w != "|"]
            variants = [[*head, alternative] for alternative in alternatives]
        else:
            variants = [words]
        for variant in variants:
            try:
                check(variant)
            except AssertionError as error:
                raise AssertionError(f"{path.name}: myshift {' '.join(variant)}: {error}") from None


def test_the_command_check_fails_on_what_does_not_exist() -> None:
    assert shown_commands("```bash\nmyshift --local sync pipeline -p x  # y\n```") == [
        ["--local", "sync", "pipeline", "-p", "x"]
    ]
    check(["--stage", "dev", "watermark", "get", "-p", "x", "-t", "d.t", "--show-files"])
    for wrong in (["watermark", "frobnicate"], ["sync", "pipeline", "--limits", "5"]):
        with pytest.raises(AssertionError):
            check(wrong)
