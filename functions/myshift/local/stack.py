"""The deployed stack, reproduced in the local engine from its own template.

The engine does not keep a list of functions, roles or permissions of its own: it
synthesizes the CDK app for the local stage (`python -m infra.local_twin`, cached by
the content of everything the template depends on), resolves the template's
intrinsic functions to the engine's names and ARNs, and creates from it:

- every IAM role with its trust policy, inline policies and managed policies;
- every Lambda function with its handler, role, environment, runtime, timeout and memory;
- the state machine with its role and definition substitutions.

Each function then runs with its role's credentials and the state machine with its
own, so a permission the stack lacks fails the local run with AccessDenied.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myshift.errors import ConfigError

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "Myshift-local"
_REPOSITORY = Path(__file__).resolve().parents[3]
_CACHE_DIR = _REPOSITORY / "build" / "local-twin"
# What the template depends on besides the pipeline files.
_SOURCES = ("app.py", "cdk.json", "infra", "statemachines", "functions/myshift")
# Template property values that name another resource's attribute.
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:._-]+)\}")


def _digest(paths: Iterable[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def _source_files() -> list[Path]:
    files: list[Path] = []
    for name in _SOURCES:
        root = _REPOSITORY / name
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return files


def deployable_pipelines(pipelines_dir: Path) -> tuple[list[Path], str]:
    """The pipeline files a deploy would take (those that load) and what of them the
    stack's functions and permissions depend on, as a digest.

    Tables, chunk sizes and schedules change no permission: editing them needs no new
    template. A file that does not load is left out (a deploy would refuse it; the
    engine keeps what it has, and a run of that pipeline fails in ValidateInput).
    """
    from myshift.config import load_pipeline_file

    files: list[Path] = []
    relevant: list[Any] = []
    for path in sorted([*pipelines_dir.glob("*.yml"), *pipelines_dir.glob("*.yaml")]):
        try:
            pipeline = load_pipeline_file(path)
        except ConfigError:
            continue
        files.append(path)
        relevant.append(
            pipeline.model_dump(mode="json", include={"name", "source", "target", "vpc"})
        )
    return files, hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def synthesized_template(pipelines_dir: Path) -> dict[str, Any]:
    """The local stage's template for these pipeline files (synthesized once per what
    it depends on).

    Synthesis (CDK, jsii, Node.js) takes some seconds; the result is kept in
    build/local-twin/ under a digest of the sources and of what the pipeline files
    change in the stack.
    """
    files, pipelines_digest = deployable_pipelines(pipelines_dir.resolve())
    path = _CACHE_DIR / f"{_digest(_source_files(), pipelines_digest)}.json"
    if not path.is_file():
        _CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="myshift-pipelines-") as tmp:
            # The directory as it is (CA bundles...), the files that do not load left out.
            staged = Path(tmp) / "pipelines"
            shutil.copytree(pipelines_dir, staged)
            for name in [*staged.glob("*.yml"), *staged.glob("*.yaml")]:
                if pipelines_dir / name.name not in files:
                    name.unlink()
            result = subprocess.run(
                [sys.executable, "-m", "infra.local_twin", str(staged), str(path)],
                cwd=_REPOSITORY,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            raise ConfigError(
                "cannot synthesize the stack for the local engine: "
                + (lines[-1] if lines else f"exit {result.returncode}")
            )
    return dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass
class Physical:
    """What a template resource is in the engine: its Ref value and attributes."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


def _arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


