-- The named queries of the PostgreSQL driver. Every query here exists, with
-- the same name and the same arguments, in store/sqlite/queries.sql: see
-- docs/ARCHITECTURE.md (Storage drivers) for the rules. Times are Unix
-- milliseconds. A list argument is one array parameter: = ANY($1).

-- ---- ids ----
-- The next $1 ids of a table, from its identity's sequence: unique across
-- every process that shares the database.

-- name: NewRunID
SELECT nextval(pg_get_serial_sequence('runs', 'id')) FROM generate_series(1, $1)

-- name: NewTimerID
SELECT nextval(pg_get_serial_sequence('timers', 'id')) FROM generate_series(1, $1)

-- name: NewOutboxID
SELECT nextval(pg_get_serial_sequence('outbox', 'id')) FROM generate_series(1, $1)

-- name: NewFlowVersionID
SELECT nextval(pg_get_serial_sequence('flow_versions', 'id')) FROM generate_series(1, $1)

-- ---- inbox ----

-- name: InsertInbox
INSERT INTO inbox (key, kind, contact, payload, received_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (key) DO NOTHING

-- name: PendingInbox
SELECT id, key, kind, contact, payload, received_at, processed_at, result FROM inbox
WHERE processed_at IS NULL ORDER BY id LIMIT $1

-- name: MarkProcessed
-- $3: the ids (a list).
UPDATE inbox SET processed_at = $1, result = $2 WHERE id = ANY($3) AND processed_at IS NULL

-- ---- contacts ----

-- name: Contacts
SELECT wa_id, name, timezone, attributes, tags, phone_number_id, last_inbound_at, consent, consent_at, consent_source, created_at, updated_at, phone, user_id, parent_user_id, username
FROM contacts WHERE wa_id = ANY($1)

-- name: ContactsPage
SELECT wa_id, name, timezone, attributes, tags, phone_number_id, last_inbound_at, consent, consent_at, consent_source, created_at, updated_at, phone, user_id, parent_user_id, username
FROM contacts WHERE wa_id > $1 ORDER BY wa_id LIMIT $2

-- name: SaveContacts
INSERT INTO contacts (wa_id, name, timezone, attributes, tags, phone_number_id, last_inbound_at, consent, consent_at, consent_source, created_at, updated_at, phone, user_id, parent_user_id, username)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (wa_id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone,
	phone = excluded.phone, user_id = excluded.user_id, parent_user_id = excluded.parent_user_id, username = excluded.username,
	attributes = excluded.attributes, tags = excluded.tags, phone_number_id = excluded.phone_number_id,
	last_inbound_at = excluded.last_inbound_at, consent = excluded.consent, consent_at = excluded.consent_at,
	consent_source = excluded.consent_source, updated_at = excluded.updated_at

-- name: ContactIDs
-- Keys first found by key (by_key 1), then linked ids, which win.
SELECT wa_id, wa_id, 1 FROM contacts WHERE wa_id = ANY($1)
UNION ALL SELECT id, contact, 0 FROM contact_ids WHERE id = ANY($1) ORDER BY 3 DESC

-- name: LinkContactIDs
INSERT INTO contact_ids (id, contact) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET contact = excluded.contact

-- name: MergeContactRuns
UPDATE runs SET contact = $1 WHERE contact = $2

-- name: MergeContactOutbox
UPDATE outbox SET contact = $1 WHERE contact = $2

-- name: MergeContactIDs
UPDATE contact_ids SET contact = $1 WHERE contact = $2

-- name: DeleteContact
DELETE FROM contacts WHERE wa_id = $1

-- name: ContactByID
SELECT wa_id, name, timezone, attributes, tags, phone_number_id, last_inbound_at, consent, consent_at, consent_source, created_at, updated_at, phone, user_id, parent_user_id, username
FROM contacts WHERE wa_id = COALESCE((SELECT contact FROM contact_ids WHERE id = $1), $1)

-- name: ContactByUsername
SELECT wa_id, name, timezone, attributes, tags, phone_number_id, last_inbound_at, consent, consent_at, consent_source, created_at, updated_at, phone, user_id, parent_user_id, username
FROM contacts WHERE username != '' AND username IN ($1, '@' || $1) ORDER BY updated_at DESC LIMIT 1

-- name: SetTimezone
INSERT INTO contacts (wa_id, timezone, created_at, updated_at) VALUES ($1, $2, $3, $3)
ON CONFLICT (wa_id) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at

-- ---- flow versions ----

-- name: FlowVersionID
SELECT id FROM flow_versions WHERE flow_id = $1 AND hash = $2

-- name: InsertFlowVersion
INSERT INTO flow_versions (id, flow_id, hash, file, source, templates, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)

-- name: FlowVersion
SELECT id, flow_id, hash, file, source, templates, created_at FROM flow_versions WHERE id = $1

-- ---- runs ----

-- name: LiveRuns
SELECT id, contact, flow_id, version_id, step, status, vars, entry, reply, event, wait_seq, step_seq, started_at, updated_at, ended_at, end_reason,
	source_id, headline, project_version_id
FROM runs WHERE ended_at IS NULL AND contact = ANY($1) ORDER BY id

-- name: Runs
SELECT id, contact, flow_id, version_id, step, status, vars, entry, reply, event, wait_seq, step_seq, started_at, updated_at, ended_at, end_reason,
	source_id, headline, project_version_id
FROM runs WHERE id = ANY($1)

-- name: SaveRuns
-- An ended run is never written again (the guard of the upsert).
-- source_id and headline (the entry ad) and project_version_id are set at the
-- start and never changed.
INSERT INTO runs (id, contact, flow_id, version_id, step, status, vars, entry, reply, event, wait_seq, step_seq, started_at, updated_at, ended_at, end_reason,
	source_id, headline, project_version_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (id) DO UPDATE SET step = excluded.step, status = excluded.status, vars = excluded.vars,
	entry = excluded.entry, reply = excluded.reply, event = excluded.event, wait_seq = excluded.wait_seq,
	step_seq = excluded.step_seq, updated_at = excluded.updated_at, ended_at = excluded.ended_at,
	end_reason = excluded.end_reason
WHERE runs.ended_at IS NULL

-- name: RunsOf
SELECT id, contact, flow_id, version_id, step, status, vars, entry, reply, event, wait_seq, step_seq, started_at, updated_at, ended_at, end_reason,
	source_id, headline, project_version_id
FROM runs WHERE contact = $1 ORDER BY id DESC LIMIT $2

-- name: RunsWhere
SELECT id, contact, flow_id, version_id, step, status, vars, entry, reply, event, wait_seq, step_seq, started_at, updated_at, ended_at, end_reason,
	source_id, headline, project_version_id
FROM runs WHERE ($1 = '' OR flow_id = $1) AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT $3

-- ---- timers ----

-- name: DueTimers
SELECT t.id, t.due_at, t.run_id, t.kind, t.seq, COALESCE(r.contact, '') AS contact
FROM timers t LEFT JOIN runs r ON r.id = t.run_id WHERE t.due_at <= $1 ORDER BY t.due_at, t.id LIMIT $2

-- name: DueTimersOf
SELECT t.id, t.due_at, t.run_id, t.kind, t.seq, r.contact
FROM timers t JOIN runs r ON r.id = t.run_id WHERE t.due_at <= $1 AND t.run_id = ANY($2)

-- name: NextTimer
SELECT MIN(due_at) FROM timers WHERE due_at > $1

-- name: InsertTimers
INSERT INTO timers (id, due_at, run_id, kind, seq) VALUES ($1, $2, $3, $4, $5)

-- name: DeleteTimers
DELETE FROM timers WHERE id = ANY($1)

-- name: TimersOf
SELECT t.id, t.due_at, t.run_id, t.kind, t.seq, r.contact FROM timers t
JOIN runs r ON r.id = t.run_id WHERE r.contact = $1 AND r.ended_at IS NULL AND t.seq = r.wait_seq ORDER BY t.due_at LIMIT 100

-- ---- outbox ----

-- name: ClaimOutbox
-- Pending messages due now whose contact has no earlier message still open:
-- messages to one contact go out one at a time, in order.
SELECT id, key, run_id, flow_id, step, contact, phone_number_id, kind, category, assume_opt_in, payload, fallback, fallback_category, status, sent_as, attempts, next_attempt_at, error_code, last_error, provider_id, created_at, sent_at, updated_at, resends, template, limit_retries
FROM outbox o
WHERE o.status = 'pending' AND o.next_attempt_at <= $1
AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.contact = o.contact AND p.id < o.id AND p.status IN ('pending', 'claimed', 'sending'))
ORDER BY o.next_attempt_at, o.id LIMIT $2

-- name: NextOutboxAttempt
SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' AND next_attempt_at > $1

-- name: OutboxByIDs
SELECT id, key, run_id, flow_id, step, contact, phone_number_id, kind, category, assume_opt_in, payload, fallback, fallback_category, status, sent_as, attempts, next_attempt_at, error_code, last_error, provider_id, created_at, sent_at, updated_at, resends, template, limit_retries
FROM outbox WHERE id = ANY($1)

-- name: OutboxByProvider
SELECT id, key, run_id, flow_id, step, contact, phone_number_id, kind, category, assume_opt_in, payload, fallback, fallback_category, status, sent_as, attempts, next_attempt_at, error_code, last_error, provider_id, created_at, sent_at, updated_at, resends, template, limit_retries
FROM outbox WHERE provider_id != '' AND provider_id = ANY($1)

-- name: InsertOutbox
INSERT INTO outbox (id, key, run_id, flow_id, step, contact, phone_number_id, kind, category, assume_opt_in, payload, fallback, fallback_category, status, sent_as, attempts, next_attempt_at, error_code, last_error, provider_id, created_at, sent_at, updated_at, resends, template)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)
ON CONFLICT (key) DO NOTHING

-- name: OutboxOf
SELECT id, key, run_id, flow_id, step, contact, phone_number_id, kind, category, assume_opt_in, payload, fallback, fallback_category, status, sent_as, attempts, next_attempt_at, error_code, last_error, provider_id, created_at, sent_at, updated_at, resends, template, limit_retries
FROM outbox WHERE contact = $1 ORDER BY id DESC LIMIT $2

-- name: OutboxWhere
SELECT id, key, run_id, flow_id, step, contact, phone_number_id, kind, category, assume_opt_in, payload, fallback, fallback_category, status, sent_as, attempts, next_attempt_at, error_code, last_error, provider_id, created_at, sent_at, updated_at, resends, template, limit_retries
FROM outbox WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2

-- name: ChangeOutbox
-- One guarded transition (store.OutboxChange): it applies only while the
-- status is one of $17 (a list) and, when $9 is set, the provider id is empty
-- or $9; it writes only the columns whose flag is set. $1 updated_at; $2 the
-- new status ('' keeps it); $3 swap in the fallback template; $4/$5 sent_as;
-- $6/$7/$8 error code and text; $9 provider id; $10/$11 attempts; $12/$13
-- next attempt; $14/$15 sent_at; $16 the id; $18 the template the message
-- waits for ('' keeps it); $19/$20 limit_retries; $21/$22 allowance; $23
-- clears the provider id (the message goes out again as a new one).
UPDATE outbox SET updated_at = $1,
	status = CASE WHEN $2::text = '' THEN status ELSE $2::text END,
	kind = CASE WHEN $3::boolean THEN 'template' ELSE kind END,
	payload = CASE WHEN $3::boolean THEN fallback ELSE payload END,
	fallback = CASE WHEN $3::boolean THEN NULL ELSE fallback END,
	category = CASE WHEN $3::boolean THEN fallback_category ELSE category END,
	sent_as = CASE WHEN $3::boolean THEN 'fallback' WHEN $4::boolean THEN $5::text ELSE sent_as END,
	provider_id = CASE WHEN $3::boolean OR $23::boolean THEN '' WHEN provider_id = '' AND $9::text != '' THEN $9::text ELSE provider_id END,
	error_code = CASE WHEN $6::boolean THEN $7::bigint ELSE error_code END,
	last_error = CASE WHEN $6::boolean THEN $8::text ELSE last_error END,
	attempts = CASE WHEN $10::boolean THEN $11::bigint ELSE attempts END,
	next_attempt_at = CASE WHEN $12::boolean THEN $13::bigint ELSE next_attempt_at END,
	sent_at = CASE WHEN $14::boolean THEN $15::bigint ELSE sent_at END,
	template = CASE WHEN $18::text = '' THEN template ELSE $18::text END,
	limit_retries = CASE WHEN $19::boolean THEN $20::bigint ELSE limit_retries END,
	allowance = CASE WHEN $21::boolean THEN (CASE WHEN $22::boolean THEN 1 ELSE 0 END) ELSE allowance END
WHERE id = $16 AND status = ANY($17)
	AND ($9 = '' OR provider_id = '' OR provider_id = $9)
	AND (NOT $3::boolean OR (kind = 'freeform' AND fallback IS NOT NULL))

-- name: UnclaimOutbox
-- After a crash: claimed but never handed to the API, safe to send.
UPDATE outbox SET status = 'pending', updated_at = $1 WHERE status = 'claimed'

-- name: SendingUnknown
-- After a crash: maybe handed to the API, the outcome is unknown.
UPDATE outbox SET status = 'unknown', last_error = 'interrupted while sending: the outcome is unknown', updated_at = $1 WHERE status = 'sending'

-- name: MarkSending
UPDATE outbox SET status = 'sending', updated_at = $1 WHERE status = 'claimed' AND id = ANY($2)

-- name: CancelPendingOutbox
UPDATE outbox SET status = 'cancelled', last_error = 'contact opted out before it was sent', updated_at = $1
WHERE status = 'pending' AND contact = ANY($2)

-- name: OpenOutboxCounts
-- The status list repeats the outbox_contact_open index's condition.
SELECT contact, COUNT(*) FROM outbox WHERE status IN ('pending', 'claimed', 'sending') AND contact = ANY($1) GROUP BY contact

-- name: DeferPendingOutbox
UPDATE outbox SET next_attempt_at = $1, updated_at = $2
WHERE status IN ('pending', 'claimed', 'sending') AND contact = $3 AND status = 'pending' AND next_attempt_at < $1

-- name: ResendUnknown
-- Messages unknown since $3 ($1 now minus the delay), not sent once more
-- already, and with no inbound event waiting that arrived by their deadline
-- (a status for one of them may be among those: it is processed first).
UPDATE outbox SET status = 'pending', resends = resends + 1, next_attempt_at = $1, updated_at = $1, last_error = $2
WHERE status = 'unknown' AND resends = 0 AND id IN (SELECT id FROM outbox WHERE status = 'unknown' AND resends = 0
	AND updated_at <= LEAST($1::bigint, COALESCE((SELECT received_at FROM inbox WHERE processed_at IS NULL ORDER BY id LIMIT 1), $1)) - $3
	ORDER BY updated_at, id LIMIT $4)

-- name: NextResend
SELECT MIN(updated_at) FROM outbox WHERE status = 'unknown' AND resends = 0 AND updated_at > $1

-- ---- statuses ----

-- name: InsertStatuses
INSERT INTO message_statuses (outbox_id, provider_id, status, at, error_code, payload) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (provider_id, status) DO NOTHING

-- ---- schedules ----

-- name: Schedules
SELECT flow_id, spec, next_at, firing_at, cursor FROM schedules ORDER BY flow_id

-- name: SaveSchedule
INSERT INTO schedules (flow_id, spec, next_at, firing_at, cursor) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (flow_id) DO UPDATE SET spec = excluded.spec, next_at = excluded.next_at, firing_at = excluded.firing_at, cursor = excluded.cursor

-- ---- the engine's loops and the read side ----

-- name: Due
-- Which loops have work at $1; $2 is the delay before a message left unknown
-- is sent once more (≤ 0: never). Each term is an index lookup.
SELECT
	EXISTS (SELECT 1 FROM inbox WHERE processed_at IS NULL),
	EXISTS (SELECT 1 FROM timers WHERE due_at <= $1),
	EXISTS (SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1),
	$2::bigint > 0 AND EXISTS (SELECT 1 FROM outbox WHERE status = 'unknown' AND resends = 0 AND updated_at <= LEAST($1::bigint,
		COALESCE((SELECT received_at FROM inbox WHERE processed_at IS NULL ORDER BY id LIMIT 1), $1)) - $2),
	EXISTS (SELECT 1 FROM schedules WHERE firing_at IS NOT NULL OR next_at <= $1)

-- name: InboxUnprocessed
SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL

-- name: Stats
SELECT
	(SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL),
	(SELECT COUNT(*) FROM outbox WHERE status = 'pending'),
	(SELECT COUNT(*) FROM outbox WHERE status = 'sending'),
	(SELECT COUNT(*) FROM timers),
	(SELECT MIN(due_at) FROM timers),
	(SELECT COUNT(*) FROM runs WHERE ended_at IS NULL),
	(SELECT COUNT(*) FROM contacts)

-- name: Ping
SELECT 1

-- name: Depths
-- Each queue counted through its partial or ordered index, up to $1: the cost
-- does not grow with the tables (TestDepths). $2 is now.
SELECT
	(SELECT COUNT(*) FROM (SELECT 1 FROM inbox WHERE processed_at IS NULL LIMIT $1) AS x),
	(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status = 'pending' LIMIT $1) AS x),
	(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status IN ('pending', 'claimed', 'sending') LIMIT $1) AS x),
	(SELECT COUNT(*) FROM (SELECT 1 FROM timers LIMIT $1) AS x),
	(SELECT COUNT(*) FROM (SELECT 1 FROM timers WHERE due_at <= $2 LIMIT $1) AS x),
	(SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE ended_at IS NULL LIMIT $1) AS x),
	(SELECT MIN(due_at) FROM timers),
	(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status = 'held' LIMIT $1) AS x),
	(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status = 'pending' AND allowance = 1 LIMIT $1) AS x)

