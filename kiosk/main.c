/* main.c - hifadhi-kiosk: the daemon of a pay-point (or enrolment-station) terminal.
 *
 *   hifadhi-kiosk [-c CONFIG] [-o section.key=value]... register CODE | pubkey | serve
 *
 *   register CODE   makes the terminal's Ed25519 key (key.dir/kiosk.key, mode 0600) unless it exists and
 *                   enrols its public key with core using the one-time code staff were given
 *                   (POST /api/v1/kiosks/enrol); from then on every request is signed.
 *   pubkey          prints the public key and its fingerprint (to compare with the staff console).
 *   serve           the reader, the GPIO lines, the offline queue, the touch UI on 127.0.0.1:8082, and the
 *                   heartbeat to core. docs/kiosk.md is the operator's guide.
 */
#include "hf_base.h"
#include "flow.h"
#include "gpio.h"
#include "kclient.h"
#include "queue.h"
#include "reader.h"
#include "ui.h"

#include "hf_buf.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_httpc.h"
#include "hf_log.h"
#include "hf_reqsign.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_OVERRIDES 32
#define VERSION "0.7.0"
#define PLACE "kiosk"

static const struct hf_cfg_decl DECLS[] = {
	{"kiosk.number", HF_CFG_STR, NULL, 3, 32, true, "this terminal's number as registered in core (KSK-...)"},
	{"kiosk.enrolment_station", HF_CFG_BOOL, "false", 0, 0, false,
	 "an enrolment station at registration (captures templates) instead of a pay point"},
	{"core.url", HF_CFG_STR, "http://127.0.0.1:8080", 8, 200, false, "hifadhi-core's base URL"},
	{"core.timeout_ms", HF_CFG_INT, "5000", 200, 60000, false, "one call to core; slower counts as offline"},
	{"core.heartbeat_s", HF_CFG_INT, "30", 1, 3600, false, "heartbeat, queue replay and allowance refresh period"},
	{"key.dir", HF_CFG_STR, "var/kiosk/keys", 1, 400, false, "folder of kiosk.key and queue.key (mode 0700)"},
	{"state.dir", HF_CFG_STR, "var/kiosk/state", 1, 400, false, "offline queue, allowance, collection journal"},
	{"ui.bind", HF_CFG_STR, "127.0.0.1", 7, 15, false, "numeric IPv4 address of the touch UI"},
	{"ui.port", HF_CFG_INT, "8082", 1, 65535, false, "port of the touch UI"},
	{"ui.static_dir", HF_CFG_STR, "kiosk/ui", 1, 400, false, "the page's files"},
	{"ui.menus_dir", HF_CFG_STR, "menus/kiosk", 1, 240, false, "texts per language (LANG.ini)"},
	{"ui.languages", HF_CFG_STR, "sw,en,fr", 2, 60, false, "languages offered, the first is the default"},
	{"ui.idle_s", HF_CFG_INT, "60", 5, 3600, false, "back to the start screen after this long without a press"},
	{"reader.enabled", HF_CFG_BOOL, "true", 0, 0, false, "a fingerprint reader is fitted"},
	{"reader.driver", HF_CFG_STR, "", 0, 60, false, "libfprint driver to use; empty = the first reader found"},
	{"reader.simulate", HF_CFG_STR, "", 0, 300, false,
	 "dev only: image:SOCKET (libfprint virtual_image) or device:SOCKET (virtual_device)"},
	{"reader.scan_timeout_s", HF_CFG_INT, "20", 2, 120, false, "how long one scan waits for a finger"},
	{"gpio.backend", HF_CFG_STR, "", 0, 300, false, "chip:gpiochip0 (real lines), fake:SOCKET (dev), empty = none"},
	{"gpio.lamp_green", HF_CFG_INT, "-1", -1, 511, false, "line offset; -1 = not fitted"},
	{"gpio.lamp_red", HF_CFG_INT, "-1", -1, 511, false, "line offset"},
	{"gpio.lamp_fault", HF_CFG_INT, "-1", -1, 511, false, "line offset"},
	{"gpio.buzzer", HF_CFG_INT, "-1", -1, 511, false, "line offset"},
	{"gpio.drawer", HF_CFG_INT, "-1", -1, 511, false, "line offset of the cash drawer / dispenser trigger"},
	{"gpio.tamper", HF_CFG_INT, "-1", -1, 511, false, "line offset of the tamper switch (input)"},
	{"gpio.door", HF_CFG_INT, "-1", -1, 511, false, "line offset of the door sensor (input)"},
	{"gpio.help", HF_CFG_INT, "-1", -1, 511, false, "line offset of the help button (input)"},
	{"gpio.active_low", HF_CFG_STR, "", 0, 200, false, "comma-separated names of active-low lines"},
	{"printer.path", HF_CFG_STR, "", 0, 400, false, "receipt printer device (/dev/usb/lp0) or a file; empty = none"},
	{"receipt.url", HF_CFG_STR, "http://127.0.0.1:8080", 8, 200, false,
	 "public base URL of core that receipt QR codes point at (/r/...)"},
	{"log.level", HF_CFG_STR, "info", 4, 5, false, "debug, info, warn or error"},
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: hifadhi-kiosk [-c CONFIG] [-o section.key=value]... register CODE | pubkey | serve\n");
}

