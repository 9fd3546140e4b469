/* fuzz_config.c - libFuzzer target: hf_config_load (inih + our declared keys) on arbitrary config files.
 *
 * A config file is edited by hand on a district office box, often by someone following a phone call; it
 * must be refused with "file:line: reason" or accepted, never crash the service or half-apply. The input
 * is written to a memfd and loaded through /proc/self/fd/N with core_config_decls, exactly as main loads
 * /etc/hifadhi/core.ini; an accepted config then goes through app_rules_from_config like main does.
 * Checked as well: a refusal always says why; every declared key of an accepted config reads back through
 * its typed accessor (whose asserts catch a value that passed validation but does not parse).
 *
 * Input: the file. If it contains a line "%%", the lines after it are "-o section.key=value" overrides
 * instead (at most 16), so the override path is fuzzed too.
 */
#include "hf_base.h"

#include "../../core/core_config.c"

#include "fuzz_common.h"
#include "hf_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_OVERRIDES 16

static int g_fd = -1;
static char g_path[64];

static void write_file(const uint8_t *data, size_t size)
{
	if (g_fd < 0) {
		g_fd = memfd_create("hf_fuzz_config", MFD_CLOEXEC);
		HF_ASSERT(g_fd >= 0);
		snprintf(g_path, sizeof(g_path), "/proc/self/fd/%d", g_fd);
	}
	HF_ASSERT(ftruncate(g_fd, 0) == 0);
	size_t at = 0;
	while (at < size) {
		ssize_t w = pwrite(g_fd, data + at, size - at, (off_t)at);
		if (w < 0 && errno == EINTR)
			continue;
		HF_ASSERT(w > 0);
		at += (size_t)w;
	}
}

/* Splits "file\n%%\nov1\nov2..." into the file part and NUL-terminated overrides (in text, owned). */
static size_t split_overrides(const uint8_t *data, size_t size, size_t *file_len, char **text, const char **ov)
{
	static const char sep[] = "\n%%\n";
	*file_len = size;
	*text = NULL;
	const uint8_t *at = memmem(data, size, sep, sizeof(sep) - 1);
	if (!at)
		return 0;
	*file_len = (size_t)(at - data) + 1;
	const char *rest = (const char *)at + sizeof(sep) - 1;
	size_t rest_len = size - (size_t)(rest - (const char *)data);
	*text = hf_xstrndup(rest, rest_len); /* cut at an embedded NUL, as a command line would be */
	size_t n = 0;
	char *line = *text;
	while (*line && n < MAX_OVERRIDES) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		ov[n++] = line;
		if (!nl)
			break;
		line = nl + 1;
	}
	return n;
}

static void read_back(const struct hf_config *cfg)
{
	for (size_t i = 0; i < core_config_ndecls; i++) {
		const struct hf_cfg_decl *d = &core_config_decls[i];
		switch (d->type) {
		case HF_CFG_INT: {
			int64_t v = hf_config_int(cfg, d->key);
			FUZZ_CHECK(v >= d->min && v <= d->max);
			break;
		}
		case HF_CFG_STR: {
			const char *v = hf_config_str(cfg, d->key);
			FUZZ_CHECK(v != NULL && (int64_t)strlen(v) >= d->min && (d->max == 0 || (int64_t)strlen(v) <= d->max));
			if (d->required)
				FUZZ_CHECK(v[0] != '\0');
			break;
		}
		case HF_CFG_BOOL:
			(void)hf_config_bool(cfg, d->key);
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_setup();
	const char *ov[MAX_OVERRIDES];
	char *ov_text = NULL;
	size_t file_len = 0;
	size_t nov = split_overrides(data, size, &file_len, &ov_text, ov);
	write_file(data, file_len);

	struct hf_config *cfg = NULL;
	struct hf_buf err;
	hf_buf_init(&err, 2048);
	hf_err e = hf_config_load(core_config_decls, core_config_ndecls, g_path, ov, nov, &cfg, &err);
	if (e) {
		FUZZ_CHECK(e == HF_EINVAL && cfg == NULL && err.len > 0);
	} else {
		FUZZ_CHECK(cfg != NULL);
		read_back(cfg);
		/* app_rules_from_config rewrites g_app: keep the rules the other checks were set up with. */
		struct app saved = g_app;
		struct hf_buf why;
		hf_buf_init(&why, 2048);
		if (app_rules_from_config(cfg, &why) != HF_OK) {
			FUZZ_CHECK(why.len > 0);
		} else {
			FUZZ_CHECK(g_app.nid.min_len <= g_app.nid.max_len && g_app.nid.max_len <= 32);
			FUZZ_CHECK(g_app.phone_min_digits <= g_app.phone_max_digits && g_app.nlanguages <= APP_MAX_LANGUAGES);
			FUZZ_CHECK(strlen(g_app.phone_cc) <= 3);
		}
		hf_buf_release(&why);
		g_app = saved;
		hf_config_free(cfg);
	}
	hf_buf_release(&err);
	free(ov_text);
	return 0;
}
