-- 0007_kiosk_bio: fingerprint templates, verification at a pay point, and kiosk collection exactly once
-- (docs/kiosk-api.md).
--
-- A template is biometric data: it is stored only field-encrypted (hf_field_seal, associated data
-- "biometric_templates.template:<individual_id>:<finger>:<id>"), so a copy of the database or a template
-- moved to another person or finger is useless. A verification token is never stored, only its SHA-256.
-- Collection exactly once: the payment row lock decides between two kiosks; the (kiosk, request_id) key of
-- kiosk_collection_requests, written in the same transaction as the collection, makes a request the kiosk
-- repeats after a timeout (or sends to another core instance) an answer, not a second payout.

-- What a terminal is for: paying out (the default) or enrolling fingerprints (set by staff).
ALTER TABLE kiosks
	ADD COLUMN mode ENUM('pay_point','enrolment') NOT NULL DEFAULT 'pay_point' AFTER status;

-- One template per individual and finger; a new capture replaces the old one (same row, new version).
CREATE TABLE biometric_templates (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	individual_id BIGINT UNSIGNED NOT NULL,
	finger ENUM('right_thumb','right_index','right_middle','right_ring','right_little',
		    'left_thumb','left_index','left_middle','left_ring','left_little') NOT NULL,
	driver VARCHAR(64) NOT NULL,              -- libfprint driver that captured it ("synaptics", "virtual_image")
	device VARCHAR(128) NOT NULL,             -- the reader's device id, as the kiosk reports it
	format VARCHAR(16) NOT NULL,              -- "fprint3": libfprint's serialised print
	template_enc MEDIUMBLOB NOT NULL,         -- sealed; at most 96 KiB of plaintext
	enrolled_kiosk VARCHAR(32) NOT NULL,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	UNIQUE KEY uq_biometric_templates_finger (individual_id, finger)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every verification attempt at a pay point, and the tokens the successful ones gave (hashed).
CREATE TABLE kiosk_verifications (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	kiosk_id BIGINT UNSIGNED NOT NULL,
	individual_id BIGINT UNSIGNED NOT NULL,
	result ENUM('match','no_match','unreadable','override') NOT NULL,
	attempt TINYINT UNSIGNED NULL,            -- what the kiosk says (1-3); core counts for itself
	driver VARCHAR(64) NULL,
	method ENUM('fingerprint','pin_staff_override') NULL,  -- set when a token was issued
	token_hash BINARY(32) NULL,               -- SHA-256 of the token
	valid_until DATETIME(3) NULL,
	override_reason ENUM('fingerprint_unreadable','no_template','reader_fault') NULL,
	staff_user VARCHAR(64) NULL,              -- the account that authorised an override
	created_at DATETIME(3) NOT NULL,
	UNIQUE KEY uq_kiosk_verifications_token (token_hash),
	KEY ix_kiosk_verifications_recent (kiosk_id, individual_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Online collections by request: one row per collection, written with it. receipt is unique here, so two
-- collections never share a receipt number (12 random digits would collide after about a million).
CREATE TABLE kiosk_collection_requests (
	kiosk_id BIGINT UNSIGNED NOT NULL,
	request_id CHAR(36) NOT NULL,             -- the kiosk's UUID, lower case
	payment_id BIGINT UNSIGNED NOT NULL,
	verification_id BIGINT UNSIGNED NOT NULL,
	receipt VARCHAR(24) NOT NULL,
	created_at DATETIME(3) NOT NULL,
	PRIMARY KEY (kiosk_id, request_id),
	UNIQUE KEY uq_kiosk_collection_requests_payment (payment_id),
	UNIQUE KEY uq_kiosk_collection_requests_receipt (receipt)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The verification recorded on a payment includes the fallback; the public receipt check finds a payment by
-- its receipt number.
ALTER TABLE payments
	MODIFY COLUMN verification ENUM('fingerprint','pin','staff_witness','pin_staff_override') NULL,
	ADD KEY ix_payments_receipt (receipt);
