-- 0002_trust: staff accounts, sessions, kiosk terminals and the tamper-evident audit trail.
--
-- Secrets are never stored: passwords as Argon2id strings, session tokens, recovery codes and kiosk
-- enrolment codes as hashes; the TOTP secret sealed like personal data (AD "staff_users.mfa_secret:<id>").
-- The application's database account gets only SELECT and INSERT on audit_log and audit_checkpoints
-- (hifadhi-core migrate sets the grants table by table), so the service itself cannot rewrite history.

CREATE TABLE staff_users (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	username VARCHAR(64) NOT NULL,
	role ENUM('admin','registrar','case_worker','payment_officer','auditor','support') NOT NULL,
	pw_hash VARCHAR(160) NOT NULL,
	-- 'pending': the next password login may only enrol a TOTP authenticator; 'active': password + TOTP.
	mfa_state ENUM('pending','active') NOT NULL DEFAULT 'pending',
	mfa_secret_enc VARBINARY(128) NULL,
	mfa_last_step BIGINT NOT NULL DEFAULT 0, -- highest TOTP time step accepted: each code works once
	failed_logins INT UNSIGNED NOT NULL DEFAULT 0,
	locked_until DATETIME(3) NULL,
	disabled TINYINT(1) NOT NULL DEFAULT 0,
	password_changed_at DATETIME(3) NOT NULL,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(64) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	updated_by VARCHAR(64) NOT NULL,
	UNIQUE KEY uq_staff_users_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One-time recovery codes.
CREATE TABLE staff_recovery_codes (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	user_id BIGINT UNSIGNED NOT NULL,
	code_hash BINARY(16) NOT NULL, -- blind index (keyed BLAKE2b, domain "recovery")
	used_at DATETIME(3) NULL,
	UNIQUE KEY uq_recovery_code (user_id, code_hash),
	CONSTRAINT fk_recovery_user FOREIGN KEY (user_id) REFERENCES staff_users (id)
) ENGINE=InnoDB;

-- Server-side sessions; the bearer token is 32 random bytes, only its SHA-256 is kept.
CREATE TABLE staff_sessions (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	token_hash BINARY(32) NOT NULL,
	user_id BIGINT UNSIGNED NOT NULL,
	stage ENUM('enrol','full') NOT NULL, -- 'enrol': password only, may just enrol TOTP
	created_at DATETIME(3) NOT NULL,
	last_seen_at DATETIME(3) NOT NULL,
	expires_at DATETIME(3) NOT NULL, -- absolute limit
	ended_at DATETIME(3) NULL,
	end_reason VARCHAR(24) NULL,
	source VARCHAR(45) NOT NULL,
	UNIQUE KEY uq_sessions_token (token_hash),
	KEY ix_sessions_user (user_id, ended_at),
	CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES staff_users (id)
) ENGINE=InnoDB;

-- Kiosk terminals: registered by staff (pending, with a one-time enrolment code), then enrolled by the
-- terminal itself with its Ed25519 public key (active), and revocable at once (revoked).
CREATE TABLE kiosks (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	kiosk_no VARCHAR(32) NOT NULL,
	pay_point VARCHAR(64) NOT NULL,
	status ENUM('pending','active','revoked') NOT NULL DEFAULT 'pending',
	public_key BINARY(32) NULL,
	enrol_code_hash BINARY(32) NULL,
	enrol_expires_at DATETIME(3) NULL,
	enrol_failures INT UNSIGNED NOT NULL DEFAULT 0,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(64) NOT NULL,
	enrolled_at DATETIME(3) NULL,
	revoked_at DATETIME(3) NULL,
	revoked_by VARCHAR(64) NULL,
	revoke_reason VARCHAR(500) NULL,
	UNIQUE KEY uq_kiosks_no (kiosk_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Nonces of signed kiosk requests seen inside the replay window; pruned after it. The one table that is not
-- InnoDB, on purpose: it holds nothing but the last minutes' nonces, and in memory the replay check costs
-- no disk write per kiosk request (an InnoDB commit per request halved the signed-request throughput). Every
-- core instance using this database server shares it. Its limits (a server restart or a Galera fail-over
-- forgets the nonces of the last minutes; Galera does not replicate it, so core instances must write
-- through one node, as they do behind a single-writer proxy) are in docs/security.md.
-- Room for 10 million nonces (about 15,000 kiosk requests a second over the 11-minute retention); the server
-- needs max_heap_table_size >= 1G as well (deploy/mariadb.sh sets it), which applies after a restart.
SET SESSION max_heap_table_size = 1073741824;
CREATE TABLE kiosk_nonces (
	kiosk_id BIGINT UNSIGNED NOT NULL,
	nonce BINARY(16) NOT NULL,
	seen_at DATETIME(3) NOT NULL,
	PRIMARY KEY (kiosk_id, nonce) USING HASH,
	KEY ix_kiosk_nonces_seen (seen_at) USING BTREE
) ENGINE=MEMORY MAX_ROWS=10000000;

-- The audit trail: one hash chain per stripe (so concurrent writers do not queue on one row), each entry
-- hash = SHA-256(prev_hash || canonical entry) and mac = keyed BLAKE2b(hash) under a key the database never
-- sees. Digests of the record before/after are keyed too: no personal data, not even guessable by hash.
-- Clustered by (stripe, seq): audit verify walks each chain in that order, reading every page once.
CREATE TABLE audit_log (
	id BIGINT UNSIGNED NOT NULL,
	stripe SMALLINT UNSIGNED NOT NULL,
	seq BIGINT UNSIGNED NOT NULL,
	occurred_at DATETIME(6) NOT NULL,
	actor_type ENUM('staff','service','kiosk','cli','system','anonymous') NOT NULL,
	actor VARCHAR(64) NOT NULL,
	action VARCHAR(48) NOT NULL,
	entity VARCHAR(24) NOT NULL,
	record VARCHAR(64) NOT NULL,
	outcome ENUM('ok','denied','failed') NOT NULL,
	source VARCHAR(45) NOT NULL,
	request_id VARCHAR(36) NOT NULL,
	before_digest BINARY(32) NULL,
	after_digest BINARY(32) NULL,
	detail VARCHAR(2000) NOT NULL, -- JSON without personal data
	prev_hash BINARY(32) NOT NULL,
	hash BINARY(32) NOT NULL,
	mac BINARY(32) NOT NULL,
	PRIMARY KEY (stripe, seq),
	UNIQUE KEY uq_audit_id (id),
	KEY ix_audit_actor (actor, occurred_at),
	KEY ix_audit_record (entity, record, occurred_at),
	KEY ix_audit_action (action, occurred_at),
	KEY ix_audit_time (occurred_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The newest entry of each stripe (the only audit table the application may UPDATE).
CREATE TABLE audit_heads (
	stripe SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
	seq BIGINT UNSIGNED NOT NULL,
	hash BINARY(32) NOT NULL
) ENGINE=InnoDB;

-- Ed25519-signed checkpoints (stripe, seq, hash): an outsider holding the public key can check that the
-- chain up to there was not rewritten.
CREATE TABLE audit_checkpoints (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	stripe SMALLINT UNSIGNED NOT NULL,
	seq BIGINT UNSIGNED NOT NULL,
	hash BINARY(32) NOT NULL,
	signed_at DATETIME(6) NOT NULL,
	key_id CHAR(16) NOT NULL,
	signature BINARY(64) NOT NULL,
	UNIQUE KEY uq_checkpoint (stripe, seq)
) ENGINE=InnoDB;
