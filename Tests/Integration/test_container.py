"""The container image and the deployment files (docs/ARCHITECTURE.md, "The process contract"): Dockerfile, .dockerignore,
scripts/container-build.sh, deploy/docker-compose.yml and deploy/kubernetes/.

No Docker engine runs here, so the image's files are assembled the way the Dockerfile does it,
by scripts/container-build.sh, from the existing release binary (SLUICE_RELEASE_BIN, default
.build/release/sluice; built with `swift build -c release --static-swift-stdlib`), and checked:
what the binary links must come from the runtime packages the Dockerfile installs, no secret
may be in the tree, and `sluice healthcheck` (the HEALTHCHECK) must tell a running gateway from a
stopped one. The Dockerfile is linted with hadolint, the YAML with yamllint, and the Kubernetes
objects are validated against the API schemas that kubernetes-validate ships.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.manifest import write_manifest
from harness.sluice import run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DEPLOY = REPO_ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
CONTAINER_MANIFEST = DEPLOY / "container-plugins.json"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "container-build.sh"
VENV_BIN = Path(sys.executable).parent

RUNTIME_PACKAGES = {"libcurl4", "libjansson4", "libsystemd0", "libhiredis0.14", "libmimalloc2.0", "ca-certificates", "tzdata"}
BUILD_PACKAGES = {"libcurl4-openssl-dev", "libjansson-dev", "libsystemd-dev", "libhiredis-dev", "libmimalloc-dev"}
# In debian:bookworm-slim already: libc6 and libgcc-s1 are essential, and apt needs libstdc++6.
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
UID = 10001
HEALTHCHECK = '["/usr/local/bin/sluice", "healthcheck"]'
STAGED_FILES = {"usr/local/bin/sluice", "etc/sluice/plugins.json",
                "usr/local/libexec/sluice/swift-backtrace-static"}


def tool(name: str) -> str:
    """A linter from the test venv (Tests/Integration/requirements.txt), else from PATH."""
    path = VENV_BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} not installed: pip install -r Tests/Integration/requirements.txt"
    return found


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, **kwargs)


# --- the Dockerfile -----------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        current += " " + stripped.rstrip("\\").strip() if current else stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current)
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction, args in dockerfile_instructions():
        if instruction == "FROM":
            result.append([])
        if result:
            result[-1].append((instruction, args))
    return result


def apt_installed(stage: list[tuple[str, str]]) -> set[str]:
    packages: set[str] = set()
    for instruction, args in stage:
        if instruction == "RUN":
            for match in re.finditer(r"apt-get install ([^&|;]+)", args):
                packages |= {word for word in match[1].split() if not word.startswith("-")}
    return packages


def test_dockerfile_builds_with_the_script_and_runs_as_non_root():
    builder, runtime = stages()
    assert apt_installed(builder) == BUILD_PACKAGES
    assert any(i == "RUN" and "scripts/container-build.sh" in a for i, a in builder), "the builder must run the script"
    assert re.fullmatch(r"\$\{RUNTIME_IMAGE\}|debian:bookworm-slim", runtime[0][1]), runtime[0]
    assert "ARG RUNTIME_IMAGE=debian:bookworm-slim" in DOCKERFILE.read_text()
    assert apt_installed(runtime) == RUNTIME_PACKAGES, "the runtime stage installs exactly the runtime libraries"
    settings = {i: a for i, a in runtime if i in {"USER", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "WORKDIR"}}
    assert settings["USER"] == f"{UID}:{UID}", "a numeric non-root user (Kubernetes' runAsNonRoot checks it)"
    assert settings["EXPOSE"] == "8080"
    assert settings["STOPSIGNAL"] == "SIGTERM"
    assert settings["HEALTHCHECK"].endswith("CMD " + HEALTHCHECK), settings["HEALTHCHECK"]
    assert settings["WORKDIR"] == "/etc/sluice", "`sluice healthcheck` reads plugins.json from the working directory"
    assert ("COPY", "--from=builder /rootfs/ /") in runtime


def test_dockerfile_holds_no_secret():
    for instruction, args in dockerfile_instructions():
        if instruction in {"ARG", "ENV"}:
            assert not re.search(r"(KEY|SECRET|TOKEN|PASSWORD)\w*=", args, re.I), f"{instruction} {args}"
    text = DOCKERFILE.read_text()
    assert "--secret" not in text and "id_rsa" not in text


def test_dockerfile_passes_hadolint():
    done = run(tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerignore_admits_only_what_the_build_copies():
    rules = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "the build context is an allow-list: everything is excluded first"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for instruction, args in dockerfile_instructions():
        if instruction == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                base = source.rstrip("/").replace("*", "")
                assert any(base == a or base.startswith(a + "/") or a.startswith(base) for a in allowed), \
                    f"COPY {source} is excluded by .dockerignore"
                assert list(REPO_ROOT.glob(source.rstrip("/"))), f"COPY {source}: no such path in the repository"
    for local_state in (".sluice", ".build", ".venv", "models", ".git", ".env", "Tests/Integration"):
        assert not any(local_state == a or local_state.startswith(a + "/") for a in allowed), local_state


# --- the image's files, assembled by the script ------------------------------------------------

@pytest.fixture(scope="module")
def release_bin() -> Path:
    path = Path(os.environ.get("SLUICE_RELEASE_BIN") or REPO_ROOT / ".build" / "release" / "sluice")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"release binary not found at {path}: build it with "
                    f"`swift build -c release --static-swift-stdlib` or set SLUICE_RELEASE_BIN", pytrace=False)
    return path


@pytest.fixture(scope="module")
def rootfs(release_bin: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("container") / "rootfs"
    done = run("bash", str(BUILD_SCRIPT), "--from-binary", str(release_bin), "--rootfs", str(root), cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def test_dry_run_shows_the_static_build_and_changes_nothing(tmp_path):
    target = tmp_path / "rootfs"
    done = run("bash", str(BUILD_SCRIPT), "--dry-run", "--rootfs", str(target), cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "swift build -c release --static-swift-stdlib" in done.stdout
    assert f"install -m 0644 deploy/container-plugins.json {target}/etc/sluice/plugins.json" in done.stdout
    assert not target.exists()


def test_rootfs_holds_the_binary_and_the_manifest(rootfs: Path):
    files = {str(p.relative_to(rootfs)) for p in rootfs.rglob("*") if p.is_file()}
    assert {"usr/local/bin/sluice", "etc/sluice/plugins.json"} <= files <= STAGED_FILES, files
    binary = rootfs / "usr/local/bin/sluice"
    assert binary.stat().st_mode & 0o777 == 0o755
    assert (rootfs / "etc/sluice/plugins.json").stat().st_mode & 0o777 == 0o644
    assert json.loads((rootfs / "etc/sluice/plugins.json").read_text()) == json.loads(CONTAINER_MANIFEST.read_text())


def test_staged_binary_runs_and_accepts_the_image_manifest(rootfs: Path):
    binary = str(rootfs / "usr/local/bin/sluice")
    done = run(binary, "--help", env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "serve" in done.stdout, done.stdout + done.stderr
    done = run(binary, "check", "plugins.json", cwd=rootfs / "etc/sluice",
               env={"PATH": "/usr/bin:/bin", "SLUICE_API_KEY": "k"})
    assert done.returncode == 0, done.stdout + done.stderr


def packages_of(libraries: list[str]) -> dict[str, str | None]:
    """The Debian package that installed each library (merged /usr: both spellings are tried)."""
    spellings: dict[str, str] = {}
    for library in libraries:
        for path in {library, os.path.realpath(library)}:
            spellings[path] = library
            if path.startswith("/usr/lib/"):
                spellings[path[len("/usr"):]] = library
            elif path.startswith("/lib"):
                spellings["/usr" + path] = library
    done = run("dpkg-query", "--search", *spellings)  # exits 1 when some spelling is unknown: fine
    owners: dict[str, str | None] = {library: None for library in libraries}
    for line in done.stdout.splitlines():
        package, _, path = line.partition(": ")
        if path.strip() in spellings:
            owners[spellings[path.strip()]] = package.split(":")[0].strip()
    return owners


def dependency_closure(packages: set[str]) -> set[str]:
    """The packages and everything they depend on (Depends, Pre-Depends), as installed here."""
    listing = run("dpkg-query", "--show", "--showformat=${Package}\t${Depends}, ${Pre-Depends}\n").stdout
    depends: dict[str, list[str]] = {}
    for line in listing.splitlines():
        name, _, deps = line.partition("\t")
        depends[name] = [re.sub(r"\(.*?\)|:\w+", "", alternative).strip()
                         for clause in deps.split(",") for alternative in clause.split("|")]
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        name = todo.pop()
        if name and name not in seen:
            seen.add(name)
            todo += depends.get(name, [])
    return seen


def test_binary_links_only_the_runtime_packages(rootfs: Path):
    binary = rootfs / "usr/local/bin/sluice"
    ldd = run("ldd", str(binary), env={"PATH": "/usr/bin:/bin"})
    assert ldd.returncode == 0, ldd.stdout + ldd.stderr
    libraries = re.findall(r"=>\s+(/\S+)", ldd.stdout) + re.findall(r"^\s+(/\S+)\s+\(", ldd.stdout, re.M)
    assert libraries, ldd.stdout
    allowed = dependency_closure(RUNTIME_PACKAGES | BASE_IMAGE_PACKAGES)
    foreign = {lib: pkg for lib, pkg in packages_of(libraries).items() if pkg not in allowed}
    assert not foreign, ("libraries the image does not install (not from " + ", ".join(sorted(RUNTIME_PACKAGES)) +
                         f" or the base image): {foreign}; a Swift runtime library means the binary was not "
                         f"built with --static-swift-stdlib")
    dynamic = run("readelf", "--dynamic", str(binary)).stdout
    search_paths = [p for paths in re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*)\]", dynamic)
                    for p in paths.split(":")]
    assert all(p == "$ORIGIN" for p in search_paths), f"the binary searches libraries outside the image: {search_paths}"


def test_binary_allocates_with_mimalloc(rootfs: Path):
    """Linking libmimalloc is not enough: its malloc must be the one every library binds to."""
    binary = rootfs / "usr/local/bin/sluice"
    done = run(str(binary), "--help", env={"PATH": "/usr/bin:/bin", "LD_DEBUG": "bindings"})
    assert done.returncode == 0, done.stdout + done.stderr
    bindings = re.findall(r"to (\S+) \[\d+\]: normal symbol `(malloc|free)'", done.stderr)
    assert bindings, done.stderr[-2000:]
    providers = {Path(library).name for library, _ in bindings}
    assert providers == {"libmimalloc.so.2"}, f"malloc and free bind to {providers}"


SECRET_PATTERNS = [
    re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(rb"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),       # OpenAI / Anthropic keys
    re.compile(rb"\bAKIA[0-9A-Z]{16}\b"),                          # AWS access key ids
    re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{30,}"),                  # GitHub tokens
]


def test_no_secret_in_the_image_tree(rootfs: Path):
    known = [s.encode() for s in ("prov-secret-abc123", "client-secret-xyz789", "limited-key-123")]
    demo_key = REPO_ROOT / ".sluice" / "demo.key"
    if demo_key.exists() and demo_key.read_text().strip():
        known.append(demo_key.read_text().strip().encode())
    for path in rootfs.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        name = path.name.lower()
        assert not name.endswith((".key", ".pem", ".p12", ".env")) and "credential" not in name, path
        data = path.read_bytes()
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(data), f"{path} matches {pattern.pattern!r}"
        for secret in known:
            assert secret not in data, f"{path} holds a test or demo secret"


def secret_values(node, path: str = "") -> list[str]:
    """Inline strings where the manifest expects a secret (key/api_key fields)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key in {"key", "api_key"} and not (isinstance(value, dict) and set(value) <= {"env", "file", "credential"}):
                found.append(here)
            found += secret_values(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += secret_values(value, f"{path}[{i}]")
    return found


def test_image_manifest_names_secrets_by_reference_only():
    manifest = json.loads(CONTAINER_MANIFEST.read_text())
    assert not secret_values(manifest), secret_values(manifest)
    assert manifest["server"]["listen"] == ["0.0.0.0:8080"]


# --- sluice healthcheck, as the image runs it ---------------------------------------------------

def test_healthcheck_tells_a_running_gateway_from_a_stopped_one(rootfs: Path, start_sluice, make_manifest, tmp_path):
    binary = rootfs / "usr/local/bin/sluice"
    gw = start_sluice()
    done = run_cli(binary, "healthcheck", "--url", gw.url)
    assert done.returncode == 0, done.stdout + done.stderr

    # The HEALTHCHECK itself: no flags, plugins.json in the working directory, listening on 0.0.0.0.
    workdir = tmp_path / "etc-sluice"
    workdir.mkdir()
    image_like = make_manifest(gw.port)
    image_like["server"]["listen"] = [f"0.0.0.0:{gw.port}"]
    write_manifest(image_like, workdir / "plugins.json")
    done = run_cli(binary, "healthcheck", cwd=workdir)
    assert done.returncode == 0, done.stdout + done.stderr

    assert gw.stop() == 0
    done = run_cli(binary, "healthcheck", "--url", gw.url)
    assert done.returncode == 1, done.stdout + done.stderr
    done = run_cli(binary, "healthcheck", cwd=workdir)
    assert done.returncode == 1, done.stdout + done.stderr


# --- Compose and Kubernetes ---------------------------------------------------------------------

def yaml_files() -> list[Path]:
    return sorted([*DEPLOY.glob("*.yml"), *DEPLOY.glob("*.yaml"), *KUBERNETES.glob("*.yaml")])


def test_deploy_yaml_passes_yamllint():
    done = run(tool("yamllint"), "--strict", "--config-file", str(REPO_ROOT / ".yamllint.yaml"),
               *map(str, yaml_files()))
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_objects_match_the_api_schemas():
    files = sorted(KUBERNETES.glob("*.yaml"))
    assert {f.name for f in files} >= {"configmap.yaml", "deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"}
    done = run(tool("kubernetes-validate"), "--strict", *map(str, files))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "did not validate" not in done.stdout + done.stderr


def k8s_objects() -> dict[str, dict]:
    objects = {}
    for path in KUBERNETES.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objects[doc["kind"]] = doc
    return objects


def test_kubernetes_deployment_drains_safely():
    objects = k8s_objects()
    manifest = json.loads(objects["ConfigMap"]["data"]["plugins.json"])
    assert manifest == json.loads(CONTAINER_MANIFEST.read_text()), "configmap.yaml differs from deploy/container-plugins.json"
    drain = manifest["server"]["drain_timeout_s"]

    pod = objects["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0].endswith("sleep")
    assert pod["terminationGracePeriodSeconds"] > drain + int(pre_stop[1]), \
        "terminationGracePeriodSeconds must cover the preStop sleep and the drain"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {p["containerPort"] for p in container["ports"]} == {int(manifest["server"]["listen"][0].rsplit(":", 1)[1])}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == UID
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and "memory" in container["resources"]["limits"]
    for env in container["env"]:
        assert "value" not in env and "secretKeyRef" in env["valueFrom"], f"{env['name']} must come from a Secret"
    referenced = {ref["env"] for ref in _references(manifest)}
    assert referenced <= {env["name"] for env in container["env"]}, "a secret the manifest reads is not set"

    assert objects["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
    assert objects["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    assert objects["PodDisruptionBudget"]["spec"]["selector"] == objects["Deployment"]["spec"]["selector"]
    assert objects["Service"]["spec"]["selector"] == objects["Deployment"]["spec"]["selector"]["matchLabels"]


def _references(node) -> list[dict]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return [node]
        return [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


def test_compose_runs_sluice_read_only_with_secrets_from_the_environment():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    sluice, redis = compose["services"]["sluice"], compose["services"]["redis"]
    drain = json.loads(CONTAINER_MANIFEST.read_text())["server"]["drain_timeout_s"]
    assert int(sluice["stop_grace_period"].rstrip("s")) > drain
    assert sluice["read_only"] is True and sluice["cap_drop"] == ["ALL"]
    assert sluice["user"] == f"{UID}:{UID}"
    assert sluice["healthcheck"]["test"] == json.loads(f'["CMD", {HEALTHCHECK[1:-1]}]')
    assert "limits" in sluice["deploy"]["resources"] and "limits" in redis["deploy"]["resources"]
    assert redis["image"].startswith("redis:7") and "healthcheck" in redis
    assert sluice["depends_on"]["redis"]["condition"] == "service_healthy"
    for name, value in sluice["environment"].items():
        assert re.fullmatch(r"\$\{\w+(:[-?][^}]*)?\}", str(value)), f"{name} must come from the environment, not the file"
    referenced = {ref["env"] for ref in _references(json.loads(CONTAINER_MANIFEST.read_text()))}
    assert referenced <= set(sluice["environment"]), "a secret the manifest reads is not passed"