/* ---- the terminal's key: a 32-byte seed, hex, in key.dir/kiosk.key */

static hf_err key_path(const struct hf_config *cfg, const char *name, char *out, size_t cap)
{
	const char *dir = hf_config_str(cfg, "key.dir");
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return HF_EIO;
	return (size_t)snprintf(out, cap, "%s/%s", dir, name) < cap ? HF_OK : HF_EINVAL;
}

static hf_err key_load(const struct hf_config *cfg, bool create, uint8_t pk[HF_REQSIGN_PK_LEN],
		       uint8_t sk[HF_REQSIGN_SK_LEN])
{
	char path[512];
	hf_err err = key_path(cfg, "kiosk.key", path, sizeof(path));
	if (err != HF_OK)
		return err;
	struct hf_buf b;
	err = hf_file_read(path, 128, true, &b);
	uint8_t seed[HF_REQSIGN_SEED_LEN];
	if (err == HF_OK) {
		bool ok = b.len == 2 * sizeof(seed) && hf_unhex(b.data, b.len, seed, sizeof(seed));
		sodium_memzero(b.data, b.len);
		hf_buf_release(&b);
		if (!ok)
			return HF_EINVAL;
	} else {
		hf_buf_release(&b);
		if (!create)
			return HF_ENOTFOUND;
		hf_random_bytes(seed, sizeof(seed));
		char hex[2 * HF_REQSIGN_SEED_LEN + 2];
		hf_hex(seed, sizeof(seed), hex);
		size_t n = strlen(hex);
		hex[n] = '\n';
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		bool ok = fd >= 0 && write(fd, hex, n + 1) == (ssize_t)(n + 1) && fsync(fd) == 0;
		if (fd >= 0)
			ok = close(fd) == 0 && ok;
		sodium_memzero(hex, sizeof(hex));
		if (!ok) {
			sodium_memzero(seed, sizeof(seed));
			return HF_EIO;
		}
	}
	err = hf_reqsign_keypair_from_seed(seed, pk, sk);
	sodium_memzero(seed, sizeof(seed));
	return err;
}

static void id_fill(const struct hf_config *cfg, const uint8_t sk[HF_REQSIGN_SK_LEN], struct kclient_id *id)
{
	memset(id, 0, sizeof(*id));
	hf_strlcpy(id->base, hf_config_str(cfg, "core.url"), sizeof(id->base));
	size_t n = strlen(id->base);
	while (n > 0 && id->base[n - 1] == '/')
		id->base[--n] = '\0';
	hf_strlcpy(id->kiosk_no, hf_config_str(cfg, "kiosk.number"), sizeof(id->kiosk_no));
	memcpy(id->sk, sk, HF_REQSIGN_SK_LEN);
	id->timeout_ms = (long)hf_config_int(cfg, "core.timeout_ms");
}

