/* hf_money.c - money as integer minor units (see hf_money.h). */
#include "hf_money.h"

#include <stdio.h>
#include <string.h>

int hf_money_decimals(const char *currency)
{
	static const char *const zero[] = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
					   "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF", NULL};
	static const char *const three[] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND", NULL};
	for (size_t i = 0; zero[i]; i++)
		if (strcmp(currency, zero[i]) == 0)
			return 0;
	for (size_t i = 0; three[i]; i++)
		if (strcmp(currency, three[i]) == 0)
			return 3;
	return 2;
}

static uint64_t scale_of(int dec)
{
	uint64_t m = 1;
	for (int i = 0; i < dec; i++)
		m *= 10;
	return m;
}

static void write(int64_t minor, const char *currency, bool grouped, char out[HF_MONEY_STR_MAX])
{
	int dec = hf_money_decimals(currency);
	uint64_t scale = scale_of(dec);
	bool neg = minor < 0;
	uint64_t a = neg ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	char digits[24], whole[32];
	int nd = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)(a / scale));
	size_t g = 0;
	for (int i = 0; i < nd; i++) {
		if (grouped && i && (nd - i) % 3 == 0)
			whole[g++] = ',';
		whole[g++] = digits[i];
	}
	whole[g] = '\0';
	if (dec == 0)
		snprintf(out, HF_MONEY_STR_MAX, "%s%s", neg ? "-" : "", whole);
	else
		snprintf(out, HF_MONEY_STR_MAX, "%s%s.%0*llu", neg ? "-" : "", whole, dec, (unsigned long long)(a % scale));
}

void hf_money_decimal(int64_t minor, const char *currency, char out[HF_MONEY_STR_MAX])
{
	write(minor, currency, false, out);
}

void hf_money_display(int64_t minor, const char *currency, char out[HF_MONEY_STR_MAX])
{
	write(minor, currency, true, out);
}

bool hf_money_parse(const char *s, const char *currency, int64_t *out)
{
	int dec = hf_money_decimals(currency);
	uint64_t whole = 0, frac = 0;
	int nwhole = 0, nfrac = -1;
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '.' && nfrac < 0 && nwhole > 0) {
			nfrac = 0;
		} else if (*p >= '0' && *p <= '9') {
			if (nfrac < 0) {
				if (++nwhole > 15)
					return false;
				whole = whole * 10 + (uint64_t)(*p - '0');
			} else if (++nfrac <= dec) {
				frac = frac * 10 + (uint64_t)(*p - '0');
			} else {
				return false;
			}
		} else {
			return false;
		}
	}
	if (nfrac == 0 || nwhole == 0)
		return false;
	for (int i = nfrac < 0 ? 0 : nfrac; i < dec; i++)
		frac *= 10;
	*out = (int64_t)(whole * scale_of(dec) + frac);
	return true;
}
