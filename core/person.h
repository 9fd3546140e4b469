/* person.h - one individual's registry record: validation, sealing of personal data, and reading back.
 *
 * The single place that knows which individual fields are personal data and how they are stored, shared
 * by the API (registry.c), the CSV import and export, and the quality report. Sealed columns carry
 * associated data "individuals.<column>:<row id>", so the row id is chosen before sealing.
 */
#ifndef HF_CORE_PERSON_H
#define HF_CORE_PERSON_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_crypto.h"
#include "hf_json.h"
#include "validate.h"

/* Raw input, borrowed C strings; NULL or "" = not given. */
struct person_in {
	const char *given_name, *family_name, *sex, *date_of_birth, *national_id, *phone, *relationship, *disability,
		*language;
};

/* Validated, normalised and (after person_seal) sealed values ready for INSERT/UPDATE. */
struct person_row {
	int64_t id;
	char ben_no[BENNO_LEN + 1];
	const char *given_name, *family_name, *sex, *relationship, *disability, *language; /* borrowed from input */
	char dob[11];
	int birth_year;
	char nid[NID_MAX + 1];     /* "" when absent */
	char phone[PHONE_MAX + 1]; /* "" when absent */
	/* filled by person_seal: */
	struct hf_buf given_enc, family_enc, dob_enc, nid_enc, phone_enc; /* binary; len 0 when absent */
	uint8_t nid_bidx[HF_BIDX_LEN], phone_bidx[HF_BIDX_LEN], dedup_bidx[HF_BIDX_LEN], phonetic_bidx[HF_BIDX_LEN];
};

/* INSERT INTO individuals (PERSON_INSERT_COLUMNS) VALUES PERSON_INSERT_ROW [, PERSON_INSERT_ROW ...];
 * person_insert_vals writes the PERSON_INSERT_NPARAMS values of one row. */
#define PERSON_INSERT_COLUMNS                                                                                  \
	"id, ben_no, ext_ref, household_id, relationship, head_marker, given_name_enc, family_name_enc, "       \
	"dob_enc, national_id_enc, phone_enc, sex, birth_year, disability, language, nid_bidx, phone_bidx, "    \
	"dedup_bidx, phonetic_bidx, created_at, created_by, updated_at, updated_by"
#define PERSON_INSERT_ROW "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,UTC_TIMESTAMP(3),?,UTC_TIMESTAMP(3),?)"
#define PERSON_INSERT_NPARAMS 21
struct db_val;
/* ext_ref may be NULL; household_id 0 = none. The values borrow from row, ext_ref and actor. */
void person_insert_vals(const struct person_row *row, int64_t household_id, const char *ext_ref, const char *actor,
			struct db_val *out);

/* Validates in; every problem is added to fe under "<prefix>.<field>" (prefix may be ""). relationship is
 * required when need_relationship. Returns true when valid, with row filled (not yet sealed). */
bool person_validate(const struct person_in *in, const char *prefix, bool need_relationship, struct hf_ferrs *fe,
		     struct person_row *row);
/* Seals the personal fields of row under row->id and computes the blind indexes; village_id is part of
 * the duplicate key (same name + date of birth + village). */
void person_seal(const struct hf_keyring *kr, struct person_row *row, int64_t village_id);
void person_row_release(struct person_row *row);

/* The duplicate key: normalised given and family name, date of birth and village. */
void person_dedup_bidx(const struct hf_keyring *kr, const char *given_name, const char *family_name, const char *dob,
		       int64_t village_id, uint8_t out[HF_BIDX_LEN]);
/* Blind index of a normalised national ID / phone, for lookups. */
void person_nid_bidx(const struct hf_keyring *kr, const char *nid, uint8_t out[HF_BIDX_LEN]);
void person_phone_bidx(const struct hf_keyring *kr, const char *phone, uint8_t out[HF_BIDX_LEN]);

/* The SELECT list person_to_json reads, in order, from an "individuals i" row joined to "households h"
 * (for hh_no). Use it as: "SELECT " PERSON_SELECT_COLUMNS " FROM individuals i LEFT JOIN households h ..." */
#define PERSON_SELECT_COLUMNS                                                                                  \
	"i.id, i.ben_no, h.hh_no, i.relationship, i.given_name_enc, i.family_name_enc, i.dob_enc, "            \
	"i.national_id_enc, i.phone_enc, i.sex, i.disability, i.language, i.version, "                         \
	"DATE_FORMAT(i.created_at, '%Y-%m-%dT%H:%i:%s.%fZ'), DATE_FORMAT(i.updated_at, '%Y-%m-%dT%H:%i:%s.%fZ')"
#define PERSON_SELECT_NCOLS 15

struct db_rows;
/* Builds the API JSON of the current row starting at column first (decrypting). HF_EINTERNAL when a
 * sealed value fails to open (tampered or key missing): that is logged with the row id, never the value. */
HF_MUST_CHECK hf_err person_to_json(const struct hf_keyring *kr, const struct db_rows *r, size_t first,
				    json_t **out);
/* Opens one sealed column of an individual into out (appending). */
HF_MUST_CHECK hf_err person_open_field(const struct hf_keyring *kr, int64_t id, const char *column, const void *sealed,
				       size_t len, struct hf_buf *out);

#endif
