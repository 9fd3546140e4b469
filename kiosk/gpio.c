/* gpio.c - the GPIO adapter: the only file that includes <gpiod.h> (libgpiod 1.6), and the fake board.
 *
 * Both backends share what is ours: the output states, the debounce of inputs and the one pollable fd the
 * daemon's loop watches. That fd is an epoll set (level-triggered) over everything that can make news:
 * the line event fds (real) or the listening socket and the test connections (fake), plus a timerfd that
 * fires when an input has been stable for the debounce time. gpio_read_event never asks epoll which fd
 * woke it: it drains every source without blocking, runs the debounce and hands out at most one edge,
 * re-arming the timer at once when more are due, so nothing is lost and nothing waits on the caller.
 *
 * Debounce: an input is reported only after its level has stayed the same for GPIO_DEBOUNCE_MS; a glitch
 * that comes back within that time is never seen by the caller. Switch contacts bounce for a few ms, and
 * a flapping tamper switch must not flood core with alerts.
 *
 * The real backend cannot run on the development machines (no GPIO in their kernels, and libgpiod 1.6
 * has no mock): it is kept small and plain on purpose. The fake backend is what the tests drive.
 */
#include "hf_base.h"
#include "gpio.h"

#include <errno.h>
#include <gpiod.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hf_buf.h"
#include "hf_log.h"

#define PLACE "kiosk.gpio"
#define GPIO_CONSUMER "hifadhi-kiosk"
#define GPIO_DEBOUNCE_MS 20
#define GPIO_PULSE_MAX_MS 5000
/* Edge events drained from one real line per call: a bouncing contact cannot keep us in the loop. */
#define REAL_EVENTS_PER_CALL 16
/* Fake board: a handful of test connections, short lines, and a bounded amount read per connection
 * per call, so a test that floods the socket can neither grow our memory nor hold up the daemon. */
#define FAKE_MAX_CLIENTS 8
#define FAKE_LINE_MAX 64
#define FAKE_READ_BUDGET 4096

static const char *const out_names[GPIO_OUT_COUNT] = {"lamp_green", "lamp_red", "lamp_fault", "buzzer", "drawer"};
static const char *const in_names[GPIO_IN_COUNT] = {"tamper", "door", "help"};

enum backend { BACKEND_REAL, BACKEND_FAKE };

struct fake_client {
	int fd; /* -1: free slot */
	char line[FAKE_LINE_MAX + 1];
	size_t len;
	bool skipping; /* an overlong line is being thrown away up to its newline */
};

struct gpio {
	enum backend kind;
	struct gpio_line_map map;
	bool out_on[GPIO_OUT_COUNT];
	/* Debounce: raw is the level last seen and raw_ms when it last moved; stable is what the caller was
	 * told (and what gpio_get answers). */
	bool in_raw[GPIO_IN_COUNT];
	int64_t in_raw_ms[GPIO_IN_COUNT];
	bool in_stable[GPIO_IN_COUNT];
	int epfd;
	int timerfd;
	/* real */
	struct gpiod_chip *chip;
	struct gpiod_line *out_line[GPIO_OUT_COUNT];
	struct gpiod_line *in_line[GPIO_IN_COUNT];
	/* fake */
	int listen_fd;
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct fake_client clients[FAKE_MAX_CLIENTS];
};

const char *gpio_out_name(enum gpio_out o)
{
	return (unsigned)o < GPIO_OUT_COUNT ? out_names[o] : "?";
}

const char *gpio_in_name(enum gpio_in i)
{
	return (unsigned)i < GPIO_IN_COUNT ? in_names[i] : "?";
}

HF_PRINTF(3, 4)
static void say(char *msg, size_t msg_cap, const char *fmt, ...)
{
	if (!msg || msg_cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, msg_cap, fmt, ap);
	va_end(ap);
}

static hf_err epoll_watch(struct gpio *g, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	return epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? HF_OK : HF_EIO;
}

/* ---- debounce ------------------------------------------------------------------------------------ */

static void raw_seen(struct gpio *g, enum gpio_in i, bool level, bool moved, int64_t now)
{
	if (level != g->in_raw[i] || moved) {
		g->in_raw[i] = level;
		g->in_raw_ms[i] = now;
	}
}

