-- 0003_cases: applications, grievances, change requests and feedback as tracked cases; the SMS outbox.
--
-- A case's workflow (states, transitions, SLAs) is data: deploy/workflows/*.ini (docs/workflows.md). Free text
-- and requested changes may hold personal data, so they are sealed like the registry's (AD
-- "<table>.<column>:<id>"). The reference a beneficiary quotes on a keypad is 8 random digits and a Damm check
-- digit. dup_key is a blind index of (subject, category, payment) for linking repeated complaints.

CREATE TABLE cases (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	ref CHAR(9) NOT NULL,
	case_type ENUM('application','grievance','change_request','feedback') NOT NULL,
	category VARCHAR(32) NOT NULL,
	state VARCHAR(32) NOT NULL,
	state_since DATETIME(3) NOT NULL,
	sla_due_at DATETIME(3) NULL,       -- NULL: no SLA in this state
	sla_at_risk_at DATETIME(3) NULL,
	sla_breached TINYINT(1) NOT NULL DEFAULT 0,
	escalations INT UNSIGNED NOT NULL DEFAULT 0,
	is_open TINYINT(1) NOT NULL DEFAULT 1,
	channel ENUM('ussd','sms','kiosk','staff','api') NOT NULL,
	individual_id BIGINT UNSIGNED NULL,
	household_id BIGINT UNSIGNED NULL,
	programme_code VARCHAR(32) NULL,
	payment_ref VARCHAR(64) NULL,
	location_id BIGINT UNSIGNED NULL,
	confidential TINYINT(1) NOT NULL DEFAULT 0,
	assigned_role VARCHAR(20) NULL,
	assigned_to VARCHAR(64) NULL,
	team VARCHAR(100) NULL,
	summary_enc VARBINARY(4200) NULL,
	data_enc VARBINARY(8400) NULL,
	eligibility TEXT NULL,             -- JSON: outcome and explanation (no personal data)
	dup_key BINARY(16) NULL,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(72) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	updated_by VARCHAR(72) NOT NULL,
	UNIQUE KEY uq_cases_ref (ref),
	KEY ix_cases_sla (is_open, sla_breached, sla_due_at), -- the sweeper reads only what it must escalate
	KEY ix_cases_mine (is_open, assigned_to, sla_due_at),
	KEY ix_cases_team (is_open, team, sla_due_at),
	KEY ix_cases_dup (dup_key, is_open),
	KEY ix_cases_individual (individual_id),
	KEY ix_cases_household (household_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What happened to a case, in order: transitions, notes, escalations, approvals.
CREATE TABLE case_events (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	case_id BIGINT UNSIGNED NOT NULL,
	kind ENUM('created','transition','note','escalation','approval_requested','approved','rejected','linked') NOT NULL,
	transition VARCHAR(48) NULL,
	from_state VARCHAR(32) NULL,
	to_state VARCHAR(32) NULL,
	actor VARCHAR(72) NOT NULL,
	at DATETIME(3) NOT NULL,
	note_enc VARBINARY(4200) NULL,
	KEY ix_case_events_case (case_id, at)
) ENGINE=InnoDB;

-- Maker-checker: a transition waiting for a second, different user. pending_case is the case id while the
-- request is pending and NULL after, so a case has at most one pending request.
CREATE TABLE case_approvals (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	case_id BIGINT UNSIGNED NOT NULL,
	pending_case BIGINT UNSIGNED NULL,
	transition VARCHAR(48) NOT NULL,
	fields_enc VARBINARY(8400) NULL, -- the maker's request (note, decision...), sealed
	maker VARCHAR(72) NOT NULL,
	made_at DATETIME(3) NOT NULL,
	status ENUM('pending','approved','rejected') NOT NULL DEFAULT 'pending',
	checker VARCHAR(72) NULL,
	checked_at DATETIME(3) NULL,
	UNIQUE KEY uq_case_approvals_pending (pending_case),
	KEY ix_case_approvals_case (case_id)
) ENGINE=InnoDB;

-- Files attached to a case (a photo of a receipt, a letter): the name and the content sealed, the size and
-- the SHA-256 of the content in clear (to show and to check).
CREATE TABLE case_attachments (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	case_id BIGINT UNSIGNED NOT NULL,
	filename_enc VARBINARY(400) NOT NULL,
	content_type VARCHAR(64) NOT NULL,
	size INT UNSIGNED NOT NULL,
	sha256 CHAR(64) NOT NULL,
	content_enc MEDIUMBLOB NOT NULL,
	added_by VARCHAR(72) NOT NULL,
	added_at DATETIME(3) NOT NULL,
	KEY ix_case_attachments_case (case_id)
) ENGINE=InnoDB;

-- SMS to send, written in the transaction of what caused it; the gateway drains it (its own issue).
CREATE TABLE outbox (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	case_id BIGINT UNSIGNED NULL,
	phone_enc VARBINARY(128) NOT NULL,
	language VARCHAR(8) NOT NULL,
	template VARCHAR(48) NOT NULL,
	params TEXT NOT NULL,              -- JSON of the template's parameters (reference, dates; no personal data)
	status ENUM('queued','sending','sent','failed') NOT NULL DEFAULT 'queued',
	attempts INT UNSIGNED NOT NULL DEFAULT 0,
	created_at DATETIME(3) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	KEY ix_outbox_status (status, created_at),
	KEY ix_outbox_case (case_id)
) ENGINE=InnoDB;
