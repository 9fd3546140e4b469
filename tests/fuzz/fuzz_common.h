/* fuzz_common.h - what every fuzz target of hifadhi-core sets up once: libsodium, g_app, a fixed keyring.
 *
 * A target #includes the core .c files it needs (to reach their statics, as the unit tests do; always
 * core/core_config.c, for g_app and the config declarations), then this header, and calls fuzz_setup()
 * at the top of LLVMFuzzerTestOneInput. Setup is lazy rather than in LLVMFuzzerInitialize so that the
 * replay driver (tests/fuzz/replay_main.c, built with gcc for `make test`) runs exactly the same code as
 * libFuzzer does.
 *
 * The keyring is FIXED (the hex keys below, written to a private temporary directory, loaded, and the
 * directory removed at once): a crash must reproduce from its input alone, and the sealed seeds of the
 * validators target must open. These keys protect nothing; never use them outside tests.
 *
 * g_app is built the way main does it: hf_config_load(core_config_decls, ...) with the defaults, then
 * app_rules_from_config. The two required keys get placeholder values; no database and no key directory
 * are ever opened from them. Logs are filtered to a place nobody uses, so a long run does not spend its
 * time writing "file refused" lines.
 */
#ifndef HF_FUZZ_COMMON_H
#define HF_FUZZ_COMMON_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FIELD_KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define FUZZ_BIDX_KEY_HEX "f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100"

/* Checks a property of the code under test; a failure is a finding, reported as a crash with file:line. */
#define FUZZ_CHECK(expr) HF_ASSERT(expr)

static inline void fuzz_write_key(const char *dir, const char *name, const char *hex)
{
	char path[256];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	HF_ASSERT(n > 0 && (size_t)n < sizeof(path));
	FILE *f = fopen(path, "w");
	HF_ASSERT(f != NULL);
	HF_ASSERT(fputs(hex, f) >= 0 && fputc('\n', f) == '\n');
	HF_ASSERT(fclose(f) == 0);
}

static inline void fuzz_remove_key(const char *dir, const char *name)
{
	char path[256];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	HF_ASSERT(n > 0 && (size_t)n < sizeof(path));
	unlink(path);
}

/* The fixed keyring (owned by the caller: hf_keyring_free). */
static inline struct hf_keyring *fuzz_keyring_load(void)
{
	char dir[] = "/tmp/hf_fuzz_keys_XXXXXX";
	HF_ASSERT(mkdtemp(dir) != NULL);
	fuzz_write_key(dir, "field-01.key", FUZZ_FIELD_KEY_HEX);
	fuzz_write_key(dir, "bidx.key", FUZZ_BIDX_KEY_HEX);
	struct hf_keyring *kr = NULL;
	hf_err err = hf_keyring_load(dir, 1, &kr);
	fuzz_remove_key(dir, "field-01.key");
	fuzz_remove_key(dir, "bidx.key");
	rmdir(dir);
	HF_ASSERT(err == HF_OK);
	return kr;
}

/* Once per process: crypto, logs, g_app (rules from the default config) and g_app.keys. */
static inline void fuzz_setup(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	HF_ASSERT(hf_crypto_init() == HF_OK);
	hf_log_set_filter("fuzz.silent");
	static const char *const ov[] = {"crypto.key_dir=/nonexistent/hf-fuzz", "db.password_file=/nonexistent/hf-fuzz"};
	struct hf_config *cfg = NULL;
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	if (hf_config_load(core_config_decls, core_config_ndecls, NULL, ov, HF_ARRAY_LEN(ov), &cfg, &err) != HF_OK ||
	    app_rules_from_config(cfg, &err) != HF_OK) {
		fprintf(stderr, "fuzz: default config refused: %s\n", hf_buf_cstr(&err));
		abort();
	}
	hf_buf_release(&err);
	/* cfg stays alive for the whole process: g_app.cfg points at it. */
	g_app.keys = fuzz_keyring_load();
}

#endif
