/* test_kiosk_gpio.c - the kiosk's lamps, buzzer, drawer and switches, through the fake board.
 *
 * These machines have no GPIO at all, so the tests drive the fake backend the way a test rig or a
 * developer does: over its unix socket, with the text protocol of kiosk/gpio.h. What is checked is what an
 * agent at the kiosk would notice: a lamp that does not light, a drawer pulse too short to open it or one
 * that never ends, a door or tamper switch that is missed or that raises an alert on a 5 ms glitch, a
 * misbehaving test connection that hangs the kiosk. The real backend ("chip:...") can only be checked to
 * fail cleanly here.
 *
 * Single-threaded like the daemon: the test plays both the daemon's loop (poll gpio_event_fd, then
 * gpio_read_event) and the other end of the socket, and waits for things by polling with deadlines. The
 * one thread is the pulse test's reader, which timestamps OUT lines while gpio_pulse blocks.
 */
#include "hf_base.h"
#include "gpio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "hf_buf.h"
#include "hf_log.h"
#include "hf_test.h"

#define MAX_EVENTS 64

struct rig {
	struct gpio *g;
	char dir[64];
	char sock[128];
	struct gpio_event ev[MAX_EVENTS];
	size_t nev;
};

struct client {
	int fd;
	char buf[4096];
	size_t len;
};

static const struct gpio_line_map full_map = {
	.out_offset = {0, 1, 2, 3, 4},
	.out_active_low = {false, false, false, true, false},
	.in_offset = {5, 6, 7},
	.in_active_low = {true, false, false},
};

static bool rig_open(struct rig *r, const struct gpio_line_map *map)
{
	memset(r, 0, sizeof(*r));
	hf_test_tmpdir(r->dir, sizeof(r->dir));
	snprintf(r->sock, sizeof(r->sock), "%s/gpio.sock", r->dir);
	char backend[160], msg[256] = "";
	snprintf(backend, sizeof(backend), "fake:%s", r->sock);
	hf_err err = gpio_open(backend, map, &r->g, msg, sizeof(msg));
	return HF_CHECK_MSG(err == HF_OK, "gpio_open: %s: %s", hf_err_name(err), msg);
}

static void rig_close(struct rig *r)
{
	gpio_close(r->g);
	hf_test_rmtree(r->dir);
}

/* One turn of the daemon's loop: waits up to timeout_ms for the event fd, then reads one event. */
static void rig_turn(struct rig *r, int timeout_ms)
{
	struct pollfd p = {.fd = gpio_event_fd(r->g), .events = POLLIN};
	if (poll(&p, 1, timeout_ms) != 1)
		return;
	struct gpio_event ev;
	hf_err err = gpio_read_event(r->g, &ev);
	if (err == HF_OK && r->nev < MAX_EVENTS)
		r->ev[r->nev++] = ev;
	else if (err != HF_ENOTFOUND)
		HF_CHECK_MSG(false, "gpio_read_event: %s", hf_err_name(err));
}

/* Runs the loop until an event has been collected or ms have passed; true if one came. */
static bool rig_wait_event(struct rig *r, int ms, struct gpio_event *out)
{
	int64_t deadline = hf_mono_ms() + ms;
	size_t before = r->nev;
	while (r->nev == before) {
		int64_t left = deadline - hf_mono_ms();
		if (left <= 0)
			return false;
		rig_turn(r, (int)left);
	}
	*out = r->ev[before];
	return true;
}

