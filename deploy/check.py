"""Structural checks of mcp-gate's deployment files; run through `deploy/test`.

Each check prints one line, `ok   <what>` or `FAIL <what>: <why>`, and the run ends
with `N passed, N failed`. What is checked:

- deploy/kubernetes/{sidecar,standalone}, rendered with `kubectl kustomize`: the kinds
  each layout needs, probes on /readyz and /healthz, requests and limits, a restrictive
  securityContext on every container, configuration from the generated ConfigMap
  (envFrom) holding only variables that docs/INTERFACE.md defines, and the
  layout-specific wiring (sidecar: two containers, UPSTREAM_URL on loopback;
  standalone: PodDisruptionBudget and HorizontalPodAutoscaler aimed at the Deployment).
- deploy/compose: the three services, and the gate's settings agree with the realm.
- deploy/compose/keycloak/mcp-realm.json: the audience mapper, both Claude.ai
  callbacks, anonymous dynamic client registration, a test user.
- Dockerfile and .dockerignore: stages, non-root user, HEALTHCHECK, entrypoint.
- README.md documents exactly the variables of docs/INTERFACE.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CLAUDE_CALLBACKS = {
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
}
GATE = "mcp-gate"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, what: str, ok: bool, why: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {why}" if why else ""))
        return ok


def interface_variables() -> set[str]:
    """The variable names of the table in docs/INTERFACE.md (the contract)."""
    names: set[str] = set()
    path = ROOT / "docs" / "INTERFACE.md"
    if not path.exists():
        return names
    for line in path.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| variable") and not line.startswith("|---"):
            first = line.split("|")[1]
            names.update(re.findall(r"\b[A-Z][A-Z0-9_]+\b", first))
    return names


def duration_seconds(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


# ----------------------------------------------------------------------------- kubernetes

def render(kubectl: str, layout: str) -> tuple[list[dict] | None, str]:
    import yaml

    try:
        proc = subprocess.run(
            [kubectl, "kustomize", str(DEPLOY / "kubernetes" / layout)],
            capture_output=True, text=True, timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if proc.returncode != 0:
        return None, (proc.stderr.strip() or f"exit {proc.returncode}").splitlines()[-1]
    try:
        return [d for d in yaml.safe_load_all(proc.stdout) if d], ""
    except yaml.YAMLError as e:
        return None, f"output is not YAML: {e}"


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def labels_match(selector: dict, labels: dict) -> bool:
    wanted = (selector or {}).get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def check_container_hardening(c: Checks, layout: str, pod: dict, container: dict) -> None:
    name = container.get("name", "?")
    pod_sc = pod.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    prefix = f"{layout}: container {name}"

    res = container.get("resources") or {}
    missing = [f"{part}.{r}" for part in ("requests", "limits") for r in ("cpu", "memory")
               if r not in (res.get(part) or {})]
    c.check(f"{prefix} has cpu/memory requests and limits", not missing, f"missing {missing}")

    run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    c.check(f"{prefix} runAsNonRoot", run_as_non_root is True and run_as_user != 0,
            f"runAsNonRoot={run_as_non_root} runAsUser={run_as_user}")
    c.check(f"{prefix} readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem") is True)
    c.check(f"{prefix} allowPrivilegeEscalation false", sc.get("allowPrivilegeEscalation") is False)
    drops = ((sc.get("capabilities") or {}).get("drop")) or []
    adds = ((sc.get("capabilities") or {}).get("add")) or []
    c.check(f"{prefix} drops ALL capabilities, adds none", "ALL" in drops and not adds,
            f"drop={drops} add={adds}")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    c.check(f"{prefix} seccomp RuntimeDefault", seccomp == "RuntimeDefault", f"got {seccomp}")
    c.check(f"{prefix} not privileged", not sc.get("privileged", False))


def check_layout(c: Checks, kubectl: str, layout: str, variables: set[str]) -> None:
    docs, error = render(kubectl, layout)
    if not c.check(f"{layout}: `{kubectl} kustomize` renders", docs is not None, error):
        return

    kinds = {d.get("kind") for d in docs}
    expected = {"Deployment", "Service", "ConfigMap"}
    if layout == "standalone":
        expected |= {"PodDisruptionBudget", "HorizontalPodAutoscaler"}
    c.check(f"{layout}: has kinds {sorted(expected)}", expected <= kinds,
            f"missing {sorted(expected - kinds)}")

    deployments = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == GATE]
    if not c.check(f"{layout}: Deployment {GATE} exists", len(deployments) == 1):
        return
    deployment = deployments[0]
    pod = deployment["spec"]["template"]["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
    containers = pod.get("containers") or []
    gates = [x for x in containers if x.get("name") == GATE]
    if not c.check(f"{layout}: pod has a container named {GATE}", len(gates) == 1):
        return
    gate = gates[0]

    c.check(f"{layout}: Deployment selector matches its pod labels",
            labels_match(deployment["spec"].get("selector"), pod_labels))
    c.check(f"{layout}: pod does not mount a service account token",
            pod.get("automountServiceAccountToken") is False)

    # Probes
    ports = {p.get("name"): p.get("containerPort") for p in gate.get("ports") or []}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        http = ((gate.get(probe) or {}).get("httpGet")) or {}
        port = http.get("port")
        port_ok = port in ports or port in ports.values()
        c.check(f"{layout}: gate {probe} is GET {path} on the gate's port",
                http.get("path") == path and port_ok, f"got {http}")

    # Configuration through envFrom from the generated ConfigMap
    env_from = [e.get("configMapRef", {}).get("name") for e in gate.get("envFrom") or []]
    configmaps = {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap")}
    referenced = [n for n in env_from if n in configmaps]
    c.check(f"{layout}: gate takes its config from a ConfigMap via envFrom",
            len(referenced) == 1, f"envFrom={env_from} configmaps={sorted(configmaps)}")
    config = (configmaps[referenced[0]].get("data") or {}) if referenced else {}
    required = {"UPSTREAM_URL", "RESOURCE_URI", "AUTHORIZATION_SERVER"}
    c.check(f"{layout}: ConfigMap sets {sorted(required)}", required <= set(config),
            f"missing {sorted(required - set(config))}")
    unknown = sorted(set(config) - variables) if variables else []
    c.check(f"{layout}: ConfigMap keys are all variables of docs/INTERFACE.md",
            bool(variables) and not unknown, f"unknown {unknown}" if variables else "INTERFACE.md not found")
    resource = urlsplit(config.get("RESOURCE_URI", ""))
    c.check(f"{layout}: RESOURCE_URI is https with a path and no trailing slash",
            resource.scheme == "https" and resource.path not in ("", "/")
            and not resource.path.endswith("/"), config.get("RESOURCE_URI", ""))
    listen_port = int(config.get("LISTEN_ADDR", "0.0.0.0:8080").rsplit(":", 1)[1])
    c.check(f"{layout}: gate containerPort matches LISTEN_ADDR ({listen_port})",
            listen_port in ports.values(), f"ports={ports}")

    grace = pod.get("terminationGracePeriodSeconds", 30)
    shutdown = duration_seconds(config.get("SHUTDOWN_TIMEOUT", "10s"))
    c.check(f"{layout}: terminationGracePeriodSeconds ({grace}) exceeds SHUTDOWN_TIMEOUT",
            grace > shutdown)

    for container in containers:
        check_container_hardening(c, layout, pod, container)

    # The Service reaches the gate and nothing else.
    services = [d for d in of_kind(docs, "Service") if d["metadata"]["name"] == GATE]
    if c.check(f"{layout}: Service {GATE} exists", len(services) == 1):
        svc = services[0]["spec"]
        selector_ok = bool(svc.get("selector")) and all(
            pod_labels.get(k) == v for k, v in svc["selector"].items())
        targets = [p.get("targetPort") for p in svc.get("ports") or []]
        target_ok = bool(targets) and all(t in ports or t in ports.values() for t in targets)
        c.check(f"{layout}: Service selects the gate's pods and targets only the gate's port",
                selector_ok and target_ok, f"selector={svc.get('selector')} targetPorts={targets}")

    upstream = urlsplit(config.get("UPSTREAM_URL", ""))
    if layout == "sidecar":
        c.check("sidecar: pod has 2 containers (MCP server + gate)", len(containers) == 2,
                f"got {[x.get('name') for x in containers]}")
        c.check("sidecar: gate's UPSTREAM_URL points at localhost",
                upstream.scheme == "http" and upstream.hostname in LOOPBACK_HOSTS,
                config.get("UPSTREAM_URL", ""))
        policies = of_kind(docs, "NetworkPolicy")
        only_gate_port = any(
            labels_match(p["spec"].get("podSelector"), pod_labels)
            and "Ingress" in (p["spec"].get("policyTypes") or [])
            and all([pt.get("port") for pt in rule.get("ports") or []] in ([listen_port], ["http"])
                    for rule in p["spec"].get("ingress") or [])
            for p in policies)
        c.check("sidecar: NetworkPolicy admits ingress to the gate's port only", only_gate_port)
    else:
        c.check("standalone: pod has 1 container (the gate)", len(containers) == 1,
                f"got {[x.get('name') for x in containers]}")
        c.check("standalone: UPSTREAM_URL points at a Service, not localhost",
                upstream.scheme in ("http", "https") and upstream.hostname not in LOOPBACK_HOSTS
                and bool(upstream.hostname), config.get("UPSTREAM_URL", ""))
        pdbs = of_kind(docs, "PodDisruptionBudget")
        c.check("standalone: PodDisruptionBudget selects the gate Deployment's pods",
                len(pdbs) == 1 and labels_match(pdbs[0]["spec"].get("selector"), pod_labels)
                and ("minAvailable" in pdbs[0]["spec"] or "maxUnavailable" in pdbs[0]["spec"]))
        hpas = of_kind(docs, "HorizontalPodAutoscaler")
        target = (hpas[0]["spec"].get("scaleTargetRef") or {}) if len(hpas) == 1 else {}
        c.check("standalone: HorizontalPodAutoscaler targets the gate Deployment",
                target.get("kind") == "Deployment" and target.get("name") == GATE
                and target.get("apiVersion") == "apps/v1", f"scaleTargetRef={target}")
        if hpas:
            spec = hpas[0]["spec"]
            c.check("standalone: HPA keeps at least 2 replicas, max >= min",
                    spec.get("minReplicas", 1) >= 2 and spec.get("maxReplicas", 0) >= spec.get("minReplicas", 1))
        c.check("standalone: Deployment leaves replicas to the HPA",
                "replicas" not in deployment["spec"])


# ----------------------------------------------------------------------------- compose + realm

def check_compose_and_realm(c: Checks, variables: set[str]) -> None:
    import yaml

    compose_path = DEPLOY / "compose" / "docker-compose.yml"
    try:
        compose = yaml.safe_load(compose_path.read_text())
        parsed = isinstance(compose, dict)
    except (OSError, yaml.YAMLError) as e:
        compose, parsed = None, False
        c.check("compose: docker-compose.yml parses as YAML", False, str(e))
    else:
        c.check("compose: docker-compose.yml parses as YAML", parsed)

    realm_path = DEPLOY / "compose" / "keycloak" / "mcp-realm.json"
    try:
        realm = json.loads(realm_path.read_text())
    except (OSError, ValueError) as e:
        realm = None
        c.check("realm: mcp-realm.json parses as JSON", False, str(e))
    else:
        c.check("realm: mcp-realm.json parses as JSON", isinstance(realm, dict))

    services = (compose or {}).get("services") or {}
    wanted = {"keycloak", "mcp-gate", "mcp-server"}
    c.check(f"compose: services {sorted(wanted)}", wanted <= set(services),
            f"got {sorted(services)}")

    kc = services.get("keycloak") or {}
    command = kc.get("command")
    command = shlex.split(command) if isinstance(command, str) else list(command or [])
    c.check("compose: keycloak is quay.io/keycloak/keycloak running start-dev --import-realm",
            str(kc.get("image", "")).startswith("quay.io/keycloak/keycloak:")
            and "start-dev" in command and "--import-realm" in command,
            f"image={kc.get('image')} command={command}")
    mounts = [str(v) for v in kc.get("volumes") or []]
    realm_mounted = any(
        (compose_path.parent / m.split(":")[0]).resolve() == realm_path.resolve()
        and "/opt/keycloak/data/import/" in m for m in mounts)
    c.check("compose: realm file is mounted into /opt/keycloak/data/import/", realm_mounted, f"{mounts}")

    gate = services.get("mcp-gate") or {}
    env = gate.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    env = {k: str(v) for k, v in env.items()}
    build = gate.get("build") or {}
    context = build.get("context") if isinstance(build, dict) else build
    c.check("compose: mcp-gate is built from the repository's Dockerfile",
            bool(context) and (compose_path.parent / context / "Dockerfile").resolve() == (ROOT / "Dockerfile").resolve(),
            f"build={build}")
    unknown = sorted(set(env) - variables) if variables else []
    c.check("compose: mcp-gate environment uses only variables of docs/INTERFACE.md",
            bool(variables) and not unknown, f"unknown {unknown}")
    upstream = urlsplit(env.get("UPSTREAM_URL", ""))
    c.check("compose: mcp-gate's UPSTREAM_URL is the mcp-server service",
            upstream.hostname == "mcp-server", env.get("UPSTREAM_URL", ""))
    c.check("compose: mcp-gate runs with a read-only root filesystem and no capabilities",
            gate.get("read_only") is True and "ALL" in (gate.get("cap_drop") or []))
    server = services.get("mcp-server") or {}
    c.check("compose: mcp-server runs server-everything on a node image, with no published port",
            str(server.get("image", "")).startswith("node:")
            and "@modelcontextprotocol/server-everything" in " ".join(map(str, server.get("command") or []))
            and not server.get("ports"))
    kc_env = kc.get("environment") or {}
    if isinstance(kc_env, list):
        kc_env = dict(e.split("=", 1) for e in kc_env)
    realm_name = (realm or {}).get("realm")
    expected_issuer = f"{str(kc_env.get('KC_HOSTNAME', '')).rstrip('/')}/realms/{realm_name}"
    c.check("compose: AUTHORIZATION_SERVER is Keycloak's issuer for the realm",
            env.get("AUTHORIZATION_SERVER") == expected_issuer,
            f"{env.get('AUTHORIZATION_SERVER')} != {expected_issuer}")

    if realm is None:
        return
    c.check("realm: realm is named mcp", realm_name == "mcp", f"got {realm_name}")
    scopes = {s.get("name"): s for s in realm.get("clientScopes") or []}
    audience_scopes = [
        (name, m.get("config") or {})
        for name, s in scopes.items() for m in s.get("protocolMappers") or []
        if m.get("protocolMapper") == "oidc-audience-mapper"]
    resource = env.get("RESOURCE_URI")
    matching = [name for name, cfg in audience_scopes
                if cfg.get("included.custom.audience") == resource and cfg.get("access.token.claim") == "true"]
    c.check("realm: a client scope's audience mapper adds RESOURCE_URI to the access token's aud",
            bool(matching), f"audience mappers {audience_scopes}, RESOURCE_URI={resource}")
    c.check("realm: that scope is a realm default (dynamically registered clients get it too)",
            bool(matching) and matching[0] in (realm.get("defaultDefaultClientScopes") or []))
    required_scopes = env.get("REQUIRED_SCOPES", "").replace(",", " ").split()
    c.check("realm: every REQUIRED_SCOPES entry is a client scope",
            all(s in scopes for s in required_scopes), f"{required_scopes}")
    c.check("realm: the `basic` scope (sub claim) is declared",
            any(m.get("protocolMapper") == "oidc-sub-mapper"
                for m in (scopes.get("basic") or {}).get("protocolMappers") or []))
    redirects = {u for cl in realm.get("clients") or [] for u in cl.get("redirectUris") or []}
    c.check("realm: both Claude.ai callback URLs are allowed redirect URIs", CLAUDE_CALLBACKS <= redirects,
            f"missing {sorted(CLAUDE_CALLBACKS - redirects)}")
    policies = (realm.get("components") or {}).get(
        "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy") or []
    trusted = [p for p in policies if p.get("providerId") == "trusted-hosts" and p.get("subType") == "anonymous"]
    cfg = (trusted[0].get("config") or {}) if trusted else {}
    c.check("realm: anonymous dynamic client registration allowed (trusted-hosts relaxed)",
            len(trusted) == 1 and cfg.get("host-sending-registration-request-must-match") == ["false"]
            and {"claude.ai", "claude.com"} <= set(cfg.get("trusted-hosts") or []), f"{cfg}")
    users = [u for u in realm.get("users") or []
             if u.get("enabled") and any(cr.get("type") == "password" for cr in u.get("credentials") or [])]
    c.check("realm: a test user with a password exists", bool(users))


# ----------------------------------------------------------------------------- Dockerfile

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def check_dockerfile(c: Checks) -> None:
    path = ROOT / "Dockerfile"
    if not c.check("Dockerfile: exists", path.exists()):
        return
    instructions = dockerfile_instructions(path.read_text())
    stages: list[list[tuple[str, str]]] = []
    for ins in instructions:
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    froms = [s[0][1] for s in stages]
    c.check("Dockerfile: two stages or more", len(stages) >= 2, f"FROM lines {froms}")
    if not stages:
        return
    builder, final = stages[0], stages[-1]
    c.check("Dockerfile: builder is rust:1-bookworm AS builder",
            re.fullmatch(r"(--platform=\S+\s+)?rust:1-bookworm\s+AS\s+builder", builder[0][1], re.I) is not None,
            builder[0][1])
    c.check("Dockerfile: builder runs cargo build --release --locked",
            any(i == "RUN" and "cargo build" in a and "--release" in a and "--locked" in a for i, a in builder))
    c.check("Dockerfile: runtime is gcr.io/distroless/cc-debian12:nonroot",
            final[0][1].split()[0] == "gcr.io/distroless/cc-debian12:nonroot", final[0][1])
    c.check("Dockerfile: runtime copies the binary from the builder",
            any(i == "COPY" and "--from=builder" in a and "/mcp-gate" in a for i, a in final))
    users = [a for i, a in final if i == "USER"]
    user = users[-1].split(":")[0] if users else ""
    c.check("Dockerfile: runtime USER is nonroot (65532)", user in ("nonroot", "65532"), f"USER {users}")
    c.check("Dockerfile: EXPOSE 8080", any(i == "EXPOSE" and "8080" in a.split() for i, a in final))

    def exec_form(args: str) -> list | None:
        try:
            value = json.loads(args)
        except ValueError:
            return None
        return value if isinstance(value, list) else None

    health = [a for i, a in final if i == "HEALTHCHECK"]
    cmd = None
    if health:
        m = re.search(r"\bCMD\s+(\[.*\])\s*$", health[-1])
        cmd = exec_form(m.group(1)) if m else None
    c.check('Dockerfile: HEALTHCHECK CMD ["/mcp-gate","healthcheck"] (exec form)',
            cmd == ["/mcp-gate", "healthcheck"], f"{health}")
    entry = [exec_form(a) for i, a in final if i == "ENTRYPOINT"]
    c.check('Dockerfile: ENTRYPOINT ["/mcp-gate"] (exec form)', bool(entry) and entry[-1] == ["/mcp-gate"],
            f"{entry}")

    ignore = ROOT / ".dockerignore"
    patterns = set(ignore.read_text().split()) if ignore.exists() else set()
    c.check(".dockerignore: leaves out target/ and .git", {"target", ".git"} <= {p.strip("/") for p in patterns},
            f"{sorted(patterns)}")


def check_readme(c: Checks, variables: set[str]) -> None:
    path = ROOT / "README.md"
    rows = set(re.findall(r"^\| ([A-Z][A-Z0-9_]+) \|", path.read_text(), re.M)) if path.exists() else set()
    c.check("README.md: Configuration table lists exactly the variables of docs/INTERFACE.md",
            bool(variables) and rows == variables,
            f"missing {sorted(variables - rows)}, extra {sorted(rows - variables)}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubectl", default="kubectl")
    args = parser.parse_args()
    c = Checks()
    try:
        import yaml  # noqa: F401
    except ImportError:
        c.check("PyYAML is importable", False, "pip install pyyaml")
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    variables = interface_variables()
    c.check("docs/INTERFACE.md lists the variables", bool(variables))
    for layout in ("sidecar", "standalone"):
        check_layout(c, args.kubectl, layout, variables)
    check_compose_and_realm(c, variables)
    check_dockerfile(c)
    check_readme(c, variables)
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