/* The first input whose new level has held for the debounce time becomes stable and is reported. */
static bool debounce_take(struct gpio *g, int64_t now, struct gpio_event *ev)
{
	for (int i = 0; i < GPIO_IN_COUNT; i++) {
		if (g->in_raw[i] != g->in_stable[i] && now - g->in_raw_ms[i] >= GPIO_DEBOUNCE_MS) {
			g->in_stable[i] = g->in_raw[i];
			ev->line = (enum gpio_in)i;
			ev->active = g->in_stable[i];
			return true;
		}
	}
	return false;
}

/* Arms the timer for the earliest pending debounce deadline (at once if one is already due), or
 * disarms it; setting a timerfd also clears its expirations, so the event fd is readable only while
 * something is due. */
static void timer_rearm(struct gpio *g, int64_t now)
{
	int64_t next = -1;
	for (int i = 0; i < GPIO_IN_COUNT; i++) {
		if (g->in_raw[i] != g->in_stable[i]) {
			int64_t due = g->in_raw_ms[i] + GPIO_DEBOUNCE_MS;
			if (next < 0 || due < next)
				next = due;
		}
	}
	struct itimerspec its = {0};
	if (next >= 0) {
		int64_t wait_ms = next - now;
		if (wait_ms <= 0) {
			its.it_value.tv_nsec = 1; /* 0 would disarm */
		} else {
			its.it_value.tv_sec = (time_t)(wait_ms / 1000);
			its.it_value.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
		}
	}
	/* Cannot fail with a valid timerfd and in-range values: both are ours. */
	HF_ASSERT(timerfd_settime(g->timerfd, 0, &its, NULL) == 0);
}

static void timer_drain(struct gpio *g)
{
	uint64_t ticks;
	while (read(g->timerfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks)) {
	}
}

/* ---- real backend (libgpiod 1.6) ----------------------------------------------------------------- */

static hf_err real_open(struct gpio *g, const char *chip_name, char *msg, size_t msg_cap)
{
	g->chip = gpiod_chip_open_by_name(chip_name);
	if (!g->chip) {
		say(msg, msg_cap, "gpio chip %s cannot be opened: %s", chip_name, strerror(errno));
		return HF_EDEVICE;
	}
	for (int o = 0; o < GPIO_OUT_COUNT; o++) {
		if (g->map.out_offset[o] < 0)
			continue;
		struct gpiod_line *line = gpiod_chip_get_line(g->chip, (unsigned)g->map.out_offset[o]);
		/* Active-low is done by the kernel: every value we pass or read is the logical one. */
		int flags = g->map.out_active_low[o] ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
		if (!line || gpiod_line_request_output_flags(line, GPIO_CONSUMER, flags, 0) < 0) {
			say(msg, msg_cap, "gpio line %d (%s) on %s cannot be had: %s", g->map.out_offset[o], out_names[o],
			    chip_name, strerror(errno));
			return HF_EDEVICE;
		}
		g->out_line[o] = line;
	}
	for (int i = 0; i < GPIO_IN_COUNT; i++) {
		if (g->map.in_offset[i] < 0)
			continue;
		struct gpiod_line *line = gpiod_chip_get_line(g->chip, (unsigned)g->map.in_offset[i]);
		int flags = g->map.in_active_low[i] ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
		int value = -1;
		if (line && gpiod_line_request_both_edges_events_flags(line, GPIO_CONSUMER, flags) == 0)
			value = gpiod_line_get_value(line);
		if (value < 0 || epoll_watch(g, gpiod_line_event_get_fd(line)) != HF_OK) {
			say(msg, msg_cap, "gpio line %d (%s) on %s cannot be had: %s", g->map.in_offset[i], in_names[i],
			    chip_name, strerror(errno));
			return HF_EDEVICE;
		}
		g->in_line[i] = line;
		/* The level at start is the baseline, not an event: a door already open is not news. */
		g->in_raw[i] = g->in_stable[i] = value == 1;
	}
	return HF_OK;
}

/* Drains each input's pending edges (without blocking) and, when there were any, reads the line's level:
 * the level after the edges is what counts, and any edge restarts the debounce time. */