static bool client_connect(struct rig *r, struct client *c)
{
	memset(c, 0, sizeof(*c));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	hf_strlcpy(sa.sun_path, r->sock, sizeof(sa.sun_path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return HF_CHECK(c->fd >= 0 && connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
}

static void client_send(struct client *c, const char *s)
{
	size_t n = strlen(s);
	HF_ASSERT(send(c->fd, s, n, MSG_NOSIGNAL) == (ssize_t)n);
}

/* The next line from the kiosk (without its newline), running the daemon's loop meanwhile; false when
 * none came within ms or the kiosk closed the connection. */
static bool client_line(struct rig *r, struct client *c, int ms, char *out, size_t cap)
{
	int64_t deadline = hf_mono_ms() + ms;
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			HF_ASSERT(n < cap);
			memcpy(out, c->buf, n);
			out[n] = '\0';
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return true;
		}
		int64_t left = deadline - hf_mono_ms();
		if (left <= 0)
			return false;
		struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = gpio_event_fd(r->g), .events = POLLIN}};
		if (poll(p, 2, (int)left) <= 0)
			continue;
		if (p[1].revents)
			rig_turn(r, 0);
		if (p[0].revents) {
			ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
			if (n == 0)
				return false;
			if (n > 0)
				c->len += (size_t)n;
		}
	}
}

/* Sends a GET and waits for its VAL: everything the client sent before has then been handled, and the
 * OUT lines before it have been read (returned in *earlier, 0 or 1 of them expected by the callers). */
static bool client_sync(struct rig *r, struct client *c, char *earlier, size_t cap)
{
	client_send(c, "GET lamp_green\n");
	char line[128];
	if (earlier)
		earlier[0] = '\0';
	while (client_line(r, c, 2000, line, sizeof(line))) {
		if (strncmp(line, "VAL lamp_green ", 15) == 0)
			return true;
		if (earlier)
			hf_strlcpy(earlier, line, cap);
	}
	return false;
}

static void test_backend_errors(void)
{
	struct gpio *g = NULL;
	char msg[256] = "";
	hf_err err = gpio_open("chip:gpiochip0", &full_map, &g, msg, sizeof(msg));
	HF_CHECK_MSG(err == HF_EDEVICE, "no GPIO on this machine: %s", hf_err_name(err));
	HF_CHECK_MSG(g == NULL && strstr(msg, "gpiochip0") != NULL, "message names the chip: %s", msg);
	static const char *const bad[] = {"gpiochip0", "chip:", "fake:", "chip:../dev/gpiochip0", "spi:x", ""};
	for (size_t k = 0; k < HF_ARRAY_LEN(bad); k++) {
		msg[0] = '\0';
		HF_CHECK_MSG(gpio_open(bad[k], &full_map, &g, msg, sizeof(msg)) == HF_EINVAL && msg[0],
			     "'%s' refused with a message", bad[k]);
	}
	struct gpio_line_map twice = full_map;
	twice.in_offset[GPIO_HELP] = 0; /* also lamp_green's */
	HF_CHECK(gpio_open("fake:/tmp/hf-never-created.sock", &twice, &g, msg, sizeof(msg)) == HF_EINVAL);
	HF_CHECK_MSG(strstr(msg, "twice") != NULL, "%s", msg);
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	memcpy(longpath, "fake:/", 6);
	longpath[sizeof(longpath) - 1] = '\0';
	HF_CHECK(gpio_open(longpath, &full_map, &g, msg, sizeof(msg)) == HF_EINVAL);
	HF_CHECK(strcmp(gpio_out_name(GPIO_DRAWER), "drawer") == 0 && strcmp(gpio_in_name(GPIO_HELP), "help") == 0);
}

