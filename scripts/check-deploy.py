#!/usr/bin/env python3
"""One source for the deployment: checks that what deploy/ ships agrees with itself and
with scripts/topology.sh, which runs it in the tests.

- compose's hubs take deploy/hub.env and set beside it exactly the variables the topology
  script sets beside it (secrets, the ledger, the public URL);
- compose mounts the files the topology script renders (nginx/, prometheus/, grafana/), and
  the script reads each of them;
- the host names in the files are compose's services: nginx's upstream and Prometheus's
  targets are the hub services, hub.env's Redis is the `redis` service, the ledger URL's
  host is `postgres`; every port is the hubs' 8080;
- Kubernetes: hub-config.yaml holds hub.env's keys and values, nginx.yaml holds
  nginx/dropwire.conf word for word but for the upstream servers, and the images are the
  ones compose pins;
- the shutdown budgets are longer than the hub's drain.

    .venv/bin/python scripts/check-deploy.py   (PyYAML: scripts/setup.sh; exit 1 and one line per disagreement)
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
problems: list[str] = []


def check(ok: bool, what: str) -> None:
    if not ok:
        problems.append(what)


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def k8s_docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


def image_of(ref: str) -> tuple[str, str]:
    name, _, tag = ref.rpartition(":")
    return name.split("/")[-1], tag


hub_env = env_file(DEPLOY / "hub.env")
compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
services = compose["services"]
topology = (ROOT / "scripts" / "topology.sh").read_text()
nginx_conf = (DEPLOY / "nginx" / "dropwire.conf").read_text()

# --- compose's hubs and the topology script's hubs ---------------------------------------
hubs = [n for n in services if n.startswith("hub-")]
check(len(hubs) == 2, f"compose has hub services {hubs}, the topology runs two")
topology_extra = set(re.findall(r'echo "(DROPWIRE_[A-Z_]+)=', topology))
for name in hubs:
    svc = services[name]
    check(svc.get("env_file") == ["hub.env"], f"compose {name}: env_file is not [hub.env]")
    extra = set(svc.get("environment", {}))
    check(extra == topology_extra,
          f"compose {name} sets {sorted(extra)} beside hub.env, scripts/topology.sh sets {sorted(topology_extra)}")
    check(not extra & set(hub_env), f"compose {name} overrides hub.env's {sorted(extra & set(hub_env))}")
bind_port = hub_env["DROPWIRE_BIND"].rpartition(":")[2]
check(bind_port == "8080", f"hub.env binds port {bind_port}, every other file says 8080")

# --- the files compose mounts are the files the topology script renders ------------------
mounts = {
    "nginx": ["./nginx/nginx.conf:/etc/nginx/nginx.conf:ro",
              "./nginx/dropwire.conf:/etc/nginx/conf.d/default.conf:ro"],
    "prometheus": ["./prometheus:/etc/prometheus:ro"],
}
for svc, wanted in mounts.items():
    for m in wanted:
        check(m in services[svc].get("volumes", []), f"compose {svc} does not mount {m}")
for shipped in ["deploy/hub.env", "deploy/nginx/nginx.conf", "deploy/nginx/dropwire.conf",
                "deploy/prometheus/prometheus.yml", "deploy/prometheus/alerts.yml",
                "deploy/prometheus/alerts.test.yml", "deploy/grafana/dashboards/dropwire.json"]:
    check(shipped in topology, f"scripts/topology.sh does not use {shipped}")
    check((ROOT / shipped).is_file(), f"{shipped} is missing")
for vol in services["grafana"].get("volumes", []):
    src = vol.split(":")[0]
    check((DEPLOY / src).exists(), f"compose grafana mounts {src}, which does not exist")

# --- host names are compose's services ---------------------------------------------------
upstreams = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx_conf, re.M)
check(sorted(h for h, _ in upstreams) == sorted(hubs), f"nginx upstream {upstreams} is not the hubs {hubs}")
check(all(p == bind_port for _, p in upstreams), f"nginx upstream ports {upstreams} are not {bind_port}")
check(re.search(r"^\s*listen 8080;", nginx_conf, re.M) is not None, "nginx does not listen on 8080")
check("8080:8080" in services["nginx"].get("ports", []), "compose does not publish nginx's 8080")
prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
check("dropwire" in jobs, "prometheus.yml has no job `dropwire` (the alerts select job=\"dropwire\")")
targets = [t for sc in jobs.get("dropwire", {}).get("static_configs", []) for t in sc["targets"]]
check(sorted(targets) == sorted(f"{h}:{bind_port}" for h in hubs), f"Prometheus scrapes {targets}, not the hubs")
check(prom.get("rule_files") == ["alerts.yml"], "prometheus.yml does not load alerts.yml")
redis_host = re.match(r"redis://([\w.-]+):(\d+)", hub_env["DROPWIRE_REDIS_URL"])
check(redis_host is not None and redis_host.group(1) in services, "hub.env's Redis is not a compose service")
ledger = services[hubs[0]].get("environment", {}).get("DROPWIRE_LEDGER_URL", "")
check("@postgres:5432/" in ledger and "postgres" in services, f"compose's ledger URL {ledger!r} is not the postgres service")

# --- Kubernetes agrees -------------------------------------------------------------------
config = next(d for d in k8s_docs("hub-config.yaml") if d["kind"] == "ConfigMap")
check(config["data"] == hub_env,
      f"k8s/hub-config.yaml differs from hub.env: {sorted(set(config['data'].items()) ^ set(hub_env.items()))}")
nginx_k8s = next(d for d in k8s_docs("nginx.yaml")
                 if d["kind"] == "ConfigMap" and "dropwire.conf" in d.get("data", {}))
k8s_conf = nginx_k8s["data"]["dropwire.conf"]
ours = re.sub(r"(^\s*server hub-[ab]:8080[^\n]*\n)+", "    server dropwire-hub:8080;\n", nginx_conf, flags=re.M)
check(k8s_conf.strip() == ours.strip(),
      "k8s/nginx.yaml's dropwire.conf is not deploy/nginx/dropwire.conf with the one upstream line")
k8s_images = {}
for f in (DEPLOY / "k8s").glob("*.yaml"):
    for d in k8s_docs(f.name):
        spec = d.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            name, tag = image_of(c["image"])
            k8s_images[name] = tag
for svc in services.values():
    if "image" in svc:
        name, tag = image_of(svc["image"])
        if name in k8s_images:
            check(k8s_images[name] == tag, f"{name}: compose pins {tag}, Kubernetes {k8s_images[name]}")
for name in ["dropwire", "redis", "postgres", "nginx"]:
    check(name in k8s_images, f"Kubernetes runs no {name} image")
    check(k8s_images.get(name, "latest") != "latest", f"Kubernetes runs {name}:latest, not a pinned tag")

# --- shutdown budgets ----------------------------------------------------------------------
grace = int(hub_env["DROPWIRE_SHUTDOWN_GRACE_S"])
flush = 5  # the ledger feed's last flush, at most
stop = compose["x-hub"]["stop_grace_period"] if "x-hub" in compose else services[hubs[0]]["stop_grace_period"]
check(int(str(stop).rstrip("s")) >= grace + flush, f"compose stop_grace_period {stop} < drain {grace} s + flush {flush} s")
hub_pod = next(d for d in k8s_docs("hub.yaml") if d["kind"] == "Deployment")["spec"]["template"]["spec"]
check(hub_pod["terminationGracePeriodSeconds"] > grace + flush,
      f"k8s terminationGracePeriodSeconds {hub_pod['terminationGracePeriodSeconds']} ≤ drain + flush")

for p in problems:
    print("check-deploy:", p)
print(f"check-deploy: compose, hub.env, nginx/, prometheus/, k8s/ and scripts/topology.sh "
      f"{'agree' if not problems else f'disagree in {len(problems)} places'}")
sys.exit(1 if problems else 0)
