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


def model_checks(label, merged, deployment):
    """A model file from the volume the operator names: mounted, passed with --model, the pods
    rolled by its revision; none of it without one."""
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]
    c = pod["spec"]["containers"][0]
    model = merged.get("model", {})
    volumes = [v for v in pod["spec"].get("volumes", []) if v["name"] == "model"]
    mounts = [m for m in c.get("volumeMounts", []) if m["name"] == "model"]
    passed = [a for a in c["args"] if a.startswith("--model")]
    if model.get("volume"):
        source = {k: v for k, v in volumes[0].items() if k != "name"} if volumes else None
        check(f"{label}: {name}: the model volume is mounted read-only and passed with --model",
              source == model["volume"] and len(mounts) == 1 and mounts[0]["mountPath"] == "/etc/hearken-model"
              and mounts[0].get("readOnly") is True and passed == [f"--model=/etc/hearken-model/{model['file']}"],
              (volumes, mounts, passed))
        revision = pod["metadata"].get("annotations", {}).get("checksum/model")
        check(f"{label}: {name}: the model's revision rolls the pods", revision == (model.get("revision") or None), revision)
    else:
        check(f"{label}: {name}: the embedded model without a model volume", not volumes and not mounts and not passed, (volumes, passed))


def pipeline_checks(label, merged, by_kind, grpc_services):
    p = merged["pipeline"]
    named = lambda kind: [o for o in by_kind.get(kind, []) if o["metadata"]["name"].endswith("-pipeline")]
    deployments = named("Deployment")
    if not p["enabled"]:
        check(f"{label}: no pipeline unless enabled", not any(named(k) for k in ("Deployment", "Service", "ScaledObject", "PodDisruptionBudget")))
        return
    check(f"{label}: one pipeline Deployment", len(deployments) == 1, deployments)
    d = deployments[0]
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c["args"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    check(f"{label}: pipeline pods are not selected by the gRPC Services", all(any(labels.get(k) != v for k, v in s["spec"]["selector"].items()) for s in grpc_services), labels)
    serve = [x for x in by_kind["Deployment"] if x is not d][0]
    check(f"{label}: the gRPC Deployment does not select pipeline pods", any(labels.get(k) != v for k, v in serve["spec"]["selector"]["matchLabels"].items()))
    check(f"{label}: pipeline args: brokers, group, topics, metrics port",
          args[0] == "pipeline" and f"--brokers={p['brokers']}" in args and f"--group={p['group']}" in args
          and f"--input-topic={','.join(p['inputTopics'])}" in args and f"--dead-letter-topic={p['deadLetterTopic']}" in args
          and f"--state-topic={p['stateTopic']}" in args
          and f"--metrics-addr=0.0.0.0:{merged['service']['metricsPort']}" in args, args)
    for kind in ("updates", "alerts", "scorecards", "rejections"):
        topic = p[f"{kind}Topic"]
        check(f"{label}: --{kind}-topic passed only when set", (f"--{kind}-topic={topic}" in args) if topic else not any(a.startswith(f"--{kind}-topic") for a in args), args)
    props = [args[i + 1] for i, a in enumerate(args) if a == "-X"]
    check(f"{label}: kafkaConfig passed as -X KEY=VALUE", sorted(props) == sorted(f"{k}={v}" for k, v in p["kafkaConfig"].items()), props)
    secret = p["kafkaConfigSecret"]
    mounted = any(v.get("secret", {}).get("secretName") == secret for v in pod.get("volumes", [])) if secret else True
    check(f"{label}: the credentials secret is mounted and passed as a file, never as args", mounted and (("--kafka-config-file=/etc/hearken-kafka/kafka.properties" in args) == bool(secret)) and not any("password" in a for a in args), args)
    check(f"{label}: pipeline readiness is group membership (/healthz), liveness the loop (/livez)", c["readinessProbe"]["httpGet"]["path"] == "/healthz" and c["livenessProbe"]["httpGet"]["path"] == "/livez" and c["readinessProbe"]["httpGet"]["port"] == "metrics")
    sc, psc = c["securityContext"], pod["securityContext"]
    check(f"{label}: pipeline non-root, read-only root, no capabilities", psc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True and sc["capabilities"]["drop"] == ["ALL"])
    check(f"{label}: the pipeline rolls one member at a time", d["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0})
    scaled = named("ScaledObject")
    if p["autoscaling"]["enabled"]:
        ok = (len(scaled) == 1 and "replicas" not in d["spec"] and scaled[0]["spec"]["scaleTargetRef"]["name"] == d["metadata"]["name"]
              and scaled[0]["spec"]["maxReplicaCount"] == p["autoscaling"]["maxReplicas"]
              and [t["type"] for t in scaled[0]["spec"]["triggers"]] == ["prometheus"]
              and "hearken_pipeline_consumer_lag" in scaled[0]["spec"]["triggers"][0]["metadata"]["query"]
              and scaled[0]["spec"]["triggers"][0]["metadata"]["serverAddress"] == p["autoscaling"]["prometheusServer"])
        check(f"{label}: KEDA scales the pipeline on its unread records (not on committed-offset lag)", ok, scaled)
    else:
        check(f"{label}: fixed pipeline replicas without autoscaling", not scaled and d["spec"]["replicas"] == p["replicas"])
    services = named("Service")
    check(f"{label}: the pipeline's metrics Service selects its pods", len(services) == 1 and all(labels.get(k) == v for k, v in services[0]["spec"]["selector"].items()), services)
    monitors = named("ServiceMonitor")
    check(f"{label}: the pipeline is scraped when monitoring is on", len(monitors) == int(bool(merged["serviceMonitor"]["enabled"])), monitors)
    netpols = named("NetworkPolicy")
    ports = [merged["service"]["metricsPort"]] + ([merged["ui"]["port"]] if p.get("ui") else [])
    check(f"{label}: the pipeline's network policy admits only the metrics port (and the floor page's when on)", (len(netpols) == 1 and [r["ports"][0]["port"] for r in netpols[0]["spec"]["ingress"]] == ports) if merged["networkPolicy"]["enabled"] else not netpols, netpols)
    ui_services = [s for s in by_kind.get("Service", []) if s["metadata"]["name"].endswith("-pipeline-ui")]
    if p.get("ui"):
        ok = (len(ui_services) == 1 and ui_services[0]["spec"]["sessionAffinity"] == "ClientIP"
              and ui_services[0]["spec"]["ports"][0]["port"] == merged["ui"]["port"]
              and all(labels.get(k) == v for k, v in ui_services[0]["spec"]["selector"].items())
              and f"--ui-addr=0.0.0.0:{merged['ui']['port']}" in args and "--ui-plaintext" in args
              and ("--ui-show-text" in args) == bool(merged["ui"]["showText"])
              and any(x["name"] == "ui" for x in c["ports"]))
        check(f"{label}: the pipeline's floor page is served on its own sticky Service", ok, (ui_services, args))
    else:
        check(f"{label}: no pipeline floor page unless pipeline.ui", not ui_services and not any(a.startswith("--ui") for a in args), args)


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
        if doc["apiVersion"] in ("monitoring.coreos.com/v1", "keda.sh/v1alpha1"):
            continue  # CRDs: not in the Kubernetes schemas; checked below
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
    deployment = [d for d in by_kind["Deployment"] if not d["metadata"]["name"].endswith("-pipeline")][0]
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
    # The gRPC Service: not headless, not a floor page's.
    main = [s for s in services if s["spec"].get("clusterIP") != "None" and not s["metadata"]["name"].endswith("-ui")][0]
    check(f"{label}: the metrics port is served and passed to the server", any(p["name"] == "metrics" and p["port"] == merged["service"]["metricsPort"] for p in main["spec"]["ports"]) and f"--metrics-addr=0.0.0.0:{merged['service']['metricsPort']}" in container["args"] and any(p["name"] == "metrics" for p in container["ports"]), (main, container["args"]))
    ui_services = [s for s in services if s["metadata"]["name"].endswith("-ui") and not s["metadata"]["name"].endswith("-pipeline-ui")]
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
    monitors = [m for m in by_kind.get("ServiceMonitor", []) if not m["metadata"]["name"].endswith("-pipeline")]
    if merged["serviceMonitor"]["enabled"]:
        ok = len(monitors) == 1 and monitors[0]["spec"]["endpoints"][0]["port"] == "metrics" and monitors[0]["spec"]["endpoints"][0]["path"] == "/metrics" and all(main["metadata"]["labels"].get(k) == v for k, v in monitors[0]["spec"]["selector"]["matchLabels"].items()) and all(monitors[0]["metadata"]["labels"].get(k) == v for k, v in merged["serviceMonitor"]["labels"].items())
        check(f"{label}: ServiceMonitor scrapes /metrics on the metrics port of the service", ok, monitors)
    else:
        check(f"{label}: no ServiceMonitor unless enabled", not monitors, monitors)
    otel = [e for e in container.get("env", []) if e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT"]
    check(f"{label}: OTLP endpoint passed only when set", [e["value"] for e in otel] == ([merged["otel"]["endpoint"]] if merged["otel"]["endpoint"] else []), otel)
    check(f"{label}: a headless service for client-side balancing", any(s["spec"].get("clusterIP") == "None" for s in services))
    pdbs = [p for p in by_kind.get("PodDisruptionBudget", []) if not p["metadata"]["name"].endswith("-pipeline")]
    check(f"{label}: PodDisruptionBudget as configured", (len(pdbs) == 1 and pdbs[0]["spec"]["minAvailable"] == merged["podDisruptionBudget"]["minAvailable"]) if merged["podDisruptionBudget"]["enabled"] else not pdbs, pdbs)
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    check(f"{label}: HPA only when enabled, and then no fixed replicas", (len(hpas) == 1 and "replicas" not in deployment["spec"]) if merged["autoscaling"]["enabled"] else (not hpas and deployment["spec"]["replicas"] == merged["replicaCount"]), hpas)
    netpols = [n for n in by_kind.get("NetworkPolicy", []) if not n["metadata"]["name"].endswith("-pipeline")]
    check(f"{label}: NetworkPolicy only when enabled", bool(netpols) == merged["networkPolicy"]["enabled"])
    maps = by_kind.get("ConfigMap", [])
    if merged.get("rubric"):
        check(f"{label}: the rubric is mounted and passed", len(maps) == 1 and "--rubric=/etc/hearken/rubric.toml" in container["args"] and maps[0]["data"]["rubric.toml"].strip() == merged["rubric"].strip(), container["args"])
    else:
        check(f"{label}: no ConfigMap without a rubric", not maps and not any(a.startswith("--rubric") for a in container["args"]))
    pipelines = [d for d in by_kind["Deployment"] if d["metadata"]["name"].endswith("-pipeline")]
    for d in [deployment] + pipelines:
        model_checks(label, merged, d)
    pipeline_checks(label, merged, by_kind, [s for s in services if s["spec"].get("clusterIP") != "None" and not s["metadata"]["name"].endswith("-pipeline-ui")])
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
