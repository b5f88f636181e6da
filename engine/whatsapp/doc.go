// Package whatsapp is funnel's WhatsApp Cloud API channel: the outbound message
// as the Graph API JSON body (message.go), the inbound webhook (webhook.go), its
// signature and verification challenge (signature.go), the Graph API client
// (client.go) and the classification of its errors into what the sender should do
// next (errors.go).
//
// The package depends on nothing else in funnel: the engine imports it, never the
// reverse, so it can be tested against Meta's contract alone (docs/WHATSAPP.md) and reused by the simulator and by the fake Graph API in
// the whatsapptest subpackage.
//
// # Delivery policy
//
// The Cloud API has no idempotency key: a request whose response was never read
// may or may not have produced a message. Client.Send therefore separates three
// failure shapes with distinct error types:
//
//   - *NotSentError: the request provably never left (dial, DNS, TLS, or a write
//     that failed before the whole request was out). Retrying cannot duplicate.
//   - *UnknownOutcomeError: the whole request was written but no usable response
//     was read (timeout, reset, unreadable 2xx body). Classify reports Unknown;
//     funnel's default is at-most-once: do not resend, reconcile through the
//     status webhooks (biz_opaque_callback_data ties them to the outbox row).
//   - *APIError: Meta answered. Classify maps its code to Retryable, Permanent,
//     Pause or Fatal.
package whatsapp
