/* demo_gen.h - deterministic synthetic beneficiary registry, written as CSV (`hifadhi-core gen`).
 *
 * Demos, load tests and importer tests need a registry that looks like a real cash-transfer caseload
 * (households, heads, children, older persons, people with disabilities, IDs and phones) without a
 * single real person in it. The same seed and options always give the same bytes, so a file can be
 * regenerated instead of committed, and a failing import can be reproduced from its command line.
 *
 * Output (RFC 4180, "\n" line ends), one row per individual, the rows of a household consecutive:
 *   household_ref,region,district,village,address,member_no,relationship,given_name,family_name,sex,
 *   date_of_birth,national_id,phone,disability,language,programme
 * - household_ref: PREFIX-NNNNNNN (household index from 1, zero-padded to 7 digits); the prefix is
 *   restricted so that the reference always passes the importer's [A-Za-z0-9_-]{1,40}.
 * - Ages are as of the fixed reference date 2026-01-01. member 1 is the head (18..95, about 15% are 65+);
 *   at most one spouse; children and grandchildren are at least 15 years younger than the head/spouse.
 * - national_id: about 95% of members aged 18+, empty for minors; 8 digits, first 1..3, last the Luhn
 *   digit over the first 7, unique in the whole file (an affine permutation of a counter). The
 *   7-digit space holds 3,000,000 IDs: past that (about 1.28 million households) adults get none.
 * - phone: about 70% of adults, "+2547" and 8 digits, unique in the whole file.
 * - programme, per row, first that applies: "OPCT" (aged 70+), "PWSD-CT" (disability other than
 *   none), "CT-OVC" (the head row of a household with 3+ members under 18, counted before a
 *   duplicate is added), else empty.
 * - bad_rate: that percent of rows (Bernoulli per row) carries exactly ONE error that the importer's
 *   validators reject (core/validate.h): a wrong Luhn digit (rows with an ID); a phone that is neither
 *   E.164 nor a local 0... number (rows with a phone); a day the month does not have (2023-02-30); a
 *   birth date a century ahead (2118 for 2018; non-head minors only); an empty given_name; sex "x";
 *   relationship "boss" (never on the head row). Nothing else in the file changes. A bad head row makes
 *   the importer reject its whole household.
 * - dup_rate: that percent of households (Bernoulli per household, from the second one on) gets an
 *   extra member (other_relative or non_relative; it replaces member 9 in a 9-person household) who
 *   is a likely duplicate of an adult from an earlier household, preferably of the same village:
 *   half copy the name, sex and date of birth (with a new or empty national_id), half reuse the
 *   earlier person's national_id. All other national IDs stay unique. Rows that are not part of a
 *   duplicate or a bad row are byte-identical to the output with both rates 0.
 */
#ifndef DEMO_GEN_H
#define DEMO_GEN_H

#include <stdio.h>

#include "hf_base.h"
#include "hf_err.h"

#define DEMO_GEN_HOUSEHOLDS_MAX 2000000u
#define DEMO_GEN_PREFIX_MAX 32u /* bytes of --ref-prefix */

struct demo_gen_opts {
	uint32_t households;    /* 1..DEMO_GEN_HOUSEHOLDS_MAX (default 20) */
	uint64_t seed;          /* any value (default 1) */
	unsigned bad_rate;      /* percent of rows, 0..100 (default 0) */
	unsigned dup_rate;      /* percent of households, 0..100 (default 0) */
	const char *ref_prefix; /* borrowed; 1..DEMO_GEN_PREFIX_MAX of [A-Za-z0-9_-] (default "GEN") */
};

/* Fills o with the defaults above. */
void demo_gen_opts_init(struct demo_gen_opts *o);

/* Writes the header and every row to out and flushes it. HF_EINVAL when o is out of range (nothing is
 * written), HF_EIO when writing failed (out may hold part of the file). Does not close out. Uses about
 * 150 KB of heap whatever the size; one call is self-contained, so calls on different threads with
 * different FILEs are safe. */
HF_MUST_CHECK hf_err demo_gen_write(FILE *out, const struct demo_gen_opts *o);

/* `hifadhi-core gen`: argv[0] is "gen", then --households N, --seed S, --bad-rate P, --dup-rate P,
 * --ref-prefix STR (each also as --name=value) or --help. Writes the CSV (or, for --help, the usage) to
 * stdout. Returns 0 on success, 1 when stdout could not be written (logged), 2 for bad options (the
 * reason and the usage on stderr). */
int demo_gen_main(int argc, char **argv);

#endif
