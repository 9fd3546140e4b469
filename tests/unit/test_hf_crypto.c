/* test_hf_crypto.c - key files, field sealing, key rotation and blind indexes.
 *
 * Beneficiaries' names, ID numbers and phone numbers are stored only sealed, so these tests check what an
 * operator and an attacker with database access would notice: keys are created private and never
 * replaced, a sealed value opens only under its own key and its own table/column/row binding, any changed
 * byte is refused, and rows sealed before a key rotation still open afterwards.
 */
#include "hf_base.h"
#include "hf_crypto.h"

#include <string.h>
#include <sys/stat.h>

#include "hf_test.h"

static char tmpdir[64];
/* The keyring most tests use (key 1 active), its directory, and a second deployment's keys. */
static struct hf_keyring *ring;
static char ring_dir[128];
static char other_dir[128];

/* tmpdir/name into out. */
static void path_in(const char *dir, const char *name, char *out, size_t out_size)
{
	int n = snprintf(out, out_size, "%s/%s", dir, name);
	HF_ASSERT(n > 0 && (size_t)n < out_size);
}

static bool read_small(const char *path, char *out, size_t out_size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(out, 1, out_size - 1, f);
	fclose(f);
	out[n] = '\0';
	return true;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static bool is_key_text(const char *s)
{
	if (strlen(s) != 65 || s[64] != '\n')
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

static void test_keygen(void)
{
	char dir[128], f1[160], bidx[160];
	path_in(tmpdir, "keys", dir, sizeof(dir));
	path_in(dir, "field-01.key", f1, sizeof(f1));
	path_in(dir, "bidx.key", bidx, sizeof(bidx));

	HF_CHECK(hf_keyring_generate(dir) == HF_OK);
	HF_CHECK_MSG(mode_of(dir) == 0700, "dir mode %o", (unsigned)mode_of(dir));
	HF_CHECK_MSG(mode_of(f1) == 0600, "field key mode %o", (unsigned)mode_of(f1));
	HF_CHECK_MSG(mode_of(bidx) == 0600, "bidx key mode %o", (unsigned)mode_of(bidx));
	char k1[128], kb[128];
	HF_CHECK(read_small(f1, k1, sizeof(k1)) && is_key_text(k1));
	HF_CHECK(read_small(bidx, kb, sizeof(kb)) && is_key_text(kb));
	HF_CHECK(strcmp(k1, kb) != 0);

	/* Running it again must not replace a key: that would make every sealed row unreadable. */
	HF_CHECK(hf_keyring_generate(dir) == HF_OK);
	char again[128];
	HF_CHECK(read_small(f1, again, sizeof(again)) && strcmp(again, k1) == 0);
	HF_CHECK(read_small(bidx, again, sizeof(again)) && strcmp(again, kb) == 0);

	/* Only the missing one is created. */
	HF_CHECK(unlink(bidx) == 0);
	HF_CHECK(hf_keyring_generate(dir) == HF_OK);
	HF_CHECK(read_small(f1, again, sizeof(again)) && strcmp(again, k1) == 0);
	HF_CHECK(read_small(bidx, again, sizeof(again)) && is_key_text(again) && strcmp(again, kb) != 0);
	HF_CHECK(mode_of(bidx) == 0600);

	/* A directory that cannot be created is an I/O error. */
	char bad[192];
	path_in(f1, "sub", bad, sizeof(bad));
	HF_CHECK(hf_keyring_generate(bad) == HF_EIO);

	hf_test_rmtree(dir);
}

static struct hf_keyring *load(const char *dir, int active)
{
	struct hf_keyring *kr = NULL;
	hf_err e = hf_keyring_load(dir, active, &kr);
	HF_CHECK_MSG(e == HF_OK && kr != NULL, "load %s active=%d: %d", dir, active, (int)e);
	return kr;
}

static void test_load_errors(void)
{
	char dir[128], path[192];
	path_in(tmpdir, "load", dir, sizeof(dir));
	struct hf_keyring *kr = NULL;
	HF_CHECK(hf_keyring_load(dir, 1, &kr) == HF_EIO && kr == NULL);
	HF_CHECK(hf_keyring_generate(dir) == HF_OK);
	/* The active key must exist. */
	HF_CHECK(hf_keyring_load(dir, 2, &kr) == HF_EINVAL && kr == NULL);
	HF_CHECK(hf_keyring_load(dir, 0, &kr) == HF_EINVAL && kr == NULL);
	HF_CHECK(hf_keyring_load(dir, 256, &kr) == HF_EINVAL && kr == NULL);
	kr = load(dir, 1);
	hf_keyring_free(kr);
	kr = NULL;

	/* A malformed key file stops loading instead of being skipped. */
	static const char *const bad_keys[] = {
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",   /* 63 digits */
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n", /* 65 digits */
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",  /* not hex */
		"",
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad_keys); i++) {
		hf_test_write_file(dir, "field-03.key", bad_keys[i], 0600, path, sizeof(path));
		HF_CHECK_MSG(hf_keyring_load(dir, 1, &kr) == HF_EINVAL && kr == NULL, "bad key %zu loaded", i);
	}
	HF_CHECK(unlink(path) == 0);

	/* Two files naming the same key id (hex is case-insensitive) are ambiguous: refuse, never pick one. */
	char twin[192];
	hf_test_write_file(dir, "field-0a.key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600,
			   path, sizeof(path));
	hf_test_write_file(dir, "field-0A.key", "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n", 0600,
			   twin, sizeof(twin));
	HF_CHECK_MSG(hf_keyring_load(dir, 1, &kr) == HF_EINVAL && kr == NULL, "field-0a.key and field-0A.key both loaded");
	hf_keyring_free(kr);
	kr = NULL;
	HF_CHECK(unlink(path) == 0 && unlink(twin) == 0);
	/* Only two hex digits name a key: "field-+2.key" is not key 2. */
	hf_test_write_file(dir, "field-+2.key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600,
			   path, sizeof(path));
	HF_CHECK_MSG(hf_keyring_load(dir, 2, &kr) != HF_OK && kr == NULL, "field-+2.key loaded as key 2");
	hf_keyring_free(kr);
	kr = NULL;
	HF_CHECK(unlink(path) == 0);

	/* Without the blind-index key nothing loads. */
	path_in(dir, "bidx.key", path, sizeof(path));
	HF_CHECK(unlink(path) == 0);
	HF_CHECK(hf_keyring_load(dir, 1, &kr) != HF_OK && kr == NULL);
	hf_test_rmtree(dir);
}

static const struct hf_str ad_name = {"beneficiary.name:42", 19};

static void test_seal_open(void)
{
	const struct hf_keyring *kr = ring;
	static const char plain[] = "Wanjiru Kamau";
	struct hf_buf sealed, opened;
	hf_buf_init(&sealed, 1024);
	hf_buf_init(&opened, 1024);
	HF_CHECK(hf_field_seal(kr, ad_name, plain, strlen(plain), &sealed) == HF_OK);
	HF_CHECK(sealed.len == strlen(plain) + HF_SEAL_OVERHEAD);
	HF_CHECK(hf_field_kid(sealed.data, sealed.len) == 1);
	/* The plaintext does not appear in what is stored. */
	HF_CHECK(memmem(sealed.data, sealed.len, "Wanjiru", 7) == NULL);
	HF_CHECK(hf_field_open(kr, ad_name, sealed.data, sealed.len, &opened) == HF_OK);
	HF_CHECK(opened.len == strlen(plain) && strcmp(hf_buf_cstr(&opened), plain) == 0);

	/* The same value sealed twice looks different (fresh nonce), and both open. */
	struct hf_buf second;
	hf_buf_init(&second, 1024);
	HF_CHECK(hf_field_seal(kr, ad_name, plain, strlen(plain), &second) == HF_OK);
	HF_CHECK(second.len == sealed.len && memcmp(second.data, sealed.data, sealed.len) != 0);
	hf_buf_reset(&opened);
	HF_CHECK(hf_field_open(kr, ad_name, second.data, second.len, &opened) == HF_OK);
	HF_CHECK(strcmp(hf_buf_cstr(&opened), plain) == 0);
	hf_buf_release(&second);

	/* Empty values and binary values round-trip. */
	struct hf_buf e;
	hf_buf_init(&e, 1024);
	HF_CHECK(hf_field_seal(kr, ad_name, "", 0, &e) == HF_OK && e.len == HF_SEAL_OVERHEAD);
	hf_buf_reset(&opened);
	HF_CHECK(hf_field_open(kr, ad_name, e.data, e.len, &opened) == HF_OK && opened.len == 0);
	hf_buf_reset(&e);
	static const uint8_t bin[] = {0, 1, 2, 0xff, 0, 0x80};
	HF_CHECK(hf_field_seal(kr, ad_name, bin, sizeof(bin), &e) == HF_OK);
	hf_buf_reset(&opened);
	HF_CHECK(hf_field_open(kr, ad_name, e.data, e.len, &opened) == HF_OK && opened.len == sizeof(bin) &&
		 memcmp(opened.data, bin, sizeof(bin)) == 0);
	hf_buf_release(&e);

	/* Seal and open append after what the buffer already holds. */
	struct hf_buf pre;
	hf_buf_init(&pre, 1024);
	HF_CHECK(hf_buf_append_str(&pre, "abc") == HF_OK);
	HF_CHECK(hf_field_seal(kr, ad_name, plain, strlen(plain), &pre) == HF_OK);
	HF_CHECK(memcmp(pre.data, "abc", 3) == 0 && pre.len == 3 + sealed.len);
	hf_buf_reset(&opened);
	HF_CHECK(hf_buf_append_str(&opened, "name=") == HF_OK);
	HF_CHECK(hf_field_open(kr, ad_name, pre.data + 3, pre.len - 3, &opened) == HF_OK);
	HF_CHECK(strcmp(hf_buf_cstr(&opened), "name=Wanjiru Kamau") == 0);
	hf_buf_release(&pre);

	/* A sealed value that would not fit is refused and leaves the buffer as it was. */
	struct hf_buf small;
	hf_buf_init(&small, HF_SEAL_OVERHEAD + 3);
	HF_CHECK(hf_buf_append_str(&small, "ab") == HF_OK);
	HF_CHECK(hf_field_seal(kr, ad_name, plain, strlen(plain), &small) == HF_ETOOBIG);
	HF_CHECK(small.len == 2 && strcmp(hf_buf_cstr(&small), "ab") == 0);
	hf_buf_release(&small);
	hf_buf_init(&small, 4);
	HF_CHECK(hf_field_open(kr, ad_name, sealed.data, sealed.len, &small) == HF_ETOOBIG);
	HF_CHECK(small.len == 0);
	hf_buf_release(&small);

	hf_buf_release(&sealed);
	hf_buf_release(&opened);
}

/* Opens and expects HF_EINVAL with the output buffer left exactly as it was. */
static bool open_refused(const struct hf_keyring *kr, struct hf_str ad, const void *sealed, size_t len)
{
	struct hf_buf out;
	hf_buf_init(&out, 1024);
	if (hf_buf_append_str(&out, "keep") != HF_OK)
		return false;
	hf_err e = hf_field_open(kr, ad, sealed, len, &out);
	bool ok = e == HF_EINVAL && out.len == 4 && strcmp(hf_buf_cstr(&out), "keep") == 0;
	hf_buf_release(&out);
	return ok;
}

static void test_tampering(void)
{
	const struct hf_keyring *kr = ring;
	static const char plain[] = "12345678";
	struct hf_buf sealed;
	hf_buf_init(&sealed, 1024);
	HF_CHECK(hf_field_seal(kr, ad_name, plain, strlen(plain), &sealed) == HF_OK);
	uint8_t *s = (uint8_t *)sealed.data;

	/* Bound to its table, column and row: a copy into another row or column does not open. */
	HF_CHECK(open_refused(kr, HF_STR_LIT("beneficiary.name:43"), s, sealed.len));
	HF_CHECK(open_refused(kr, HF_STR_LIT("beneficiary.nid:42"), s, sealed.len));
	HF_CHECK(open_refused(kr, HF_STR_LIT(""), s, sealed.len));
	HF_CHECK(open_refused(kr, HF_STR_LIT("beneficiary.name:42\0"), s, sealed.len));

	/* Any flipped bit anywhere (version, key id, nonce, ciphertext, tag) is refused. */
	unsigned accepted = 0;
	for (size_t i = 0; i < sealed.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			s[i] ^= (uint8_t)(1u << bit);
			if (!open_refused(kr, ad_name, s, sealed.len))
				accepted++;
			s[i] ^= (uint8_t)(1u << bit);
		}
	}
	HF_CHECK_MSG(accepted == 0, "%u tampered values opened", accepted);

	/* Truncated or extended values are refused. */
	HF_CHECK(open_refused(kr, ad_name, s, sealed.len - 1));
	HF_CHECK(open_refused(kr, ad_name, s, HF_SEAL_OVERHEAD - 1));
	HF_CHECK(open_refused(kr, ad_name, s, 0));
	HF_CHECK(hf_buf_append(&sealed, "x", 1) == HF_OK);
	s = (uint8_t *)sealed.data;
	HF_CHECK(open_refused(kr, ad_name, s, sealed.len));
	sealed.len--;

	/* Still intact after all that. */
	struct hf_buf out;
	hf_buf_init(&out, 64);
	HF_CHECK(hf_field_open(kr, ad_name, s, sealed.len, &out) == HF_OK && strcmp(hf_buf_cstr(&out), plain) == 0);
	hf_buf_release(&out);

	/* A key id the keyring does not hold. */
	s[1] = 7;
	HF_CHECK(hf_field_kid(s, sealed.len) == 7);
	HF_CHECK(open_refused(kr, ad_name, s, sealed.len));
	s[1] = 0;
	HF_CHECK(hf_field_kid(s, sealed.len) == 0);
	HF_CHECK(open_refused(kr, ad_name, s, sealed.len));
	s[1] = 1;
	/* An unknown format version. */
	s[0] = 2;
	HF_CHECK(hf_field_kid(s, sealed.len) == 0);
	HF_CHECK(open_refused(kr, ad_name, s, sealed.len));
	s[0] = 1;
	HF_CHECK(hf_field_kid(s, HF_SEAL_OVERHEAD - 1) == 0);
	hf_buf_release(&sealed);
}

