/* hf_reqsign.c - kiosk request signatures and enrolment codes, on libsodium (see hf_reqsign.h).
 *
 * Alongside hf_crypto.c, the second libsodium user of lib/: the kiosk program links lib/ but never a
 * keyring, so the signing primitives live apart from field encryption.
 */
#include "hf_base.h"
#include "hf_reqsign.h"

#include <sodium.h>
#include <string.h>

#include "hf_crypto.h"

#define DOMAIN "hifadhi-kiosk-v1\n"
#define METHOD_MAX 10
#define PATH_MAX_LEN 1024
#define TS_MAX_DIGITS 12
#define NONCE_MIN 22
#define NONCE_MAX 64
#define SIG_LEN 64
/* The longest message: the domain, the parts at their maximum, five newlines and the body digest. */
#define MESSAGE_MAX                                                                                          \
	(sizeof(DOMAIN) - 1 + METHOD_MAX + PATH_MAX_LEN + TS_MAX_DIGITS + NONCE_MAX + HF_REQSIGN_KIOSK_NO_MAX + 5 + \
	 2 * crypto_hash_sha256_BYTES)
#define CODE_DOMAIN "hifadhi-kiosk-enrol-v1"

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_alnum(char c)
{
	return is_upper(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Length of s if it is 1..max characters all accepted by ok, else 0 (never reads past max + 1). */
static size_t run_of(const char *s, size_t max, bool (*ok)(char))
{
	if (!s)
		return 0;
	size_t n = 0;
	while (s[n]) {
		if (n == max || !ok(s[n]))
			return 0;
		n++;
	}
	return n;
}

static bool method_char(char c)
{
	return is_upper(c);
}

static bool path_char(char c)
{
	return c >= 0x21 && c <= 0x7e && c != '?';
}

static bool digit_char(char c)
{
	return c >= '0' && c <= '9';
}

static bool nonce_char(char c)
{
	return is_alnum(c) || c == '_' || c == '-';
}

static bool kiosk_char(char c)
{
	return is_alnum(c) || c == '-';
}

bool hf_reqsign_kiosk_no_valid(const char *kiosk_no)
{
	return run_of(kiosk_no, HF_REQSIGN_KIOSK_NO_MAX, kiosk_char) > 0;
}

bool hf_reqsign_nonce_valid(const char *nonce)
{
	return run_of(nonce, NONCE_MAX, nonce_char) >= NONCE_MIN;
}

bool hf_reqsign_timestamp_valid(const char *ts)
{
	return run_of(ts, TS_MAX_DIGITS, digit_char) > 0;
}

hf_err hf_reqsign_message(const char *method, const char *path, const char *ts, const char *nonce,
			  const char *kiosk_no, const void *body, size_t body_len, struct hf_buf *out)
{
	if (run_of(method, METHOD_MAX, method_char) == 0 || !path || path[0] != '/' ||
	    run_of(path, PATH_MAX_LEN, path_char) == 0 || !hf_reqsign_timestamp_valid(ts) ||
	    !hf_reqsign_nonce_valid(nonce) || !hf_reqsign_kiosk_no_valid(kiosk_no) || (!body && body_len))
		return HF_EINVAL;
	uint8_t digest[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	/* An empty body may come as NULL; libsodium is handed a real pointer either way. */
	crypto_hash_sha256(digest, body ? body : (const void *)"", body_len);
	hf_hex(digest, sizeof(digest), hex);
	/* On HF_ETOOBIG hf_buf leaves out as it was: nothing half-written. */
	return hf_buf_appendf(out, DOMAIN "%s\n%s\n%s\n%s\n%s\n%s", method, path, ts, nonce, kiosk_no, hex);
}

hf_err hf_reqsign_sign(const uint8_t sk[HF_REQSIGN_SK_LEN], const char *method, const char *path, const char *ts,
		       const char *nonce, const char *kiosk_no, const void *body, size_t body_len,
		       char sig_b64[HF_REQSIGN_SIG_B64_LEN + 1])
{
	struct hf_buf msg;
	uint8_t sig[SIG_LEN];
	hf_buf_init(&msg, MESSAGE_MAX);
	hf_err err = hf_reqsign_message(method, path, ts, nonce, kiosk_no, body, body_len, &msg);
	if (err)
		goto out_msg;
	HF_ASSERT(crypto_sign_detached(sig, NULL, (const unsigned char *)msg.data, msg.len, sk) == 0);
	sodium_bin2base64(sig_b64, HF_REQSIGN_SIG_B64_LEN + 1, sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
out_msg:
	hf_buf_release(&msg);
	return err;
}

hf_err hf_reqsign_verify(const uint8_t pk[HF_REQSIGN_PK_LEN], const char *sig_b64, const char *method,
			 const char *path, const char *ts, const char *nonce, const char *kiosk_no, const void *body,
			 size_t body_len)
{
	struct hf_buf msg;
	uint8_t sig[SIG_LEN];
	size_t sig_len = 0;
	const char *end = NULL;
	hf_buf_init(&msg, MESSAGE_MAX);
	hf_err err = hf_reqsign_message(method, path, ts, nonce, kiosk_no, body, body_len, &msg);
	if (err)
		goto out_msg;
	/* Exactly one spelling of a signature is accepted: 88 characters, padded, no whitespace, canonical
	 * trailing bits (libsodium refuses non-zero ones). */
	if (!sig_b64 || strnlen(sig_b64, HF_REQSIGN_SIG_B64_LEN + 1) != HF_REQSIGN_SIG_B64_LEN ||
	    sodium_base642bin(sig, sizeof(sig), sig_b64, HF_REQSIGN_SIG_B64_LEN, NULL, &sig_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    sig_len != SIG_LEN || end != sig_b64 + HF_REQSIGN_SIG_B64_LEN) {
		err = HF_EAUTH;
		goto out_msg;
	}
	if (crypto_sign_verify_detached(sig, (const unsigned char *)msg.data, msg.len, pk) != 0)
		err = HF_EAUTH;
out_msg:
	hf_buf_release(&msg);
	return err;
}

void hf_reqsign_nonce(char out[HF_REQSIGN_NONCE_LEN + 1])
{
	uint8_t raw[16];
	hf_random_bytes(raw, sizeof(raw));
	sodium_bin2base64(out, HF_REQSIGN_NONCE_LEN + 1, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

hf_err hf_reqsign_keypair(uint8_t pk[HF_REQSIGN_PK_LEN], uint8_t sk[HF_REQSIGN_SK_LEN])
{
	return crypto_sign_keypair(pk, sk) == 0 ? HF_OK : HF_EINTERNAL;
}

hf_err hf_reqsign_keypair_from_seed(const uint8_t seed[HF_REQSIGN_SEED_LEN], uint8_t pk[HF_REQSIGN_PK_LEN],
				    uint8_t sk[HF_REQSIGN_SK_LEN])
{
	return crypto_sign_seed_keypair(pk, sk, seed) == 0 ? HF_OK : HF_EINTERNAL;
}

void hf_reqsign_pubkey_encode(const uint8_t pk[HF_REQSIGN_PK_LEN], char out[HF_REQSIGN_PK_B64_LEN + 1])
{
	sodium_bin2base64(out, HF_REQSIGN_PK_B64_LEN + 1, pk, HF_REQSIGN_PK_LEN, sodium_base64_VARIANT_ORIGINAL);
}

hf_err hf_reqsign_pubkey_decode(const char *b64, uint8_t pk[HF_REQSIGN_PK_LEN])
{
	uint8_t bin[HF_REQSIGN_PK_LEN];
	size_t len = 0;
	const char *end = NULL;
	if (!b64 || strnlen(b64, HF_REQSIGN_PK_B64_LEN + 1) != HF_REQSIGN_PK_B64_LEN ||
	    sodium_base642bin(bin, sizeof(bin), b64, HF_REQSIGN_PK_B64_LEN, NULL, &len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != sizeof(bin) || end != b64 + HF_REQSIGN_PK_B64_LEN || crypto_core_ed25519_is_valid_point(bin) != 1)
		return HF_EINVAL;
	memcpy(pk, bin, sizeof(bin));
	return HF_OK;
}

void hf_reqsign_code_new(char out[HF_REQSIGN_CODE_SHOWN_LEN + 1])
{
	static const char alphabet[] = HF_REQSIGN_CODE_ALPHABET;
	size_t o = 0;
	for (size_t i = 0; i < HF_REQSIGN_CODE_LEN; i++) {
		if (i && i % 4 == 0)
			out[o++] = '-';
		out[o++] = alphabet[hf_random_uniform(sizeof(alphabet) - 1)];
	}
	HF_ASSERT(o == HF_REQSIGN_CODE_SHOWN_LEN);
	out[o] = '\0';
}

bool hf_reqsign_code_normalise(const char *in, char out[HF_REQSIGN_CODE_LEN + 1])
{
	static const char alphabet[] = HF_REQSIGN_CODE_ALPHABET;
	char norm[HF_REQSIGN_CODE_LEN + 1];
	size_t n = 0;
	bool ok = in != NULL;
	/* Typed codes are short: anything much longer than the shown form is refused without scanning on. */
	for (size_t i = 0; ok && in[i]; i++) {
		char c = in[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c == '-' || c == ' ')
			ok = i < 2 * HF_REQSIGN_CODE_SHOWN_LEN;
		else if (n < HF_REQSIGN_CODE_LEN && memchr(alphabet, c, sizeof(alphabet) - 1))
			norm[n++] = c;
		else
			ok = false;
	}
	ok = ok && n == HF_REQSIGN_CODE_LEN;
	if (ok) {
		norm[n] = '\0';
		memcpy(out, norm, sizeof(norm));
	}
	sodium_memzero(norm, sizeof(norm));
	return ok;
}

hf_err hf_reqsign_code_hash(const char *code, uint8_t out[HF_REQSIGN_CODE_HASH_LEN])
{
	char norm[HF_REQSIGN_CODE_LEN + 1];
	if (!hf_reqsign_code_normalise(code, norm))
		return HF_EINVAL;
	crypto_generichash(out, HF_REQSIGN_CODE_HASH_LEN, (const unsigned char *)norm, HF_REQSIGN_CODE_LEN,
			   (const unsigned char *)CODE_DOMAIN, sizeof(CODE_DOMAIN) - 1);
	sodium_memzero(norm, sizeof(norm));
	return HF_OK;
}