-- ---- retention ----
-- Each purge goes through an index on the age it tests (TestRetentionQueriesUseIndexes).

-- name: PurgeInbox
DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE processed_at IS NOT NULL AND processed_at < $1 LIMIT $2)

-- name: EndedRuns
SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at < $1 LIMIT $2

-- name: DeleteTimersOfRuns
DELETE FROM timers WHERE run_id = ANY($1)

-- name: DeleteRunStepsOfRuns
DELETE FROM run_steps WHERE run_id = ANY($1)

-- name: DeleteRuns
DELETE FROM runs WHERE id = ANY($1) AND ended_at IS NOT NULL

-- name: PurgeMessages
DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < $1
	AND status NOT IN ('pending', 'claimed', 'sending', 'held') LIMIT $2)

-- name: PurgeStatuses
DELETE FROM message_statuses WHERE id IN (SELECT id FROM message_statuses WHERE at < $1 LIMIT $2)

-- name: PurgeOrphanStatuses
DELETE FROM message_statuses WHERE id IN (SELECT id FROM message_statuses WHERE outbox_id IS NULL AND at < $1 LIMIT $2)

-- ---- templates and phone numbers ----
-- The setters insert the template's row or update one attribute of it,
-- guarded by that attribute's time: a webhook Meta delivers late (older than
-- what is recorded) changes nothing.

