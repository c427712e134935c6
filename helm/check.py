#!/usr/bin/env python3
"""Chart checks for CI: lint the chart with a real Helm engine (helm-python-sdk), render it with
every values file in hearken/ci/, validate every rendered object against the Kubernetes schemas
(kubernetes-validate), and assert the conventions the chart promises (draining, probes,
security). Prints 'chart: N passed, M failed' and exits non-zero on any failure.

    python3 helm/check.py            # with helm-python-sdk and kubernetes-validate installed
"""
import glob, os, re, sys

import helm_python as helm
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(HERE, "hearken")
KUBE = "1.33.0"
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    return int(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m[2]]


lint = helm.lint(CHART, strict=True)
problems = [m for m in lint.get("messages", []) if m.get("severity", 0) >= 2]
check("helm lint --strict", not problems and not lint.get("errors"), problems or lint.get("errors"))

for values_file in sorted(glob.glob(os.path.join(CHART, "ci", "*.yaml"))):
    label = os.path.basename(values_file)
    values = yaml.safe_load(open(values_file)) or {}
    lint = helm.lint(CHART, values, strict=True)
    problems = [m for m in lint.get("messages", []) if m.get("severity", 0) >= 2]
    check(f"{label}: lint", not problems and not lint.get("errors"), problems or lint.get("errors"))
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name="demo", namespace="calls")
    objects = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append((path, doc))
    check(f"{label}: renders objects", len(objects) >= 4, [p for p, _ in objects])
    for path, doc in objects:
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            continue  # a CRD: not in the Kubernetes schemas; checked below
        try:
            kubernetes_validate.validate(doc, KUBE, strict=True)
            ok, detail = True, ""
        except Exception as e:  # ValidationError, version errors
            ok, detail = False, str(e)[:300]
        check(f"{label}: {doc['kind']} {doc['metadata']['name']} valid for Kubernetes {KUBE}", ok, detail)

    by_kind = {}
    for _, doc in objects:
        by_kind.setdefault(doc["kind"], []).append(doc)
    merged = dict(yaml.safe_load(open(os.path.join(CHART, "values.yaml"))))
    for k, v in values.items():
        merged[k] = {**merged.get(k, {}), **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    deployment = by_kind["Deployment"][0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    drain = seconds(merged["server"]["drainDelay"]) + seconds(merged["server"]["drainDeadline"])
    check(f"{label}: terminationGracePeriodSeconds > drain deadline", pod["terminationGracePeriodSeconds"] > seconds(merged["server"]["drainDeadline"]) and pod["terminationGracePeriodSeconds"] >= 40, pod["terminationGracePeriodSeconds"])
    check(f"{label}: readiness is the gRPC probe of hearken.v1.ListeningService", container["readinessProbe"]["grpc"] == {"port": merged["service"]["grpcPort"], "service": "hearken.v1.ListeningService"}, container["readinessProbe"])
    check(f"{label}: liveness is the gRPC probe of the server as a whole", container["livenessProbe"]["grpc"] == {"port": merged["service"]["grpcPort"]} and isinstance(container["livenessProbe"]["grpc"]["port"], int), container["livenessProbe"])
    check(f"{label}: liveness is checked less often than readiness", container["livenessProbe"]["periodSeconds"] > container["readinessProbe"]["periodSeconds"])
    check(f"{label}: rolling update never drops below the wanted pods", deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": "25%"}, deployment["spec"]["strategy"])
    check(f"{label}: drain flags passed to the server", f"--drain-delay={merged['server']['drainDelay']}" in container["args"] and f"--drain-deadline={merged['server']['drainDeadline']}" in container["args"], container["args"])
    check(f"{label}: no preStop sleep doubling the in-process drain delay", "lifecycle" not in container)
    check(f"{label}: admission flags passed (peer rate limiting only when asked)",
          f"--max-concurrent-transcripts={merged['server']['maxConcurrentTranscripts']}" in container["args"]
          and f"--max-watchers={merged['server']['maxWatchers']}" in container["args"]
          and ("--stream-open-rate-by-peer" in container["args"]) == bool(merged["server"]["streamOpenRateByPeer"]),
          container["args"])
    sc, psc = container["securityContext"], pod["securityContext"]
    check(f"{label}: non-root, read-only root, no privilege escalation, no capabilities", psc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False and sc["capabilities"]["drop"] == ["ALL"], (psc, sc))
    check(f"{label}: no service account token", pod.get("automountServiceAccountToken") is False)
    check(f"{label}: config checksum annotation rolls pods", "checksum/config" in deployment["spec"]["template"]["metadata"]["annotations"])
    services = by_kind["Service"]
    check(f"{label}: gRPC ports speak gRPC (appProtocol)", all(p.get("appProtocol") == "grpc" for s in services for p in s["spec"]["ports"] if p["name"] == "grpc"), services)
    main = [s for s in services if s["spec"].get("clusterIP") != "None"][0]
    check(f"{label}: the metrics port is served and passed to the server", any(p["name"] == "metrics" and p["port"] == merged["service"]["metricsPort"] for p in main["spec"]["ports"]) and f"--metrics-addr=0.0.0.0:{merged['service']['metricsPort']}" in container["args"] and any(p["name"] == "metrics" for p in container["ports"]), (main, container["args"]))
    ui_services = [s for s in services if s["metadata"]["name"].endswith("-ui")]
    if merged["ui"]["enabled"]:
        ok = (len(ui_services) == 1 and ui_services[0]["spec"]["sessionAffinity"] == "ClientIP"
              and ui_services[0]["spec"]["ports"][0]["port"] == merged["ui"]["port"]
              and f"--ui-addr=0.0.0.0:{merged['ui']['port']}" in container["args"]
              and ("--ui-show-text" in container["args"]) == bool(merged["ui"]["showText"])
              and any(p["name"] == "ui" for p in container["ports"]))
        check(f"{label}: the floor page is served on its own sticky Service", ok, (ui_services, container["args"]))
        if merged["networkPolicy"]["enabled"]:
            rules = by_kind["NetworkPolicy"][0]["spec"]["ingress"]
            check(f"{label}: the network policy admits the floor page's port", any(r["ports"][0]["port"] == merged["ui"]["port"] for r in rules), rules)
    else:
        check(f"{label}: no floor page unless enabled", not ui_services and not any(a.startswith("--ui") for a in container["args"]) and not any(p["name"] == "ui" for p in container["ports"]), container["args"])
    monitors = by_kind.get("ServiceMonitor", [])
    if merged["serviceMonitor"]["enabled"]:
        ok = len(monitors) == 1 and monitors[0]["spec"]["endpoints"][0]["port"] == "metrics" and monitors[0]["spec"]["endpoints"][0]["path"] == "/metrics" and all(main["metadata"]["labels"].get(k) == v for k, v in monitors[0]["spec"]["selector"]["matchLabels"].items()) and all(monitors[0]["metadata"]["labels"].get(k) == v for k, v in merged["serviceMonitor"]["labels"].items())
        check(f"{label}: ServiceMonitor scrapes /metrics on the metrics port of the service", ok, monitors)
    else:
        check(f"{label}: no ServiceMonitor unless enabled", not monitors, monitors)
    otel = [e for e in container.get("env", []) if e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT"]
    check(f"{label}: OTLP endpoint passed only when set", [e["value"] for e in otel] == ([merged["otel"]["endpoint"]] if merged["otel"]["endpoint"] else []), otel)
    check(f"{label}: a headless service for client-side balancing", any(s["spec"].get("clusterIP") == "None" for s in services))
    pdbs = by_kind.get("PodDisruptionBudget", [])
    check(f"{label}: PodDisruptionBudget as configured", (len(pdbs) == 1 and pdbs[0]["spec"]["minAvailable"] == merged["podDisruptionBudget"]["minAvailable"]) if merged["podDisruptionBudget"]["enabled"] else not pdbs, pdbs)
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    check(f"{label}: HPA only when enabled, and then no fixed replicas", (len(hpas) == 1 and "replicas" not in deployment["spec"]) if merged["autoscaling"]["enabled"] else (not hpas and deployment["spec"]["replicas"] == merged["replicaCount"]), hpas)
    netpols = by_kind.get("NetworkPolicy", [])
    check(f"{label}: NetworkPolicy only when enabled", bool(netpols) == merged["networkPolicy"]["enabled"])
    maps = by_kind.get("ConfigMap", [])
    if merged.get("rubric"):
        check(f"{label}: the rubric is mounted and passed", len(maps) == 1 and "--rubric=/etc/hearken/rubric.toml" in container["args"] and maps[0]["data"]["rubric.toml"].strip() == merged["rubric"].strip(), container["args"])
    else:
        check(f"{label}: no ConfigMap without a rubric", not maps and not any(a.startswith("--rubric") for a in container["args"]))
    tests = [d for d in by_kind.get("Pod", []) if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    check(f"{label}: helm test replays a bundled call with hearken replay", len(tests) == 1 and tests[0]["spec"]["containers"][0]["args"][:2] == ["replay", "/usr/share/hearken/samples/demo-calls.jsonl"], tests)

# The schema refuses what it should.
with helm.Chart.load(CHART) as chart:
    try:
        chart.render({"service": {"grpcPort": "not-a-port"}}, name="demo", namespace="calls")
        check("values.schema.json refuses a non-numeric port", False, "rendered")
    except Exception:
        check("values.schema.json refuses a non-numeric port", True)

passed = sum(results)
print(f"chart: {passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
