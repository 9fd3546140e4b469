/* hf_gsm.c - GSM 03.38 / UCS-2 text measurement for USSD screens and SMS.
 *
 * The tables are 3GPP TS 23.038's default alphabet and extension table, as mapped to Unicode by the
 * Unicode consortium's GSM0338.TXT (0x09 is U+00C7 there, so a small "ç" is NOT carried and forces
 * UCS-2; French texts that want GSM-7 avoid it). ASCII goes through a 128-entry table, the few other
 * characters of the alphabet through a short list: measuring is on every USSD turn, so it stays cheap.
 */
#include "hf_base.h"
#include "hf_gsm.h"

#include <string.h>

/* Septets per ASCII code point: 1 in the default alphabet, 2 in the extension table, 0 not carried.
 * Of the controls only LF and CR are in the alphabet, and form feed in the extension table; '`' is the
 * one printable ASCII character GSM-7 lacks. */
static const uint8_t ascii_septets[128] = {
	/* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 1, 0, 0,
	/* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 0x20  ! " # $ % & ' ( ) * + , - . / */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x30 0-9 : ; < = > ? */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x40 @ A-O */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x50 P-Z [ \ ] ^ _ */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 1,
	/* 0x60 ` a-o */ 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x70 p-z { | } ~ DEL */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0,
};

/* The default alphabet's characters outside ASCII (one septet each). */
static const uint16_t basic_non_ascii[] = {
	0x00A1, /* ¡ */ 0x00A3, /* £ */ 0x00A4, /* ¤ */ 0x00A5, /* ¥ */ 0x00A7, /* § */ 0x00BF, /* ¿ */
	0x00C4, /* Ä */ 0x00C5, /* Å */ 0x00C6, /* Æ */ 0x00C7, /* Ç */ 0x00C9, /* É */ 0x00D1, /* Ñ */
	0x00D6, /* Ö */ 0x00D8, /* Ø */ 0x00DC, /* Ü */ 0x00DF, /* ß */ 0x00E0, /* à */ 0x00E4, /* ä */
	0x00E5, /* å */ 0x00E6, /* æ */ 0x00E8, /* è */ 0x00E9, /* é */ 0x00EC, /* ì */ 0x00F1, /* ñ */
	0x00F2, /* ò */ 0x00F6, /* ö */ 0x00F8, /* ø */ 0x00F9, /* ù */ 0x00FC, /* ü */ 0x0393, /* Γ */
	0x0394, /* Δ */ 0x0398, /* Θ */ 0x039B, /* Λ */ 0x039E, /* Ξ */ 0x03A0, /* Π */ 0x03A3, /* Σ */
	0x03A6, /* Φ */ 0x03A8, /* Ψ */ 0x03A9, /* Ω */
};

int hf_gsm_septets(uint32_t cp)
{
	if (cp < 0x80)
		return ascii_septets[cp];
	if (cp == 0x20AC) /* € is the extension table's only non-ASCII character */
		return 2;
	for (size_t i = 0; i < HF_ARRAY_LEN(basic_non_ascii); i++)
		if (basic_non_ascii[i] == cp)
			return 1;
	return 0;
}

size_t hf_utf8_decode(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	if (n == 0)
		return 0;
	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	size_t len;
	uint32_t c, min;
	if ((u[0] & 0xE0) == 0xC0) {
		len = 2, c = u[0] & 0x1Fu, min = 0x80;
	} else if ((u[0] & 0xF0) == 0xE0) {
		len = 3, c = u[0] & 0x0Fu, min = 0x800;
	} else if ((u[0] & 0xF8) == 0xF0) {
		len = 4, c = u[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((u[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (u[i] & 0x3Fu);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

hf_err hf_gsm_count(const char *s, size_t n, struct hf_gsm_count *out)
{
	size_t septets = 0, utf16 = 0, chars = 0;
	uint32_t non_gsm = 0;
	bool gsm7 = true;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = hf_utf8_decode(s + i, n - i, &cp);
		if (!k)
			return HF_EINVAL;
		i += k;
		chars++;
		utf16 += cp > 0xFFFF ? 2 : 1;
		int sep = hf_gsm_septets(cp);
		if (!sep && gsm7) {
			gsm7 = false;
			non_gsm = cp;
		}
		septets += (size_t)sep;
	}
	out->gsm7 = gsm7;
	out->units = gsm7 ? septets : utf16;
	out->chars = chars;
	out->first_non_gsm = non_gsm;
	return HF_OK;
}

bool hf_gsm_fits(const struct hf_gsm_count *c, size_t gsm7_max, size_t ucs2_max)
{
	return c->units <= (c->gsm7 ? gsm7_max : ucs2_max);
}

bool hf_gsm_fits_ussd(const char *s, size_t n)
{
	struct hf_gsm_count c;
	return hf_gsm_count(s, n, &c) == HF_OK && hf_gsm_fits(&c, HF_GSM_USSD_GSM7_MAX, HF_GSM_USSD_UCS2_MAX);
}

hf_err hf_gsm_sms_segments(const char *s, size_t n, size_t *out)
{
	struct hf_gsm_count c;
	hf_err err = hf_gsm_count(s, n, &c);
	if (err)
		return err;
	if (hf_gsm_fits(&c, HF_GSM_SMS_GSM7_MAX, HF_GSM_SMS_UCS2_MAX)) {
		*out = 1;
		return HF_OK;
	}
	size_t part = c.gsm7 ? HF_GSM_SMS_GSM7_PART : HF_GSM_SMS_UCS2_PART;
	size_t parts = 1, used = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		i += hf_utf8_decode(s + i, n - i, &cp); /* valid: counted above */
		size_t k = c.gsm7 ? (size_t)hf_gsm_septets(cp) : (cp > 0xFFFF ? 2u : 1u);
		if (used + k > part) {
			parts++;
			used = 0;
		}
		used += k;
	}
	*out = parts;
	return HF_OK;
}

static bool is_break(char c)
{
	return c == ' ' || c == '\n';
}

hf_err hf_gsm_cut(const char *s, size_t n, bool gsm7, size_t max_units, size_t *out_len, size_t *out_next)
{
	/* fit = bytes of the longest prefix within max_units; brk = the last word boundary at or before it. */
	size_t used = 0, fit = 0, brk = 0;
	bool stopped = false;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = hf_utf8_decode(s + i, n - i, &cp);
		if (!k)
			return HF_EINVAL;
		if (!stopped) {
			size_t u = gsm7 ? (size_t)hf_gsm_septets(cp) : (cp > 0xFFFF ? 2u : 1u);
			if (u == 0 || used + u > max_units) {
				stopped = true;
			} else {
				used += u;
				if (is_break(s[i]))
					brk = i;
				fit = i + k;
			}
		}
		i += k; /* the rest is still checked: invalid UTF-8 anywhere is refused */
	}
	if (fit == n) {
		*out_len = n;
		*out_next = n;
		return HF_OK;
	}
	/* The character right after the fitting prefix may itself be the boundary ("word| next"). */
	if (is_break(s[fit]))
		brk = fit;
	size_t len = fit, next = fit;
	if (brk > 0) {
		size_t b = brk;
		while (b > 0 && is_break(s[b - 1]))
			b--;
		if (b > 0) {
			len = b;
			next = brk;
		}
	}
	while (next < n && is_break(s[next]))
		next++;
	*out_len = len;
	*out_next = next;
	return HF_OK;
}
