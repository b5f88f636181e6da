-- +goose Up
-- The PostgreSQL twin of store/sqlite/migrations/00002_identities.sql.
ALTER TABLE contacts ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN parent_user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN username TEXT NOT NULL DEFAULT '';
UPDATE contacts SET phone = wa_id;
CREATE INDEX contacts_username ON contacts (username) WHERE username != '';

CREATE TABLE contact_ids (
    id       TEXT PRIMARY KEY,
    contact  TEXT NOT NULL
);
CREATE INDEX contact_ids_contact ON contact_ids (contact);
INSERT INTO contact_ids (id, contact) SELECT wa_id, wa_id FROM contacts;

-- +goose Down
DROP TABLE contact_ids;
DROP INDEX contacts_username;
ALTER TABLE contacts DROP COLUMN username;
ALTER TABLE contacts DROP COLUMN parent_user_id;
ALTER TABLE contacts DROP COLUMN user_id;
ALTER TABLE contacts DROP COLUMN phone;
