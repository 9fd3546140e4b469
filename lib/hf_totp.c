/* hf_totp.c - TOTP/HOTP codes and base32 for staff two-factor sign-in; the libcrypto (OpenSSL) adapter.
 *
 * The HMAC-SHA-1 comes from OpenSSL rather than a hand-written SHA-1: it is the one primitive here that
 * must be exactly right, and libsodium (used everywhere else) has no SHA-1. Everything around it is small
 * enough to check against the RFC test vectors in tests/unit/test_hf_totp.c.
 */
#include "hf_base.h"
#include "hf_totp.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hf_crypto.h"

/* Keys longer than this are not TOTP secrets (apps use 10 to 64 bytes); refusing them keeps the int
 * conversion for OpenSSL's HMAC() trivially safe. */
#define KEY_MAX 1024

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

size_t hf_base32_encode(const void *bin, size_t len, char *out, size_t cap)
{
	const uint8_t *p = bin;
	if (len > (SIZE_MAX - 5) / 8) /* HF_BASE32_LEN(len) + 1 would overflow */
		return 0;
	size_t need = HF_BASE32_LEN(len);
	if (cap < need + 1)
		return 0;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32_alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
		acc &= (1u << bits) - 1;
	}
	/* The last group's unused low bits are zero (RFC 4648 section 6). */
	if (bits > 0)
		out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
	HF_ASSERT(o == need);
	out[o] = '\0';
	return o;
}

static int b32_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

bool hf_base32_decode(const char *s, void *out, size_t cap, size_t *len_out)
{
	uint8_t *o = out;
	uint32_t acc = 0;
	int bits = 0;
	size_t chars = 0, olen = 0;
	for (; *s; s++) {
		if (*s == ' ' || *s == '=')
			continue;
		int v = b32_value(*s);
		if (v < 0)
			goto out_wipe;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		chars++;
		if (bits >= 8) {
			if (olen >= cap)
				goto out_wipe;
			o[olen++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
		acc &= (1u << bits) - 1;
	}
	/* A final group of 1, 3 or 6 characters cannot come from whole bytes, and non-zero leftover bits mean
	 * the text is not the canonical encoding of anything: both are typing or copying mistakes. */
	size_t rem = chars % 8;
	if (rem == 1 || rem == 3 || rem == 6 || acc != 0)
		goto out_wipe;
	*len_out = olen;
	return true;
out_wipe:
	if (olen)
		OPENSSL_cleanse(out, olen);
	return false;
}

uint32_t hf_hotp(const uint8_t *key, size_t key_len, uint64_t counter, int digits)
{
	static const uint8_t no_key[1];
	HF_ASSERT(digits >= 1 && digits <= 9);
	HF_ASSERT(key_len <= INT_MAX);
	uint8_t msg[8];
	for (int i = 7; i >= 0; i--) {
		msg[i] = (uint8_t)(counter & 0xff);
		counter >>= 8;
	}
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	/* OpenSSL wants a non-NULL pointer even for an empty key. */
	const uint8_t *k = key_len ? key : no_key;
	uint8_t *r = HMAC(EVP_sha1(), k, (int)key_len, msg, sizeof(msg), md, &md_len);
	HF_ASSERT(r != NULL && md_len == 20);
	/* RFC 4226 section 5.3: the low nibble of the last byte picks 4 bytes; the top bit is dropped so the
	 * value is the same whether read as signed or unsigned. */
	unsigned off = md[19] & 0x0f;
	uint32_t bin = ((uint32_t)(md[off] & 0x7f) << 24) | ((uint32_t)md[off + 1] << 16) |
		       ((uint32_t)md[off + 2] << 8) | (uint32_t)md[off + 3];
	OPENSSL_cleanse(md, sizeof(md));
	uint32_t mod = 1;
	for (int i = 0; i < digits; i++)
		mod *= 10;
	return bin % mod;
}

int64_t hf_totp_step(int64_t unix_s)
{
	/* Floor, not truncation, so that times before 1970 (a badly set clock) still give distinct steps. */
	int64_t q = unix_s / HF_TOTP_PERIOD;
	if (unix_s % HF_TOTP_PERIOD < 0)
		q--;
	return q;
}

static void code_format(uint32_t v, char out[HF_TOTP_DIGITS])
{
	for (int i = HF_TOTP_DIGITS - 1; i >= 0; i--) {
		out[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

bool hf_totp_match(const uint8_t *key, size_t key_len, const char *code, int64_t unix_s, int64_t last_step,
		   int64_t *step_out)
{
	if (key_len == 0 || key_len > KEY_MAX || !code)
		return false;
	for (int i = 0; i < HF_TOTP_DIGITS; i++)
		if (code[i] < '0' || code[i] > '9')
			return false;
	if (code[HF_TOTP_DIGITS] != '\0')
		return false;

	int64_t now = hf_totp_step(unix_s);
	bool found = false;
	int64_t found_step = 0;
	char want[HF_TOTP_DIGITS];
	/* Every allowed step is computed and compared, also after a match, so the time taken does not tell
	 * which window matched. */
	for (int64_t step = now - 1; step <= now + 1; step++) {
		if (step < 0 || step <= last_step)
			continue;
		code_format(hf_hotp(key, key_len, (uint64_t)step, HF_TOTP_DIGITS), want);
		bool eq = hf_ct_equal(want, code, HF_TOTP_DIGITS);
		if (eq && !found) {
			found = true;
			found_step = step;
		}
	}
	OPENSSL_cleanse(want, sizeof(want));
	if (found)
		*step_out = found_step;
	return found;
}

/* RFC 3986 section 2.3: unreserved characters stay, every other byte becomes %XX. */
static hf_err pct_encode(struct hf_buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		hf_err err;
		bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				  c == '-' || c == '.' || c == '_' || c == '~';
		if (unreserved) {
			err = hf_buf_append(out, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			err = hf_buf_append(out, e, sizeof(e));
		}
		if (err)
			return err;
	}
	return HF_OK;
}

static bool secret_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= '2' && *s <= '7')))
			return false;
	return true;
}

hf_err hf_totp_uri(const char *issuer, const char *account, const char *secret_b32, struct hf_buf *out)
{
	if (!issuer || !*issuer || !account || !*account || !secret_b32 || !secret_valid(secret_b32))
		return HF_EINVAL;
	size_t start = out->len;
	hf_err err = hf_buf_append_str(out, "otpauth://totp/");
	if (!err)
		err = pct_encode(out, issuer);
	if (!err)
		err = hf_buf_append_str(out, ":");
	if (!err)
		err = pct_encode(out, account);
	if (!err)
		err = hf_buf_append_str(out, "?secret=");
	if (!err)
		err = hf_buf_append_str(out, secret_b32);
	if (!err)
		err = hf_buf_append_str(out, "&issuer=");
	if (!err)
		err = pct_encode(out, issuer);
	if (!err)
		err = hf_buf_append_str(out, "&algorithm=SHA1&digits=6&period=30");
	if (err)
		goto out_undo;
	return HF_OK;
out_undo:
	/* The part written so far holds the secret: wipe it before cutting it off. */
	if (out->data) {
		OPENSSL_cleanse(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return err;
}