static void real_pump(struct gpio *g, int64_t now)
{
	for (int i = 0; i < GPIO_IN_COUNT; i++) {
		if (!g->in_line[i])
			continue;
		bool moved = false;
		for (int n = 0; n < REAL_EVENTS_PER_CALL; n++) {
			struct pollfd p = {.fd = gpiod_line_event_get_fd(g->in_line[i]), .events = POLLIN};
			struct gpiod_line_event ev;
			if (poll(&p, 1, 0) != 1 || gpiod_line_event_read(g->in_line[i], &ev) != 0)
				break;
			moved = true;
		}
		if (!moved)
			continue;
		int value = gpiod_line_get_value(g->in_line[i]);
		if (value < 0) {
			hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot read a gpio input\" line=%s errno=%d", in_names[i], errno);
			continue;
		}
		raw_seen(g, (enum gpio_in)i, value == 1, true, now);
	}
}

static hf_err real_set(struct gpio *g, enum gpio_out o, bool on)
{
	if (gpiod_line_set_value(g->out_line[o], on ? 1 : 0) != 0) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot set a gpio output\" line=%s errno=%d", out_names[o], errno);
		return HF_EDEVICE;
	}
	return HF_OK;
}

/* ---- fake backend ---------------------------------------------------------------------------------- */

static void fake_drop(struct gpio *g, struct fake_client *c)
{
	epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->skipping = false;
}

/* Sends a whole line or drops the connection: a test that stops reading must not stall the kiosk, and
 * a line half sent would desynchronise it anyway. */
static void fake_send(struct gpio *g, struct fake_client *c, const char *line, size_t len)
{
	ssize_t n = send(c->fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n != (ssize_t)len) {
		hf_log(HF_LOG_WARN, PLACE, "msg=\"dropping a fake gpio connection that does not read\"");
		fake_drop(g, c);
	}
}

