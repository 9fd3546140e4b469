/* import.h - bulk registration of households and individuals from a CSV file (`hifadhi-core import`).
 *
 * Registries arrive as spreadsheets: a census-style listing from a targeting survey, a partner's
 * caseload, a migration from an older system. This loads one at tens of thousands of rows a second
 * with the same rules as the API (person_validate, the same validators, one head per household), and
 * is safe to run again on the same file: households and individuals carry the file's references as
 * ext_ref, so a re-run skips what is already in and adds only what was fixed since.
 *
 * File format (RFC 4180; UTF-8, an optional BOM; "\n" or "\r\n"): a header row naming the columns in
 * any order, then one row per individual, the rows of a household consecutive:
 *   household_ref,region,district,village,address,member_no,relationship,given_name,family_name,sex,
 *   date_of_birth,national_id,phone,disability,language,programme
 * address, national_id, phone, disability and programme may be left out of the header; every other
 * column is required. An unknown or repeated column rejects the whole file.
 * - household_ref: [A-Za-z0-9_-]{1,40}; compared without case, as the database does.
 * - member_no: 1..30, unique in the household. ext_ref = household_ref "/" member_no.
 * - region, district, village, address: the household's, taken from the head row. Required on the head
 *   row; on other rows they may be empty, and if given must equal the head row's.
 * - programme: empty or the code of an active programme. An individual-target programme enrols the
 *   individual, a household-target one the household (status pending; an existing enrolment is kept).
 * Rules beyond one row: exactly one head per household; a national ID already seen earlier in the file
 * or already registered to someone else is rejected; a household whose head row is rejected is
 * rejected whole; a household_ref that comes back after other households is an error. Rows already
 * imported (same ext_ref) are skipped and counted, never updated. Caps: file 2 GiB, field 1000 bytes,
 * row 64 fields, household 30 rows.
 *
 * The report is CSV: row,household_ref,field,reason - row is the record number (the header is 1; 0 for
 * a reason about the file itself), household_ref is "" when it is itself invalid, field the column (""
 * for a reason about the whole row or household), reason a sentence. It never holds a rejected value:
 * those may be personal data. Rows come in file order.
 */
#ifndef HF_CORE_IMPORT_H
#define HF_CORE_IMPORT_H

#include <stdio.h>

#include "hf_base.h"
#include "hf_err.h"
#include "db.h"

#define IMPORT_NCOLUMNS 16
#define IMPORT_FILE_MAX (2ULL * 1024 * 1024 * 1024)
#define IMPORT_FIELD_MAX 1000
#define IMPORT_ROW_FIELDS_MAX 64
#define IMPORT_HOUSEHOLD_MAX 30

/* The columns, in the order export writes them. */
extern const char *const import_columns[IMPORT_NCOLUMNS];

struct import_stats {
	uint64_t rows; /* data rows read (the header not counted) */
	uint64_t households_inserted;
	uint64_t individuals_inserted;
	uint64_t skipped_existing; /* rows whose individual was already imported */
	uint64_t rejected_rows;
	uint64_t enrolments; /* enrolments created */
	double seconds;
};

/* Imports csv_path as actor (1..64 bytes, recorded as created_by). Uses g_app (keys, rules) and db, a
 * dedicated connection that must not be inside a transaction; db is used from the calling thread only,
 * while a reader thread started and joined inside the call parses, validates and seals. Writes the rejected rows to report and,
 * when progress is not NULL, a progress line updated about twice a second and a final summary (both
 * may be NULL). Commits every ~500 households, so after a fatal error the rows before it stay
 * imported and a re-run continues where it stopped.
 * Returns HF_OK when the file was processed to the end, even with rejected rows; HF_EINVAL when the
 * file is not an import file (unreadable structure, bad header: nothing imported, the reason is on the
 * report and on progress); HF_ETOOBIG past IMPORT_FILE_MAX; HF_EIO when the file cannot be read or the
 * report cannot be written; a database error as is. *out (may be NULL) is written in every case with
 * what was done. */
HF_MUST_CHECK hf_err import_run(struct db *db, const char *csv_path, const char *actor, FILE *report, FILE *progress,
				struct import_stats *out);

#endif
