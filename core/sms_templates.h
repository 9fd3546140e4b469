/* sms_templates.h - the SMS texts of menus/sms/<language>.ini: loaded and checked, looked up with the
 * language fallback, measured and rendered (docs/sms-templates.md).
 *
 * Pure: no database, no request. notices.c loads one set at startup and reads it from every pool thread;
 * tests/fuzz/fuzz_sms_templates.c loads files an outsider wrote. A set is read-only once loaded, so any
 * number of threads may look up and render from it without locks.
 */
#ifndef HF_CORE_SMS_TEMPLATES_H
#define HF_CORE_SMS_TEMPLATES_H

#include "hf_base.h"
#include "hf_buf.h"

#include <jansson.h>

#define SMST_NAME_MAX 48     /* bytes of a template name (outbox.template) */
#define SMST_LINE_MAX 1024   /* bytes of one line of a template file, without its '\n' */
#define SMST_RENDER_MAX 2048 /* bytes of a rendered text: size the caller's hf_buf with it */
#define SMST_GSM7_LIMIT 160  /* septets of one SMS in GSM-7 */
#define SMST_UCS2_LIMIT 70   /* UTF-16 code units of one SMS in UCS-2 */
#define SMST_MAX_FILES 32
#define SMST_MAX_TEMPLATES 64

struct smst;

/* How a text goes out: in GSM-7 when every character is in its alphabet, else in UCS-2. */
struct smst_size {
	bool gsm7;
	size_t units;     /* septets (GSM-7) or UTF-16 code units (UCS-2) */
	size_t limit;     /* of one SMS in that coding */
	uint32_t non_gsm; /* the first character that forced UCS-2 (0 when gsm7) */
};

/* One template of a loaded set; every pointer is borrowed from the set. */
struct smst_entry {
	const char *lang; /* "sw" */
	const char *name;
	const char *text;
	int line; /* of its file */
};

/* Loads every "<code>.ini" of dir (en.ini first: the others are checked against it). Each text must use
 * only the placeholders its template is given and fit one SMS with the longest values filled in.
 * HF_EINVAL with "DIR/xx.ini:LINE: reason" (or "DIR: reason" for the folder) in err; HF_EIO when the folder
 * or a file cannot be read. *out (owned: smst_free) is written only on success. */
HF_MUST_CHECK hf_err smst_load(const char *dir, struct smst **out, struct hf_buf *err);
void smst_free(struct smst *set); /* NULL: nothing */

/* The text of template name in lang, else in Swahili, else in English; *used (when not NULL) names the
 * language taken. NULL when even en.ini lacks it (a workflow names a template nobody wrote). */
const char *smst_lookup(const struct smst *set, const char *lang, const char *name, const char **used);

/* Appends text with its {placeholders} filled from params (an object; strings and integers are used, a
 * missing or other value becomes "-"). HF_ETOOBIG when out's maximum is reached (out then holds a part). */
HF_MUST_CHECK hf_err smst_render(const char *text, const json_t *params, struct hf_buf *out);

/* Measures a NUL-terminated text as an SMS. Bytes that are not UTF-8 count as a character outside GSM-7. */
void smst_measure(const char *text, struct smst_size *out);

/* The parameters the service gives template name (NULL-terminated; a template it does not know is a case
 * template: {ref}), and the longest value a parameter realistically takes (NULL for an unknown one): the
 * one-SMS check at load fills these in. */
const char *const *smst_params(const char *name);
const char *smst_longest(const char *param);
/* True for the templates payment officers send (payment_ready, payment_sent, payment_reminder). */
bool smst_is_payment(const char *name);
/* The templates the service sends: i from 0 until NULL. en.ini must have every one. */
const char *smst_required_at(size_t i);

/* Walking a set: languages 0..n-1 (en first), each language's templates in file order. */
size_t smst_nlangs(const struct smst *set);
const char *smst_lang_at(const struct smst *set, size_t i);
bool smst_entry_at(const struct smst *set, size_t lang, size_t k, struct smst_entry *out);

#endif