static void test_rotation(void)
{
	const char *dir = ring_dir;
	struct hf_keyring *kr1 = load(dir, 1);
	if (!kr1)
		return;
	struct hf_buf row1, row2, out;
	hf_buf_init(&row1, 256);
	hf_buf_init(&row2, 256);
	hf_buf_init(&out, 256);
	HF_CHECK(hf_field_seal(kr1, ad_name, "old row", 7, &row1) == HF_OK);

	/* The operator adds key 2 and makes it active. */
	char path[192];
	hf_test_write_file(dir, "field-02.key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600,
			   path, sizeof(path));
	struct hf_keyring *kr2 = load(dir, 2);
	if (kr2) {
		HF_CHECK(hf_field_seal(kr2, ad_name, "new row", 7, &row2) == HF_OK);
		HF_CHECK(hf_field_kid(row2.data, row2.len) == 2);
		HF_CHECK(hf_field_kid(row1.data, row1.len) == 1);
		/* Old rows keep opening under their own key id... */
		HF_CHECK(hf_field_open(kr2, ad_name, row1.data, row1.len, &out) == HF_OK &&
			 strcmp(hf_buf_cstr(&out), "old row") == 0);
		hf_buf_reset(&out);
		HF_CHECK(hf_field_open(kr2, ad_name, row2.data, row2.len, &out) == HF_OK &&
			 strcmp(hf_buf_cstr(&out), "new row") == 0);
		hf_buf_reset(&out);
		/* ...a process still on the old keyring cannot read new rows... */
		HF_CHECK(open_refused(kr1, ad_name, row2.data, row2.len));
		/* ...and relabelling a new row as key 1 does not help. */
		row2.data[1] = 1;
		HF_CHECK(open_refused(kr2, ad_name, row2.data, row2.len));
		row2.data[1] = 2;
		hf_keyring_free(kr2);
	}
	/* Rolling back to key 1 as active still reads both generations. */
	struct hf_keyring *back = load(dir, 1);
	if (back) {
		HF_CHECK(hf_field_open(back, ad_name, row1.data, row1.len, &out) == HF_OK);
		HF_CHECK(hf_field_open(back, ad_name, row2.data, row2.len, &out) == HF_OK);
		HF_CHECK(strcmp(hf_buf_cstr(&out), "old rownew row") == 0);
		hf_keyring_free(back);
	}
	HF_CHECK(unlink(path) == 0);
	hf_keyring_free(kr1);
	hf_buf_release(&row1);
	hf_buf_release(&row2);
	hf_buf_release(&out);
}

