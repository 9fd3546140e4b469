-- 0004_staff_contact: a phone number (sealed) and language for staff, so that the service can tell them by SMS
-- what needs them (cases escalated to their role, payment discrepancies); the outbox says who a message is for.

ALTER TABLE staff_users
	ADD COLUMN phone_enc VARBINARY(128) NULL AFTER role,
	ADD COLUMN language VARCHAR(8) NOT NULL DEFAULT 'en' AFTER phone_enc;

ALTER TABLE outbox
	ADD COLUMN audience ENUM('beneficiary','staff') NOT NULL DEFAULT 'beneficiary' AFTER case_id;
