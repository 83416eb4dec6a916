#!/usr/bin/env bash
# Start the example server (fake NVML, 2 GPUs, one lost) and a real Prometheus server on
# loopback that scrapes it; wait for a scrape, then ask Prometheus' HTTP API for
# gpu_monitor_up and a memory series and print them. Needs Debian's prometheus package
# and the project's .venv (scripts/test or scripts/example make it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
app_port=${APP_PORT:-8791}
prom_port=${PROM_PORT:-9791}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

PYTHONPATH=tests/fakes FAKE_NVML_GPUS=2 FAKE_NVML_SCENARIO=lost DJANGO_DEBUG=0 \
    "$PY" manage.py runserver --noreload "127.0.0.1:$app_port" >"$work/app.log" 2>&1 &
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: gpu_monitor
    metrics_path: /api/gpu/metrics
    static_configs:
      - targets: ["127.0.0.1:$app_port"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &

query() {
    curl -fsS "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1"
}
for _ in $(seq 1 60); do
    if query 'gpu_monitor_up' 2>/dev/null | grep -q '"value"'; then break; fi
    sleep 1
done
echo "== Prometheus target health"
curl -fsS "http://127.0.0.1:$prom_port/api/v1/targets" | "$PY" -c \
    'import json,sys; [print(t["scrapeUrl"], t["health"], t["lastError"] or "no error") for t in json.load(sys.stdin)["data"]["activeTargets"]]'
for q in gpu_monitor_up gpu_monitor_memory_total_bytes gpu_monitor_device_available; do
    echo "== $q"
    query "$q" | "$PY" -c \
        'import json,sys; [print(r["metric"], r["value"][1]) for r in json.load(sys.stdin)["data"]["result"]] or sys.exit("no series")'
done
