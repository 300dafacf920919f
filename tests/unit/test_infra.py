"""The deployment agrees with the app: the Bicep sets every setting the app reads, the sample
settings and the README list the same names, nothing secret is committed, and function_app.py
has the triggers the templates and hooks expect.

The Bicep is read with pycep (the parser checkov uses, at checkov's version), so these checks
run offline; the Bicep CLI cannot be installed here. Only the few expression forms the
templates use for app settings are understood (object literals, `union()`, variables,
parameters passed by main.bicep); anything else fails the test rather than passing unseen.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

from shared.settings import AppSettings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
FUNCTIONS_MODULE = "./app/functions.bicep"
IDENTITY_CONNECTION_SUFFIXES = (
    "__blobServiceUri",
    "__queueServiceUri",
    "__credential",
    "__clientId",
)


@cache
def parse_bicep(path: Path) -> dict[str, Any]:
    parsed = BicepParser().parse(file_path=path)
    assert parsed is not None, f"pycep could not parse {path}"
    return dict(parsed)


def app_setting_names() -> set[str]:
    """Every setting of the settings model, by the name the app reads it under."""
    names: set[str] = set()
    for field in AppSettings.model_fields.values():
        if field.alias:
            names.add(field.alias)
        elif field.validation_alias is not None:
            names.add(str(field.validation_alias.choices[0]))  # type: ignore[union-attr]
    return names


class BicepObject:
    """Resolves a Bicep expression that builds an object to the names of its keys."""

    def __init__(self, template: Mapping[str, Any], caller: BicepObject | None, args: Any) -> None:
        self.template = template
        self.caller = caller  # the template that passes this one's parameters
        self.args = args  # the `params` object of the caller's module declaration

    def keys(self, expression: Any) -> dict[str, Any]:
        if isinstance(expression, str):
            return self._name(expression)
        if isinstance(expression, dict):
            function = expression.get("function")
            if isinstance(function, dict):
                if function.get("type") != "union":
                    raise AssertionError(f"unsupported function in app settings: {function}")
                merged: dict[str, Any] = {}
                for argument in function["parameters"].values():
                    merged.update(self.keys(argument))
                return merged
            if "operator" in expression:
                raise AssertionError(f"unsupported operator in app settings: {expression}")
            return {key.strip("'"): value for key, value in expression.items()}
        raise AssertionError(f"unsupported app settings expression: {expression!r}")

    def _name(self, name: str) -> dict[str, Any]:
        variables = self.template.get("variables", {})
        if name in variables:
            return self.keys(variables[name]["value"])
        if name in self.template.get("parameters", {}):
            assert self.caller is not None, f"parameter {name} has no caller"
            assert name in self.args, f"main.bicep does not pass the parameter {name}"
            return self.caller.keys(self.args[name])
        raise AssertionError(f"unknown name in app settings: {name}")


def function_app_settings() -> dict[str, Any]:
    """The Function App's app settings as the templates set them: name -> parsed value."""
    main = parse_bicep(INFRA / "main.bicep")
    calls = [m for m in main["modules"].values() if m["detail"]["path"] == FUNCTIONS_MODULE]
    assert len(calls) == 1, f"main.bicep should use {FUNCTIONS_MODULE} once"
    module = parse_bicep(INFRA / FUNCTIONS_MODULE)
    resolver = BicepObject(module, BicepObject(main, None, None), calls[0]["config"]["params"])
    sites = [r for r in module["resources"].values() if r["type"] == "Microsoft.Web/sites"]
    assert len(sites) == 1
    settings = sites[0]["config"]["properties"]["siteConfig"]["appSettings"]
    # [for setting in items(allSettings): {name: setting.key, value: setting.value}]
    assert settings["loop_type"]["type"] == "object", "appSettings should loop over items()"
    return resolver.keys(settings["loop_type"]["detail"]["object_name"])


