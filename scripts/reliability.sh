#!/usr/bin/env bash
# scripts/reliability.sh [--ci]
#
# The reliability checks of docs/RELIABILITY.md, against the real `funnel serve`
# binary: the crash test (SIGKILLs under webhook load), the soak (RSS and
# goroutines over time), the benchmarks (webhooks acknowledged per second,
# sender pace, first reply under a campaign's load: scripts/firstreply.sh
# runs that one alone), and the fault and hostile-input tests. Prints a
# summary table.
#
#   scripts/reliability.sh         full: a 5-minute soak, 12,000-message crash
#                                  test with 10 kills, 60,000-webhook benchmarks
#   scripts/reliability.sh --ci    bounded (about 5 minutes); what .ci/run calls.
#                                  The crash test then runs a daemon built
#                                  with -race: a data race in the daemon (its
#                                  log says DATA RACE) fails it.
#
# It fails (exit 1) when a check fails: a lost message, a duplicate send, a
# stuck run, a 131047, memory or goroutines that do not stay flat, ... The
# throughput and latency goals are compared and printed, never failed on: on
# a shared machine timings are figures, not test results.
#
# Environment: FUNNEL_RELIABILITY_OUT=DIR keeps the logs and report there
# (default: a temporary directory, removed unless a check failed); the
# FUNNEL_CRASH_*, FUNNEL_SOAK_*, FUNNEL_BENCH_* settings of the tests
# (engine/reliability) pass through, e.g. FUNNEL_SEED (or FUNNEL_CRASH_SEED,
# FUNNEL_SOAK_SEED) to replay a run with the seed its log printed.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
--ci) mode=ci ;;
"") ;;
-h | --help)
  sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
  ;;
*)
  echo "usage: scripts/reliability.sh [--ci]" >&2
  exit 2
  ;;
esac

export CGO_ENABLED=1
out=${FUNNEL_RELIABILITY_OUT:-}
keep=1
if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/funnel-reliability.XXXXXX")
  keep=0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
report="$out/report.tsv"
: >"$report"
t0=$SECONDS

echo "--- reliability ($mode), logs in $out"
echo "--- building cmd/funnel and the tests"
if ! go build -o "$out/funnel" ./cmd/funnel || ! go test -c -o "$out/reliability.test" ./engine/reliability; then
  echo "build failed" >&2
  exit 1
fi
race_bin="$out/funnel"
if [ "$mode" = ci ]; then
  echo "--- building cmd/funnel with -race (for the crash test)"
  if ! go build -race -o "$out/funnel-race" ./cmd/funnel; then
    echo "build failed" >&2
    exit 1
  fi
  race_bin="$out/funnel-race"
fi
export FUNNEL_BIN="$out/funnel" FUNNEL_RELIABILITY="$mode" FUNNEL_REPORT="$report"

declare -A result
failed=0
run() { # name, -test.run pattern[, -test.skip pattern[, funnel binary]]
  local name=$1 pattern=$2 skip=${3:-^$} bin=${4:-$FUNNEL_BIN} start=$SECONDS
  printf -- '--- %-22s ' "$name"
  if (cd engine/reliability && FUNNEL_BIN="$bin" "$out/reliability.test" -test.run "$pattern" -test.skip "$skip" -test.v -test.timeout 30m) >"$out/$name.log" 2>&1; then
    result[$name]=ok
    echo "ok ($((SECONDS - start))s)"
  else
    result[$name]=FAIL
    failed=1
    echo "FAIL ($((SECONDS - start))s), log: $out/$name.log"
    grep -E -e '--- FAIL' -e '_test\.go:[0-9]+: ' "$out/$name.log" | grep -v 'REPORT' | head -25 | sed 's/^/      /'
  fi
}

run crash '^TestCrash$' '^$' "$race_bin"
run soak '^TestSoak$'
run bench-webhooks '^TestBenchWebhooks$'
run bench-sender '^TestBenchSender$'
run bench-firstreply '^TestBenchFirstReply$'
run hostile '^TestHostile'
run security '^(TestStalledUploadsKeepMemoryBounded|TestFloodFromOneContact)$'
# Faults: every other test of the package (Graph API, webhooks, storage).
run faults . '^(TestCrash|TestSoak|TestBench|TestHarness|TestHostile|TestStalledUploadsKeepMemoryBounded|TestFloodFromOneContact)'

# ---- summary ----
get() { awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print v }' "$report"; }
num() { local v; v=$(get "$1"); echo "${v:-?}"; }
goal() { # awk condition on x, the value
  local x=$1 cond=$2
  [ "$x" = "?" ] && { echo "no figure"; return; }
  awk -v x="$x" "BEGIN { exit !($cond) }" && echo "goal met" || echo "goal missed"
}

echo
echo "=== summary ($mode, $((SECONDS - t0))s, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null))"
printf '%-18s %-5s %s\n' check result figures
printf '%-18s %-5s %s\n' crash "${result[crash]}" \
  "$(num crash.n.messages) webhooks, $(num crash.n.kills) SIGKILLs: lost $(num crash.n.lost), duplicates $(num crash.n.duplicates), unknown $(num crash.n.unknown) (sent once more $(num crash.n.resent)), timers due while down $(num crash.n.timers_due_while_down), all fired"
printf '%-18s %-5s %s\n' soak "${result[soak]}" \
  "$(num soak.n.webhooks) webhooks held: lost $(num soak.n.lost), duplicates $(num soak.n.duplicates); $(get soak.flat)"
for s in FULL NORMAL; do
  rate=$(num "bench.webhooks.$s.rate")
  p99=$(num "bench.webhooks.$s.p99ms")
  printf '%-18s %-5s %s\n' "webhooks $s" "${result[bench-webhooks]}" \
    "$rate/s, p99 $p99 ms: $(goal "$rate" 'x >= 5000') (≥ 5,000/s), $(goal "$p99" 'x < 50') (p99 < 50 ms)"
done
rate=$(num bench.sender.rate)
printf '%-18s %-5s %s\n' "sender at 1000/s" "${result[bench-sender]}" \
  "$rate/s: $(goal "$rate" 'x >= 990 && x <= 1010') (within 1%), 130429 $(num bench.sender.n.130429), duplicates $(num bench.sender.n.duplicates)"
p99_500=$(num bench.firstreply.500.p99ms)
printf '%-18s %-5s %s\n' "first reply" "${result[bench-firstreply]}" \
  "p99 $p99_500 ms at 500/s: $(goal "${p99_500/—/?}" 'x < 100') (p99 < 100 ms); highest rate with p99 < 250 ms: $(num bench.firstreply.best)/s"
printf '%-18s %-5s %s\n' "faults" "${result[faults]}" "$(grep -c '^faults\.' "$report") figures (Graph API, webhooks, storage)"
printf '%-18s %-5s %s\n' "hostile input" "${result[hostile]}" "$(grep -c '^hostile\.' "$report") figures"
printf '%-18s %-5s %s\n' "security" "${result[security]}" "stalled uploads: $(get security.stalled-uploads | sed 's/;.*//'); flood: $(get security.flood | sed 's/:.*//')"
echo
echo "=== figures"
sed 's/\t/ = /' "$report"

if [ "$failed" = 1 ]; then
  echo
  echo "FAILED: logs kept in $out"
  exit 1
fi
[ "$keep" = 0 ] && rm -rf "$out"
exit 0
