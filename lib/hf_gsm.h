/* hf_gsm.h - how long a text is on a phone: GSM 03.38 septets or UCS-2 units, USSD screens, SMS segments.
 *
 * A phone network carries text in one of two codings. GSM-7 (3GPP TS 23.038 default alphabet) packs a
 * character into a 7-bit septet; the characters of its extension table (€ [ ] { } \ ^ ~ | and form feed)
 * take an escape septet first, so two. When any character of a message is outside both tables (ŋ, ā, ç,
 * an emoji), the whole message goes as UCS-2, where the limit is in UTF-16 code units and a character
 * outside the Basic Multilingual Plane takes two. So one "ā" in a screen more than halves what fits:
 * everything that measures beneficiary-facing text does it here, never with strlen.
 *
 * The limits come from docs/ notes on the standards: a USSD screen holds 182 GSM-7 septets (160 bytes
 * packed) or 80 UCS-2 units; an SMS holds 160 septets or 70 units alone, and 153 or 67 per part of a
 * concatenated message (the user data header takes the rest).
 *
 * Inputs are UTF-8 of a given length; invalid UTF-8 (overlong forms, surrogates, truncated sequences,
 * code points past U+10FFFF) is refused with HF_EINVAL. Nothing here allocates; safe on any thread.
 */
#ifndef HF_GSM_H
#define HF_GSM_H

#include "hf_base.h"
#include "hf_err.h"

#define HF_GSM_USSD_GSM7_MAX 182 /* septets on one USSD screen (160 bytes packed) */
#define HF_GSM_USSD_UCS2_MAX 80	 /* UTF-16 code units on one USSD screen in UCS-2 */
#define HF_GSM_SMS_GSM7_MAX 160	 /* septets in a single SMS */
#define HF_GSM_SMS_GSM7_PART 153 /* septets in each part of a concatenated SMS */
#define HF_GSM_SMS_UCS2_MAX 70	 /* UTF-16 units in a single SMS */
#define HF_GSM_SMS_UCS2_PART 67	 /* UTF-16 units in each part of a concatenated SMS */

struct hf_gsm_count {
	bool gsm7;		/* every character is in the default alphabet or its extension table */
	size_t units;		/* septets when gsm7, else UTF-16 code units */
	size_t chars;		/* code points */
	uint32_t first_non_gsm; /* the first character that forced UCS-2; 0 when gsm7 */
};

/* Septets cp takes in GSM-7: 1 (default alphabet), 2 (extension table), 0 (not carried: forces UCS-2). */
int hf_gsm_septets(uint32_t cp);

/* Measures s[0..n). HF_EINVAL when it is not valid UTF-8 (out is then untouched). */
HF_MUST_CHECK hf_err hf_gsm_count(const char *s, size_t n, struct hf_gsm_count *out);

/* True when a measured text fits gsm7_max septets (GSM-7) or ucs2_max units (UCS-2). */
bool hf_gsm_fits(const struct hf_gsm_count *c, size_t gsm7_max, size_t ucs2_max);
/* True when s[0..n) is valid UTF-8 and fits one USSD screen. */
bool hf_gsm_fits_ussd(const char *s, size_t n);

/* Number of SMS s[0..n) is sent as: 1 when it fits a single SMS (an empty text is one empty SMS), else
 * the parts of a concatenated message, filled the way senders fill them (an escape pair or a surrogate
 * pair is never split across two parts, so this can be more than units / 153). */
HF_MUST_CHECK hf_err hf_gsm_sms_segments(const char *s, size_t n, size_t *out);

/* Where to cut s[0..n) so that its first part fits max_units in the given coding (gsm7: septets, else
 * UTF-16 units). The cut is never inside a UTF-8 sequence, a GSM escape pair or a surrogate pair, and is
 * at a word boundary (a space or a line break) when the fitting prefix has one; otherwise, or when the
 * word is longer than max_units, it is at the last character that fits.
 *
 *  *out_len  bytes of the first part, trailing spaces and line breaks removed (n when everything fits);
 *  *out_next where the rest starts, leading spaces and line breaks skipped (n when everything fits).
 *
 * With gsm7, a character GSM-7 cannot carry ends the part before it (the caller measured the text and
 * chose the coding; a page made of that prefix is GSM-7). *out_len == 0 with n > 0 means not even one
 * character fits. HF_EINVAL for invalid UTF-8; the outputs are written only on success.
 */
HF_MUST_CHECK hf_err hf_gsm_cut(const char *s, size_t n, bool gsm7, size_t max_units, size_t *out_len,
				size_t *out_next);

/* Decodes the UTF-8 sequence at s[0..n) (n >= 1): its length in bytes (1-4) and *cp, or 0 when it is not
 * a valid, shortest-form sequence of a scalar value. */
size_t hf_utf8_decode(const char *s, size_t n, uint32_t *cp);

#endif