class Resolver:
    """Resolves the template's intrinsic functions to the engine's resources."""

    def __init__(self, template: dict[str, Any], physical: dict[str, Physical]) -> None:
        self.template = template
        self.physical = physical
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
        }

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical:
            return self.physical[name].ref
        raise ConfigError(f"local engine: the template refers to {name!r}, which it lacks")

    def attribute(self, name: str, attribute: str) -> str:
        resource = self.physical.get(name)
        if resource is None or attribute not in resource.attributes:
            raise ConfigError(f"local engine: cannot resolve Fn::GetAtt {name}.{attribute}")
        return resource.attributes[attribute]

    def resolve(self, value: Any) -> Any:
        """The value with every Ref, Fn::GetAtt, Fn::Join and Fn::Sub resolved."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value if v != {"Ref": "AWS::NoValue"}]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.attribute(name, attribute)
            if key == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self.resolve(p)) for p in parts)
            if key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                values = {k: self.resolve(v) for k, v in variables.items()}

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in values:
                        return str(values[name])
                    if "." in name and not name.startswith("AWS::"):
                        return self.attribute(*name.split(".", 1))
                    return self.ref(name)

                return _SUB_VARIABLE.sub(substitute, text)
            if key.startswith("Fn::"):
                raise ConfigError(f"local engine: {key} is not supported in the template")
        return {k: self.resolve(v) for k, v in value.items() if v != {"Ref": "AWS::NoValue"}}


def _put_policies(
    template: dict[str, Any], iam: Any, physical: dict[str, Physical], resolver: Resolver
) -> None:
    """Give the template's roles exactly the template's policies."""
    roles = {physical[k].ref: k for k in _by_type(template, "AWS::IAM::Role")}
    for logical_id, resource in _by_type(template, "AWS::IAM::Role").items():
        for policy in resolver.resolve(resource["Properties"]).get("Policies", []):
            iam.put_role_policy(
                RoleName=physical[logical_id].ref,
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(policy["PolicyDocument"]),
            )
    for logical_id, resource in _by_type(template, "AWS::IAM::ManagedPolicy").items():
        props = resolver.resolve(resource["Properties"])
        arn = iam.create_policy(
            PolicyName=physical[logical_id].ref.rsplit("/", 1)[1],
            PolicyDocument=json.dumps(props["PolicyDocument"]),
        )["Policy"]["Arn"]
        for role in props.get("Roles", []):
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    for resource in _by_type(template, "AWS::IAM::Policy").values():
        props = resolver.resolve(resource["Properties"])
        for role in props.get("Roles", []):
            if role in roles:
                iam.put_role_policy(
                    RoleName=role,
                    PolicyName=props["PolicyName"],
                    PolicyDocument=json.dumps(props["PolicyDocument"]),
                )
    for logical_id, resource in _by_type(template, "AWS::IAM::Role").items():
        for arn in resolver.resolve(resource["Properties"].get("ManagedPolicyArns", [])):
            if ":aws:policy/" in arn:  # an AWS managed policy: not in the engine's IAM
                raise ConfigError(f"local engine: role {logical_id} uses AWS managed {arn}")
            iam.attach_role_policy(RoleName=physical[logical_id].ref, PolicyArn=arn)


def update_policies(template: dict[str, Any], *, iam: Any, bucket: str, state_table: str) -> None:
    """Replace every role's policies with the template's (a redeploy of the policies:
    the pipeline files changed, and with them what the functions may reach)."""
    physical = physical_resources(template, bucket=bucket, state_table=state_table)
    for logical_id in _by_type(template, "AWS::IAM::Role"):
        name = physical[logical_id].ref
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    for logical_id in _by_type(template, "AWS::IAM::ManagedPolicy"):
        arn = physical[logical_id].ref
        try:
            iam.delete_policy(PolicyArn=arn)
        except iam.exceptions.NoSuchEntityException:
            pass
    _put_policies(template, iam, physical, Resolver(template, physical))


@dataclass(frozen=True)
class LocalFunction:
    """A Lambda function of the stack as the engine creates it."""

    logical_id: str
    name: str
    handler: str
    role_arn: str
    environment: dict[str, str]
    runtime: str  # the template's Runtime, Timeout and MemorySize (infra.functions.FUNCTIONS)
    timeout_seconds: int
    memory_mb: int


@dataclass(frozen=True)
class LocalStateMachine:
    """A state machine of the stack as the engine creates it."""

    name: str
    role_arn: str
    substitutions: dict[str, str]

    @property
    def definition_name(self) -> str:
        """Which definition it runs: `sync`, `doctor` or `reconcile` (`<stack>-<name>`)."""
        return self.name.rsplit("-", 1)[-1]


@dataclass
class LocalStack:
    """What the engine created from the template."""

    functions: dict[str, LocalFunction]  # by handler module name ("extract")
    state_machines: dict[str, LocalStateMachine]  # by definition name ("sync", "doctor", ...)
    roles: dict[str, str]  # role name -> ARN

    @property
    def state_machine(self) -> LocalStateMachine:
        """The sync state machine."""
        return self.state_machines["sync"]


def function_name(handler: str) -> str:
    """The engine's name for the function of `myshift.handlers.<module>.handler`."""
    return "myshift-" + handler.split(".")[-2].replace("_", "-")


def function_variable(template: dict[str, Any], name: str) -> str:
    """The value the stack gives every function for the environment variable `name`
    (a literal in the template, the same for all of them)."""
    values = {
        (resource["Properties"].get("Environment") or {}).get("Variables", {}).get(name)
        for resource in _by_type(template, "AWS::Lambda::Function").values()
    }
    if len(values) != 1 or not isinstance(next(iter(values)), str):
        raise ConfigError(f"local engine: the stack's functions do not share one {name}")
    return str(values.pop())


