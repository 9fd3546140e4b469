/* hf_paysig.c - payment-provider callback signatures, on libsodium (see hf_paysig.h).
 *
 * Both parsers take header values an outsider wrote: they never read past a length cap, never copy
 * without a bound and answer malformed input with HF_EINVAL instead of guessing what was meant.
 */
#include "hf_base.h"
#include "hf_paysig.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "hf_buf.h"
#include "hf_crypto.h"

#define HMAC_VALUE_MAX 512
#define HMAC_V1_MAX 4
#define DCI_VALUE_MAX 2048
#define TS_MAX_DIGITS 12
#define SIG_LEN crypto_sign_BYTES
#define SIG_B64_LEN 88    /* padded base64 of 64 bytes */
#define DIGEST_LEN 64     /* BLAKE2b-512 */
#define DIGEST_B64_LEN 88
#define DCI_ALG "ed25519"
#define DCI_NAMESPACE "spdci"
#define DCI_HEADERS "(created) (expires) digest"
/* "(created): " 20 "\n(expires): " 20 "\ndigest: BLAKE-512=" 88, with room to spare. */
#define DCI_SIGNED_MAX 192

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_lower_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* libsodium 1.0.18 compares (signed) chars in its base64 decoder such that byte 0xFF decodes like '/':
 * the alphabet is checked here first, so a signature has exactly one spelling. */
static bool b64_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '+' || c == '/' || c == '='))
			return false;
	}
	return true;
}

static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' || c == '_' || c == ':' ||
	       c == '-';
}

static bool id_valid_n(const char *s, size_t n)
{
	if (n == 0 || n > HF_PAYSIG_DCI_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char(s[i]))
			return false;
	return true;
}

bool hf_paysig_dci_id_valid(const char *id)
{
	return id && id_valid_n(id, strnlen(id, HF_PAYSIG_DCI_ID_MAX + 1));
}

/* A unix time written as 1..12 digits (no sign, no spaces), which no int64 arithmetic below can overflow. */
static bool parse_time(const char *s, size_t n, int64_t *out)
{
	if (n == 0 || n > TS_MAX_DIGITS)
		return false;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* ---- (a) HMAC-SHA256 ------------------------------------------------------------------------------------ */

static void hmac_compute(const uint8_t *secret, size_t secret_len, int64_t t, const char *body, size_t len,
			 uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;
	char ts[24];
	int n = snprintf(ts, sizeof(ts), "%lld.", (long long)t);
	HF_ASSERT(n > 0 && (size_t)n < sizeof(ts));
	/* The _init API takes a key of any length (longer ones are hashed first, as HMAC specifies). */
	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)n);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)(body ? body : ""), len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

void hf_paysig_hmac_header(const uint8_t *secret, size_t secret_len, int64_t t, const char *body, size_t len,
			   char out[HF_PAYSIG_HDR_MAX])
{
	HF_ASSERT(t >= 0 && (body || len == 0));
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * sizeof(mac) + 1];
	hmac_compute(secret, secret_len, t, body, len, mac);
	hf_hex(mac, sizeof(mac), hex);
	int n = snprintf(out, HF_PAYSIG_HDR_MAX, "t=%lld,v1=%s", (long long)t, hex);
	HF_ASSERT(n > 0 && n < HF_PAYSIG_HDR_MAX);
	sodium_memzero(mac, sizeof(mac));
}

