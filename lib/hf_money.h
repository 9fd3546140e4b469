/* hf_money.h - amounts of money as integer minor units, and how they are written: the decimal strings
 * payment protocols use ("4000.00") and the grouped form people read ("4,000.00"). The number of decimals
 * is the currency's ISO 4217 minor unit. */
#ifndef HF_MONEY_H
#define HF_MONEY_H

#include "hf_base.h"

#define HF_MONEY_STR_MAX 40

/* Decimals of an ISO 4217 code: 0 for currencies without minor units (UGX, RWF, XOF, ...), 3 for BHD, KWD,
 * OMR, JOD, TND, IQD, LYD; 2 otherwise. */
int hf_money_decimals(const char *currency);
/* 400000 KES -> "4000.00"; 5000 UGX -> "5000". */
void hf_money_decimal(int64_t minor, const char *currency, char out[HF_MONEY_STR_MAX]);
/* 400000 KES -> "4,000.00". */
void hf_money_display(int64_t minor, const char *currency, char out[HF_MONEY_STR_MAX]);
/* "4000.00", "4000.5" or "4000" -> 400000 for KES; false for anything else: a sign, more decimals than the
 * currency has, exponents, spaces, separators, or more than 15 integer digits. */
bool hf_money_parse(const char *s, const char *currency, int64_t *out);

#endif
