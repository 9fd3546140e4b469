/* hf_checkdigit.h - check-digit algorithms for numbers people type: Luhn, Damm, Verhoeff, ISO 7064 mod 11-2.
 *
 * Beneficiary numbers carry a Damm digit (catches every single-digit error and every adjacent
 * transposition, which is what happens on a phone keypad); national ID rules pick one per country.
 * Inputs are ASCII digit strings; anything else makes a predicate return false and a computation -1.
 */
#ifndef HF_CHECKDIGIT_H
#define HF_CHECKDIGIT_H

#include "hf_base.h"

enum hf_check_algo { HF_CHECK_NONE, HF_CHECK_LUHN, HF_CHECK_DAMM, HF_CHECK_VERHOEFF, HF_CHECK_MOD11_2 };

/* Parses "none", "luhn", "damm", "verhoeff", "mod11-2". */
bool hf_check_algo_parse(const char *name, enum hf_check_algo *out);

/* The check character to append to payload[0..len) ('0'..'9', or 'X' for mod11-2); -1 on non-digits. */
int hf_check_compute(enum hf_check_algo algo, const char *payload, size_t len);
/* True when s[0..len) (payload followed by its check character) is valid. NONE: all digits. */
bool hf_check_valid(enum hf_check_algo algo, const char *s, size_t len);

#endif
