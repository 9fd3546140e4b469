/* kiosk_sign.c - signed kiosk requests for the signature benchmark of `make bench` (a terminal's side).
 *
 *   kiosk_sign pubkey SEED_HEX                         prints the terminal's public key (base64)
 *   kiosk_sign requests SEED_HEX KIOSK_NO PATHS N      prints N signed GET requests, one per line, in the
 *                                                      format of tests/bench/requests.lua, cycling through
 *                                                      the paths of the file PATHS
 *   kiosk_sign verify-cost N                           times N verifications of one signed request as the
 *                                                      core does them; prints "verify_us=X" (one thread)
 *
 * Every request gets its own nonce (the core refuses a second copy as a replay) and the current time, so a
 * file is good for the 5-minute window. Signing uses lib/hf_reqsign, the code a kiosk terminal runs.
 */
#include "hf_base.h"
#include "hf_crypto.h"
#include "hf_reqsign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int verify_cost(long n)
{
	uint8_t pk[HF_REQSIGN_PK_LEN], sk[HF_REQSIGN_SK_LEN];
	char nonce[HF_REQSIGN_NONCE_LEN + 1], sig[HF_REQSIGN_SIG_B64_LEN + 1];
	const char *path = "/api/v1/individuals/123456789";
	if (hf_reqsign_keypair(pk, sk))
		return 1;
	hf_reqsign_nonce(nonce);
	if (hf_reqsign_sign(sk, "GET", path, "1764350000", nonce, "K12345678", NULL, 0, sig))
		return 1;
	int64_t t0 = hf_mono_us();
	for (long i = 0; i < n; i++)
		if (hf_reqsign_verify(pk, sig, "GET", path, "1764350000", nonce, "K12345678", NULL, 0))
			return 1;
	printf("verify_us=%.1f\n", (double)(hf_mono_us() - t0) / (double)n);
	return 0;
}

static int seed_keys(const char *hex, uint8_t pk[HF_REQSIGN_PK_LEN], uint8_t sk[HF_REQSIGN_SK_LEN])
{
	uint8_t seed[HF_REQSIGN_SEED_LEN];
	if (strlen(hex) != 2 * sizeof(seed) || !hf_unhex(hex, strlen(hex), seed, sizeof(seed)) ||
	    hf_reqsign_keypair_from_seed(seed, pk, sk)) {
		fprintf(stderr, "kiosk_sign: SEED_HEX must be 64 hex digits\n");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t pk[HF_REQSIGN_PK_LEN], sk[HF_REQSIGN_SK_LEN];
	if (hf_crypto_init())
		return 1;
	if (argc == 3 && strcmp(argv[1], "pubkey") == 0) {
		if (seed_keys(argv[2], pk, sk))
			return 1;
		char b64[HF_REQSIGN_PK_B64_LEN + 1];
		hf_reqsign_pubkey_encode(pk, b64);
		puts(b64);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "verify-cost") == 0)
		return verify_cost(strtol(argv[2], NULL, 10) > 0 ? strtol(argv[2], NULL, 10) : 1000);
	if (argc != 6 || strcmp(argv[1], "requests") != 0) {
		fprintf(stderr, "usage: kiosk_sign pubkey SEED_HEX | requests SEED_HEX KIOSK_NO PATHS N | verify-cost N\n");
		return 2;
	}
	if (seed_keys(argv[2], pk, sk))
		return 1;
	const char *kiosk_no = argv[3];
	long n = strtol(argv[5], NULL, 10);
	FILE *f = fopen(argv[4], "r");
	if (!f || n <= 0) {
		fprintf(stderr, "kiosk_sign: cannot read %s or bad N\n", argv[4]);
		return 1;
	}
	char (*paths)[128] = NULL;
	size_t np = 0, cap = 0;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || strlen(line) >= 128)
			continue;
		if (np == cap) {
			cap = cap ? cap * 2 : 1024;
			paths = hf_xrealloc(paths, cap * sizeof(*paths));
		}
		memcpy(paths[np++], line, strlen(line) + 1);
	}
	fclose(f);
	if (np == 0) {
		fprintf(stderr, "kiosk_sign: no paths in %s\n", argv[4]);
		return 1;
	}
	char ts[24];
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	for (long i = 0; i < n; i++) {
		const char *path = paths[(size_t)i % np];
		char nonce[HF_REQSIGN_NONCE_LEN + 1], sig[HF_REQSIGN_SIG_B64_LEN + 1];
		hf_reqsign_nonce(nonce);
		if (hf_reqsign_sign(sk, "GET", path, ts, nonce, kiosk_no, NULL, 0, sig)) {
			fprintf(stderr, "kiosk_sign: cannot sign %s\n", path);
			return 1;
		}
		printf("GET\t%s\tX-Hifadhi-Kiosk: %s\x1fX-Hifadhi-Timestamp: %s\x1fX-Hifadhi-Nonce: %s\x1f"
		       "X-Hifadhi-Signature: %s\t\n",
		       path, kiosk_no, ts, nonce, sig);
	}
	free(paths);
	return fflush(stdout) == 0 ? 0 : 1;
}