static void test_blind_index(void)
{
	const struct hf_keyring *kr = ring;
	uint8_t a[HF_BIDX_LEN], b[HF_BIDX_LEN];
	hf_blind_index(kr, "nid", HF_STR_LIT("12345678"), a);
	hf_blind_index(kr, "nid", HF_STR_LIT("12345678"), b);
	HF_CHECK(memcmp(a, b, HF_BIDX_LEN) == 0);
	hf_blind_index(kr, "nid", HF_STR_LIT("12345679"), b);
	HF_CHECK(memcmp(a, b, HF_BIDX_LEN) != 0);
	hf_blind_index(kr, "phone", HF_STR_LIT("12345678"), b);
	HF_CHECK(memcmp(a, b, HF_BIDX_LEN) != 0);
	/* The domain is separated from the value: ("ab", "c") is not ("a", "bc"). */
	hf_blind_index(kr, "ab", HF_STR_LIT("c"), a);
	hf_blind_index(kr, "a", HF_STR_LIT("bc"), b);
	HF_CHECK(memcmp(a, b, HF_BIDX_LEN) != 0);
	/* Only len bytes of the value count. */
	hf_blind_index(kr, "nid", (struct hf_str){"1234567899", 8}, a);
	hf_blind_index(kr, "nid", HF_STR_LIT("12345678"), b);
	HF_CHECK(memcmp(a, b, HF_BIDX_LEN) == 0);
	/* It is keyed: another deployment's keys give another index. */
	struct hf_keyring *other = load(other_dir, 1);
	if (other) {
		hf_blind_index(other, "nid", HF_STR_LIT("12345678"), a);
		HF_CHECK(memcmp(a, b, HF_BIDX_LEN) != 0);
		hf_keyring_free(other);
	}
}

