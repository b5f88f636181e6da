// Package reliability tests the real `funnel serve` binary from the outside:
// built with go build, run against a file database and the fake Graph API of
// engine/whatsapp/whatsapptest, fed with webhooks signed like Meta's over
// loopback HTTP, killed with SIGKILL and restarted.
//
// The package holds tests only; harness.go exports the pieces they share
// (building and running the daemon, delivering webhooks with Meta's retries,
// reading /metrics, /proc and the database) so other test files can use them.
//
// The long checks are gated so that `go test ./...` stays fast:
//
//	FUNNEL_RELIABILITY=ci    bounded forms (what scripts/reliability.sh --ci runs)
//	FUNNEL_RELIABILITY=full  the full crash test, a soak of minutes, the benchmarks
//
// Without it only a small crash smoke test runs. scripts/reliability.sh is the
// one command; docs/RELIABILITY.md describes every check and its figures.
package reliability
