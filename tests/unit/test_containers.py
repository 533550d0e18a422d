"""What can be checked of the containers without a Docker engine: each Dockerfile installs
its own requirements file only (and has copied in every file that one includes before pip
reads it), runs as a non-root user with a healthcheck, its entrypoint
exists and every module it imports is installed by that file, and its port agrees with the
local/Procfile, docker-compose.yml and template.yaml."""

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from local.resources import load_template

REPO = Path(__file__).resolve().parents[2]
APPS = [("web", 8501), ("dashboard", 8502)]
FIRST_PARTY = {"moderation", "web", "dashboard"}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= requirement_names(path.parent / line[3:].strip())
        elif line:
            names.add(Requirement(line).name.lower())
    return names


def closure(names: set[str]) -> set[str]:
    """The distributions pip installs for ``names``: their run-time dependencies, no extras."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            todo.append(requirement.name.lower().replace("_", "-"))
    return {n.replace("_", "-") for n in seen}


def _imports(source: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def imported_modules(app: str) -> set[str]:
    """Top-level modules the app's code imports, following the shared core's own imports
    (only the core modules the app really uses ship their dependencies into the image)."""
    todo = list((REPO / app).rglob("*.py"))
    seen: set[Path] = set()
    found: set[str] = set()
    while todo:
        source = todo.pop()
        if source in seen:
            continue
        seen.add(source)
        for name in _imports(source):
            found.add(name.split(".")[0])
            if name.startswith("moderation"):
                path = REPO / "functions" / Path(*name.split("."))
                todo += [p for p in (path.with_suffix(".py"), path / "__init__.py") if p.exists()]
    return found


@pytest.mark.parametrize(("app", "port"), APPS)
def test_dockerfile_is_slim_pinned_non_root_with_a_healthcheck(app, port):
    steps = instructions(REPO / app / "Dockerfile")
    (base,) = [arg for op, arg in steps if op == "FROM"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    (health,) = [arg for op, arg in steps if op == "HEALTHCHECK"]
    assert f"127.0.0.1:{port}/_stcore/health" in health


@pytest.mark.parametrize(("app", "port"), APPS)
def test_dockerfile_installs_only_its_own_requirements(app, port):
    steps = instructions(REPO / app / "Dockerfile")
    installs = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    assert installs == [f"pip install -r requirements/{app}.txt"]
    copied = [arg for op, arg in steps if op == "COPY" and "requirements" in arg]
    assert copied == [f"requirements/{app}.txt requirements/{app}.txt"]
    code = {arg.split()[0] for op, arg in steps if op == "COPY"} - {f"requirements/{app}.txt"}
    assert code == {"functions/moderation", app}


@pytest.mark.parametrize(("app", "port"), APPS)
def test_entrypoint_exists_and_its_imports_are_installed_by_the_image(app, port):
    steps = instructions(REPO / app / "Dockerfile")
    (command,) = [arg for op, arg in steps if op == "CMD"]
    workdir = [arg for op, arg in steps if op == "WORKDIR"][-1]
    (script,) = re.findall(r'"([\w/]*app\.py)"', command)
    # the image copies the repository's <app>/ to /app/<app>/: the script must be that file
    in_image = Path(workdir, script)
    assert in_image.parts[:3] == ("/", "app", app), in_image
    assert (REPO / Path(*in_image.parts[2:])).is_file()
    installed = closure(requirement_names(REPO / "requirements" / f"{app}.txt"))
    providers = metadata.packages_distributions()
    for module in imported_modules(app):
        if module in sys.stdlib_module_names or module in FIRST_PARTY:
            continue
        distributions = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert distributions & installed, f"{app} imports {module}, not in {app}.txt"


def requirement_files(path: Path) -> list[Path]:
    """The file and every file it includes with ``-r``, recursively."""
    files = [path.resolve()]
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            files += requirement_files(path.parent / line[3:].strip())
    return files


@pytest.mark.parametrize(
    "dockerfile", ["web/Dockerfile", "dashboard/Dockerfile", "docker/local-stack.Dockerfile"]
)
def test_every_requirements_file_pip_reads_is_in_the_image_by_then(dockerfile):
    # each COPY here puts a repository path at the same path under the build's WORKDIR
    copied: list[Path] = []
    for op, arg in instructions(REPO / dockerfile):
        if op == "COPY":
            copied += [(REPO / source).resolve() for source in arg.split()[:-1]]
        elif op == "RUN" and "pip install" in arg:
            for name in re.findall(r"-r\s+(\S+)", arg):
                for needed in requirement_files(REPO / name):
                    assert any(needed == c or c in needed.parents for c in copied), (
                        f"{dockerfile}: `{arg}` reads {needed.relative_to(REPO)} before a COPY"
                    )


@pytest.mark.parametrize(("app", "port"), APPS)
def test_port_agrees_everywhere(app, port):
    steps = instructions(REPO / app / "Dockerfile")
    assert ("EXPOSE", str(port)) in steps
    (command,) = [arg for op, arg in steps if op == "CMD"]
    assert f"--server.port={port}" in command
    procfile = (REPO / "local" / "Procfile").read_text()
    assert re.search(rf"^{app}: .*{app}/app\.py.*:-{port}\}}", procfile, re.M), procfile
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"][app]
    assert compose["ports"] == [f"127.0.0.1:{port}:{port}"]
    groups = {"web": "ModeratorUiSecurityGroup", "dashboard": "DashboardSecurityGroup"}
    group = load_template()["Resources"][groups[app]]["Properties"]
    assert port in {rule["FromPort"] for rule in group["SecurityGroupIngress"]}


def test_compose_builds_from_files_that_exist_and_wires_services_together():
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        assert (REPO / service["build"]["dockerfile"]).is_file(), name
    assert services["web"]["environment"]["API_URL"] == "http://api:8000"
    for name in ("api", "streams", "dashboard"):
        assert services[name]["environment"]["AWS_ENDPOINT_URL"] == "http://moto:5000"