static int cmd_pubkey(const struct hf_config *cfg)
{
	uint8_t pk[HF_REQSIGN_PK_LEN], sk[HF_REQSIGN_SK_LEN];
	hf_err err = key_load(cfg, false, pk, sk);
	sodium_memzero(sk, sizeof(sk));
	if (err != HF_OK) {
		fprintf(stderr, "hifadhi-kiosk: no usable key in %s (run: hifadhi-kiosk register CODE)\n",
			hf_config_str(cfg, "key.dir"));
		return 1;
	}
	char b64[HF_REQSIGN_PK_B64_LEN + 1];
	hf_reqsign_pubkey_encode(pk, b64);
	printf("%s\n", b64);
	return 0;
}

static int cmd_register(const struct hf_config *cfg, const char *code)
{
	char norm[HF_REQSIGN_CODE_LEN + 1];
	if (!hf_reqsign_code_normalise(code, norm)) {
		fprintf(stderr, "hifadhi-kiosk: that is not an enrolment code (XXXX-XXXX-XXXX, from the staff console)\n");
		return 2;
	}
	uint8_t pk[HF_REQSIGN_PK_LEN], sk[HF_REQSIGN_SK_LEN];
	if (key_load(cfg, true, pk, sk) != HF_OK) {
		fprintf(stderr, "hifadhi-kiosk: cannot read or create %s/kiosk.key\n", hf_config_str(cfg, "key.dir"));
		return 1;
	}
	struct kclient_id id;
	id_fill(cfg, sk, &id);
	sodium_memzero(sk, sizeof(sk));
	struct kclient *k = kclient_new(&id);
	sodium_memzero(&id, sizeof(id));
	if (!k)
		return 1;
	char b64[HF_REQSIGN_PK_B64_LEN + 1];
	hf_reqsign_pubkey_encode(pk, b64);
	json_t *body = json_pack("{s:s, s:s, s:s}", "kiosk_no", hf_config_str(cfg, "kiosk.number"), "enrolment_code", code,
				 "public_key", b64);
	long st = 0;
	json_t *out = NULL;
	hf_err err = kclient_post_unsigned(k, "kiosks/enrol", body, &st, &out);
	json_decref(body);
	int rc = 0;
	if (err != HF_OK) {
		fprintf(stderr, "hifadhi-kiosk: core at %s did not answer (%s)\n", hf_config_str(cfg, "core.url"),
			hf_err_name(err));
		rc = 1;
	} else if (st != 200 && st != 201) {
		const char *m = json_string_value(json_object_get(json_object_get(out, "error"), "message"));
		fprintf(stderr, "hifadhi-kiosk: core refused the enrolment (%ld): %s\n", st, m ? m : "");
		rc = 1;
	} else {
		const char *pp = json_string_value(json_object_get(out, "pay_point"));
		printf("enrolled as %s%s%s; public key %s\n", hf_config_str(cfg, "kiosk.number"), pp ? " at " : "",
		       pp ? pp : "", b64);
	}
	json_decref(out);
	kclient_free(k);
	return rc;
}

