#!/usr/bin/env bash
# Create (or update) and run an exported voice-loadtest test in Azure Load Testing, then
# download its results into reports/. Thin on purpose: the test itself is made by
# `voice-loadtest alt export`; this only drives the Azure CLI `load` extension.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/azure-load-test.sh --config DIR/alt-config.yaml --resource NAME --resource-group RG
                                  [--location REGION] [--run-id ID] [--reports DIR]
                                  [--server-metric RESOURCE_ID NAMESPACE METRIC AGGREGATION]
                                  [--dry-run]

Runs, with the Azure CLI (az, logged in; the `load` extension installs itself):
  1. az load create             the Load Testing resource, if it does not exist (needs --location)
  2. az load test create|update --load-test-config-file CONFIG (uploads every listed file)
  3. az load test app-component add + az load test server-metric add
                                optional: one Azure Monitor metric of the agent's resource
  4. az load test-run create    starts the run and waits for it to finish
  5. az load test-run download-files --input --log --result into REPORTS/TEST_RUN_ID

Options:
  --config FILE        alt-config.yaml written by `voice-loadtest alt export`
  --resource NAME      Azure Load Testing resource name
  --resource-group RG  its resource group
  --location REGION    region for a new resource (e.g. eastus); not needed if it exists
  --run-id ID          test run ID (default: TEST_ID-YYYYmmddHHMMSS)
  --reports DIR        where results go (default: reports)
  --server-metric RESOURCE_ID NAMESPACE METRIC AGGREGATION
                       e.g. /subscriptions/…/Microsoft.App/containerApps/agent \
                            Microsoft.App/containerApps CpuPercentage Average
  --dry-run            print the az commands instead of running them (no az needed)
  -h, --help           this text

Exit code: 0 when the run passed its fail criteria, 1 when it failed them, 2 on bad usage.
EOF
}

die() { echo "azure-load-test: error: $*" >&2; exit 2; }

config="" resource="" group="" location="" run_id="" reports="reports" dry_run=0
metric_resource="" metric_namespace="" metric_name="" metric_aggregation=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --config) config="${2:?--config needs a file}"; shift 2 ;;
    --resource) resource="${2:?--resource needs a name}"; shift 2 ;;
    --resource-group) group="${2:?--resource-group needs a name}"; shift 2 ;;
    --location) location="${2:?--location needs a region}"; shift 2 ;;
    --run-id) run_id="${2:?--run-id needs an ID}"; shift 2 ;;
    --reports) reports="${2:?--reports needs a folder}"; shift 2 ;;
    --server-metric)
      [[ $# -ge 5 ]] || die "--server-metric needs RESOURCE_ID NAMESPACE METRIC AGGREGATION"
      metric_resource="$2" metric_namespace="$3" metric_name="$4" metric_aggregation="$5"
      shift 5 ;;
    --dry-run) dry_run=1; shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n "$config" && -n "$resource" && -n "$group" ]] \
  || die "--config, --resource and --resource-group are required (see --help)"
[[ -f "$config" ]] || die "no such file: $config (run voice-loadtest alt export first)"
test_id="$(sed -n 's/^testId:[[:space:]]*//p' "$config" | head -n 1 | tr -d "\"'[:space:]")"
[[ "$test_id" =~ ^[a-z0-9_-]{2,50}$ ]] || die "$config has no valid testId"
run_id="${run_id:-${test_id:0:30}-$(date -u +%Y%m%d%H%M%S)}"
out="$reports/$run_id"

# Runs a command, or prints it (shell-quoted) with --dry-run.
run() {
  if [[ "$dry_run" -eq 1 ]]; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

# True when the az query succeeds; with --dry-run nothing exists yet.
exists() {
  [[ "$dry_run" -eq 0 ]] && "$@" --only-show-errors --output none >/dev/null 2>&1
}

if [[ "$dry_run" -eq 0 ]] && ! command -v az >/dev/null 2>&1; then
  echo "azure-load-test: error: the Azure CLI (az) is not installed; see" \
       "https://learn.microsoft.com/cli/azure/install-azure-cli (or use --dry-run)" >&2
  exit 127
fi

where=(--load-test-resource "$resource" --resource-group "$group")

if ! exists az load show --name "$resource" --resource-group "$group"; then
  [[ -n "$location" || "$dry_run" -eq 1 ]] \
    || die "load testing resource $resource not found; pass --location to create it"
  run az load create --name "$resource" --resource-group "$group" --location "${location:-LOCATION}"
fi

if exists az load test show --test-id "$test_id" "${where[@]}"; then
  run az load test update --test-id "$test_id" "${where[@]}" --load-test-config-file "$config"
else
  run az load test create --test-id "$test_id" "${where[@]}" --load-test-config-file "$config"
fi

if [[ -n "$metric_resource" ]]; then
  # /subscriptions/S/resourceGroups/G/providers/NS/TYPE/NAME → type NS/TYPE, name NAME
  IFS=/ read -r -a parts <<<"$metric_resource"
  component_type="${parts[6]:-}/${parts[7]:-}"
  component_name="${parts[8]:-}"
  [[ -n "$component_name" ]] || die "--server-metric: $metric_resource is not a resource ID"
  run az load test app-component add --test-id "$test_id" "${where[@]}" \
    --app-component-id "$metric_resource" --app-component-name "$component_name" \
    --app-component-type "$component_type"
  run az load test server-metric add --test-id "$test_id" "${where[@]}" \
    --metric-id "$metric_resource/providers/microsoft.insights/metricdefinitions/$metric_name" \
    --metric-name "$metric_name" --metric-namespace "$metric_namespace" \
    --aggregation "$metric_aggregation" --app-component-id "$metric_resource" \
    --app-component-type "$component_type"
fi

# `test-run create` waits for the run to end unless --no-wait is given.
run az load test-run create --test-id "$test_id" --test-run-id "$run_id" "${where[@]}" \
  --display-name "$run_id" --description "voice-loadtest $test_id"
run mkdir -p "$out"
run az load test-run download-files --test-run-id "$run_id" "${where[@]}" \
  --path "$out" --input --log --result --force

if [[ "$dry_run" -eq 1 ]]; then
  exit 0
fi
result="$(az load test-run show --test-run-id "$run_id" "${where[@]}" \
  --query testResult --output tsv 2>/dev/null || true)"
echo "test run $run_id: ${result:-unknown}; files in $out"
[[ "$result" != "FAILED" ]]
