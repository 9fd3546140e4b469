/* validate.h - point-of-entry rules for registry data: national IDs, phones, dates, names, numbers.
 *
 * Every validator normalises into a caller buffer and, on failure, names a stable error code and a
 * sentence a registrar understands. The same functions serve the API, the CSV import and the quality
 * report, so a value accepted in one place is accepted in all.
 */
#ifndef HF_CORE_VALIDATE_H
#define HF_CORE_VALIDATE_H

#include "hf_base.h"
#include "hf_buf.h"

struct vfail {
	const char *code;    /* e.g. "check_digit" */
	const char *message; /* e.g. "the check digit is wrong: please re-read the ID card" */
};

#define NID_MAX 32
#define PHONE_MAX 16
#define BENNO_LEN 9

/* National ID per g_app.nid: spaces and dashes removed, letters upper-cased. out holds NID_MAX+1. */
bool validate_national_id(const char *in, char *out, struct vfail *why);
/* E.164 "+<cc><number>", or a local "0..." number when phone.country_code is set. out holds PHONE_MAX+1. */
bool validate_phone(const char *in, char *out, struct vfail *why);
/* YYYY-MM-DD, a real calendar day, from registry.min_birth_year up to today (UTC). */
bool validate_birth_date(const char *in, int *year_out, struct vfail *why);
/* YYYY-MM-DD calendar check only. */
bool validate_date_format(const char *in, int *y, int *m, int *d);
/* A personal name: 1-100 characters, letters (any script), spaces, apostrophes, hyphens and dots; no
 * digits, no symbols. */
bool validate_person_name(const char *in, struct vfail *why);
bool validate_language(const char *code);
/* "Region/District/Village" name part: 1-100 characters, no '/'. */
bool validate_place_name(const char *in, struct vfail *why);

/* Lower-cased, punctuation dropped, single spaces: what duplicate detection compares. */
void validate_name_norm(const char *s, struct hf_buf *out);
/* Soundex-style codes of the given and family names, in sorted order (so swapped names match). */
void validate_phonetic_key(const char *given, const char *family, struct hf_buf *out);

/* Beneficiary and household numbers: 8 digits (first not 0) and a Damm check digit. */
void numbers_new(char out[BENNO_LEN + 1]);
bool numbers_valid(const char *s);

extern const char *const VALID_SEX[];
extern const char *const VALID_RELATIONSHIP[];
extern const char *const VALID_DISABILITY[];
extern const char *const VALID_ENROLMENT_STATUS[];
extern const char *const VALID_TARGET[];

#endif