def readme_settings_table_names() -> set[str]:
    """Names in the first column of the tables in the README's `## Settings` section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))


def sample_settings() -> dict[str, str]:
    values: dict[str, str] = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    return values


def test_every_setting_the_app_reads_is_set_on_the_function_app() -> None:
    bicep = function_app_settings()
    expected = app_setting_names()
    # The storage connection is identity-based in Azure: the blob service URI replaces the
    # connection string (AppSettings accepts either).
    expected.discard("DocumentStorage")
    assert "DocumentStorage__blobServiceUri" in expected
    assert sorted(expected - set(bicep)) == []
    # The hosted-models file or the single-model form, chosen by azd parameters.
    assert bicep["HOSTING_CONFIG_FILE"] == "hostingConfigFile"
    assert bicep["FINE_TUNED_MODEL"] == "fineTunedModel"
    assert bicep["AZURE_AUTH_MODE"] == "identity"


def test_storage_connections_are_identity_based_and_nothing_secret_is_set() -> None:
    bicep = function_app_settings()
    for connection in ("AzureWebJobsStorage", "DocumentStorage"):
        assert connection not in bicep, f"{connection} must not be a connection string in Azure"
        for suffix in IDENTITY_CONNECTION_SUFFIXES:
            assert f"{connection}{suffix}" in bicep
        assert bicep[f"{connection}__credential"] == "managedidentity"
    assert bicep["AOAI_API_KEY"] == ""
    assert "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" in bicep
    # Flex Consumption sets the runtime in functionAppConfig and refuses these as app settings.
    assert {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"}.isdisjoint(bicep)


def test_the_templates_hold_no_key_and_turn_local_auth_off() -> None:
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text()
        for secret_maker in ("listKeys(", "AccountKey=", "SharedAccessSignature", "listSecrets("):
            assert secret_maker.lower() not in text.lower(), f"{secret_maker} in {path}"
    storage = parse_bicep(INFRA / "app" / "storage.bicep")["resources"]["storage"]
    assert storage["config"]["properties"]["allowSharedKeyAccess"] is False
    monitoring = parse_bicep(INFRA / "app" / "monitoring.bicep")["resources"]
    assert monitoring["applicationInsights"]["config"]["properties"]["DisableLocalAuth"] is True
    openai = parse_bicep(INFRA / "app" / "openai.bicep")["resources"]["account"]
    assert openai["config"]["properties"]["disableLocalAuth"] is True


def test_role_ids_are_named_and_assignments_are_named_with_guid() -> None:
    role_id = re.compile(r"^var \w+ = '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}'")
    assignments = 0
    for path in INFRA.rglob("*.bicep"):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if role_id.match(line):
                assert lines[number - 1].startswith("//"), f"{path}:{number + 1} needs a comment"
        resources = parse_bicep(path).get("resources", {})
        for name, resource in resources.items():
            if resource["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            assignments += 1
            config = resource["config"]
            config = config["config"] if "condition" in config else config  # `= if (...)`
            assert config["name"]["function"]["type"] == "guid", name
            # Scoped to one resource of the same file (an account, a component), never to the
            # resource group or the subscription.
            assert resources[config["scope"]]["existing"] is True, name
    assert assignments >= 7


def test_the_sample_settings_and_the_readme_table_list_the_same_names() -> None:
    assert sorted(set(sample_settings()) ^ readme_settings_table_names()) == []


def test_the_sample_settings_hold_no_secret() -> None:
    values = sample_settings()
    assert values["AOAI_API_KEY"] == ""
    for name, value in values.items():
        lowered = value.lower()
        assert "accountkey=" not in lowered and "sharedaccesssignature=" not in lowered, name
        assert "sig=" not in lowered, name
        if "=" in value and name.startswith(("AzureWebJobsStorage", "DocumentStorage")):
            # Azurite's well-known development account, never a real account's key.
            assert value == "UseDevelopmentStorage=true", name


def test_hooks_read_only_what_main_bicep_outputs() -> None:
    outputs = set(parse_bicep(INFRA / "main.bicep")["outputs"])
    for hook in (INFRA / "hooks").iterdir():
        if hook.stem == "preprovision":
            continue  # runs before there are outputs: it reads azd environment values
        text = hook.read_text()
        used = set(re.findall(r"\$\{?(?:env:)?([A-Z][A-Z0-9_]+)", text))
        used |= set(re.findall(r"'([A-Z][A-Z0-9_]{5,})'", text))  # the pwsh checks' names
        assert sorted(used - outputs - {"LASTEXITCODE"}) == [], hook.name


def test_function_app_triggers_match_the_deployment() -> None:
    # In a subprocess: get_functions() may run only once per app object and process.
    code = (
        "import json, function_app\n"
        "print(json.dumps([{'name': f.get_function_name(), 'trigger': "
        "{k: getattr(v, 'value', v) for k, v in f.get_trigger().get_dict_repr().items()}} "
        "for f in function_app.app.get_functions()], default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    functions = {f["name"]: f["trigger"] for f in json.loads(result.stdout)}
    main = parse_bicep(INFRA / "main.bicep")
    blob_function = main["variables"]["blobTriggerFunctionName"]["value"]
    assert functions[blob_function]["type"] == "blobTrigger"
    # Flex Consumption supports only the Event Grid source for blob triggers.
    assert functions[blob_function]["source"] == "EventGrid"
    http = {name: t for name, t in functions.items() if t["type"] == "httpTrigger"}
    assert http
    # The portal's pages are static files a browser navigates to, which cannot carry a key
    # header; they hold no data, and every call they make needs the key.
    portal = http.pop("portal")
    assert str(portal["authLevel"]).lower() == "anonymous"
    assert portal["route"] == "portal/{*asset}" and portal["methods"] == ["GET"], portal
    for trigger in http.values():
        # A key is needed for every other HTTP route (no anonymous data endpoint).
        assert str(trigger["authLevel"]).lower() in {"function", "admin"}, trigger


def test_the_deployed_settings_export_keeps_only_the_apps_settings() -> None:
    from scripts.azure_app_settings import export_lines

    listed: list[dict[str, str | None]] = [
        {"name": "AOAI_ACCOUNT_NAME", "value": "oai-test"},
        {"name": "PROCESSING_PROFILES", "value": '{"a": {"questions": ["Who\'s it?"]}}'},
        {"name": "DocumentStorage__blobServiceUri", "value": "https://st.blob.core.windows.net/"},
        {"name": "DocumentStorage__clientId", "value": "client"},
        {"name": "AZURE_CLIENT_ID", "value": "client"},
        {
            "name": "AzureWebJobsStorage__blobServiceUri",
            "value": "https://st.blob.core.windows.net/",
        },
        {"name": "APPLICATIONINSIGHTS_CONNECTION_STRING", "value": "InstrumentationKey=x"},
        {"name": "HOSTING_CONFIG_FILE", "value": "hosting.toml"},
        {"name": "AOAI_API_KEY", "value": None},
    ]
    lines = export_lines(listed)
    assert lines == [
        "export AOAI_ACCOUNT_NAME=oai-test",
        "export AOAI_API_KEY=''",
        "export DocumentStorage__blobServiceUri=https://st.blob.core.windows.net/",
        "export HOSTING_CONFIG_FILE=hosting.toml",
        'export PROCESSING_PROFILES=\'{"a": {"questions": ["Who\'"\'"\'s it?"]}}\'',
    ]
    # What the shell makes of the quoting is the value itself.
    shell = subprocess.run(
        ["sh", "-c", f'{lines[-1]}; printf %s "$PROCESSING_PROFILES"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == listed[1]["value"]


def azd_environment_values() -> set[str]:
    """The azd environment values main.parameters.json maps to the template's parameters."""
    text = (INFRA / "main.parameters.json").read_text()
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