def _by_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def physical_resources(
    template: dict[str, Any], *, bucket: str, state_table: str
) -> dict[str, Physical]:
    """The engine's name and ARN for each template resource it creates or refers to."""
    resources = template["Resources"]
    data_bucket = next(
        machine["Properties"]["DefinitionSubstitutions"]["DataBucketName"]["Ref"]
        for machine in _by_type(template, "AWS::StepFunctions::StateMachine").values()
        if "DataBucketName" in machine["Properties"]["DefinitionSubstitutions"]
    )
    found: dict[str, Physical] = {}
    for logical_id, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            name = bucket if logical_id == data_bucket else f"{bucket}-{logical_id.lower()}"
            arn = f"arn:aws:s3:::{name}"
            found[logical_id] = Physical(name, {"Arn": arn, "DomainName": f"{name}.s3"})
        elif kind == "AWS::DynamoDB::Table":
            arn = _arn("dynamodb", f"table/{state_table}")
            found[logical_id] = Physical(state_table, {"Arn": arn})
        elif kind == "AWS::Lambda::Function":
            name = function_name(props["Handler"])
            found[logical_id] = Physical(name, {"Arn": _arn("lambda", f"function:{name}")})
        elif kind == "AWS::IAM::Role":
            name = props.get("RoleName") or f"myshift-local-{logical_id}"[:64]
            arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
            found[logical_id] = Physical(name, {"Arn": arn, "RoleId": f"AROA{logical_id[:16]}"})
        elif kind == "AWS::IAM::ManagedPolicy":
            name = f"myshift-local-{logical_id}"[:128]
            found[logical_id] = Physical(f"arn:aws:iam::{ACCOUNT}:policy/{name}")
        elif kind == "AWS::StepFunctions::StateMachine":
            name = props.get("StateMachineName") or f"{STACK_NAME}-{logical_id}"
            arn = _arn("states", f"stateMachine:{name}")
            found[logical_id] = Physical(arn, {"Arn": arn, "Name": name})
        elif kind == "AWS::Logs::LogGroup":
            name = props.get("LogGroupName")
            if not isinstance(name, str):  # generated, or derived from the stack id
                name = f"/myshift/local/{logical_id}"
            found[logical_id] = Physical(name, {"Arn": _arn("logs", f"log-group:{name}:*")})
        else:  # referred to by policies only (topics, layers...): a stable placeholder
            found[logical_id] = Physical(
                _arn("local", logical_id), {"Arn": _arn("local", logical_id)}
            )
    return found


def provision(
    template: dict[str, Any],
    *,
    iam: Any,
    bucket: str,
    state_table: str,
    environment: Callable[[dict[str, str]], dict[str, str]],
) -> LocalStack:
    """Create the template's roles and policies in the engine's IAM; describe its
    functions and state machine for the engine to create (`environment` maps a
    function's template environment to the engine's)."""
    physical = physical_resources(template, bucket=bucket, state_table=state_table)
    resolver = Resolver(template, physical)
    roles: dict[str, str] = {}
    for logical_id, resource in _by_type(template, "AWS::IAM::Role").items():
        props = resolver.resolve(resource["Properties"])
        name = physical[logical_id].ref
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        )
        roles[name] = physical[logical_id].attributes["Arn"]
    _put_policies(template, iam, physical, resolver)
    functions: dict[str, LocalFunction] = {}
    for logical_id, resource in _by_type(template, "AWS::Lambda::Function").items():
        props = resolver.resolve(resource["Properties"])
        variables = (props.get("Environment") or {}).get("Variables") or {}
        handler = props["Handler"]
        functions[handler.split(".")[-2]] = LocalFunction(
            logical_id=logical_id,
            name=physical[logical_id].ref,
            handler=handler,
            role_arn=props["Role"],
            environment=environment(variables),
            runtime=props["Runtime"],
            timeout_seconds=int(props["Timeout"]),
            memory_mb=int(props["MemorySize"]),
        )
    machines: dict[str, LocalStateMachine] = {}
    for machine_id, machine in _by_type(template, "AWS::StepFunctions::StateMachine").items():
        props = resolver.resolve(machine["Properties"])
        local = LocalStateMachine(
            name=physical[machine_id].attributes["Name"],
            role_arn=props["RoleArn"],
            substitutions={k: str(v) for k, v in props["DefinitionSubstitutions"].items()},
        )
        machines[local.definition_name] = local
    return LocalStack(functions=functions, state_machines=machines, roles=roles)