-- name: TemplateStates
SELECT name, language, template_id, status, reason, event, status_at, category, category_at, quality, quality_at, updated_at
FROM template_states ORDER BY name, language

-- name: SetTemplateStatus
INSERT INTO template_states (name, language, template_id, status, event, reason, status_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
ON CONFLICT (name, language) DO UPDATE SET status = excluded.status, event = excluded.event, reason = excluded.reason,
	status_at = excluded.status_at, updated_at = excluded.updated_at,
	template_id = CASE WHEN excluded.template_id != '' THEN excluded.template_id ELSE template_states.template_id END
WHERE template_states.status_at IS NULL OR template_states.status_at <= excluded.status_at

-- name: SetTemplateCategory
INSERT INTO template_states (name, language, template_id, category, category_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $5)
ON CONFLICT (name, language) DO UPDATE SET category = excluded.category, category_at = excluded.category_at,
	updated_at = excluded.updated_at,
	template_id = CASE WHEN excluded.template_id != '' THEN excluded.template_id ELSE template_states.template_id END
WHERE template_states.category_at IS NULL OR template_states.category_at <= excluded.category_at

-- name: SetTemplateQuality
INSERT INTO template_states (name, language, template_id, quality, quality_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $5)
ON CONFLICT (name, language) DO UPDATE SET quality = excluded.quality, quality_at = excluded.quality_at,
	updated_at = excluded.updated_at,
	template_id = CASE WHEN excluded.template_id != '' THEN excluded.template_id ELSE template_states.template_id END
WHERE template_states.quality_at IS NULL OR template_states.quality_at <= excluded.quality_at

-- name: HoldOutbox
-- Free-form messages whose fallback the template is stay pending (inside the
-- window they need no template); the sender holds them if they come to need it.
UPDATE outbox SET status = 'held', last_error = $2, updated_at = $3 WHERE status = 'pending' AND kind = 'template' AND template = $1

-- name: ReleaseOutbox
UPDATE outbox SET status = 'pending', next_attempt_at = $2, last_error = '', updated_at = $2 WHERE status = 'held' AND template = $1

-- name: SetPhoneQuality
INSERT INTO phone_quality (display_phone_number, event, current_limit, old_limit, max_daily, at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (display_phone_number) DO UPDATE SET event = excluded.event, current_limit = excluded.current_limit,
	old_limit = excluded.old_limit, max_daily = excluded.max_daily, at = excluded.at
WHERE phone_quality.at <= excluded.at

-- name: PhoneQualities
SELECT display_phone_number, event, current_limit, old_limit, max_daily, at FROM phone_quality ORDER BY display_phone_number

-- ---- meta and the sandbox ----

-- name: Meta
SELECT value FROM meta WHERE key = $1

-- name: SetMeta
INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: Used
SELECT (SELECT COUNT(*) FROM contacts) + (SELECT COUNT(*) FROM inbox)

-- name: InboxOf
SELECT id, key, kind, contact, payload, received_at, processed_at, result FROM
(SELECT * FROM inbox WHERE contact = $1 AND kind IN ('message', 'event') ORDER BY id DESC LIMIT $2) AS latest ORDER BY id

-- name: RecordSandboxSend
INSERT INTO sandbox_sends (provider_id, contact, at, type, window_open, last_inbound_at) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (provider_id) DO NOTHING

-- name: SandboxSends
SELECT provider_id, contact, at, type, window_open, last_inbound_at
FROM sandbox_sends WHERE contact = $1 ORDER BY at DESC LIMIT $2

-- name: EraseSandbox
-- Everything but flow versions (the loaded flows point at them) and the mode.
DELETE FROM timers;
DELETE FROM outbox;
DELETE FROM message_statuses;
DELETE FROM runs;
DELETE FROM run_steps;
DELETE FROM inbox;
DELETE FROM schedules;
DELETE FROM sandbox_sends;
DELETE FROM contact_clicks;
DELETE FROM conversions;
DELETE FROM run_variants;
DELETE FROM capi_events;
DELETE FROM contacts

-- name: EraseSandboxMeta
DELETE FROM meta WHERE key != $1

-- ---- schema ----

-- name: SchemaVersion
SELECT MAX(version_id) FROM goose_db_version WHERE is_applied

-- ---- the funnel report ----

-- name: InsertRunSteps
-- A step a run executed, once per run and step: the first execution's row stays.
INSERT INTO run_steps (run_id, step, flow_id, started_at, reached_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (run_id, step) DO NOTHING

-- name: MarkRunStepReplied
-- Marks keep their first time (IS NULL guard); a step never recorded is no row.
UPDATE run_steps SET replied_at = $3 WHERE run_id = $1 AND step = $2 AND replied_at IS NULL

-- name: MarkRunStepDelivered
UPDATE run_steps SET delivered_at = $3 WHERE run_id = $1 AND step = $2 AND delivered_at IS NULL

-- name: MarkRunStepRead
-- A read message was delivered, whether or not its delivered status came.
UPDATE run_steps SET read_at = $3, delivered_at = COALESCE(delivered_at, $3) WHERE run_id = $1 AND step = $2 AND read_at IS NULL

-- name: ReportFlows
SELECT DISTINCT flow_id FROM flow_versions ORDER BY flow_id

-- name: ReportNewestVersion
SELECT file, source FROM flow_versions WHERE flow_id = $1 ORDER BY id DESC LIMIT 1

-- name: ReportRuns
-- A flow's runs started in [$2, $3): one range scan of runs_report.
SELECT source_id, status, step, COUNT(*) FROM runs
WHERE flow_id = $1 AND started_at >= $2 AND started_at < $3 GROUP BY source_id, status, step

-- name: ReportSteps
-- The steps of a flow's runs started in [$2, $3): one range scan of run_steps_report.
SELECT step, COUNT(*), COUNT(replied_at), COUNT(delivered_at), COUNT(read_at) FROM run_steps
WHERE flow_id = $1 AND started_at >= $2 AND started_at < $3 GROUP BY step

-- name: ReportAdHeadline
-- The headline of the newest run from an ad in the period.
SELECT headline FROM runs WHERE flow_id = $1 AND started_at >= $2 AND started_at < $3 AND source_id = $4
ORDER BY started_at DESC LIMIT 1

-- name: ReportHasOutcomes
SELECT COUNT(*) > 0 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'conversions'

-- name: ReportConverted
-- Each converted run of the period: its ad and the time to its first
-- conversion. A conversion follows its run's start, so at >= $2 narrows the
-- conversions index without changing the result.
SELECT r.source_id, MIN(c.at) - r.started_at FROM conversions c JOIN runs r ON r.id = c.run_id
WHERE c.flow_id = $1 AND c.at >= $2 AND r.started_at >= $2 AND r.started_at < $3 GROUP BY c.run_id, r.source_id, r.started_at

-- name: ReportEvents
SELECT c.event, c.currency, COUNT(*), COALESCE(SUM(c.value), 0) FROM conversions c JOIN runs r ON r.id = c.run_id
WHERE c.flow_id = $1 AND c.at >= $2 AND r.started_at >= $2 AND r.started_at < $3
GROUP BY c.event, c.currency ORDER BY c.event, c.currency

-- name: ReportDaily
SELECT to_char(to_timestamp(c.at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), COUNT(*) FROM conversions c JOIN runs r ON r.id = c.run_id
WHERE c.flow_id = $1 AND c.at >= $2 AND r.started_at >= $2 AND r.started_at < $3 GROUP BY 1 ORDER BY 1

-- name: ReportSplits
-- Each split step's variants over the period's runs, and how many of those
-- runs converted (any conversion of the run).
SELECT v.step, v.variant, COUNT(*), COUNT(cv.run_id) FROM run_variants v JOIN runs r ON r.id = v.run_id
LEFT JOIN (SELECT DISTINCT run_id FROM conversions WHERE flow_id = $1 AND at >= $2) cv ON cv.run_id = v.run_id
WHERE v.flow_id = $1 AND r.started_at >= $2 AND r.started_at < $3 GROUP BY v.step, v.variant ORDER BY v.step, v.variant

-- ---- messaging limit and 131049 ----

-- name: ReachedCount
-- Unique users reached since $1, and the earliest of those times.
SELECT COUNT(*), MIN(at) FROM reached WHERE at > $1

-- name: ReachedOf
-- Which of these contacts were reached since $2.
SELECT contact FROM reached WHERE contact = ANY($1) AND at > $2

-- name: MarkReached
INSERT INTO reached (contact, at) VALUES ($1, $2)
ON CONFLICT (contact) DO UPDATE SET at = excluded.at WHERE reached.at < excluded.at

-- name: PurgeReached
DELETE FROM reached WHERE at <= $1

-- name: MarketingLimited
-- Messages Meta refused with 131049, by flow and contact: all of them, the
-- ones sent once more, and of those the ones that then went out.
SELECT flow_id, contact, COUNT(*) AS refused, SUM(CASE WHEN limit_retries > 0 THEN 1 ELSE 0 END) AS retried,
	SUM(CASE WHEN limit_retries > 0 AND status IN ('sent', 'delivered', 'read') THEN 1 ELSE 0 END) AS delivered
FROM outbox WHERE (error_code = 131049 OR limit_retries > 0) AND created_at >= $1
GROUP BY flow_id, contact ORDER BY flow_id, contact LIMIT $2

-- ---- leases and the sender's pause (several replicas) ----

-- name: Lead
-- Takes the lease $1 for holder $2 for $4 ms from $3 (NULL: the database's
-- clock): inserted when nobody holds it, renewed when $2 holds it (even lapsed:
-- nobody took it meanwhile), taken over when it lapsed. A row comes back only
-- when $2 holds it afterwards.
INSERT INTO leases (name, holder, elected_at, expires_at)
VALUES ($1, $2, COALESCE($3::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint), COALESCE($3::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) + $4)
ON CONFLICT (name) DO UPDATE SET
	elected_at = CASE WHEN leases.holder = excluded.holder THEN leases.elected_at ELSE excluded.elected_at END,
	holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.elected_at
RETURNING holder, elected_at, expires_at

-- name: Resign
DELETE FROM leases WHERE name = $1 AND holder = $2

-- name: LeaseOf
SELECT holder, elected_at, expires_at FROM leases WHERE name = $1

-- name: ClearLeases
-- Not run on PostgreSQL (other replicas' leases are live); kept for the
-- drivers' common set of queries.
DELETE FROM leases

-- name: Fence
-- The row stays locked until the transaction ends: a takeover (Lead's upsert
-- of the same row) waits for it.
SELECT 1 FROM leases WHERE name = $1 AND holder = $2 FOR SHARE

-- name: PauseSender
-- $1 reason, $2 until (NULL: until resumed), $3 now.
INSERT INTO sender_pause (id, reason, until, updated_at) VALUES (1, $1, $2, $3)
ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, until = excluded.until, updated_at = excluded.updated_at

-- name: ResumeSender
-- Clears the pause recorded as $2 ('' any).
UPDATE sender_pause SET reason = '', until = NULL, updated_at = $1
WHERE id = 1 AND reason != '' AND ($2::text = '' OR reason = $2::text)

-- name: SenderPaused
SELECT reason, until, updated_at FROM sender_pause WHERE id = 1

-- name: RecentSends
-- A new leader refills its pair-rate buckets from these (outbox_sent index).
SELECT contact, sent_at FROM outbox WHERE sent_at >= $1 ORDER BY sent_at, id

-- ---- waking other replicas ----

-- name: NotifyInbox
-- Delivered at the commit: wakes the replicas listening on funnel_inbox
-- (store.TopicInbox).
SELECT pg_notify('funnel_inbox', '')

-- ---- outcomes (the twins of store/sqlite/queries.sql's) ----

-- name: CAPIDue
SELECT EXISTS (SELECT 1 FROM capi_events WHERE status = 'queued' AND next_at <= $1)

-- name: CAPIEvents
SELECT id, conversion_id, event_id, dataset_id, status, attempts, next_at, expires_at, error_code, error, body, created_at, sent_at, updated_at
FROM capi_events WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2

-- name: CAPIEventsOf
SELECT id, conversion_id, event_id, dataset_id, status, attempts, next_at, expires_at, error_code, error, body, created_at, sent_at, updated_at
FROM capi_events WHERE conversion_id = ANY($1)

-- name: ChangeCAPI
-- One guarded transition (store.CAPIChange); see the SQLite twin for the arguments.
UPDATE capi_events SET updated_at = $1,
	status = CASE WHEN $2 = '' THEN status ELSE $2 END,
	error_code = CASE WHEN $3 THEN $4 ELSE error_code END,
	error = CASE WHEN $3 THEN $5 ELSE error END,
	attempts = CASE WHEN $6 THEN $7 ELSE attempts END,
	next_at = CASE WHEN $8 THEN $9 ELSE next_at END,
	sent_at = CASE WHEN $10 THEN $11 ELSE sent_at END
WHERE id = $13 AND status = ANY($12)

-- name: ClaimCAPI
-- Queued events due at $1 become sending ($2 of them at most), oldest due
-- first; rows another replica is claiming are skipped.
UPDATE capi_events SET status = 'sending', updated_at = $1
WHERE id IN (SELECT id FROM capi_events WHERE status = 'queued' AND next_at <= $1 ORDER BY next_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id, conversion_id, event_id, dataset_id, status, attempts, next_at, expires_at, error_code, error, body, created_at, sent_at, updated_at

-- name: Clicks
SELECT contact, source_id, ctwa_clid, headline, at FROM contact_clicks WHERE contact = ANY($1)

-- name: Conversions
SELECT id, run_id, contact, flow_id, step, event, value, currency, source_id, ctwa_clid, clicked_at, variants, at
FROM conversions WHERE ($1 = '' OR flow_id = $1) AND ($2 = '' OR contact = $2) AND ($3 = 0 OR run_id = $3)
	AND at >= $4 AND at < $5 ORDER BY id DESC LIMIT $6

-- name: DeleteClicks
DELETE FROM contact_clicks WHERE contact = $1

-- name: InsertCAPIEvents
INSERT INTO capi_events (conversion_id, event_id, dataset_id, status, attempts, next_at, expires_at, error_code, error, body, created_at, sent_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT DO NOTHING RETURNING id, conversion_id

-- name: InsertConversions
INSERT INTO conversions (run_id, contact, flow_id, step, event, value, currency, source_id, ctwa_clid, clicked_at, variants, at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (run_id, step) DO NOTHING RETURNING id, run_id, step

-- name: InsertProjectVersion
INSERT INTO project_versions (id, hash, flows, created_at) VALUES ($1, $2, $3, $4)

-- name: InsertRunVariants
INSERT INTO run_variants (run_id, step, variant, flow_id, at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (run_id, step) DO NOTHING

-- name: MergeContactClicks
-- The later of the two contacts' clicks is kept ($1 into, $2 from).
INSERT INTO contact_clicks (contact, source_id, ctwa_clid, headline, at)
SELECT $1, source_id, ctwa_clid, headline, at FROM contact_clicks WHERE contact = $2
ON CONFLICT (contact) DO UPDATE SET source_id = excluded.source_id, ctwa_clid = excluded.ctwa_clid,
	headline = excluded.headline, at = excluded.at WHERE excluded.at > contact_clicks.at

-- name: MergeContactConversions
UPDATE conversions SET contact = $1 WHERE contact = $2

-- name: NewProjectVersionID
SELECT nextval(pg_get_serial_sequence('project_versions', 'id')) FROM generate_series(1, $1)

-- name: NextCAPIAttempt
SELECT MIN(next_at) FROM capi_events WHERE status = 'queued' AND next_at > $1

-- name: OutcomeAds
WITH p AS (SELECT id, entry::jsonb ->> 'source_id' AS ad FROM runs WHERE flow_id = $1 AND started_at >= $2 AND started_at < $3)
SELECT p.ad, COUNT(*), COUNT(c.run_id) FROM p
LEFT JOIN (SELECT DISTINCT run_id FROM conversions) c ON c.run_id = p.id
WHERE COALESCE(p.ad, '') != '' GROUP BY p.ad ORDER BY p.ad

-- name: OutcomeEvents
WITH p AS (SELECT id FROM runs WHERE flow_id = $1 AND started_at >= $2 AND started_at < $3)
SELECT c.event, c.currency, COUNT(*), COALESCE(SUM(c.value), 0) FROM conversions c JOIN p ON p.id = c.run_id
GROUP BY c.event, c.currency ORDER BY c.event, c.currency

-- name: OutcomeSplits
WITH p AS (SELECT id FROM runs WHERE flow_id = $1 AND started_at >= $2 AND started_at < $3)
SELECT v.step, v.variant, COUNT(*), COUNT(c.run_id) FROM run_variants v JOIN p ON p.id = v.run_id
LEFT JOIN (SELECT DISTINCT run_id FROM conversions) c ON c.run_id = v.run_id
GROUP BY v.step, v.variant ORDER BY v.step, v.variant

-- name: OutcomeTotals
WITH p AS (SELECT id FROM runs WHERE flow_id = $1 AND started_at >= $2 AND started_at < $3)
SELECT (SELECT COUNT(*) FROM p), (SELECT COUNT(DISTINCT c.run_id) FROM conversions c JOIN p ON p.id = c.run_id)

-- name: ProjectVersion
SELECT id, hash, flows, created_at FROM project_versions WHERE id = $1

-- name: ProjectVersionID
SELECT id FROM project_versions WHERE hash = $1

-- name: RecoverCAPI
UPDATE capi_events SET status = 'queued', next_at = $1, updated_at = $1 WHERE status = 'sending'

-- name: ReportMarketingLimited
SELECT COUNT(*), COUNT(DISTINCT contact) FROM outbox
WHERE (error_code = 131049 OR limit_retries > 0) AND flow_id = $1 AND created_at >= $2 AND created_at < $3

-- name: ReportRunCounts
-- No counters on PostgreSQL (see migration 00011): the whole hours [$2, $3)
-- are read from runs through runs_report.
SELECT source_id, status, step, COUNT(*) FROM runs
WHERE flow_id = $1 AND started_at >= $2::bigint * 3600000 AND started_at < $3::bigint * 3600000 GROUP BY source_id, status, step

-- name: ReportStepCounts
SELECT step, COUNT(*), COUNT(replied_at), COUNT(delivered_at), COUNT(read_at) FROM run_steps
WHERE flow_id = $1 AND started_at >= $2::bigint * 3600000 AND started_at < $3::bigint * 3600000 GROUP BY step

-- name: ReportWaitingAllowance
SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND allowance = 1 AND flow_id = $1

-- name: RunVariants
SELECT run_id, step, variant FROM run_variants WHERE run_id = ANY($1)

-- name: SaveClicks
-- A contact's latest click-to-WhatsApp click; an older one than stored is ignored.
INSERT INTO contact_clicks (contact, source_id, ctwa_clid, headline, at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (contact) DO UPDATE SET source_id = excluded.source_id, ctwa_clid = excluded.ctwa_clid,
	headline = excluded.headline, at = excluded.at WHERE excluded.at >= contact_clicks.at
