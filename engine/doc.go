// Package engine runs compiled flows against persisted conversation state.
//
// Three loops move everything forward, each one transaction per batch:
//
//   - ProcessInbox takes stored inbound events (webhook messages and statuses,
//     API events) in arrival order: it updates the contact (the window runs from
//     the message's own timestamp), resumes the run waiting for a reply or starts
//     the flow whose trigger matches, advances the run until it pauses, and
//     writes what it sends to the outbox.
//   - FireTimers claims due timers (waits, reply timeouts) and schedule triggers,
//     and advances their runs the same way.
//   - SendOutbox hands pending messages to the channel, re-checking the window,
//     opt-out and consent at that moment.
//
// Nothing that must survive a restart lives only in memory: runs, timers and the
// outbox are rows, and a batch's effects commit together or not at all. Time
// comes from a Clock, so tests and `funnel simulate` run days in milliseconds.
//
// Trigger precedence for an inbound message (deterministic):
//
//  1. an opt-out keyword (STOP, UNSUBSCRIBE, … configurable) records the opt-out,
//     cancels the contact's runs and starts nothing;
//  2. the contact's most recent run waiting for a reply gets the message;
//  3. click_to_whatsapp flows: those whose `ads` list the referral's source id,
//     then those without an `ads` filter (a `text` regex must match when given;
//     a flow without `ads` and `text` needs a referral);
//  4. message flows: keyword matches, then pattern matches, then flows with
//     neither (catch-all);
//
// ties within a rank go to the flow id that sorts first. A flow the contact is
// already in (a live run) is skipped unless it sets `reenter: true`.
//
// Contacts are found by any WhatsApp id an event carries (phone number, BSUID,
// parent BSUID): a user with a username who hides their number is a contact
// like any other, keyed by their BSUID, and messaged through "recipient" until
// the number is known. Two contacts an event shows to be one person are merged
// (identity.go; docs/IDENTITY.md).
//
// Delivery policy: a message the sender takes is `claimed`, and committed as
// `sending` right before its own HTTP call. If the process dies before the result
// is recorded, the message becomes `unknown` at the next start (WhatsApp has no
// idempotency key). Status webhooks settle those Meta did accept; one without a
// status after Options.ResendUnknownAfter (default 10 minutes) is sent once more,
// and only once, trading a rare duplicate for a message that would otherwise never
// arrive (a negative value keeps at-most-once). A `claimed` message whose call
// never started goes back to pending. Every change of a message's state is a
// guarded update (store.OutboxChange), so the sender and the status webhooks
// never undo each other.
//
// Nothing an event carries can stop the loops: a value that cannot be stored fails
// its run, and a batch that fails because of one of its events (a value the store
// refuses, a panic) is rolled back and retried one event per transaction, so only
// that event is set aside, with its error and without its effects. When idle, the
// loops ask the read pool whether there is work (store.Due) instead of taking the
// write lock.
package engine
