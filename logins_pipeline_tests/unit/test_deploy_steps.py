"""docs/deploy.md shows files, never prose commands: each of its code blocks is a file of the repository, whole.
The deploy steps (deploy/steps/*.sh, deploy/helm/install.sh) are checked against what they use: bash parses
them; each stack keeps one template; the first deploy of a stack gives every parameter without a default, and
no deploy names a parameter its template lacks; each stack output read exists; each secret named is one of
the template's; each psql file exists and gets every variable it reads."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from logins_pipeline_tests.stack import REPO

STEPS = REPO / "deploy" / "steps"
SCRIPTS = [
    *sorted(STEPS.glob("[0-9]-*.sh")),
    STEPS / "release.sh",
    STEPS / "lib.sh",
    REPO / "deploy" / "helm" / "install.sh",
]
DOCS = REPO / "docs" / "deploy.md"
SECRETS_TEMPLATE = REPO / "deploy" / "cloudformation" / "logins-pipeline.yaml"


def commands(script: Path) -> list[str]:
    """The script's lines, continuation lines joined."""
    return script.read_text().replace("\\\n", " ").splitlines()


def template(path: str) -> dict:
    return load_cfn_yaml((REPO / path).read_text())


def deploys() -> list[tuple[str, str, set[str], str]]:
    """(stack, template, parameters given, script) of every `aws cloudformation deploy`, in step order."""
    found = []
    for script in SCRIPTS:
        for line in commands(script):
            if "cloudformation deploy" in line:
                stack = re.search(r"--stack-name (\S+)", line)[1]  # type: ignore[index]
                path = re.search(r"--template-file (\S+)", line)[1]  # type: ignore[index]
                overrides = line.split("--parameter-overrides", 1)[1] if "--parameter-overrides" in line else ""
                given = set(re.findall(r"(?:^|\s)([A-Za-z]+)=", overrides))
                found.append((stack, path, given, script.name))
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_bash_parses_the_script(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_each_deploy_gives_what_its_template_needs():
    seen: dict[str, str] = {}
    for stack, path, given, script in deploys():
        parameters = template(path)["Parameters"]
        assert seen.setdefault(stack, path) == path, f"{script}: {stack} deployed from two templates"
        assert given - set(parameters) == set(), f"{script}: {stack} has no parameter {given - set(parameters)}"
        if next(d for d in deploys() if d[0] == stack)[3] == script:  # the stack's first deploy creates it
            required = {name for name, spec in parameters.items() if "Default" not in spec}
            assert required - given == set(), f"{script} creates {stack} without {required - given}"
    assert set(seen) == {"logins-network", "logins-pipeline", "logins-database", "logins-pipeline-ecs"}


def test_each_output_read_exists():
    templates = {stack: path for stack, path, _, _ in deploys()}
    read = {(m[1], m[2]) for script in SCRIPTS for m in re.finditer(r"\$\(output (\S+) (\w+)\)", script.read_text())}
    assert read
    for stack, key in read:
        assert key in template(templates[stack])["Outputs"], f"{stack} has no output {key}"


def test_each_secret_named_is_one_of_the_template():
    secrets = template(str(SECRETS_TEMPLATE.relative_to(REPO)))
    prefix = secrets["Parameters"]["SecretPrefix"]["Default"]
    names = {
        prefix + resource["Properties"]["Name"]["Fn::Sub"].removeprefix("${SecretPrefix}")
        for resource in secrets["Resources"].values()
        if resource["Type"] == "AWS::SecretsManager::Secret"
    }
    named = {m[0] for script in SCRIPTS for m in re.finditer(r"(?<![\w/-])logins/[\w-]+", script.read_text())}
    assert named and named <= names, named - names


def test_each_psql_file_gets_its_variables():
    runs = [line for script in SCRIPTS for line in commands(script) if re.search(r"\bpsql\b", line) and " -f " in line]
    assert len(runs) == 2  # bootstrap.sql (step 3) and logins.sql (step 5)
    for line in runs:
        sql = (REPO / re.search(r" -f (\S+)", line)[1]).read_text()  # type: ignore[index]
        given = set(re.findall(r"-v (\w+)=", line))
        read = set(re.findall(r""":['"](\w+)['"]""", "\n".join(x for x in sql.splitlines() if not x.startswith("--"))))
        assert read and read <= given, f"{line}: {read - given} not given"


def test_every_code_block_of_the_guide_is_a_file_of_the_repository():
    text = DOCS.read_text()
    blocks = list(re.finditer(r"\[`([^`]+)`\]\([^)]+\):\n\n```\w*\n(.*?)```", text, re.DOTALL))
    assert len(blocks) == text.count("```") // 2, "a code block without its file's link just above it"
    shown = set()
    for block in blocks:
        path, body = block[1], block[2]
        assert (REPO / path).read_text() == body, f"docs/deploy.md shows {path} other than it is"
        shown.add(path)
    assert {str(script.relative_to(REPO)) for script in SCRIPTS if script.name != "lib.sh"} <= shown


def test_the_helm_install_creates_the_namespace_and_sets_a_key_of_the_values():
    [install] = [line for line in commands(REPO / "deploy" / "helm" / "install.sh") if "helm upgrade --install" in line]
    assert "--create-namespace" in install and "-f deploy/helm/values.yaml" in install
    path = re.search(r'--set-string "([^=]+)=\$RELEASE"', install)[1]  # type: ignore[index]
    node = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    for key in re.findall(r"[^.\[\]]+", path):
        node = node[int(key)] if key.isdigit() else node[key]
    assert node == "set-by-install-sh"  # the placeholder the install replaces
