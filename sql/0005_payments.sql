-- 0005_payments: payment cycles and payrolls, the double-entry ledger, provider traffic, kiosk collection,
-- reconciliation and discrepancy alerts.
--
-- Money is BIGINT minor units plus an ISO 4217 code, never a float. A payment row is unique per (cycle,
-- enrolment): whatever crashes or retries happen, a beneficiary has one payment per cycle. Its provider
-- idempotency id is "HF" + its id. Every movement of money is a balanced ledger posting whose idem_key is
-- unique, so a posting replayed after a crash or a duplicate callback is refused by the database itself.

CREATE TABLE payment_cycles (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	code VARCHAR(40) NOT NULL,
	programme_id BIGINT UNSIGNED NOT NULL,
	programme_code VARCHAR(32) NOT NULL,
	currency CHAR(3) NOT NULL,
	rule TEXT NOT NULL,                -- JSON entitlement rule (docs/payments.md)
	cutoff_date DATE NOT NULL,         -- enrolments made after this date wait for the next cycle
	pay_from DATE NOT NULL,            -- first day of payment / collection
	pay_until DATE NOT NULL,           -- last day a kiosk payment can be collected; then it expires
	channel ENUM('mobile_money','g2p','kiosk') NOT NULL,
	provider VARCHAR(32) NULL,         -- for mobile_money and g2p
	pay_points TEXT NULL,              -- JSON {"Region/District[/Village]": "PAY-POINT"} for kiosk payments
	status ENUM('draft','generated','approval_requested','approved','closed','cancelled') NOT NULL DEFAULT 'draft',
	payroll_count INT UNSIGNED NOT NULL DEFAULT 0,
	payroll_total BIGINT NOT NULL DEFAULT 0,
	generated_at DATETIME(3) NULL,
	generated_by VARCHAR(72) NULL,
	approval_requested_by VARCHAR(72) NULL,
	approved_at DATETIME(3) NULL,
	approved_by VARCHAR(72) NULL,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(72) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	updated_by VARCHAR(72) NOT NULL,
	UNIQUE KEY uq_cycles_code (code),
	KEY ix_cycles_programme (programme_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE payments (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	cycle_id BIGINT UNSIGNED NOT NULL,
	enrolment_id BIGINT UNSIGNED NOT NULL,
	individual_id BIGINT UNSIGNED NOT NULL,   -- the payee (the head for household programmes)
	household_id BIGINT UNSIGNED NULL,
	location_id BIGINT UNSIGNED NULL,
	amount BIGINT NOT NULL,                   -- entitlement, minor units
	currency CHAR(3) NOT NULL,
	channel ENUM('mobile_money','g2p','kiosk') NOT NULL,
	provider VARCHAR(32) NULL,
	pay_point VARCHAR(64) NULL,
	status ENUM('scheduled','approved','sending','pending','paid','failed','reversed','available','collected',
		    'expired','cancelled') NOT NULL DEFAULT 'scheduled',
	attempts INT UNSIGNED NOT NULL DEFAULT 0, -- requests sent to the provider
	checks INT UNSIGNED NOT NULL DEFAULT 0,   -- status queries made (each doubles the wait before the next)
	next_check_at DATETIME(3) NULL,           -- when an unanswered payment is next queried
	sent_at DATETIME(3) NULL,
	settled_at DATETIME(3) NULL,              -- paid, failed, collected, expired or reversed
	provider_ref VARCHAR(64) NULL,            -- the provider's conversation / correlation id
	receipt VARCHAR(64) NULL,                 -- the provider's transaction id, or the kiosk receipt number
	paid_amount BIGINT NULL,                  -- what the provider or kiosk says was paid
	collected_kiosk VARCHAR(32) NULL,
	verification ENUM('fingerprint','pin','staff_witness') NULL,
	failure_reason VARCHAR(200) NULL,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	UNIQUE KEY uq_payments_cycle_enrolment (cycle_id, enrolment_id),
	KEY ix_payments_cycle (cycle_id, status),
	KEY ix_payments_work (status, next_check_at),
	KEY ix_payments_individual (individual_id, cycle_id),
	KEY ix_payments_enrolment (enrolment_id)
) ENGINE=InnoDB;

-- What happened to a payment after its payroll was approved (scheduled and approved come from the cycle).
CREATE TABLE payment_events (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	payment_id BIGINT UNSIGNED NOT NULL,
	from_status VARCHAR(16) NULL,
	to_status VARCHAR(16) NOT NULL,
	at DATETIME(3) NOT NULL,
	actor VARCHAR(72) NOT NULL,
	detail VARCHAR(300) NULL,                 -- no personal data: codes, references, amounts
	KEY ix_payment_events_payment (payment_id, at)
) ENGINE=InnoDB;

CREATE TABLE ledger_accounts (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	code VARCHAR(100) NOT NULL,               -- fund:OPCT, clearing:OPCT-2026-11, settlement:mpesa, paid:OPCT, ...
	kind ENUM('external','fund','clearing','settlement','paid','returned') NOT NULL,
	currency CHAR(3) NOT NULL,
	created_at DATETIME(3) NOT NULL,
	UNIQUE KEY uq_ledger_accounts_code (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE ledger_postings (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	idem_key VARCHAR(100) NOT NULL,
	kind VARCHAR(24) NOT NULL,                -- funding, payroll, send, paid, failed, collect, expire, return, ...
	cycle_id BIGINT UNSIGNED NULL,
	payment_id BIGINT UNSIGNED NULL,
	memo VARCHAR(200) NULL,
	posted_at DATETIME(3) NOT NULL,
	posted_by VARCHAR(72) NOT NULL,
	UNIQUE KEY uq_ledger_postings_idem (idem_key),
	KEY ix_ledger_postings_payment (payment_id),
	KEY ix_ledger_postings_cycle (cycle_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Debits positive, credits negative; the entries of a posting sum to zero, one currency per posting.
CREATE TABLE ledger_entries (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	posting_id BIGINT UNSIGNED NOT NULL,
	account_id BIGINT UNSIGNED NOT NULL,
	amount BIGINT NOT NULL,
	currency CHAR(3) NOT NULL,
	KEY ix_ledger_entries_posting (posting_id),
	KEY ix_ledger_entries_account (account_id, amount)
) ENGINE=InnoDB;

-- Discrepancy alerts: raised by rules, shown to payment officers, acknowledged and resolved.
CREATE TABLE payment_alerts (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	rule VARCHAR(32) NOT NULL,
	severity ENUM('info','warning','critical') NOT NULL,
	dedupe_key VARCHAR(120) NOT NULL,         -- one alert per rule and subject
	cycle_id BIGINT UNSIGNED NULL,
	payment_id BIGINT UNSIGNED NULL,
	details TEXT NOT NULL,                    -- JSON: amounts, references, counts; no personal data
	status ENUM('open','acknowledged','resolved') NOT NULL DEFAULT 'open',
	raised_at DATETIME(3) NOT NULL,
	acknowledged_at DATETIME(3) NULL,
	acknowledged_by VARCHAR(72) NULL,
	resolved_at DATETIME(3) NULL,
	resolved_by VARCHAR(72) NULL,
	ack_note VARCHAR(500) NULL,
	resolution VARCHAR(500) NULL,
	sms_queued TINYINT(1) NOT NULL DEFAULT 0,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	UNIQUE KEY uq_payment_alerts_dedupe (dedupe_key),
	KEY ix_payment_alerts_status (status, raised_at),
	KEY ix_payment_alerts_rule (rule, cycle_id, raised_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Provider statements imported for reconciliation, and what each line matched.
CREATE TABLE recon_runs (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	cycle_id BIGINT UNSIGNED NOT NULL,
	provider VARCHAR(32) NOT NULL,
	file_sha256 CHAR(64) NOT NULL,
	lines_total INT UNSIGNED NOT NULL DEFAULT 0,
	lines_broken INT UNSIGNED NOT NULL DEFAULT 0,
	matched INT UNSIGNED NOT NULL DEFAULT 0,
	amount_mismatch INT UNSIGNED NOT NULL DEFAULT 0,
	duplicated INT UNSIGNED NOT NULL DEFAULT 0,
	missing_in_ledger INT UNSIGNED NOT NULL DEFAULT 0,
	missing_in_statement INT UNSIGNED NOT NULL DEFAULT 0,
	status ENUM('running','done','failed') NOT NULL DEFAULT 'running',
	started_at DATETIME(3) NOT NULL,
	finished_at DATETIME(3) NULL,
	actor VARCHAR(72) NOT NULL,
	KEY ix_recon_runs_cycle (cycle_id, started_at)
) ENGINE=InnoDB;

CREATE TABLE recon_lines (
	run_id BIGINT UNSIGNED NOT NULL,
	line_no INT UNSIGNED NOT NULL,
	provider_ref VARCHAR(64) NULL,
	reference_id VARCHAR(64) NULL,
	payment_id BIGINT UNSIGNED NULL,          -- parsed from reference_id when it is one of ours
	amount BIGINT NULL,
	currency CHAR(3) NULL,
	line_status VARCHAR(16) NULL,
	completed_at DATETIME NULL,
	error VARCHAR(200) NULL,                  -- why a broken line could not be read
	PRIMARY KEY (run_id, line_no),
	KEY ix_recon_lines_payment (run_id, payment_id),
	KEY ix_recon_lines_ref (run_id, reference_id, line_status, line_no) -- a reference's other lines (duplicates)
) ENGINE=InnoDB;

CREATE TABLE recon_items (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	run_id BIGINT UNSIGNED NOT NULL,
	kind ENUM('matched','amount_mismatch','duplicated','missing_in_ledger','missing_in_statement','broken_line') NOT NULL,
	payment_id BIGINT UNSIGNED NULL,
	line_no INT UNSIGNED NULL,
	ledger_amount BIGINT NULL,
	statement_amount BIGINT NULL,
	detail VARCHAR(200) NULL,
	KEY ix_recon_items_run (run_id, kind),
	KEY ix_recon_items_page (run_id, id)   -- a run's items in order, all kinds (GET /reconciliations/{id})
) ENGINE=InnoDB;

-- SMS notices to a cycle's beneficiaries, sent or scheduled by a payment officer.
CREATE TABLE payment_notices (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	cycle_id BIGINT UNSIGNED NOT NULL,
	template VARCHAR(48) NOT NULL,
	filter TEXT NOT NULL,                     -- JSON: pay_point, location, status
	recipients INT UNSIGNED NOT NULL,
	send_after DATETIME(3) NOT NULL,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(72) NOT NULL,
	KEY ix_payment_notices_cycle (cycle_id)
) ENGINE=InnoDB;

-- The payroll walks a programme's enrolments in id order, batch after batch.
ALTER TABLE enrolments ADD KEY ix_enrolments_programme (programme_id, id);

ALTER TABLE outbox
	ADD COLUMN payment_id BIGINT UNSIGNED NULL AFTER case_id,
	ADD COLUMN notice_id BIGINT UNSIGNED NULL AFTER payment_id,
	ADD COLUMN send_after DATETIME(3) NULL AFTER params,
	ADD COLUMN delivered_at DATETIME(3) NULL AFTER updated_at,
	MODIFY COLUMN status ENUM('queued','sending','sent','delivered','failed') NOT NULL DEFAULT 'queued',
	ADD KEY ix_outbox_notice (notice_id, status),
	ADD KEY ix_outbox_due (status, send_after),
	ADD KEY ix_outbox_payment (payment_id, template);
