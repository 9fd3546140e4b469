-- 0006_subscribers: what the USSD/SMS channels need from core about a phone: the beneficiary's PIN (keyed
-- hash, lockout, one-time reset codes) and SMS opt-outs.
--
-- A PIN is 4 digits: any hash of it alone falls to a search of 10,000 values, so it is hashed with a key the
-- database never sees (keyed BLAKE2b, domain "pin", bound to the person): a copy of the database reveals
-- nothing, and online guessing stops after pin_max_failures. The opt-out list is keyed by the phone's blind
-- index, so STOP holds for a number whoever it belongs to, registered or not.

CREATE TABLE subscriber_pins (
	individual_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	pin_hash BINARY(16) NOT NULL,
	failures INT UNSIGNED NOT NULL DEFAULT 0,
	locked_at DATETIME(3) NULL,
	reset_hash BINARY(16) NULL,          -- one-time reset code sent by SMS (keyed hash)
	reset_expires_at DATETIME(3) NULL,
	reset_failures INT UNSIGNED NOT NULL DEFAULT 0,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	updated_at DATETIME(3) NOT NULL
) ENGINE=InnoDB;

CREATE TABLE phone_optouts (
	phone_bidx BINARY(16) NOT NULL PRIMARY KEY,
	opted_out_at DATETIME(3) NOT NULL,
	channel VARCHAR(16) NOT NULL
) ENGINE=InnoDB;

-- Which number an outbox message goes to, as a blind index: the claim skips opted-out numbers. accepted_at:
-- the SMSC acknowledged the message (Kannel's delivery report 8); a message handed to Kannel but never
-- acknowledged (lost in a Kannel crash) is offered once more (resends): at least once, duplicates counted.
ALTER TABLE outbox
	ADD COLUMN phone_bidx BINARY(16) NULL AFTER phone_enc,
	ADD COLUMN accepted_at DATETIME(3) NULL AFTER delivered_at,
	ADD COLUMN resends INT UNSIGNED NOT NULL DEFAULT 0 AFTER attempts;