static void test_helpers(void)
{
	static const uint8_t bin[] = {0x00, 0x01, 0xab, 0xff};
	char hex[9];
	hf_hex(bin, sizeof(bin), hex);
	HF_CHECK(strcmp(hex, "0001abff") == 0);
	uint8_t back[4] = {0};
	HF_CHECK(hf_unhex(hex, 8, back, sizeof(back)) && memcmp(back, bin, 4) == 0);
	HF_CHECK(hf_unhex("0001ABFF", 8, back, sizeof(back)) && memcmp(back, bin, 4) == 0);
	HF_CHECK(!hf_unhex("0001abf", 7, back, sizeof(back)));
	HF_CHECK(!hf_unhex("0001abfg", 8, back, sizeof(back)));
	HF_CHECK(!hf_unhex("0001abff00", 10, back, sizeof(back)));
	HF_CHECK(hf_ct_equal("abcd", "abcd", 4));
	HF_CHECK(!hf_ct_equal("abcd", "abce", 4));

	/* SHA-256("abc") from FIPS 180-2. */
	uint8_t d[32];
	char dh[65];
	hf_sha256("abc", 3, d);
	hf_hex(d, sizeof(d), dh);
	HF_CHECK(strcmp(dh, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);

	unsigned seen[5] = {0};
	for (int i = 0; i < 500; i++) {
		uint32_t r = hf_random_uniform(5);
		if (HF_CHECK(r < 5))
			seen[r]++;
	}
	for (int i = 0; i < 5; i++)
		HF_CHECK(seen[i] > 0);
	uint8_t r1[16] = {0}, r2[16] = {0};
	hf_random_bytes(r1, sizeof(r1));
	hf_random_bytes(r2, sizeof(r2));
	HF_CHECK(memcmp(r1, r2, sizeof(r1)) != 0);
}

int main(void)
{
	hf_test_tmpdir(tmpdir, sizeof(tmpdir));
	if (hf_crypto_init() != HF_OK) {
		HF_CHECK(!"hf_crypto_init failed");
		return hf_test_summary();
	}
	HF_TEST(test_keygen);
	HF_TEST(test_load_errors);
	HF_TEST(test_helpers);

	path_in(tmpdir, "ring", ring_dir, sizeof(ring_dir));
	path_in(tmpdir, "other", other_dir, sizeof(other_dir));
	HF_CHECK(hf_keyring_generate(ring_dir) == HF_OK);
	HF_CHECK(hf_keyring_generate(other_dir) == HF_OK);
	ring = load(ring_dir, 1);
	if (ring) {
		HF_TEST(test_seal_open);
		HF_TEST(test_tampering);
		HF_TEST(test_blind_index);
		HF_TEST(test_rotation);
		hf_keyring_free(ring);
	}
	hf_test_rmtree(ring_dir);
	hf_test_rmtree(other_dir);
	hf_test_rmtree(tmpdir);
	return hf_test_summary();
}