static void test_outputs(void)
{
	struct rig r;
	if (!rig_open(&r, &full_map))
		return;
	struct client c;
	client_connect(&r, &c);
	char line[128];
	HF_CHECK(gpio_set(r.g, GPIO_LAMP_GREEN, true) == HF_OK);
	HF_CHECK(client_line(&r, &c, 2000, line, sizeof(line)) && strcmp(line, "OUT lamp_green 1") == 0);
	HF_CHECK_MSG(gpio_set(r.g, GPIO_LAMP_GREEN, true) == HF_OK, "setting the same level again");
	HF_CHECK_MSG(client_sync(&r, &c, line, sizeof(line)) && line[0] == '\0', "is not a change: %s", line);
	HF_CHECK(gpio_set(r.g, GPIO_BUZZER, true) == HF_OK && gpio_set(r.g, GPIO_BUZZER, false) == HF_OK);
	HF_CHECK(client_line(&r, &c, 2000, line, sizeof(line)) && strcmp(line, "OUT buzzer 1") == 0);
	HF_CHECK(client_line(&r, &c, 2000, line, sizeof(line)) && strcmp(line, "OUT buzzer 0") == 0);

	client_send(&c, "GET lamp_green\nGET lamp_red\n");
	HF_CHECK(client_line(&r, &c, 2000, line, sizeof(line)) && strcmp(line, "VAL lamp_green 1") == 0);
	HF_CHECK(client_line(&r, &c, 2000, line, sizeof(line)) && strcmp(line, "VAL lamp_red 0") == 0);
	HF_CHECK(gpio_set(r.g, (enum gpio_out)GPIO_OUT_COUNT, true) == HF_EINVAL);

	/* Closing leaves every output inactive (a buzzer must not stay on after the daemon stops). */
	gpio_close(r.g);
	r.g = NULL;
	HF_CHECK(recv(c.fd, line, sizeof(line) - 1, 0) > 0 && strncmp(line, "OUT lamp_green 0\n", 17) == 0);
	close(c.fd);
	hf_test_rmtree(r.dir);
}

struct stamped {
	int fd;
	int n;
	char line[2][64];
	int64_t at_us[2];
};

/* Reads two lines, noting when each arrived: gpio_pulse blocks the main thread meanwhile. */
static void *stamp_lines(void *arg)
{
	struct stamped *s = arg;
	char buf[256];
	size_t len = 0;
	int64_t deadline = hf_mono_ms() + 5000;
	while (s->n < 2 && hf_mono_ms() < deadline) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		if (poll(&p, 1, 100) != 1)
			continue;
		ssize_t n = recv(s->fd, buf + len, sizeof(buf) - len - 1, 0);
		if (n <= 0)
			break;
		int64_t now = hf_mono_us();
		len += (size_t)n;
		char *nl;
		while (s->n < 2 && (nl = memchr(buf, '\n', len)) != NULL) {
			size_t k = (size_t)(nl - buf);
			snprintf(s->line[s->n], sizeof(s->line[0]), "%.*s", (int)k, buf);
			s->at_us[s->n++] = now;
			memmove(buf, nl + 1, len - k - 1);
			len -= k + 1;
		}
	}
	return NULL;
}

static void test_pulse(void)
{
	struct rig r;
	if (!rig_open(&r, &full_map))
		return;
	struct client c;
	client_connect(&r, &c);
	HF_CHECK(client_sync(&r, &c, NULL, 0));
	struct stamped s = {.fd = c.fd};
	pthread_t t;
	HF_ASSERT(pthread_create(&t, NULL, stamp_lines, &s) == 0);
	int64_t t0 = hf_mono_us();
	HF_CHECK(gpio_pulse(r.g, GPIO_DRAWER, 200) == HF_OK);
	int64_t took = hf_mono_us() - t0;
	pthread_join(t, NULL);
	HF_CHECK(s.n == 2 && strcmp(s.line[0], "OUT drawer 1") == 0 && strcmp(s.line[1], "OUT drawer 0") == 0);
	/* Bounds that hold however the threads are scheduled: "on" is sent after t0 and "off" before
	 * gpio_pulse returns, so the pulse lasts at most `took`; "off" cannot be seen before t0 + 200 ms. (The
	 * gap between the two lines as the reader saw them is printed, not checked: a reader thread woken late
	 * for the first line makes it look shorter on a loaded machine.) */
	int64_t off_after_ms = (s.at_us[1] - t0) / 1000;
	HF_CHECK_MSG(s.n == 2 && off_after_ms >= 200, "drawer released %lld ms after the call (200 asked)",
		     (long long)off_after_ms);
	HF_CHECK_MSG(took >= 200000 && took < 300000, "gpio_pulse blocked %lld us", (long long)took);
	printf("drawer pulse as seen by the client: %lld ms\n", (long long)((s.at_us[1] - s.at_us[0]) / 1000));
	HF_CHECK(gpio_pulse(r.g, GPIO_DRAWER, 0) == HF_EINVAL && gpio_pulse(r.g, GPIO_DRAWER, 60000) == HF_EINVAL);
	close(c.fd);
	rig_close(&r);
}

