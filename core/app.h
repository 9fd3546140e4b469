/* app.h - the core service's process-wide context: configuration, keys and validation rules.
 *
 * Built once at startup from the validated config and read-only afterwards, so every pool thread can use
 * it without locks. Holds no durable state (DESIGN.md: core is stateless between requests).
 */
#ifndef HF_CORE_APP_H
#define HF_CORE_APP_H

#include "hf_base.h"
#include "hf_checkdigit.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "db.h"

#define APP_MAX_LANGUAGES 16

struct nid_rules {
	int min_len, max_len;
	bool alnum;               /* digits and capital letters, else digits only */
	enum hf_check_algo check; /* over the whole normalised value */
};

struct app {
	const struct hf_config *cfg;
	struct hf_keyring *keys;
	struct db_conf db; /* the service account */
	struct nid_rules nid;
	char phone_cc[8]; /* country calling code for local numbers ("254"), "" = E.164 only */
	int phone_min_digits, phone_max_digits;
	char languages[APP_MAX_LANGUAGES][9];
	size_t nlanguages;
	int max_page;
	int name_scan_max;
	int stale_days;
	int min_birth_year;
	char trusted_proxy[16]; /* auth.trusted_proxy: "" = none */
	int kiosk_window_s;     /* kiosk.window_s */
};

/* The one instance, set up by main. */
extern struct app g_app;

/* The declarations of every config key of hifadhi-core. */
extern const struct hf_cfg_decl core_config_decls[];
extern const size_t core_config_ndecls;

/* Fills g_app's rules from cfg; on a bad value writes a reason to err. */
HF_MUST_CHECK hf_err app_rules_from_config(const struct hf_config *cfg, struct hf_buf *err);

#endif
