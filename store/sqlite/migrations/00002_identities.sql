-- +goose Up
-- A contact's key (contacts.wa_id, and runs/outbox/inbox.contact) never changes: it
-- is the phone number of contacts first known by phone (every contact before this
-- migration), else the first BSUID seen. Each id WhatsApp uses for the person
-- (phone number, BSUID, parent BSUID, and BSUIDs that were replaced) is a row of
-- contact_ids pointing at the key, so an event carrying any of them finds the
-- contact.

ALTER TABLE contacts ADD COLUMN phone TEXT NOT NULL DEFAULT '';          -- '' while unknown
ALTER TABLE contacts ADD COLUMN user_id TEXT NOT NULL DEFAULT '';        -- the current BSUID
ALTER TABLE contacts ADD COLUMN parent_user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN username TEXT NOT NULL DEFAULT '';       -- shown, never matched on
UPDATE contacts SET phone = wa_id;
CREATE INDEX contacts_username ON contacts (username) WHERE username != '';

CREATE TABLE contact_ids (
    id       TEXT PRIMARY KEY,   -- a phone number, BSUID or parent BSUID
    contact  TEXT NOT NULL       -- contacts.wa_id
) WITHOUT ROWID;
CREATE INDEX contact_ids_contact ON contact_ids (contact);
INSERT INTO contact_ids (id, contact) SELECT wa_id, wa_id FROM contacts;

-- +goose Down
DROP TABLE contact_ids;
DROP INDEX contacts_username;
ALTER TABLE contacts DROP COLUMN username;
ALTER TABLE contacts DROP COLUMN parent_user_id;
ALTER TABLE contacts DROP COLUMN user_id;
ALTER TABLE contacts DROP COLUMN phone;
