/* hf_config.c - INI configuration with declared keys, via inih (Debian's libinih). */
#include "hf_base.h"
#include "hf_config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hf_config {
	const struct hf_cfg_decl *decls;
	size_t n;
	char **values; /* parallel to decls; NULL = unset */
};

struct load_ctx {
	struct hf_config *cfg;
	struct hf_buf *err;
	const char *file;
	bool failed;
	bool *seen; /* per declaration: already set by this file */
};

static long find_decl(const struct hf_config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->n; i++)
		if (strcmp(cfg->decls[i].key, key) == 0)
			return (long)i;
	return -1;
}

static bool value_ok(const struct hf_cfg_decl *d, const char *v, const char **why)
{
	switch (d->type) {
	case HF_CFG_INT: {
		int64_t x;
		if (hf_parse_i64(v, d->min, d->max, &x)) {
			*why = "must be an integer in range";
			return false;
		}
		return true;
	}
	case HF_CFG_BOOL:
		if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "yes") && strcmp(v, "no") && strcmp(v, "1") &&
		    strcmp(v, "0")) {
			*why = "must be true or false";
			return false;
		}
		return true;
	case HF_CFG_STR: {
		int64_t len = (int64_t)strlen(v);
		if (len < d->min || (d->max > 0 && len > d->max)) {
			*why = "has a length out of range";
			return false;
		}
		return true;
	}
	}
	*why = "has an unknown type";
	return false;
}

static bool set_value(struct hf_config *cfg, const char *key, const char *v, struct hf_buf *err, const char *where)
{
	long i = find_decl(cfg, key);
	const char *why = NULL;
	if (i < 0) {
		hf_buf_note(err, "%s: unknown key '%s'", where, key);
		return false;
	}
	if (!value_ok(&cfg->decls[i], v, &why)) {
		const struct hf_cfg_decl *d = &cfg->decls[i];
		if (d->type == HF_CFG_BOOL)
			hf_buf_note(err, "%s: '%s' %s", where, key, why);
		else
			hf_buf_note(err, "%s: '%s' %s [%lld, %lld]", where, key, why, (long long)d->min,
				    (long long)d->max);
		return false;
	}
	free(cfg->values[i]);
	cfg->values[i] = hf_xstrdup(v);
	return true;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	char key[256];
	int n = snprintf(key, sizeof(key), "%s%s%s", section, section[0] ? "." : "", name);
	if (n < 0 || (size_t)n >= sizeof(key)) {
		ctx->failed = true;
		return 0;
	}
	/* A key set twice is almost always a mistake (two edits of one file); refuse instead of guessing. */
	long idx = find_decl(ctx->cfg, key);
	if (idx >= 0 && ctx->seen[idx]) {
		if (!ctx->failed)
			hf_buf_note(ctx->err, "'%s' is set twice", key);
		ctx->failed = true;
		return 0;
	}
	if (idx >= 0)
		ctx->seen[idx] = true;
	struct hf_buf msg;
	hf_buf_init(&msg, 1024);
	/* inih reports the line of the first handler failure; we record the reason and let it add the line. */
	bool ok = set_value(ctx->cfg, key, value, &msg, "");
	if (!ok && !ctx->failed) {
		ctx->failed = true;
		hf_buf_note(ctx->err, "%s", hf_buf_cstr(&msg) + 2); /* drop ": " */
	}
	hf_buf_release(&msg);
	return ok;
}

hf_err hf_config_load(const struct hf_cfg_decl *decls, size_t ndecls, const char *path, const char *const *overrides,
		      size_t noverrides, struct hf_config **out, struct hf_buf *err)
{
	struct hf_config *cfg = hf_xcalloc(1, sizeof(*cfg));
	cfg->decls = decls;
	cfg->n = ndecls;
	cfg->values = hf_xcalloc(ndecls, sizeof(char *));
	for (size_t i = 0; i < ndecls; i++)
		if (decls[i].def)
			cfg->values[i] = hf_xstrdup(decls[i].def);

	if (path) {
		FILE *f = fopen(path, "r");
		if (!f) {
			hf_buf_note(err, "%s: cannot open: %s", path, strerror(errno));
			goto fail;
		}
		struct hf_buf reason;
		hf_buf_init(&reason, 1024);
		struct load_ctx ctx = {cfg, &reason, path, false, hf_xcalloc(ndecls ? ndecls : 1, sizeof(bool))};
		int line = ini_parse_file(f, on_ini, &ctx);
		fclose(f);
		free(ctx.seen);
		if (line != 0) {
			hf_buf_note(err, "%s:%d: %s", path, line,
					     ctx.failed ? hf_buf_cstr(&reason) : "syntax error (expected key = value)");
			hf_buf_release(&reason);
			goto fail;
		}
		hf_buf_release(&reason);
	}
	for (size_t i = 0; i < noverrides; i++) {
		const char *eq = strchr(overrides[i], '=');
		if (!eq) {
			hf_buf_note(err, "override '%s': expected key=value", overrides[i]);
			goto fail;
		}
		char *key = hf_xstrndup(overrides[i], (size_t)(eq - overrides[i]));
		bool ok = set_value(cfg, key, eq + 1, err, "override");
		free(key);
		if (!ok)
			goto fail;
	}
	for (size_t i = 0; i < ndecls; i++) {
		if (decls[i].required && (!cfg->values[i] || !cfg->values[i][0])) {
			hf_buf_note(err, "%s: required key '%s' is missing", path ? path : "config", decls[i].key);
			goto fail;
		}
	}
	*out = cfg;
	return HF_OK;
fail:
	hf_config_free(cfg);
	return HF_EINVAL;
}

void hf_config_free(struct hf_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n; i++)
		free(cfg->values[i]);
	free(cfg->values);
	free(cfg);
}

static const char *get(const struct hf_config *cfg, const char *key, enum hf_cfg_type type)
{
	long i = find_decl(cfg, key);
	HF_ASSERT(i >= 0);
	HF_ASSERT(cfg->decls[i].type == type);
	return cfg->values[i] ? cfg->values[i] : "";
}

int64_t hf_config_int(const struct hf_config *cfg, const char *key)
{
	const char *v = get(cfg, key, HF_CFG_INT);
	int64_t x = 0;
	if (*v && hf_parse_i64(v, INT64_MIN, INT64_MAX, &x))
		HF_ASSERT(!"validated integer failed to parse");
	return x;
}

const char *hf_config_str(const struct hf_config *cfg, const char *key)
{
	return get(cfg, key, HF_CFG_STR);
}

bool hf_config_bool(const struct hf_config *cfg, const char *key)
{
	const char *v = get(cfg, key, HF_CFG_BOOL);
	return strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0;
}

hf_err hf_file_read(const char *path, size_t max, bool strip_newline, struct hf_buf *out)
{
	hf_err err = HF_OK;
	/* Initialised first, so that on every failure out is empty and safe to release. */
	hf_buf_init(out, max);
	FILE *f = fopen(path, "rb");
	if (!f)
		return HF_EIO;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		err = hf_buf_append(out, chunk, n);
		if (err)
			goto out_close;
	}
	if (ferror(f))
		err = HF_EIO;
	if (!err && strip_newline)
		while (out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r'))
			out->data[--out->len] = '\0';
out_close:
	fclose(f);
	if (err)
		hf_buf_release(out);
	return err;
}