static bool active_low(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		while (l > 0 && *p == ' ') {
			p++;
			l--;
		}
		if (l == n && strncmp(p, name, n) == 0)
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

static int serve(const struct hf_config *cfg)
{
	int rc = 1;
	struct gpio *gpio = NULL;
	struct reader *reader = NULL;
	struct queue *queue = NULL;
	struct flow *flow = NULL;
	struct ui *ui = NULL;
	uint8_t pk[HF_REQSIGN_PK_LEN], sk[HF_REQSIGN_SK_LEN], qkey[QUEUE_KEY_LEN];
	char msg[256] = "", path[512];

	if (key_load(cfg, false, pk, sk) != HF_OK) {
		fprintf(stderr, "hifadhi-kiosk: not registered: no usable %s/kiosk.key (run: hifadhi-kiosk register CODE)\n",
			hf_config_str(cfg, "key.dir"));
		return 1;
	}
	const char *state = hf_config_str(cfg, "state.dir");
	if (mkdir(state, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "hifadhi-kiosk: cannot create %s\n", state);
		goto cleanup;
	}
	if (key_path(cfg, "queue.key", path, sizeof(path)) != HF_OK || queue_key_load_or_create(path, qkey) != HF_OK) {
		fprintf(stderr, "hifadhi-kiosk: cannot read or create the queue key in %s\n", hf_config_str(cfg, "key.dir"));
		goto cleanup;
	}
	snprintf(path, sizeof(path), "%s/queue", state);
	struct queue_damage dmg = {0};
	hf_err err = queue_open(path, qkey, &queue, &dmg);
	sodium_memzero(qkey, sizeof(qkey));
	if (err != HF_OK) {
		fprintf(stderr, "hifadhi-kiosk: the offline queue %s cannot be opened\n", path);
		goto cleanup;
	}
	if (dmg.torn_tail)
		hf_log(HF_LOG_WARN, PLACE, "the offline queue ended in a half-written event (a crash while writing): cut off");
	if (dmg.corrupt_files)
		hf_log(HF_LOG_ERROR, PLACE, "the offline queue failed its integrity check: moved aside to %s for an operator",
		       dmg.moved_to);

	const char *gb = hf_config_str(cfg, "gpio.backend");
	if (gb[0]) {
		static const char *const outs[GPIO_OUT_COUNT] = {"gpio.lamp_green", "gpio.lamp_red", "gpio.lamp_fault",
								 "gpio.buzzer", "gpio.drawer"};
		static const char *const ins[GPIO_IN_COUNT] = {"gpio.tamper", "gpio.door", "gpio.help"};
		struct gpio_line_map map;
		const char *lows = hf_config_str(cfg, "gpio.active_low");
		for (int i = 0; i < GPIO_OUT_COUNT; i++) {
			map.out_offset[i] = (int)hf_config_int(cfg, outs[i]);
			map.out_active_low[i] = active_low(lows, gpio_out_name((enum gpio_out)i));
		}
		for (int i = 0; i < GPIO_IN_COUNT; i++) {
			map.in_offset[i] = (int)hf_config_int(cfg, ins[i]);
			map.in_active_low[i] = active_low(lows, gpio_in_name((enum gpio_in)i));
		}
		if (gpio_open(gb, &map, &gpio, msg, sizeof(msg)) != HF_OK) {
			fprintf(stderr, "hifadhi-kiosk: GPIO: %s\n", msg);
			goto cleanup;
		}
	}

	if (hf_config_bool(cfg, "reader.enabled")) {
		const char *sim = hf_config_str(cfg, "reader.simulate");
		const char *driver = hf_config_str(cfg, "reader.driver");
		if (strncmp(sim, "image:", 6) == 0) {
			setenv("FP_VIRTUAL_IMAGE", sim + 6, 1);
			driver = "virtual_image";
		} else if (strncmp(sim, "device:", 7) == 0) {
			setenv("FP_VIRTUAL_DEVICE", sim + 7, 1);
			driver = "virtual_device";
		} else if (sim[0]) {
			fprintf(stderr, "hifadhi-kiosk: reader.simulate must be image:SOCKET or device:SOCKET\n");
			goto cleanup;
		}
		struct reader_config rc_ = {.driver = driver, .open_timeout_ms = 2000};
		if (reader_open(&rc_, &reader) != HF_OK) {
			fprintf(stderr, "hifadhi-kiosk: the reader thread cannot start\n");
			goto cleanup;
		}
	}

	struct flow_config fc = {0};
	hf_strlcpy(fc.menus_dir, hf_config_str(cfg, "ui.menus_dir"), sizeof(fc.menus_dir));
	hf_strlcpy(fc.languages, hf_config_str(cfg, "ui.languages"), sizeof(fc.languages));
	hf_strlcpy(fc.state_dir, state, sizeof(fc.state_dir));
	hf_strlcpy(fc.printer, hf_config_str(cfg, "printer.path"), sizeof(fc.printer));
	hf_strlcpy(fc.receipt_url, hf_config_str(cfg, "receipt.url"), sizeof(fc.receipt_url));
	hf_strlcpy(fc.version, VERSION, sizeof(fc.version));
	fc.idle_ms = (int)hf_config_int(cfg, "ui.idle_s") * 1000;
	fc.scan_timeout_ms = (int)hf_config_int(cfg, "reader.scan_timeout_s") * 1000;
	fc.heartbeat_s = (int)hf_config_int(cfg, "core.heartbeat_s");
	fc.attempts = 3;
	fc.enrolment = hf_config_bool(cfg, "kiosk.enrolment_station");
	struct flow_deps deps = {.reader = reader, .gpio = gpio, .queue = queue};
	id_fill(cfg, sk, &deps.id);
	err = flow_new(&fc, &deps, &flow, msg, sizeof(msg));
	sodium_memzero(&deps.id, sizeof(deps.id));
	if (err != HF_OK) {
		fprintf(stderr, "hifadhi-kiosk: %s\n", msg);
		goto cleanup;
	}
	if (ui_start(hf_config_str(cfg, "ui.bind"), (int)hf_config_int(cfg, "ui.port"), hf_config_str(cfg, "ui.static_dir"),
		     flow, &ui) != HF_OK) {
		fprintf(stderr, "hifadhi-kiosk: cannot listen on %s:%lld\n", hf_config_str(cfg, "ui.bind"),
			(long long)hf_config_int(cfg, "ui.port"));
		goto cleanup;
	}
	if (flow_start(flow) != HF_OK)
		goto cleanup;
	hf_log(HF_LOG_INFO, PLACE, "kiosk %s serving its touch UI on http://%s:%lld/", hf_config_str(cfg, "kiosk.number"),
	       hf_config_str(cfg, "ui.bind"), (long long)hf_config_int(cfg, "ui.port"));

	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!g_stop) {
		struct pollfd p = {.fd = gpio ? gpio_event_fd(gpio) : -1, .events = POLLIN};
		int n = poll(&p, 1, 200);
		if (n > 0 && gpio) {
			struct gpio_event ev;
			while (gpio_read_event(gpio, &ev) == HF_OK)
				flow_gpio_event(flow, &ev);
		}
	}
	hf_log(HF_LOG_INFO, PLACE, "stopping");
	rc = 0;
cleanup:
	sodium_memzero(sk, sizeof(sk));
	flow_shutdown(flow);
	ui_stop(ui);
	flow_free(flow);
	reader_close(reader);
	gpio_close(gpio);
	queue_close(queue);
	return rc;
}