static void fake_accept(struct gpio *g)
{
	for (;;) {
		int fd = accept4(g->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN (nothing waiting) or a connection that went away meanwhile */
		struct fake_client *c = NULL;
		for (int k = 0; k < FAKE_MAX_CLIENTS && !c; k++)
			if (g->clients[k].fd < 0)
				c = &g->clients[k];
		if (!c || epoll_watch(g, fd) != HF_OK) {
			hf_log(HF_LOG_WARN, PLACE, "msg=\"refusing a fake gpio connection\" max=%d", FAKE_MAX_CLIENTS);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->len = 0;
		c->skipping = false;
	}
}

static void fake_broadcast(struct gpio *g, const char *line, size_t len)
{
	/* Connections waiting in the backlog are taken first, so that a test that has just connected sees
	 * every change from then on without having to wait for the daemon's loop. */
	fake_accept(g);
	for (int k = 0; k < FAKE_MAX_CLIENTS; k++)
		if (g->clients[k].fd >= 0)
			fake_send(g, &g->clients[k], line, len);
}

static int name_index(const char *const *names, int count, const char *s, size_t len)
{
	for (int k = 0; k < count; k++)
		if (strlen(names[k]) == len && memcmp(names[k], s, len) == 0)
			return k;
	return -1;
}

/* One line from a test: "IN <name> 0|1" or "GET <name>". Anything else, and names the map does not
 * fit, are ignored: the fake board answers only what the real one could. */
static void fake_handle_line(struct gpio *g, struct fake_client *c, const char *s, size_t len, int64_t now)
{
	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (len > 3 && memcmp(s, "IN ", 3) == 0) {
		const char *name = s + 3;
		size_t name_len = len - 3;
		if (name_len < 3 || name[name_len - 2] != ' ' || (name[name_len - 1] != '0' && name[name_len - 1] != '1'))
			return;
		int i = name_index(in_names, GPIO_IN_COUNT, name, name_len - 2);
		if (i >= 0 && g->map.in_offset[i] >= 0)
			raw_seen(g, (enum gpio_in)i, name[name_len - 1] == '1', false, now);
		return;
	}
	if (len > 4 && memcmp(s, "GET ", 4) == 0) {
		int o = name_index(out_names, GPIO_OUT_COUNT, s + 4, len - 4);
		if (o < 0 || g->map.out_offset[o] < 0)
			return;
		char reply[64];
		int n = snprintf(reply, sizeof(reply), "VAL %s %d\n", out_names[o], g->out_on[o] ? 1 : 0);
		HF_ASSERT(n > 0 && (size_t)n < sizeof(reply));
		fake_send(g, c, reply, (size_t)n);
	}
}

static void fake_read_client(struct gpio *g, struct fake_client *c, int64_t now)
{
	size_t budget = FAKE_READ_BUDGET;
	while (c->fd >= 0 && budget > 0) {
		char buf[512];
		size_t want = budget < sizeof(buf) ? budget : sizeof(buf);
		ssize_t n = recv(c->fd, buf, want, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) { /* closed by the test, or broken */
			fake_drop(g, c);
			return;
		}
		budget -= (size_t)n;
		for (ssize_t k = 0; k < n && c->fd >= 0; k++) {
			char ch = buf[k];
			if (ch == '\n') {
				if (!c->skipping)
					fake_handle_line(g, c, c->line, c->len, now);
				c->len = 0;
				c->skipping = false;
			} else if (c->skipping) {
				continue;
			} else if (c->len == FAKE_LINE_MAX) {
				hf_log(HF_LOG_WARN, PLACE, "msg=\"fake gpio line too long, ignored\" max=%d", FAKE_LINE_MAX);
				c->len = 0;
				c->skipping = true;
			} else {
				c->line[c->len++] = ch;
			}
		}
	}
}

static void fake_pump(struct gpio *g, int64_t now)
{
	fake_accept(g);
	for (int k = 0; k < FAKE_MAX_CLIENTS; k++)
		if (g->clients[k].fd >= 0)
			fake_read_client(g, &g->clients[k], now);
}

static hf_err fake_open(struct gpio *g, const char *path, char *msg, size_t msg_cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!hf_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)) || !hf_strlcpy(g->sock_path, path, sizeof(g->sock_path))) {
		say(msg, msg_cap, "fake gpio socket path too long (max %zu bytes)", sizeof(sa.sun_path) - 1);
		return HF_EINVAL;
	}
	/* A socket left by a previous run is replaced; anything else at that path is not ours to remove. */
	struct stat sb;
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			say(msg, msg_cap, "fake gpio path %s exists and is not a socket", path);
			g->sock_path[0] = '\0';
			return HF_EDEVICE;
		}
		unlink(path);
	}
	g->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g->listen_fd < 0 || bind(g->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(g->listen_fd, FAKE_MAX_CLIENTS) != 0 || epoll_watch(g, g->listen_fd) != HF_OK) {
		say(msg, msg_cap, "fake gpio socket %s cannot be set up: %s", path, strerror(errno));
		g->sock_path[0] = '\0';
		return HF_EDEVICE;
	}
	return HF_OK;
}

/* ---- the interface ---------------------------------------------------------------------------------- */

static hf_err map_check(const struct gpio_line_map *map, char *msg, size_t msg_cap)
{
	int offs[GPIO_OUT_COUNT + GPIO_IN_COUNT];
	for (int k = 0; k < GPIO_OUT_COUNT; k++)
		offs[k] = map->out_offset[k];
	for (int k = 0; k < GPIO_IN_COUNT; k++)
		offs[GPIO_OUT_COUNT + k] = map->in_offset[k];
	for (int a = 0; a < GPIO_OUT_COUNT + GPIO_IN_COUNT; a++) {
		if (offs[a] < -1) {
			say(msg, msg_cap, "gpio line offset %d out of range", offs[a]);
			return HF_EINVAL;
		}
		for (int b = a + 1; b < GPIO_OUT_COUNT + GPIO_IN_COUNT; b++) {
			if (offs[a] >= 0 && offs[a] == offs[b]) {
				say(msg, msg_cap, "gpio line offset %d mapped twice", offs[a]);
				return HF_EINVAL;
			}
		}
	}
	return HF_OK;
}