def test_the_preprovision_hooks_check_only_values_the_parameters_map() -> None:
    mapped = azd_environment_values()
    for hook in ("preprovision.sh", "preprovision.ps1"):
        text = (INFRA / "hooks" / hook).read_text()
        used = set(re.findall(r"\$\{?(?:env:)?([A-Z][A-Z0-9_]+)", text))
        assert used, hook
        assert sorted(used - mapped) == [], hook


def test_every_template_parameter_a_user_sets_is_mapped_from_the_azd_environment() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    for name in (
        "openAiEndpoint",
        "defaultProfile",
        "modelContextTokens",
        "reaperSchedule",
        "scheduleReconcileSchedule",
        "jobRecordsRetentionDays",
        "outcomeVersionsRetentionDays",
    ):
        assert name in parameters, name
    declared = set(parse_bicep(INFRA / "main.bicep")["parameters"])
    assert sorted(set(parameters) - declared) == []


def test_the_app_gets_openai_contributor_and_no_separate_inference_role_by_default() -> None:
    access = parse_bicep(INFRA / "app" / "openai-access.bicep")
    role = access["parameters"]["deploymentManagerRole"]
    assert role["default"] == "CognitiveServicesOpenAIContributor"
    main = parse_bicep(INFRA / "main.bicep")
    assert main["parameters"]["deploymentManagerRole"]["default"] == (
        "CognitiveServicesOpenAIContributor"
    )
    # The OpenAI User assignment exists only for the broader, opt-in role.
    inference = access["resources"]["inference"]["config"]
    assert "condition" in inference
    text = (INFRA / "app" / "openai-access.bicep").read_text()
    only_if_broader = "needsInferenceRole = deploymentManagerRole == 'CognitiveServicesContributor'"
    assert only_if_broader in text
    assert "operatorPrincipalId" in access["parameters"], "the operator's role on the account"


def test_the_location_is_one_that_offers_flex_consumption() -> None:
    location = parse_bicep(INFRA / "main.bicep")["parameters"]["location"]
    assert location["type"] == "string"
    allowed = allowed_locations()
    assert {"swedencentral", "eastus", "westeurope"} <= allowed
    assert "eastus2euap" not in allowed and "chinanorth" not in allowed


def allowed_locations() -> set[str]:
    text = (INFRA / "main.bicep").read_text()
    block = text.split("@allowed([", 1)[1].split("])", 1)[0]
    assert "param location string" in text.split("@allowed([", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"'([a-z0-9]+)'", block))


def test_storage_expires_what_grows_and_keeps_undeliverable_events() -> None:
    storage = parse_bicep(INFRA / "app" / "storage.bicep")
    types = {resource["type"] for resource in storage["resources"].values()}
    assert "Microsoft.Storage/storageAccounts/managementPolicies" in types
    assert "Microsoft.Insights/diagnosticSettings" in types
    topic = storage["resources"]["systemTopic"]["config"]
    assert topic["identity"]["type"] == "SystemAssigned"
    main_text = (INFRA / "main.bicep").read_text()
    for prefix in (
        "${outputContainerName}/versions/",
        "${jobsContainerName}/",
        "${jobsContainerName}/payloads/",
        "${batchRunsContainerName}/",
        "${deadLetterContainerName}/",
    ):
        assert f"prefix: '{prefix}'" in main_text, prefix


def test_azd_is_required_at_a_version_that_deploys_flex_consumption() -> None:
    text = (ROOT / "azure.yaml").read_text()
    assert 'azd: ">= 1.10.0"' in text
    assert "./infra/hooks/preprovision.sh" in text and "./infra/hooks/preprovision.ps1" in text