int main(int argc, char **argv)
{
	hf_httpc_global_init();
	if (hf_crypto_init() != HF_OK)
		return 1;
	const char *config_path = NULL;
	const char *overrides[MAX_OVERRIDES];
	size_t nov = 0;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && nov < MAX_OVERRIDES)
			overrides[nov++] = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else
			break;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i];
	struct hf_config *cfg = NULL;
	struct hf_buf err;
	hf_buf_init(&err, 2048);
	if (hf_config_load(DECLS, HF_ARRAY_LEN(DECLS), config_path, overrides, nov, &cfg, &err)) {
		fprintf(stderr, "hifadhi-kiosk: config: %s\n", hf_buf_cstr(&err));
		hf_buf_release(&err);
		return 2;
	}
	hf_buf_release(&err);
	enum hf_log_level lvl;
	if (hf_log_level_parse(hf_config_str(cfg, "log.level"), &lvl))
		hf_log_set_level(lvl);
	int rc;
	if (strcmp(cmd, "serve") == 0)
		rc = serve(cfg);
	else if (strcmp(cmd, "pubkey") == 0)
		rc = cmd_pubkey(cfg);
	else if (strcmp(cmd, "register") == 0 && i + 1 < argc)
		rc = cmd_register(cfg, argv[i + 1]);
	else {
		usage(stderr);
		rc = 2;
	}
	hf_config_free(cfg);
	return rc;
}
