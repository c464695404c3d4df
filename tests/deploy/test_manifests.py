"""Offline validation of the Kubernetes manifests under deploy/.

Every document is checked against the Kubernetes JSON schemas bundled in the pinned
`kubernetes-validate` package, in strict mode (an unknown field fails), for the oldest and the
newest Kubernetes version the deployment supports. Then the properties the deployment depends
on are asserted across files: probes, read-only model volume, non-root pods, the HPA metric,
the llmedge TOML in the ConfigMap and how its paths and URLs meet the other manifests.

Run: make test-deploy (or .venv/bin/python -m pytest tests/deploy).
"""

import copy
import ipaddress
import sys
from pathlib import Path
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the CI machines have 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The oldest Kubernetes release the manifests target (the preStop sleep action is on by
# default from 1.30) and the newest schema set this kubernetes-validate release ships.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
KUSTOMIZE_KIND = "Kustomization"


def load_docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def manifest_files():
    return sorted(p for p in DEPLOY.rglob("*.yaml"))


def all_docs():
    return [(p, d) for p in manifest_files() for d in load_docs(p)]


def k8s_docs():
    return [(p, d) for p, d in all_docs() if d.get("kind") != KUSTOMIZE_KIND]


def one(kind, name):
    found = [d for _, d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def validate(doc, version):
    """Raise unless `doc` is a valid object of its kind (strict: no unknown fields)."""
    kubernetes_validate.validate(doc, version, strict=True)


# --- schema validation -------------------------------------------------------------------


def test_deploy_has_the_expected_objects():
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in k8s_docs()}
    for expected in [
        ("Namespace", "llmedge"),
        ("ServiceAccount", "llmedge"),
        ("ConfigMap", "llmedge-config"),
        ("PersistentVolumeClaim", "llmedge-models"),
        ("PersistentVolumeClaim", "llmedge-audit"),
        ("Deployment", "llmedge"),
        ("Service", "llmedge"),
        ("Deployment", "llmedge-redis"),
        ("Service", "llmedge-redis"),
        ("HorizontalPodAutoscaler", "llmedge"),
        ("PodDisruptionBudget", "llmedge"),
        ("NetworkPolicy", "default-deny-all"),
        ("NetworkPolicy", "llmedge"),
        ("NetworkPolicy", "llmedge-redis"),
        ("ConfigMap", "adapter-config"),
        ("Pod", "llmedge-model-loader"),
    ]:
        assert expected in kinds, f"{expected} missing from deploy/"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    "path", [p for p in manifest_files() if p.name != "kustomization.yaml"], ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_manifest_validates_strictly(path, version):
    docs = load_docs(path)
    assert docs
    for doc in docs:
        # SchemaNotFoundError (an unknown kind or apiVersion) is a failure too.
        validate(doc, version)


def test_kustomization_lists_every_app_manifest():
    kust = load_docs(DEPLOY / "kustomization.yaml")[0]
    assert kust["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kust["namespace"] == "llmedge"
    listed = set(kust["resources"])
    for name in listed:
        assert (DEPLOY / name).is_file(), f"kustomization lists missing {name}"
    # Everything at the top level is applied; monitoring/ and tools/ are applied by hand.
    top = {p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == top
    assert [i["name"] for i in kust["images"]] == ["llmedge"]


BROKEN = {
    "unknown field in a probe": lambda c: c["readinessProbe"].update(httpGett={"path": "/ready"}),
    "unknown container field": lambda c: c.update(readinesProbe={"httpGet": {"path": "/ready", "port": 8080}}),
    "port as a word": lambda c: c["ports"][0].update(containerPort="eighty"),
    "readOnly as a string": lambda c: c["volumeMounts"][1].update(readOnly="yes"),
}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("breakage", BROKEN, ids=list(BROKEN))
def test_broken_copy_is_rejected(breakage, version):
    deployment = one("Deployment", "llmedge")
    validate(deployment, version)
    broken = copy.deepcopy(deployment)
    BROKEN[breakage](broken["spec"]["template"]["spec"]["containers"][0])
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken, version)


def test_broken_file_is_rejected_by_the_cli_path(tmp_path, capsys):
    """The file-level entry point (what `kubernetes-validate --strict FILE` runs) fails too."""
    good = DEPLOY / "hpa.yaml"
    text = good.read_text()
    assert kubernetes_validate.utils.validate_file(str(good), K8S_VERSIONS[0], True, True, True) == 0
    bad = tmp_path / "hpa.yaml"
    bad.write_text(text.replace("minReplicas: 2", "minReplicas: two\n  minReplica: 2"))
    assert kubernetes_validate.utils.validate_file(str(bad), K8S_VERSIONS[0], True, True, True) != 0
    assert "did not validate" in capsys.readouterr().out


# --- properties --------------------------------------------------------------------------


def pod_spec(name):
    return one("Deployment", name)["spec"]["template"]["spec"]


def container(name):
    (c,) = pod_spec(name)["containers"]
    return c


def named_port(c, name):
    (p,) = [p for p in c["ports"] if p["name"] == name]
    return p["containerPort"]


def llmedge_config():
    cm = one("ConfigMap", "llmedge-config")
    return tomllib.loads(cm["data"]["llmedge.toml"])


def mount_of(c, volume):
    (m,) = [m for m in c["volumeMounts"] if m["name"] == volume]
    return m


def volume(spec, name):
    (v,) = [v for v in spec["volumes"] if v["name"] == name]
    return v


def test_probes_point_at_ready_and_health_on_the_container_port():
    c = container("llmedge")
    port = named_port(c, "http")
    assert port == 8080
    expect = {"readinessProbe": "/ready", "livenessProbe": "/health", "startupProbe": "/health"}
    for probe, path in expect.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in ("http", port), probe
    # The startup probe gives a model load minutes before liveness may restart the container.
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_shutdown_drains_within_the_grace_period():
    spec = pod_spec("llmedge")
    pre_stop = container("llmedge")["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = llmedge_config()["server"]["shutdown_grace_secs"]
    assert spec["terminationGracePeriodSeconds"] > pre_stop + drain


def test_model_volume_is_read_only():
    spec = pod_spec("llmedge")
    mount = mount_of(container("llmedge"), "models")
    assert mount["readOnly"] is True
    claim = volume(spec, "models")["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    pvc = one("PersistentVolumeClaim", claim["claimName"])
    assert pvc["spec"]["accessModes"] == ["ReadOnlyMany"]
    # Every model the server loads lives on that read-only volume.
    for model in llmedge_config()["models"]:
        assert Path(model["path"]).is_relative_to(mount["mountPath"]), model["path"]


def test_configmap_toml_binds_all_interfaces_on_the_container_port():
    cfg = llmedge_config()
    host, _, port = cfg["server"]["bind"].rpartition(":")
    assert ipaddress.ip_address(host) == ipaddress.ip_address("0.0.0.0")
    assert int(port) == named_port(container("llmedge"), "http")
    mount = mount_of(container("llmedge"), "config")
    assert mount["readOnly"] is True
    args = container("llmedge")["args"]
    assert args[0] == "serve"
    config_path = Path(args[args.index("--config") + 1])
    assert config_path.parent == Path(mount["mountPath"])
    assert config_path.name in one("ConfigMap", volume(pod_spec("llmedge"), "config")["configMap"]["name"])["data"]


def test_cache_is_the_redis_service():
    cache = llmedge_config()["cache"]
    assert cache["backend"] == "redis"
    url = urlparse(cache["redis_url"])
    assert url.scheme == "redis"
    svc = one("Service", url.hostname)
    (port,) = svc["spec"]["ports"]
    assert port["port"] == url.port
    redis = container(url.hostname)
    assert named_port(redis, port["targetPort"]) == 6379
    assert svc["spec"]["selector"].items() <= one("Deployment", url.hostname)["spec"]["template"]["metadata"]["labels"].items()


def test_audit_dir_is_a_per_pod_directory_on_a_persistent_volume():
    c = container("llmedge")
    mount = mount_of(c, "audit")
    assert llmedge_config()["audit"]["dir"] == mount["mountPath"]
    assert mount.get("readOnly", False) is False
    assert mount["subPathExpr"] == "$(POD_NAME)"
    (env,) = [e for e in c["env"] if e["name"] == "POD_NAME"]
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    claim = volume(pod_spec("llmedge"), "audit")["persistentVolumeClaim"]["claimName"]
    assert one("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]


def pod_specs():
    specs = {}
    for _, d in k8s_docs():
        if d["kind"] == "Deployment":
            specs[d["metadata"]["name"]] = d["spec"]["template"]["spec"]
        elif d["kind"] == "Pod":
            specs[d["metadata"]["name"]] = d["spec"]
    return specs


@pytest.mark.parametrize("name", sorted(pod_specs()))
def test_pods_run_as_non_root_with_read_only_root_and_no_token(name):
    spec = pod_specs()[name]
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] != 0
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", 1) != 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc.get("privileged", False)
        for key in ("requests", "limits"):
            assert {"cpu", "memory"} <= c["resources"][key].keys(), (c["name"], key)


def test_llmedge_threads_match_its_cpu_limit_and_qos_is_guaranteed():
    res = container("llmedge")["resources"]
    assert res["requests"] == res["limits"]
    cpus = int(res["limits"]["cpu"])
    for model in llmedge_config()["models"]:
        assert model["threads"] == cpus


def test_service_account_token_is_not_mounted():
    spec = pod_spec("llmedge")
    sa = one("ServiceAccount", spec["serviceAccountName"])
    assert sa["automountServiceAccountToken"] is False


def test_service_selects_the_llmedge_pods_on_8080():
    svc = one("Service", "llmedge")
    labels = one("Deployment", "llmedge")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    (port,) = svc["spec"]["ports"]
    assert port["targetPort"] in ("http", 8080) and port["port"] == 8080


def test_hpa_scales_the_deployment_on_queue_depth_per_pod():
    hpa = one("HorizontalPodAutoscaler", "llmedge")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "llmedge")
    assert "replicas" not in one("Deployment", "llmedge")["spec"], "the HPA owns the replica count"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "llmedge_queue_depth"
    assert metric["pods"]["target"]["type"] == "AverageValue"
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_prometheus_adapter_rule_exposes_queue_depth_per_pod():
    cm = one("ConfigMap", "adapter-config")
    (rule,) = yaml.safe_load(cm["data"]["config.yaml"])["rules"]
    assert rule["seriesQuery"].startswith("llmedge_queue_depth{")
    assert rule["name"]["as"] == "llmedge_queue_depth"
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}
    assert "by (<<.GroupBy>>)" in rule["metricsQuery"]
    ann = one("Deployment", "llmedge")["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert int(ann["prometheus.io/port"]) == named_port(container("llmedge"), "http")
    assert ann["prometheus.io/path"] == "/metrics"


def test_pdb_keeps_replicas_serving():
    pdb = one("PodDisruptionBudget", "llmedge")
    labels = one("Deployment", "llmedge")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] < one("HorizontalPodAutoscaler", "llmedge")["spec"]["minReplicas"]


def test_network_policies_allow_only_api_ingress_and_redis_dns_egress():
    deny = one("NetworkPolicy", "default-deny-all")["spec"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny

    llm = one("NetworkPolicy", "llmedge")["spec"]
    labels = one("Deployment", "llmedge")["spec"]["template"]["metadata"]["labels"]
    assert llm["podSelector"]["matchLabels"].items() <= labels.items()
    assert sorted(llm["policyTypes"]) == ["Egress", "Ingress"]
    assert [p for rule in llm["ingress"] for p in rule["ports"]] == [{"port": 8080, "protocol": "TCP"}]
    egress_ports = set()
    redis_labels = one("Deployment", "llmedge-redis")["spec"]["template"]["metadata"]["labels"]
    for rule in llm["egress"]:
        # Every egress rule names its peers: no rule without `to` (that would be "anywhere"),
        # no ipBlock (the internet).
        assert rule["to"], rule
        for peer in rule["to"]:
            assert "ipBlock" not in peer
        ports = {(p["port"], p["protocol"]) for p in rule["ports"]}
        egress_ports |= ports
        if (6379, "TCP") in ports:
            # Same namespace (no namespaceSelector), and the selector picks the Redis pods only.
            (peer,) = rule["to"]
            assert peer.keys() == {"podSelector"}
            selector = peer["podSelector"]["matchLabels"].items()
            assert selector <= redis_labels.items() and not selector <= labels.items()
        else:
            assert ports == {(53, "UDP"), (53, "TCP")}
            (peer,) = rule["to"]
            assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    assert egress_ports == {(6379, "TCP"), (53, "UDP"), (53, "TCP")}

    red = one("NetworkPolicy", "llmedge-redis")["spec"]
    assert red["podSelector"]["matchLabels"].items() <= redis_labels.items()
    assert red["egress"] == []
    (rule,) = red["ingress"]
    (peer,) = rule["from"]
    assert peer.keys() == {"podSelector"}
    assert peer["podSelector"]["matchLabels"].items() <= labels.items()
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]


def test_namespace_enforces_restricted_pod_security():
    labels = one("Namespace", "llmedge")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_configmap_toml_is_accepted_by_llmedge_serve(tmp_path):
    """The real parser decides: `llmedge serve --check-config` refuses unknown keys, unknown
    model or adapter references and bad values, naming the file and line."""
    import os
    import subprocess

    llmedge = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "llmedge"
    assert llmedge.exists(), f"{llmedge} missing: build first (make build)"
    config = tmp_path / "llmedge.toml"
    config.write_text(one("ConfigMap", "llmedge-config")["data"]["llmedge.toml"])
    out = subprocess.run([str(llmedge), "serve", "--config", str(config), "--check-config"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "configuration OK" in out.stdout
    # And it can fail: a misspelt key is refused with its line.
    config.write_text(config.read_text().replace("request_timeout_secs", "request_timeout_sec"))
    out = subprocess.run([str(llmedge), "serve", "--config", str(config), "--check-config"],
                         capture_output=True, text=True)
    assert out.returncode == 73 and "llmedge.toml:" in out.stderr, out.stderr
