/* hf_crypto.c - libsodium adapter: the only file that includes sodium.h in lib/. */
#include "hf_base.h"
#include "hf_crypto.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_LEN 32
#define SEAL_VERSION 1

struct hf_keyring {
	uint8_t *field_keys[256]; /* sodium_malloc'd, indexed by key id; NULL = absent */
	uint8_t *bidx_key;
	int active;
};

/* Each thread draws randomness from its own pool, refilled 4 KiB at a time: libsodium's randombytes_buf
 * is one getrandom(2) system call per call, which dominated bulk import (one nonce per sealed field) and
 * id generation. The pool holds kernel CSPRNG output only; bytes are handed out once and wiped. */
#define RAND_POOL 4096
static _Thread_local uint8_t rand_pool[RAND_POOL];
static _Thread_local size_t rand_left;

static void pool_take(void *p, size_t n)
{
	uint8_t *out = p;
	while (n) {
		if (rand_left == 0) {
			randombytes_buf(rand_pool, RAND_POOL);
			rand_left = RAND_POOL;
		}
		size_t k = n < rand_left ? n : rand_left;
		uint8_t *src = rand_pool + (RAND_POOL - rand_left);
		memcpy(out, src, k);
		sodium_memzero(src, k);
		rand_left -= k;
		out += k;
		n -= k;
	}
}

hf_err hf_crypto_init(void)
{
	return sodium_init() < 0 ? HF_EINTERNAL : HF_OK;
}

static hf_err write_new_key(const char *path)
{
	uint8_t key[KEY_LEN];
	char hex[KEY_LEN * 2 + 2];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? HF_OK : HF_EIO;
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	size_t n = strlen(hex);
	hex[n++] = '\n';
	ssize_t w = write(fd, hex, n);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	if (close(fd) != 0 || w != (ssize_t)n) {
		unlink(path);
		return HF_EIO;
	}
	return HF_OK;
}

hf_err hf_keyring_generate(const char *dir)
{
	char path[4096];
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return HF_EIO;
	snprintf(path, sizeof(path), "%s/field-01.key", dir);
	hf_err err = write_new_key(path);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/bidx.key", dir);
	return write_new_key(path);
}

static hf_err read_key(const char *path, uint8_t **out)
{
	char hex[KEY_LEN * 2 + 8];
	FILE *f = fopen(path, "r");
	if (!f)
		return HF_EIO;
	size_t n = fread(hex, 1, sizeof(hex) - 1, f);
	fclose(f);
	while (n && (hex[n - 1] == '\n' || hex[n - 1] == '\r' || hex[n - 1] == ' '))
		n--;
	uint8_t *key = sodium_malloc(KEY_LEN);
	HF_ASSERT(key != NULL);
	size_t bin_len = 0;
	hf_err err = HF_OK;
	if (n != KEY_LEN * 2 || sodium_hex2bin(key, KEY_LEN, hex, n, NULL, &bin_len, NULL) != 0 || bin_len != KEY_LEN) {
		sodium_free(key);
		err = HF_EINVAL;
	} else {
		*out = key;
	}
	sodium_memzero(hex, sizeof(hex));
	return err;
}

hf_err hf_keyring_load(const char *dir, int active_kid, struct hf_keyring **out)
{
	hf_err err = HF_OK;
	char path[4096];
	struct hf_keyring *kr = hf_xcalloc(1, sizeof(*kr));
	DIR *d = opendir(dir);
	if (!d) {
		err = HF_EIO;
		goto out_free;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		unsigned kid;
		char tail[8];
		/* Names are ours ("field-NN.key"); parse without sscanf: fixed prefix, two hex digits, suffix. */
		if (strncmp(e->d_name, "field-", 6) != 0 || strlen(e->d_name) != 12)
			continue;
		memcpy(tail, e->d_name + 8, 5);
		tail[4] = '\0';
		if (strcmp(tail, ".key") != 0)
			continue;
		char digits[3] = {e->d_name[6], e->d_name[7], '\0'};
		/* Exactly two hex digits: strtoul alone would also take "+1" or " 1". */
		if (!isxdigit((unsigned char)digits[0]) || !isxdigit((unsigned char)digits[1]))
			continue;
		char *end;
		kid = (unsigned)strtoul(digits, &end, 16);
		if (*end || kid == 0 || kid > 255)
			continue;
		if (kr->field_keys[kid]) {
			/* field-0a.key and field-0A.key: refuse, rather than let readdir order pick one and leak the
			 * other's memory. */
			err = HF_EINVAL;
			break;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		err = read_key(path, &kr->field_keys[kid]);
		if (err)
			break;
	}
	closedir(d);
	if (err)
		goto out_free;
	snprintf(path, sizeof(path), "%s/bidx.key", dir);
	err = read_key(path, &kr->bidx_key);
	if (err)
		goto out_free;
	if (active_kid < 1 || active_kid > 255 || !kr->field_keys[active_kid]) {
		err = HF_EINVAL;
		goto out_free;
	}
	kr->active = active_kid;
	*out = kr;
	return HF_OK;
out_free:
	hf_keyring_free(kr);
	return err;
}

void hf_keyring_free(struct hf_keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < HF_ARRAY_LEN(kr->field_keys); i++)
		if (kr->field_keys[i])
			sodium_free(kr->field_keys[i]);
	if (kr->bidx_key)
		sodium_free(kr->bidx_key);
	free(kr);
}