hf_err gpio_open(const char *backend, const struct gpio_line_map *map, struct gpio **out, char *msg, size_t msg_cap)
{
	hf_err err = HF_EINVAL;
	struct gpio *g = NULL;
	bool real = strncmp(backend, "chip:", 5) == 0, fake = strncmp(backend, "fake:", 5) == 0;
	const char *arg = backend + 5;
	/* gpiod_chip_open_by_name puts "/dev/" in front: a name is a name, not a path. */
	if ((!real && !fake) || arg[0] == '\0' || (real && strchr(arg, '/'))) {
		say(msg, msg_cap, "gpio backend must be chip:NAME or fake:PATH");
		goto fail;
	}
	err = map_check(map, msg, msg_cap);
	if (err)
		goto fail;
	g = hf_xcalloc(1, sizeof(*g));
	g->kind = real ? BACKEND_REAL : BACKEND_FAKE;
	g->map = *map;
	g->listen_fd = -1;
	for (int k = 0; k < FAKE_MAX_CLIENTS; k++)
		g->clients[k].fd = -1;
	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	g->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (g->epfd < 0 || g->timerfd < 0 || epoll_watch(g, g->timerfd) != HF_OK) {
		say(msg, msg_cap, "gpio event fds cannot be made: %s", strerror(errno));
		err = HF_EIO;
		goto fail;
	}
	err = real ? real_open(g, arg, msg, msg_cap) : fake_open(g, arg, msg, msg_cap);
	if (err)
		goto fail;
	*out = g;
	return HF_OK;
fail:
	gpio_close(g);
	return err;
}

void gpio_close(struct gpio *g)
{
	if (!g)
		return;
	/* Lamps, buzzer and drawer are left inactive: a daemon that stops must not leave the buzzer on. */
	for (int o = 0; o < GPIO_OUT_COUNT; o++)
		if (g->out_on[o] && gpio_set(g, (enum gpio_out)o, false) != HF_OK)
			hf_log(HF_LOG_WARN, PLACE, "msg=\"output left active at close\" line=%s", out_names[o]);
	if (g->chip)
		gpiod_chip_close(g->chip); /* releases every line requested on it */
	for (int k = 0; k < FAKE_MAX_CLIENTS; k++)
		if (g->clients[k].fd >= 0)
			close(g->clients[k].fd);
	if (g->listen_fd >= 0)
		close(g->listen_fd);
	if (g->sock_path[0])
		unlink(g->sock_path);
	if (g->timerfd >= 0)
		close(g->timerfd);
	if (g->epfd >= 0)
		close(g->epfd);
	free(g);
}

hf_err gpio_set(struct gpio *g, enum gpio_out o, bool on)
{
	if ((unsigned)o >= GPIO_OUT_COUNT)
		return HF_EINVAL;
	if (g->map.out_offset[o] < 0)
		return HF_OK; /* not fitted on this kiosk */
	if (g->kind == BACKEND_REAL) {
		hf_err err = real_set(g, o, on);
		if (err)
			return err;
		g->out_on[o] = on;
		return HF_OK;
	}
	if (g->out_on[o] == on)
		return HF_OK;
	g->out_on[o] = on;
	char line[64];
	int n = snprintf(line, sizeof(line), "OUT %s %d\n", out_names[o], on ? 1 : 0);
	HF_ASSERT(n > 0 && (size_t)n < sizeof(line));
	fake_broadcast(g, line, (size_t)n);
	return HF_OK;
}

hf_err gpio_pulse(struct gpio *g, enum gpio_out o, int ms)
{
	if (ms <= 0 || ms > GPIO_PULSE_MAX_MS)
		return HF_EINVAL;
	hf_err err = gpio_set(g, o, true);
	if (err)
		return err;
	struct timespec until = hf_timespec_in(CLOCK_MONOTONIC, ms);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
	}
	/* Off whatever happened: a drawer solenoid or a buzzer left on is the failure that matters. */
	return gpio_set(g, o, false);
}

hf_err gpio_get(struct gpio *g, enum gpio_in i, bool *active)
{
	if ((unsigned)i >= GPIO_IN_COUNT)
		return HF_EINVAL;
	*active = g->in_stable[i];
	return HF_OK;
}

int gpio_event_fd(struct gpio *g)
{
	return g->epfd;
}

hf_err gpio_read_event(struct gpio *g, struct gpio_event *ev)
{
	timer_drain(g);
	int64_t now = hf_mono_ms();
	if (g->kind == BACKEND_REAL)
		real_pump(g, now);
	else
		fake_pump(g, now);
	struct gpio_event e;
	bool got = debounce_take(g, now, &e);
	timer_rearm(g, now);
	if (!got)
		return HF_ENOTFOUND;
	*ev = e;
	return HF_OK;
}