hf_err hf_paysig_hmac_verify(const uint8_t *secret, size_t secret_len, const char *header_value, int64_t now,
			     int window_s, const char *body, size_t len)
{
	if (!header_value || (!body && len))
		return HF_EINVAL;
	size_t total = strnlen(header_value, HMAC_VALUE_MAX + 1);
	if (total == 0 || total > HMAC_VALUE_MAX)
		return HF_EINVAL;

	int64_t t = 0;
	bool have_t = false;
	uint8_t given[HMAC_V1_MAX][crypto_auth_hmacsha256_BYTES];
	size_t ngiven = 0;
	const char *p = header_value, *end = header_value + total;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		const char *item = p;
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *item_end = comma ? comma : end;
		while (item_end > item && item_end[-1] == ' ')
			item_end--;
		const char *eq = memchr(item, '=', (size_t)(item_end - item));
		if (!eq || eq == item)
			return HF_EINVAL;
		size_t klen = (size_t)(eq - item), vlen = (size_t)(item_end - eq - 1);
		const char *v = eq + 1;
		if (klen == 1 && item[0] == 't') {
			if (have_t || !parse_time(v, vlen, &t))
				return HF_EINVAL;
			have_t = true;
		} else if (klen == 2 && memcmp(item, "v1", 2) == 0) {
			if (ngiven == HMAC_V1_MAX || vlen != 2 * crypto_auth_hmacsha256_BYTES)
				return HF_EINVAL;
			for (size_t i = 0; i < vlen; i++)
				if (!is_lower_hex(v[i]))
					return HF_EINVAL;
			if (!hf_unhex(v, vlen, given[ngiven], crypto_auth_hmacsha256_BYTES))
				return HF_EINVAL;
			ngiven++;
		}
		/* Other keys (a future "v2") are ignored, so the format can grow without breaking receivers. */
		if (!comma)
			break;
		p = comma + 1;
		if (p == end)
			return HF_EINVAL; /* a trailing comma */
	}
	if (!have_t || ngiven == 0)
		return HF_EINVAL;

	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	hmac_compute(secret, secret_len, t, body, len, mac);
	bool match = false;
	for (size_t i = 0; i < ngiven; i++)
		match |= sodium_memcmp(mac, given[i], sizeof(mac)) == 0;
	sodium_memzero(mac, sizeof(mac));
	int64_t skew = now > t ? now - t : t - now;
	if (!match || window_s < 0 || skew > window_s)
		return HF_EAUTH;
	return HF_OK;
}

/* ---- (b) DCI Ed25519 ------------------------------------------------------------------------------------ */

/* The exact string both sides sign; NUL-terminated into out (DCI_SIGNED_MAX), returns its length. */
static size_t dci_signed_string(int64_t created, int64_t expires, const char *body, size_t len,
				char out[DCI_SIGNED_MAX])
{
	uint8_t digest[DIGEST_LEN];
	char digest_b64[DIGEST_B64_LEN + 1];
	crypto_generichash(digest, sizeof(digest), (const unsigned char *)(body ? body : ""), len, NULL, 0);
	sodium_bin2base64(digest_b64, sizeof(digest_b64), digest, sizeof(digest), sodium_base64_VARIANT_ORIGINAL);
	int n = snprintf(out, DCI_SIGNED_MAX, "(created): %lld\n(expires): %lld\ndigest: BLAKE-512=%s", (long long)created,
			 (long long)expires, digest_b64);
	HF_ASSERT(n > 0 && n < DCI_SIGNED_MAX);
	return (size_t)n;
}

