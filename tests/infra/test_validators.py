"""The definitions and templates pass the validators AWS's own checks resemble.

- asl-validator (npm, pinned in tools/): every state machine definition, the source
  file and the one CDK puts in the assembly; and it does refuse what AWS refuses.
- cfn-lint (PyPI, pinned): every synthesized template, no error.
- The definition file is exactly what `infra.definition` writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from myshift.local.asl_validator import InvalidDefinitionError, validate_definition

from infra.definition import DEFINITIONS, render, sync_definition
from tests.support.synth import REPO_ROOT, Synth

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


@pytest.mark.parametrize("path", sorted(DEFINITIONS), ids=lambda path: path.name)
def test_definition_file_is_what_the_builder_writes(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == render(DEFINITIONS[path]()), (
        f"statemachines/{path.name} differs from infra/definition.py: run `make asl`"
    )


def test_every_definition_file_passes_asl_validator() -> None:
    files = sorted((REPO_ROOT / "statemachines").glob("*.asl.json"))
    assert files
    for path in files:
        validate_definition(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("which", ["synth", "variant"])
def test_synthesized_definitions_pass_asl_validator(which: str, request: pytest.FixtureRequest):
    synthesized: Synth = request.getfixturevalue(which)
    files = synthesized.definition_files()
    assert files, "no state machine definition in the assembly"
    for path in files:
        validate_definition(path.read_text(encoding="utf-8"))


def _rename_state(node: object, old: str, new: str) -> object:
    text = json.dumps(node).replace(f'"{old}"', f'"{new}"')
    return json.loads(text)


def test_asl_validator_refuses_a_state_name_used_twice() -> None:
    # The defect moto ran and AWS would refuse at deploy: one name in two nested Maps.
    definition = _rename_state(sync_definition(), "ExtractChunkDistributed", "ExtractChunk")
    with pytest.raises(InvalidDefinitionError, match=r"DUPLICATE_STATE_NAMES.*ExtractChunk"):
        validate_definition(json.dumps(definition))


def test_asl_validator_refuses_a_next_that_names_no_state() -> None:
    definition = sync_definition()
    definition["States"]["ValidateInput"]["Next"] = "NoSuchState"
    with pytest.raises(InvalidDefinitionError, match="NoSuchState"):
        validate_definition(json.dumps(definition))


@pytest.mark.parametrize("which", ["synth", "variant"])
def test_cfn_lint_reports_no_error(which: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(which)
    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(synthesized.template_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit bits: 2 = an error, 4 = a warning, 8 = informational (cfn-lint's documented codes).
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert not result.returncode & 2 and not errors, result.stdout + result.stderr
