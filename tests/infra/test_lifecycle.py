"""A failed first deploy can be retried, and a deleted stage created again.

CloudFormation keeps a `Retain` resource when the create that made it rolls back, so
a retried create collides with whatever has a fixed name and leaves the rest behind.
Everything kept is kept only after its own successful create (RetainExceptOnCreate),
and whatever is kept and named takes part of the stack id into its name, so the next
creation of the same stage never collides with it.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.cloudformation import NAME_PROPERTIES
from tests.support.synth import Synth

KEPT = ("Retain", "RetainExceptOnCreate", "Snapshot")


def _policies(resource: dict[str, Any]) -> set[str]:
    return {resource.get("DeletionPolicy", "Delete"), resource.get("UpdateReplacePolicy", "Delete")}


def test_nothing_is_retained_when_its_own_create_fails(synth: Synth) -> None:
    kept = {
        logical_id: sorted(_policies(resource))
        for logical_id, resource in synth.template_json["Resources"].items()
        if _policies(resource) & set(KEPT)
    }
    assert kept, "with removal_policy retain the data bucket and the table are kept"
    for logical_id, policies in kept.items():
        resource = synth.template_json["Resources"][logical_id]
        assert resource.get("DeletionPolicy") == "RetainExceptOnCreate", (logical_id, policies)
    kinds = {synth.template_json["Resources"][i]["Type"] for i in kept}
    assert {"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Logs::LogGroup"} <= kinds


def test_a_kept_resource_with_a_name_takes_the_stack_id_into_it(synth: Synth) -> None:
    for logical_id, resource in synth.template_json["Resources"].items():
        prop = NAME_PROPERTIES.get(resource["Type"])
        name = resource.get("Properties", {}).get(prop) if prop else None
        if name is None or not _policies(resource) & set(KEPT):
            continue
        assert "AWS::StackId" in json.dumps(name), f"{logical_id} keeps the fixed name {name}"


def test_the_state_machine_log_groups_are_vended_and_per_stack_creation(synth: Synth) -> None:
    prefixes = {}
    for machine in synth.resources("AWS::StepFunctions::StateMachine").values():
        destination = machine["Properties"]["LoggingConfiguration"]["Destinations"][0]
        group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        name = synth.template_json["Resources"][group_id]["Properties"]["LogGroupName"]
        prefix, suffix = name["Fn::Join"][1]
        assert "AWS::StackId" in json.dumps(suffix)
        prefixes[prefix] = group_id
    assert set(prefixes) == {
        "/aws/vendedlogs/states/Myshift-dev-sync-",
        "/aws/vendedlogs/states/Myshift-dev-doctor-",
        "/aws/vendedlogs/states/Myshift-dev-reconcile-",
    }
    output = synth.template_json["Outputs"]["StateMachineLogGroup"]["Value"]
    assert output == {"Ref": prefixes["/aws/vendedlogs/states/Myshift-dev-sync-"]}


def test_the_table_has_no_deletion_protection_that_would_fail_a_rollback(synth: Synth) -> None:
    (table,) = synth.resources("AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "RetainExceptOnCreate"
    assert not table["Properties"].get("DeletionProtectionEnabled")


def test_a_throw_away_stage_empties_its_buckets_on_delete(variant: Synth) -> None:
    buckets = variant.resources("AWS::S3::Bucket")
    assert buckets and all(b["DeletionPolicy"] == "Delete" for b in buckets.values())
    emptied = {
        r["Properties"]["BucketName"]["Ref"]
        for r in variant.template_json["Resources"].values()
        if r["Type"] == "Custom::S3AutoDeleteObjects"
    }
    assert emptied == set(buckets)


def test_a_kept_stage_does_not_empty_its_buckets(synth: Synth) -> None:
    kinds = {r["Type"] for r in synth.template_json["Resources"].values()}
    assert "Custom::S3AutoDeleteObjects" not in kinds