static void test_inputs(void)
{
	struct rig r;
	if (!rig_open(&r, &full_map))
		return;
	struct client c;
	client_connect(&r, &c);
	bool on = true;
	HF_CHECK(gpio_get(r.g, GPIO_TAMPER, &on) == HF_OK && !on);
	struct gpio_event ev;
	HF_CHECK_MSG(!rig_wait_event(&r, 50, &ev), "no event before anything happens");

	static const struct {
		const char *line;
		enum gpio_in in;
		bool active;
	} steps[] = {{"IN tamper 1\n", GPIO_TAMPER, true},
		     {"IN door 1\n", GPIO_DOOR, true},
		     {"IN help 1\n", GPIO_HELP, true},
		     {"IN help 0\n", GPIO_HELP, false},
		     {"IN tamper 0\r\n", GPIO_TAMPER, false}};
	for (size_t k = 0; k < HF_ARRAY_LEN(steps); k++) {
		int64_t t0 = hf_mono_ms();
		client_send(&c, steps[k].line);
		bool got = rig_wait_event(&r, 2000, &ev);
		int64_t took = hf_mono_ms() - t0;
		HF_CHECK_MSG(got && ev.line == steps[k].in && ev.active == steps[k].active, "%s gives its edge",
			     steps[k].line);
		HF_CHECK_MSG(took >= 19 && took < 500, "%s reported after the debounce time: %lld ms", steps[k].line,
			     (long long)took);
		bool level = !steps[k].active;
		HF_CHECK(gpio_get(r.g, steps[k].in, &level) == HF_OK && level == steps[k].active);
	}
	/* The same level again is no edge. */
	client_send(&c, "IN door 1\n");
	HF_CHECK(!rig_wait_event(&r, 80, &ev));
	/* Two inputs changing at once: both reported, one per call. */
	client_send(&c, "IN door 0\nIN help 1\n");
	struct gpio_event a = {0}, b = {0};
	HF_CHECK(rig_wait_event(&r, 2000, &a) && rig_wait_event(&r, 2000, &b));
	HF_CHECK(a.line == GPIO_DOOR && !a.active && b.line == GPIO_HELP && b.active);
	close(c.fd);
	rig_close(&r);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static void test_debounce(void)
{
	struct rig r;
	if (!rig_open(&r, &full_map))
		return;
	struct client c;
	client_connect(&r, &c);
	struct gpio_event ev;
	/* A 5 ms glitch (the sleep makes the glitch; it does not wait for anything). The width the kiosk saw is
	 * measured between the two syncs; if this thread was descheduled for long, the trial is repeated. */
	bool tried = false;
	for (int trial = 0; trial < 5 && !tried; trial++) {
		client_send(&c, "IN tamper 1\n");
		HF_CHECK(client_sync(&r, &c, NULL, 0));
		int64_t t0 = hf_mono_us();
		sleep_ms(5);
		client_send(&c, "IN tamper 0\n");
		HF_CHECK(client_sync(&r, &c, NULL, 0));
		int64_t width_us = hf_mono_us() - t0;
		if (width_us >= 15000) {
			while (rig_wait_event(&r, 60, &ev)) {
			}
			continue;
		}
		tried = true;
		HF_CHECK_MSG(!rig_wait_event(&r, 100, &ev), "a %lld us glitch is no event", (long long)width_us);
	}
	HF_CHECK_MSG(tried, "the glitch could be made short enough");
	bool on = true;
	HF_CHECK(gpio_get(r.g, GPIO_TAMPER, &on) == HF_OK && !on);

	/* A bouncing contact that settles active: one event, after it settled. */
	client_send(&c, "IN door 1\nIN door 0\nIN door 1\nIN door 0\nIN door 1\n");
	HF_CHECK(rig_wait_event(&r, 2000, &ev) && ev.line == GPIO_DOOR && ev.active);
	HF_CHECK(!rig_wait_event(&r, 80, &ev));
	close(c.fd);
	rig_close(&r);
}

static void test_two_clients(void)
{
	struct rig r;
	if (!rig_open(&r, &full_map))
		return;
	struct client a, b;
	client_connect(&r, &a);
	client_connect(&r, &b);
	char la[128], lb[128];
	HF_CHECK(gpio_set(r.g, GPIO_LAMP_RED, true) == HF_OK);
	HF_CHECK(client_line(&r, &a, 2000, la, sizeof(la)) && strcmp(la, "OUT lamp_red 1") == 0);
	HF_CHECK(client_line(&r, &b, 2000, lb, sizeof(lb)) && strcmp(lb, "OUT lamp_red 1") == 0);
	client_send(&b, "IN help 1\n");
	struct gpio_event ev;
	HF_CHECK(rig_wait_event(&r, 2000, &ev) && ev.line == GPIO_HELP && ev.active);
	/* One leaves; the other still gets everything. */
	close(a.fd);
	HF_CHECK(gpio_set(r.g, GPIO_LAMP_RED, false) == HF_OK);
	HF_CHECK(client_line(&r, &b, 2000, lb, sizeof(lb)) && strcmp(lb, "OUT lamp_red 0") == 0);
	HF_CHECK(client_sync(&r, &b, NULL, 0));
	close(b.fd);
	rig_close(&r);
}

static void test_misbehaving_clients(void)
{
	struct rig r;
	if (!rig_open(&r, &full_map))
		return;
	struct client bad, good;
	client_connect(&r, &bad);
	client_connect(&r, &good);
	struct gpio_event ev;

	/* Garbage: nothing happens, nothing breaks. */
	client_send(&bad, "HELLO\nIN\nIN tamper\nIN tamper 2\nIN tamper 11\nIN tamperr 1\nIN  tamper 1\n"
			  "IN lamp_green 1\nOUT lamp_green 1\nGET tamper\nGET\n\n\r\n");
	static const char binary[] = {'I', 'N', ' ', 0, 'd', 'o', 'o', 'r', ' ', '1', '\n', (char)0xff, (char)0xfe, '\n'};
	HF_ASSERT(send(bad.fd, binary, sizeof(binary), MSG_NOSIGNAL) == (ssize_t)sizeof(binary));
	char line[128];
	HF_CHECK_MSG(client_sync(&r, &bad, line, sizeof(line)) && line[0] == '\0', "garbage gets no answer: %s", line);
	HF_CHECK(!rig_wait_event(&r, 60, &ev));

	/* A 100 KB line, then a good one on the same connection: the long one is dropped as a whole, the kiosk
	 * never waits for it (every turn of its loop stays short) and the good line after it still counts. The
	 * long line ends in "IN tamper 1" placed where a cap that merely restarted the line (keeping 64 bytes,
	 * dropping one) would see it as a command of its own. */
	size_t big = 64 + 65 * 1574 + 12;
	char *flood = hf_xmalloc(big);
	memset(flood, 'x', big);
	memcpy(flood + big - 11, "IN tamper 1", 11);
	HF_ASSERT(fcntl(bad.fd, F_SETFL, O_NONBLOCK) == 0);
	size_t sent = 0;
	int64_t worst_us = 0;
	int64_t deadline = hf_mono_ms() + 10000;
	while (sent < big && hf_mono_ms() < deadline) {
		ssize_t n = send(bad.fd, flood + sent, big - sent, MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		int64_t t0 = hf_mono_us();
		rig_turn(&r, 0);
		int64_t took = hf_mono_us() - t0;
		worst_us = took > worst_us ? took : worst_us;
	}
	free(flood);
	HF_CHECK(sent == big);
	HF_ASSERT(fcntl(bad.fd, F_SETFL, 0) == 0);
	client_send(&bad, "\nIN door 1\n");
	/* Meanwhile the other connection is served. */
	HF_CHECK(client_sync(&r, &good, NULL, 0));
	HF_CHECK_MSG(rig_wait_event(&r, 5000, &ev) && ev.line == GPIO_DOOR && ev.active, "the line after the flood counts");
	HF_CHECK_MSG(!rig_wait_event(&r, 60, &ev), "and nothing from inside the long line");
	HF_CHECK_MSG(worst_us < 50000, "longest turn of the loop during the flood: %lld us", (long long)worst_us);

	/* A connection that never reads its OUT lines is dropped rather than allowed to block gpio_set. */
	struct client deaf;
	client_connect(&r, &deaf);
	int64_t t0 = hf_mono_ms();
	for (int k = 0; k < 40000; k++)
		HF_ASSERT(gpio_set(r.g, GPIO_LAMP_FAULT, k % 2 == 0) == HF_OK);
	int64_t took = hf_mono_ms() - t0;
	HF_CHECK_MSG(took < 5000, "40,000 output changes took %lld ms", (long long)took);
	/* The deaf connection was closed by the kiosk: reading it ends in end-of-file. */
	char sink[65536];
	ssize_t n = -1;
	size_t total = 0;
	struct pollfd p = {.fd = deaf.fd, .events = POLLIN};
	while (poll(&p, 1, 2000) == 1 && (n = recv(deaf.fd, sink, sizeof(sink), 0)) > 0)
		total += (size_t)n;
	HF_CHECK_MSG(n == 0 && total > 0, "dropped after %zu bytes", total);
	close(deaf.fd);
	close(bad.fd);
	close(good.fd);
	rig_close(&r);
}

static void test_too_many_clients(void)
{
	struct rig r;
	if (!rig_open(&r, &full_map))
		return;
	/* More connections than the fake board takes: the extra one is closed, the others work. */
	struct client many[9];
	for (int k = 0; k < 9; k++)
		client_connect(&r, &many[k]);
	HF_CHECK(client_sync(&r, &many[0], NULL, 0));
	HF_CHECK(client_sync(&r, &many[7], NULL, 0));
	char line[128];
	int64_t t0 = hf_mono_ms();
	bool got = client_line(&r, &many[8], 2000, line, sizeof(line));
	HF_CHECK_MSG(!got && hf_mono_ms() - t0 < 1500 && recv(many[8].fd, line, sizeof(line), MSG_DONTWAIT) == 0,
		     "the ninth connection is closed at once");
	for (int k = 0; k < 9; k++)
		close(many[k].fd);
	rig_close(&r);
}

static void test_unmapped_lines(void)
{
	struct gpio_line_map map = full_map;
	map.out_offset[GPIO_DRAWER] = -1;
	map.in_offset[GPIO_HELP] = -1;
	struct rig r;
	if (!rig_open(&r, &map))
		return;
	struct client c;
	client_connect(&r, &c);
	char line[128];
	HF_CHECK_MSG(gpio_set(r.g, GPIO_DRAWER, true) == HF_OK && gpio_pulse(r.g, GPIO_DRAWER, 5) == HF_OK,
		     "a kiosk without a drawer accepts and ignores it");
	client_send(&c, "GET drawer\n");
	HF_CHECK_MSG(client_sync(&r, &c, line, sizeof(line)) && line[0] == '\0', "nothing about the drawer: %s", line);
	client_send(&c, "IN help 1\n");
	HF_CHECK(client_sync(&r, &c, NULL, 0));
	struct gpio_event ev;
	HF_CHECK_MSG(!rig_wait_event(&r, 80, &ev), "an unmapped input makes no event");
	bool on = true;
	HF_CHECK(gpio_get(r.g, GPIO_HELP, &on) == HF_OK && !on);
	close(c.fd);
	rig_close(&r);
}

int main(void)
{
	hf_log_set_filter("kiosk.gpio.none"); /* the misbehaving-client tests log warnings on purpose */
	HF_TEST(test_backend_errors);
	HF_TEST(test_outputs);
	HF_TEST(test_pulse);
	HF_TEST(test_inputs);
	HF_TEST(test_debounce);
	HF_TEST(test_two_clients);
	HF_TEST(test_misbehaving_clients);
	HF_TEST(test_too_many_clients);
	HF_TEST(test_unmapped_lines);
	return hf_test_summary();
}
