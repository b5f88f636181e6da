// Package server is funnel's HTTP surface: the WhatsApp webhook (verification,
// signature, durable store before the 200), the events API that starts `event`
// flows, the contact API, health, readiness and Prometheus metrics, and in dev
// mode the sandbox.
//
// A webhook is acknowledged only after its events are committed to the inbox:
// requests that arrive together share one commit (group commit), so
// acknowledgement stays fast under load while nothing acknowledged can be lost.
// If storage fails, the webhook gets a 503 and Meta delivers it again.
package server
