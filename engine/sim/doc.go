// Package sim runs conversation scripts against the real engine: a temporary
// SQLite database, a virtual clock, and a channel that behaves like the Cloud API
// (it refuses free-form messages outside the 24-hour window with error 131047).
// `funnel simulate` prints the timeline; `funnel test` checks the expectations.
//
// A script is YAML:
//
//	flows: [../flows]            # optional: flow files or folders, relative to the script
//	templates: ../flows/templates.json   # optional
//	contact: {wa_id: "16505551234", name: Ana, timezone: Europe/Lisbon, tags: [vip], opted_in: false}
//	start: 2026-07-01T10:00:00Z
//	events:
//	  - inbound: {text: "Hi", referral: {source_id: "120226305854810726", headline: "Summer sale"}}
//	  - expect: {sent: [{text_contains: "Summer sale"}]}
//	  - inbound: {interactive: "Yes please"}     # tap a reply button or list row by its title
//	  - inbound: {button: "Get my code"}         # tap a template quick-reply button
//	  - inbound: {text: "late", delay: 25h}      # the webhook arrived 25h after the message was written
//	  - advance: 3d                              # waits and timeouts fire at their own times
//	  - event: {name: order_shipped, payload: {order_id: A-1}}
//	  - expect: {sent: [{template: summer_reminder}, {type: text, status: window_closed}]}
//	  - expect: {nothing_sent: true}
//
// `expect.sent` matches, in order, messages produced since the previous expect
// (other messages may come between them); each matcher may check text_contains,
// template, type (text, interactive, image, video, document, template) and status
// (sent, window_closed, opted_out, no_consent, failed, cancelled). `nothing_sent`
// asserts that no message was produced since the previous expect.
//
// A tap must be one the latest message with buttons offered (an error names the
// script line and the titles offered): `interactive:` for its reply buttons or
// list rows, `button:` for a template's quick replies. docs/TESTING.md documents
// the format; `funnel schema --tests` prints its JSON Schema.
package sim
