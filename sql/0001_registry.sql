-- 0001_registry: programmes, locations, households, individuals, enrolments and record history.
--
-- Galera-compatible: InnoDB, a primary key on every table, no LOCK TABLES / GET_LOCK / XA.
-- Primary keys are 64-bit ids made by hifadhi-core (time-ordered, random low bits) so a ciphertext's
-- associated data can name its row before the INSERT, and several core instances never coordinate.
-- Personal data lives only in *_enc columns (XChaCha20-Poly1305, see lib/hf_crypto.h); *_bidx columns are
-- keyed BLAKE2b blind indexes for exact lookups. Times are UTC.

CREATE TABLE programmes (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	code VARCHAR(32) NOT NULL,
	name VARCHAR(200) NOT NULL,
	target ENUM('individual','household') NOT NULL,
	currency CHAR(3) NOT NULL,
	description VARCHAR(1000) NULL,
	active TINYINT(1) NOT NULL DEFAULT 1,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(64) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	updated_by VARCHAR(64) NOT NULL,
	UNIQUE KEY uq_programmes_code (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- region > district > village; path is "Region/District/Village" and is what search by location matches.
CREATE TABLE locations (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	parent_id BIGINT UNSIGNED NULL,
	level ENUM('region','district','village') NOT NULL,
	name VARCHAR(100) NOT NULL,
	path VARCHAR(320) NOT NULL,
	UNIQUE KEY uq_locations_path (path),
	KEY ix_locations_parent (parent_id),
	CONSTRAINT fk_locations_parent FOREIGN KEY (parent_id) REFERENCES locations (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE households (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	hh_no CHAR(9) NOT NULL,
	ext_ref VARCHAR(64) NULL,
	location_id BIGINT UNSIGNED NOT NULL,
	address_enc VARBINARY(1100) NULL,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(64) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	updated_by VARCHAR(64) NOT NULL,
	UNIQUE KEY uq_households_no (hh_no),
	UNIQUE KEY uq_households_ext_ref (ext_ref),
	KEY ix_households_location (location_id),
	KEY ix_households_updated (updated_at),
	CONSTRAINT fk_households_location FOREIGN KEY (location_id) REFERENCES locations (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- head_marker is 1 for the head and NULL otherwise: the unique key allows at most one head per household
-- (NULLs never collide); the service makes sure there is always exactly one.
CREATE TABLE individuals (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	ben_no CHAR(9) NOT NULL,
	ext_ref VARCHAR(80) NULL,
	household_id BIGINT UNSIGNED NULL,
	relationship ENUM('head','spouse','child','grandchild','parent','sibling','other_relative','non_relative') NULL,
	head_marker TINYINT UNSIGNED NULL,
	given_name_enc VARBINARY(500) NOT NULL,
	family_name_enc VARBINARY(500) NOT NULL,
	dob_enc VARBINARY(100) NOT NULL,
	national_id_enc VARBINARY(200) NULL,
	phone_enc VARBINARY(100) NULL,
	sex ENUM('female','male','other') NOT NULL,
	birth_year SMALLINT UNSIGNED NOT NULL,
	disability ENUM('none','visual','hearing','physical','intellectual','psychosocial','multiple') NOT NULL DEFAULT 'none',
	language VARCHAR(8) NOT NULL,
	nid_bidx BINARY(16) NULL,
	phone_bidx BINARY(16) NULL,
	dedup_bidx BINARY(16) NOT NULL,
	phonetic_bidx BINARY(16) NOT NULL,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(64) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	updated_by VARCHAR(64) NOT NULL,
	UNIQUE KEY uq_individuals_ben_no (ben_no),
	UNIQUE KEY uq_individuals_ext_ref (ext_ref),
	UNIQUE KEY uq_individuals_head (household_id, head_marker),
	KEY ix_individuals_nid (nid_bidx),
	KEY ix_individuals_phone (phone_bidx),
	KEY ix_individuals_dedup (dedup_bidx),
	KEY ix_individuals_phonetic (phonetic_bidx),
	KEY ix_individuals_updated (updated_at),
	CONSTRAINT fk_individuals_household FOREIGN KEY (household_id) REFERENCES households (id),
	CONSTRAINT ck_individuals_head CHECK (head_marker IS NULL OR (head_marker = 1 AND relationship = 'head'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- programme_code repeats programmes.code (which never changes once created): the hot beneficiary read
-- then needs no join to programmes, which halves the database's work per lookup.
CREATE TABLE enrolments (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	programme_id BIGINT UNSIGNED NOT NULL,
	programme_code VARCHAR(32) NOT NULL,
	individual_id BIGINT UNSIGNED NULL,
	household_id BIGINT UNSIGNED NULL,
	status ENUM('pending','enrolled','suspended','exited','duplicate','deceased') NOT NULL,
	status_reason VARCHAR(500) NULL,
	version INT UNSIGNED NOT NULL DEFAULT 1,
	created_at DATETIME(3) NOT NULL,
	created_by VARCHAR(64) NOT NULL,
	updated_at DATETIME(3) NOT NULL,
	updated_by VARCHAR(64) NOT NULL,
	UNIQUE KEY uq_enrolments_individual (programme_id, individual_id),
	UNIQUE KEY uq_enrolments_household (programme_id, household_id),
	KEY ix_enrolments_individual (individual_id),
	KEY ix_enrolments_household (household_id),
	CONSTRAINT fk_enrolments_programme FOREIGN KEY (programme_id) REFERENCES programmes (id),
	CONSTRAINT fk_enrolments_individual FOREIGN KEY (individual_id) REFERENCES individuals (id),
	CONSTRAINT fk_enrolments_household FOREIGN KEY (household_id) REFERENCES households (id),
	CONSTRAINT ck_enrolments_one_target CHECK ((individual_id IS NULL) <> (household_id IS NULL))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The previous version of a record, kept on every change with who, when and why. The snapshot is the
-- record's JSON as the API showed it, sealed (it holds personal data) and bound to this row.
CREATE TABLE record_versions (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	entity ENUM('programme','household','individual','enrolment') NOT NULL,
	entity_id BIGINT UNSIGNED NOT NULL,
	version INT UNSIGNED NOT NULL,
	changed_at DATETIME(3) NOT NULL,
	changed_by VARCHAR(64) NOT NULL,
	reason VARCHAR(500) NOT NULL,
	snapshot_enc MEDIUMBLOB NOT NULL,
	UNIQUE KEY uq_record_versions (entity, entity_id, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Rows of CSV imports already taken, so a re-run never inserts twice (keyed by household_ref/member_no
-- through ext_ref above) and an operator can see each run's outcome.
CREATE TABLE import_runs (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	file_sha256 CHAR(64) NOT NULL,
	started_at DATETIME(3) NOT NULL,
	finished_at DATETIME(3) NULL,
	actor VARCHAR(64) NOT NULL,
	rows_total INT UNSIGNED NOT NULL DEFAULT 0,
	rows_inserted INT UNSIGNED NOT NULL DEFAULT 0,
	rows_skipped INT UNSIGNED NOT NULL DEFAULT 0,
	rows_rejected INT UNSIGNED NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
