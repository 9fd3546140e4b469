/* hf_log.h - structured one-line logs (key=value) to stderr, with personal-data masking helpers.
 *
 * Every line carries the level, a dotted place ("core.db", "gw.kannel") and, when set on the calling
 * thread, the request id. Personal data must never be passed in clear: use the hf_mask_* helpers.
 * Thread-safe: each line is written with one write(2).
 */
#ifndef HF_LOG_H
#define HF_LOG_H

#include "hf_base.h"

enum hf_log_level { HF_LOG_DEBUG, HF_LOG_INFO, HF_LOG_WARN, HF_LOG_ERROR };

void hf_log_set_level(enum hf_log_level level);
/* Parses "debug", "info", "warn", "error"; false when unknown. */
bool hf_log_level_parse(const char *s, enum hf_log_level *out);
/* Only places starting with this prefix are logged (NULL or "" = all). Not thread-safe: call at startup. */
void hf_log_set_filter(const char *prefix);
/* The request id printed on this thread's lines; NULL clears it. The string is copied. */
void hf_log_set_request_id(const char *rid);
const char *hf_log_request_id(void);

void hf_log(enum hf_log_level level, const char *place, const char *fmt, ...) HF_PRINTF(3, 4);

/* Masking helpers write into out (always terminated) and return out.
 *  phone "+254712345678" -> "+254******678"; ID "12345678" -> "******78"; name "Wanjiru" -> "W******". */
const char *hf_mask_phone(const char *phone, char *out, size_t out_size);
const char *hf_mask_id(const char *id, char *out, size_t out_size);
const char *hf_mask_name(const char *name, char *out, size_t out_size);

#endif
