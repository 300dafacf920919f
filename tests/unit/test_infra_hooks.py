"""The azd hooks' sh versions, run against a stand-in `az` that records its command lines.

Azure cannot be reached here, so these tests check what the hooks ask of `az`, in which order,
and that the blobs extension key never reaches their output; what `az` does with it is Azure's
part. (The PowerShell versions mirror these steps; there is no pwsh on this machine.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "infra" / "hooks"

FAKE_AZ = """#!/bin/sh
printf '%s\\n' "$*" >> "$AZ_LOG"
case "$*" in
  "functionapp keys list"*) printf '%s\\n' "$FAKE_KEY" ;;
  "resource show"*)
    if [ -n "${FAKE_ACCOUNT_GONE:-}" ]; then
      echo "(ResourceNotFound) The Resource was not found." >&2
      exit 3
    fi ;;
  "rest "*) for name in $FAKE_OWNED; do printf '%s\\n' "$name"; done ;;
  "role assignment list"*) printf '%s\\n' "$FAKE_ASSIGNMENT" ;;
esac
exit 0
"""

OUTPUTS = {
    "RESOURCE_GROUP": "rg-test",
    "AZURE_FUNCTION_APP_NAME": "func-abc",
    "AZURE_FUNCTION_APP_HOSTNAME": "func-abc.azurewebsites.net",
    "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID": "0000-principal",
    "BLOB_TRIGGER_FUNCTION_NAME": "process_uploaded_document",
    "EVENTGRID_SYSTEM_TOPIC_NAME": "egst-abc",
    "INPUT_CONTAINER_NAME": "documents-in",
    "AOAI_SUBSCRIPTION_ID": "sub-1",
    "AOAI_RESOURCE_GROUP": "rg-ai",
    "AOAI_ACCOUNT_NAME": "oai-test",
    "AOAI_ACCOUNT_ID": "/subscriptions/sub-1/resourceGroups/rg-ai/providers/"
    "Microsoft.CognitiveServices/accounts/oai-test",
    "OWNER_TAG": "on-demand-hosting",
    "AZURE_STORAGE_ACCOUNT_ID": "/subscriptions/sub-1/resourceGroups/rg-test/providers/"
    "Microsoft.Storage/storageAccounts/stabc",
    "DEAD_LETTER_CONTAINER_NAME": "eventgrid-deadletter",
}


def run_hook(
    tmp_path: Path, hook: str, **fake: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool, script in (("az", FAKE_AZ), ("azd", "#!/bin/sh\nexit 0\n")):
        (bin_dir / tool).write_text(script)
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "az.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AZ_LOG": str(log), **OUTPUTS, **fake}
    result = subprocess.run(
        ["sh", str(HOOKS / hook)], env=env, capture_output=True, text=True, check=False
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def test_postdeploy_subscribes_the_blob_webhook_to_blob_created_events(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, "postdeploy.sh", FAKE_KEY="s3cret-key")
    assert result.returncode == 0, result.stderr
    creates = "eventgrid system-topic event-subscription create"
    [create] = [c for c in calls if c.startswith(creates)]
    assert "--system-topic-name egst-abc" in create
    assert "--endpoint-type webhook" in create
    assert (
        "--endpoint https://func-abc.azurewebsites.net/runtime/webhooks/blobs"
        "?functionName=Host.Functions.process_uploaded_document&code=s3cret-key"
    ) in create
    assert "--included-event-types Microsoft.Storage.BlobCreated" in create
    assert "--subject-begins-with /blobServices/default/containers/documents-in/blobs/" in create
    assert "s3cret-key" not in result.stdout + result.stderr


def test_postdeploy_needs_the_provisioned_outputs(tmp_path: Path) -> None:
    result, calls = run_hook(
        tmp_path, "postdeploy.sh", FAKE_KEY="k", EVENTGRID_SYSTEM_TOPIC_NAME=""
    )
    assert result.returncode != 0
    assert "EVENTGRID_SYSTEM_TOPIC_NAME" in result.stderr
    assert calls == []


def test_predown_stops_the_app_then_deletes_only_owned_deployments(tmp_path: Path) -> None:
    result, calls = run_hook(
        tmp_path, "predown.sh", FAKE_OWNED="ft-contracts ft-reviews", FAKE_ASSIGNMENT="/ra/1"
    )
    assert result.returncode == 0, result.stderr
    stop = next(i for i, c in enumerate(calls) if c.startswith("functionapp stop"))
    [listing] = [c for c in calls if c.startswith("rest ")]
    assert f"{OUTPUTS['AOAI_ACCOUNT_ID']}/deployments?api-version=" in listing
    assert "tags.\"managed-by\"=='on-demand-hosting'" in listing
    deletes = [
        (i, c) for i, c in enumerate(calls) if c.startswith("cognitiveservices account deployment")
    ]
    assert [c.rsplit("--deployment-name ", 1)[1].split()[0] for _, c in deletes] == [
        "ft-contracts",
        "ft-reviews",
    ]
    assert all(i > stop for i, _ in deletes)
    assert all("delete" in c and "--name oai-test" in c for _, c in deletes)
    assert "role assignment delete --ids /ra/1 --output none" in calls


@pytest.mark.parametrize("owned", ["", "ft-one"])
def test_predown_when_the_account_is_gone_deletes_nothing(tmp_path: Path, owned: str) -> None:
    result, calls = run_hook(tmp_path, "predown.sh", FAKE_ACCOUNT_GONE="1", FAKE_OWNED=owned)
    assert result.returncode == 0, result.stderr
    assert "no longer exists" in result.stdout
    assert not [c for c in calls if "deployment delete" in c or c.startswith("rest ")]


def test_predown_without_a_provisioned_environment_does_nothing(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, "predown.sh", AOAI_ACCOUNT_NAME="")
    assert result.returncode == 0, result.stderr
    assert calls == []


def test_postdeploy_dead_letters_undeliverable_events_with_the_topics_identity(
    tmp_path: Path,
) -> None:
    result, calls = run_hook(tmp_path, "postdeploy.sh", FAKE_KEY="k")
    assert result.returncode == 0, result.stderr
    [create] = [call for call in calls if call.startswith("eventgrid system-topic")]
    assert "--deadletter-identity systemassigned" in create
    assert (
        "--deadletter-identity-endpoint /subscriptions/sub-1/resourceGroups/rg-test/providers/"
        "Microsoft.Storage/storageAccounts/stabc/blobServices/default/containers/"
        "eventgrid-deadletter"
    ) in create


def run_preprovision(tmp_path: Path, **values: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "hosting.toml").write_text("[models.a]\n")
    return subprocess.run(
        ["sh", str(HOOKS / "preprovision.sh")],
        env={"PATH": "/usr/bin:/bin", **values},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_preprovision_accepts_one_hosted_model_form_and_an_account(tmp_path: Path) -> None:
    forms = ({"FINE_TUNED_MODEL": "gpt-4.1-mini.ft-1"}, {"HOSTING_CONFIG_FILE": "hosting.toml"})
    for form in forms:
        done = run_preprovision(tmp_path, AZURE_OPENAI_ACCOUNT_NAME="oai", **form)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "preprovision: parameters checked"
    created = run_preprovision(tmp_path, FINE_TUNED_MODEL="m.ft-1", AZURE_OPENAI_CREATE="true")
    assert created.returncode == 0, created.stderr


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (
            {"FINE_TUNED_MODEL": "m.ft-1", "HOSTING_CONFIG_FILE": "hosting.toml"},
            "both FINE_TUNED_MODEL and HOSTING_CONFIG_FILE are set",
        ),
        ({}, "no hosted model: azd env set FINE_TUNED_MODEL"),
        ({"HOSTING_CONFIG_FILE": "nope.toml"}, "HOSTING_CONFIG_FILE=nope.toml is not a file"),
    ],
)
def test_preprovision_names_every_problem_with_its_fix(
    tmp_path: Path, values: dict[str, str], says: str
) -> None:
    done = run_preprovision(tmp_path, DEPLOYMENT_MANAGER_ROLE="Owner", **values)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "preprovision: the azd environment cannot be provisioned:"
    assert any(says in line for line in lines)
    assert any("AZURE_OPENAI_ACCOUNT_NAME is not set: azd env set" in line for line in lines)
    assert any("DEPLOYMENT_MANAGER_ROLE=Owner must be" in line for line in lines)
    assert len(lines) == 4, "all three problems at once"
