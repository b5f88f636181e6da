#!/usr/bin/env bash
# scripts/firstreply.sh [--ci]
#
# The first-reply benchmark of docs/BENCHMARKS.md: signed click-to-WhatsApp
# webhooks, each from a new contact, sent open-loop at fixed rates to the real
# `funnel serve` binary (rate: 1000, synchronous=FULL) with the fake Graph API
# answering at once; per rate, the time from a webhook's scheduled send time
# to its first reply reaching the Graph API (p50, p90, p99, max) and the CPU
# seconds per 1,000 conversations of the daemon and of the test process (the
# load generator and the fake). Prints a table.
#
#   scripts/firstreply.sh          100 to 2,000 conversations/s, 10 s each
#                                  (stops after a saturated rate)
#   scripts/firstreply.sh --ci     a smoke run: 100 and 500/s, 2 s each
#
# It reports figures and never fails on a time; it fails (exit 1) only when
# the run itself fails (a build, the daemon, a message sent twice).
#
# Environment: FUNNEL_BENCH_RATES=100,500,1000 (conversations per second),
# FUNNEL_BENCH_DURATION=10s (measured time per rate), FUNNEL_BENCH_SYNC=NORMAL,
# FUNNEL_BENCH_DRAIN=30s (wait for the last replies), FUNNEL_BENCH_PPROF=DIR
# (a CPU profile of the daemon per rate: go tool pprof DIR/firstreply-500.pprof),
# FUNNEL_RELIABILITY_OUT=DIR keeps the log and report there.
set -uo pipefail
cd "$(dirname "$0")/.."

level=full
case "${1:-}" in
--ci) level=ci ;;
"") ;;
-h | --help)
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
  ;;
*)
  echo "usage: scripts/firstreply.sh [--ci]" >&2
  exit 2
  ;;
esac

export CGO_ENABLED=1
out=${FUNNEL_RELIABILITY_OUT:-}
keep=1
if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/funnel-firstreply.XXXXXX")
  keep=0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
report="$out/report.tsv"
: >"$report"
if [ -n "${FUNNEL_BENCH_PPROF:-}" ]; then
  mkdir -p "$FUNNEL_BENCH_PPROF"
  FUNNEL_BENCH_PPROF=$(cd "$FUNNEL_BENCH_PPROF" && pwd)
  export FUNNEL_BENCH_PPROF
fi

echo "--- first reply ($level), log in $out"
if ! go build -o "$out/funnel" ./cmd/funnel || ! go test -c -o "$out/reliability.test" ./engine/reliability; then
  echo "build failed" >&2
  exit 1
fi
export FUNNEL_BIN="$out/funnel" FUNNEL_RELIABILITY="$level" FUNNEL_REPORT="$report"
t0=$SECONDS
status=0
(cd engine/reliability && "$out/reliability.test" -test.run '^TestBenchFirstReply$' -test.v -test.timeout 30m) >"$out/firstreply.log" 2>&1 || status=1

get() { awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print v }' "$report"; }
echo
echo "=== first reply ($(get bench.firstreply.settings); $((SECONDS - t0))s)"
echo "host: $(nproc) CPUs, load average now $(cut -d' ' -f1-3 /proc/loadavg), CPU pressure (PSI some avg10) $(sed -n 's/^some avg10=\([0-9.]*\).*/\1%/p' /proc/pressure/cpu 2>/dev/null)"
echo
echo "| new conversations/s | p50 ms | p90 ms | p99 ms | max ms | not acknowledged | daemon CPU s / 1,000 | generator + fake CPU s / 1,000 | load average | CPU pressure |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
awk -F'\t' '$1 ~ /^bench\.firstreply\.[0-9]+\.row$/ { print $2 }' "$report"
echo
[ -n "$(get bench.firstreply.skipped)" ] && echo "skipped: $(get bench.firstreply.skipped)"
best=$(get bench.firstreply.best)
p500=$(get bench.firstreply.500.p99ms)
[ "${best:-0}" = 0 ] && best=none || best="$best/s"
echo "highest rate with p99 < 250 ms: $best"
if [ -n "$p500" ]; then
  if awk -v x="$p500" 'BEGIN { exit !(x + 0 < 100 && x != "—") }'; then
    echo "goal p99 < 100 ms at 500/s: met ($p500 ms)"
  else
    echo "goal p99 < 100 ms at 500/s: missed ($p500 ms)"
  fi
fi
echo
echo "=== details"
awk -F'\t' '$1 ~ /^bench\.firstreply\.[0-9]+$/ { print $1 " = " $2 }' "$report"

if [ "$status" != 0 ]; then
  echo
  echo "FAILED: see $out/firstreply.log"
  grep -E -e '--- FAIL' -e '_test\.go:[0-9]+: ' "$out/firstreply.log" | grep -v REPORT | head -25 | sed 's/^/      /'
  exit 1
fi
[ "$keep" = 0 ] && rm -rf "$out"
exit 0