/* The version and key id are authenticated too: they are prepended to the caller's associated data. */
static void full_ad(uint8_t hdr[2], struct hf_str ad, struct hf_buf *out)
{
	hf_buf_init(out, 4096);
	if (hf_buf_append(out, hdr, 2) || hf_buf_append(out, ad.ptr, ad.len))
		HF_ASSERT(!"associated data over 4 KiB");
}

hf_err hf_field_seal(const struct hf_keyring *kr, struct hf_str ad, const void *plain, size_t len, struct hf_buf *out)
{
	uint8_t hdr[2] = {SEAL_VERSION, (uint8_t)kr->active};
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	size_t start = out->len;
	hf_err err = hf_buf_append(out, hdr, 2);
	if (err)
		return err;
	pool_take(nonce, sizeof(nonce));
	err = hf_buf_append(out, nonce, sizeof(nonce));
	if (err)
		goto out_undo;
	/* Reserve room for ciphertext + tag, then encrypt in place. */
	size_t ct_at = out->len;
	err = hf_buf_append(out, plain, len);
	if (!err)
		err = hf_buf_append(out, nonce, crypto_aead_xchacha20poly1305_ietf_ABYTES);
	if (err)
		goto out_undo;
	struct hf_buf fad;
	full_ad(hdr, ad, &fad);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt((uint8_t *)out->data + ct_at, &clen, plain, len,
						   (const uint8_t *)fad.data, fad.len, NULL, nonce,
						   kr->field_keys[kr->active]);
	hf_buf_release(&fad);
	HF_ASSERT(clen == len + crypto_aead_xchacha20poly1305_ietf_ABYTES);
	return HF_OK;
out_undo:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return err;
}

int hf_field_kid(const void *sealed, size_t len)
{
	const uint8_t *s = sealed;
	if (len < HF_SEAL_OVERHEAD || s[0] != SEAL_VERSION)
		return 0;
	return s[1];
}

hf_err hf_field_open(const struct hf_keyring *kr, struct hf_str ad, const void *sealed, size_t len, struct hf_buf *out)
{
	const uint8_t *s = sealed;
	int kid = hf_field_kid(sealed, len);
	if (!kid || !kr->field_keys[kid])
		return HF_EINVAL;
	size_t plen = len - HF_SEAL_OVERHEAD;
	size_t start = out->len;
	/* Grow out by plen (+NUL) first, then decrypt directly into it. */
	hf_err err = hf_buf_append(out, s, plen);
	if (err)
		return err;
	struct hf_buf fad;
	full_ad((uint8_t *)s, ad, &fad);
	unsigned long long mlen = 0;
	int rc = crypto_aead_xchacha20poly1305_ietf_decrypt((uint8_t *)out->data + start, &mlen, NULL, s + 26,
							    len - 26, (const uint8_t *)fad.data, fad.len, s + 2,
							    kr->field_keys[kid]);
	hf_buf_release(&fad);
	if (rc != 0) {
		sodium_memzero(out->data + start, plen);
		out->len = start;
		out->data[start] = '\0';
		return HF_EINVAL;
	}
	return HF_OK;
}

void hf_blind_index(const struct hf_keyring *kr, const char *domain, struct hf_str value, uint8_t out[HF_BIDX_LEN])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, kr->bidx_key, KEY_LEN, HF_BIDX_LEN);
	crypto_generichash_update(&st, (const uint8_t *)domain, strlen(domain) + 1); /* with its NUL: a separator */
	crypto_generichash_update(&st, (const uint8_t *)value.ptr, value.len);
	crypto_generichash_final(&st, out, HF_BIDX_LEN);
}

void hf_random_bytes(void *p, size_t n)
{
	if (n > RAND_POOL / 4)
		randombytes_buf(p, n);
	else
		pool_take(p, n);
}

uint32_t hf_random_uniform(uint32_t upper)
{
	/* Rejection sampling, as randombytes_uniform does, to avoid modulo bias. */
	if (upper < 2)
		return 0;
	uint32_t min = (uint32_t)(-upper) % upper, r;
	do
		pool_take(&r, sizeof(r));
	while (r < min);
	return r % upper;
}

void hf_hex(const void *bin, size_t len, char *out)
{
	sodium_bin2hex(out, len * 2 + 1, bin, len);
}

bool hf_unhex(const char *hex, size_t hex_len, void *out, size_t out_len)
{
	size_t got = 0;
	if (hex_len != out_len * 2)
		return false;
	return sodium_hex2bin(out, out_len, hex, hex_len, NULL, &got, NULL) == 0 && got == out_len;
}

bool hf_ct_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

void hf_sha256(const void *p, size_t n, uint8_t out[32])
{
	crypto_hash_sha256(out, p, n);
}
