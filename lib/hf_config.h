/* hf_config.h - declared, validated configuration files (INI: "[section]" and "key = value").
 *
 * Each program declares every key once (type, bounds, default, required). Loading stops at the first
 * unknown key, bad value or missing required key with "file:line: reason", so a typo in production
 * config fails at startup instead of silently using a default. Keys are addressed as "section.key".
 * Secrets are never inline: declare a "*_file" path key and read the file.
 */
#ifndef HF_CONFIG_H
#define HF_CONFIG_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

enum hf_cfg_type { HF_CFG_INT, HF_CFG_STR, HF_CFG_BOOL };

struct hf_cfg_decl {
	const char *key; /* "section.name" */
	enum hf_cfg_type type;
	const char *def; /* default as text; NULL = none */
	int64_t min, max; /* INT: value bounds; STR: length bounds */
	bool required;
	const char *help;
};

struct hf_config;

/* Loads path (NULL = defaults only), then applies overrides "section.key=value" (may be NULL). On error
 * writes "file:line: reason" into err and returns HF_EINVAL. decls must outlive the config. */
HF_MUST_CHECK hf_err hf_config_load(const struct hf_cfg_decl *decls, size_t ndecls, const char *path,
				    const char *const *overrides, size_t noverrides, struct hf_config **out,
				    struct hf_buf *err);
void hf_config_free(struct hf_config *cfg);

/* Accessors abort on an undeclared key or a type mismatch: that is a bug in the program, not in input. */
int64_t hf_config_int(const struct hf_config *cfg, const char *key);
const char *hf_config_str(const struct hf_config *cfg, const char *key); /* "" when unset */
bool hf_config_bool(const struct hf_config *cfg, const char *key);

/* Reads a whole (small) file, e.g. a secret, into out (owned by caller, release with hf_buf_release).
 * Trailing newlines are stripped when strip_newline. HF_ETOOBIG past max bytes, HF_EIO if unreadable. */
HF_MUST_CHECK hf_err hf_file_read(const char *path, size_t max, bool strip_newline, struct hf_buf *out);

#endif
