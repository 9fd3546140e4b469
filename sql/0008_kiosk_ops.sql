-- 0008_kiosk_ops: kiosk terminals in operation: health, the tamper lock, events, offline allowances and the
-- offline events replayed from a kiosk's store-and-forward queue (docs/kiosk-api.md, core/kiosk_ops.h).
--
-- The lock is a column of the kiosk's row, so every core instance refuses a locked terminal at once. An
-- offline event is applied once per (kiosk, event id): its row is written in the same transaction as what
-- it does (the collection, its ledger posting, its alert), so a replay after a lost answer or a crash finds
-- it and answers "duplicate". Payment alert rules are names (payment_alerts.rule is text): kiosk_tamper,
-- offline_conflict and kiosk_override (core/alerts.h) need no schema change.

ALTER TABLE kiosks
	ADD COLUMN last_seen_at DATETIME(3) NULL,
	ADD COLUMN health TEXT NULL,                        -- JSON of the last heartbeat (no personal data)
	ADD COLUMN locked_at DATETIME(3) NULL,              -- set by a tamper or door-open event, cleared by staff
	ADD COLUMN lock_reason VARCHAR(16) NULL,            -- tamper, door_open
	ADD COLUMN lock_event_id BIGINT UNSIGNED NULL,      -- the kiosk_events row that locked it
	ADD COLUMN unlocked_at DATETIME(3) NULL,
	ADD COLUMN unlocked_by VARCHAR(72) NULL,
	ADD COLUMN unlock_reason VARCHAR(500) NULL,         -- staff's words, kept here, never in the audit trail
	ADD COLUMN offline_cap BIGINT NULL,                 -- minor units one allowance may pay out; NULL = no offline collection
	ADD COLUMN offline_currency CHAR(3) NULL,
	ADD COLUMN offline_max_collections INT UNSIGNED NULL,
	ADD COLUMN offline_hours INT UNSIGNED NOT NULL DEFAULT 24; -- an allowance's validity, at most 72

-- What a kiosk reported: tamper, door, help button, device faults. occurred_at is the kiosk's clock.
CREATE TABLE kiosk_events (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	kiosk_id BIGINT UNSIGNED NOT NULL,
	type ENUM('tamper','door_open','door_closed','help','reader_fault','reader_ok','printer_fault',
		'dispense_unknown') NOT NULL, -- dispense_unknown: a crash between recording a collection and the drawer
	occurred_at DATETIME(3) NOT NULL,
	received_at DATETIME(3) NOT NULL,
	offline TINYINT(1) NOT NULL DEFAULT 0,              -- replayed from the kiosk's queue
	locked TINYINT(1) NOT NULL DEFAULT 0,               -- this event locked the kiosk
	KEY ix_kiosk_events_kiosk (kiosk_id, received_at)
) ENGINE=InnoDB;

-- Offline allowances: what core promised a kiosk it may pay out while the link is down. The newest one of
-- a kiosk supersedes the others (superseded_at); used_* count what replayed collections took from the cap.
CREATE TABLE kiosk_allowances (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	kiosk_id BIGINT UNSIGNED NOT NULL,
	issued_at DATETIME(3) NOT NULL,
	valid_until DATETIME(3) NOT NULL,
	superseded_at DATETIME(3) NULL,
	cap_amount BIGINT NOT NULL,
	currency CHAR(3) NOT NULL,
	max_collections INT UNSIGNED NOT NULL,
	items INT UNSIGNED NOT NULL,
	used_amount BIGINT NOT NULL DEFAULT 0,
	used_count INT UNSIGNED NOT NULL DEFAULT 0,
	text_sha256 BINARY(32) NOT NULL,                    -- of the signed text, to match a kiosk's copy
	KEY ix_kiosk_allowances_kiosk (kiosk_id, superseded_at)
) ENGINE=InnoDB;

CREATE TABLE kiosk_allowance_items (
	allowance_id BIGINT UNSIGNED NOT NULL,
	payment_id BIGINT UNSIGNED NOT NULL,
	amount BIGINT NOT NULL,
	PRIMARY KEY (allowance_id, payment_id)
) ENGINE=InnoDB;

-- Every offline event a kiosk replayed, once: the key is (kiosk, the kiosk's event id).
CREATE TABLE kiosk_offline_events (
	kiosk_id BIGINT UNSIGNED NOT NULL,
	event_id VARCHAR(64) NOT NULL,
	type ENUM('collection','grievance','event') NOT NULL,
	status ENUM('pending','applied','conflict','rejected') NOT NULL,
	occurred_at DATETIME(3) NULL,
	received_at DATETIME(3) NOT NULL,
	allowance_id BIGINT UNSIGNED NULL,
	payment_id BIGINT UNSIGNED NULL,
	receipt VARCHAR(64) NULL,                           -- the kiosk's offline receipt of a collection
	reference VARCHAR(16) NULL,                         -- the case of a grievance
	message VARCHAR(200) NULL,                          -- why it was not applied (no personal data)
	PRIMARY KEY (kiosk_id, event_id),
	KEY ix_kiosk_offline_events_payment (payment_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;