void hf_paysig_dci_header(const uint8_t sk[64], const char *sender_id, const char *key_id, int64_t created,
			  int64_t expires, const char *body, size_t len, char out[HF_PAYSIG_DCI_MAX])
{
	HF_ASSERT(hf_paysig_dci_id_valid(sender_id) && hf_paysig_dci_id_valid(key_id));
	HF_ASSERT(created >= 0 && created <= expires && (body || len == 0));
	char msg[DCI_SIGNED_MAX];
	uint8_t sig[SIG_LEN];
	char sig_b64[SIG_B64_LEN + 1];
	size_t n = dci_signed_string(created, expires, body, len, msg);
	HF_ASSERT(crypto_sign_detached(sig, NULL, (const unsigned char *)msg, n, sk) == 0);
	sodium_bin2base64(sig_b64, sizeof(sig_b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	int m = snprintf(out, HF_PAYSIG_DCI_MAX,
			 "namespace=\"spdci\", kidId=\"%s|%s|" DCI_ALG "\", algorithm=\"" DCI_ALG "\", created=\"%lld\", "
			 "expires=\"%lld\", headers=\"" DCI_HEADERS "\", signature=\"%s\"",
			 sender_id, key_id, (long long)created, (long long)expires, sig_b64);
	HF_ASSERT(m > 0 && m < HF_PAYSIG_DCI_MAX);
}

/* One field's value, borrowed from the header (not NUL-terminated). */
struct field {
	const char *p;
	size_t n;
	bool set;
};

enum { F_NAMESPACE, F_KID, F_ALG, F_CREATED, F_EXPIRES, F_HEADERS, F_SIGNATURE, F_COUNT };

static const char *const field_names[F_COUNT] = {"namespace", "kidId", "algorithm", "created", "expires",
						  "headers",   "signature"};

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

static bool field_is(const struct field *f, const char *s)
{
	size_t n = strlen(s);
	return f->n == n && memcmp(f->p, s, n) == 0;
}

/* Splits `key="value", key="value"` into fields; values may hold anything but '"' (no escapes). */
static hf_err dci_parse(const char *v, size_t total, struct field f[F_COUNT])
{
	const char *p = v, *end = v + total;
	for (;;) {
		while (p < end && *p == ' ')
			p++;
		const char *k = p;
		while (p < end && key_char(*p))
			p++;
		size_t klen = (size_t)(p - k);
		if (klen == 0 || p + 1 >= end || p[0] != '=' || p[1] != '"')
			return HF_EINVAL;
		p += 2;
		const char *val = p;
		const char *q = memchr(p, '"', (size_t)(end - p));
		if (!q)
			return HF_EINVAL;
		for (int i = 0; i < F_COUNT; i++) {
			if (strlen(field_names[i]) == klen && memcmp(field_names[i], k, klen) == 0) {
				if (f[i].set)
					return HF_EINVAL; /* a repeated field: which one would the signer mean? */
				f[i] = (struct field){val, (size_t)(q - val), true};
			}
		}
		p = q + 1;
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			return HF_OK;
		if (*p != ',')
			return HF_EINVAL;
		p++;
	}
}

hf_err hf_paysig_dci_verify(const uint8_t pk[32], const char *expected_sender, const char *header_value, int64_t now,
			    const char *body, size_t len)
{
	if (!header_value || (!body && len))
		return HF_EINVAL;
	size_t total = strnlen(header_value, DCI_VALUE_MAX + 1);
	if (total == 0 || total > DCI_VALUE_MAX)
		return HF_EINVAL;
	struct field f[F_COUNT] = {{0}};
	hf_err err = dci_parse(header_value, total, f);
	if (err)
		return err;
	for (int i = F_KID; i < F_COUNT; i++)
		if (!f[i].set)
			return HF_EINVAL;

	int64_t created = 0, expires = 0;
	if (!parse_time(f[F_CREATED].p, f[F_CREATED].n, &created) || !parse_time(f[F_EXPIRES].p, f[F_EXPIRES].n, &expires))
		return HF_EINVAL;

	/* kidId = sender_id|key_id|algorithm */
	const char *kid = f[F_KID].p;
	size_t kn = f[F_KID].n;
	const char *bar1 = memchr(kid, '|', kn);
	const char *bar2 = bar1 ? memchr(bar1 + 1, '|', kn - (size_t)(bar1 + 1 - kid)) : NULL;
	if (!bar2)
		return HF_EINVAL;
	size_t sender_n = (size_t)(bar1 - kid), keyid_n = (size_t)(bar2 - bar1 - 1);
	const char *alg = bar2 + 1;
	size_t alg_n = kn - (size_t)(alg - kid);
	if (!id_valid_n(kid, sender_n) || !id_valid_n(bar1 + 1, keyid_n) || alg_n != strlen(DCI_ALG) ||
	    memcmp(alg, DCI_ALG, alg_n) != 0)
		return HF_EINVAL;

	uint8_t sig[SIG_LEN];
	size_t sig_len = 0;
	const char *sig_end = NULL;
	if (f[F_SIGNATURE].n != SIG_B64_LEN || !b64_text(f[F_SIGNATURE].p, SIG_B64_LEN) ||
	    sodium_base642bin(sig, sizeof(sig), f[F_SIGNATURE].p, SIG_B64_LEN, NULL, &sig_len, &sig_end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    sig_len != SIG_LEN || sig_end != f[F_SIGNATURE].p + SIG_B64_LEN)
		return HF_EINVAL;

	if (!field_is(&f[F_ALG], DCI_ALG) || !field_is(&f[F_HEADERS], DCI_HEADERS) ||
	    (f[F_NAMESPACE].set && !field_is(&f[F_NAMESPACE], DCI_NAMESPACE)))
		return HF_EAUTH;
	if (expected_sender && (strlen(expected_sender) != sender_n || memcmp(expected_sender, kid, sender_n) != 0))
		return HF_EAUTH;
	if (now < created - HF_PAYSIG_DCI_SKEW_S || now > expires)
		return HF_EAUTH;

	char msg[DCI_SIGNED_MAX];
	size_t n = dci_signed_string(created, expires, body, len, msg);
	if (crypto_sign_verify_detached(sig, (const unsigned char *)msg, n, pk) != 0)
		return HF_EAUTH;
	return HF_OK;
}
