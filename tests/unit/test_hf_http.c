/* test_hf_http.c - the HTTP server wrapper over real sockets on 127.0.0.1.
 *
 * What core and the gateway rely on: a handler that blocks (on the database, on core) holds up no other
 * connection -- requests are answered by a pool of request threads in arrival order, whatever connection
 * they came on; keep-alive connections carry one request after another; a request id sent is echoed; an
 * announced oversize body gets 413 without the handler running; stopping answers what is in progress.
 */
#include "hf_base.h"
#include "hf_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hf_test.h"

#define FAST_CONNS 12

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool slow_started, release;
	atomic_int handled;
} H = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* /slow waits until the test releases it (10 s at most); anything else answers at once. */
static void handler(void *ctx, const struct hf_http_req *req, struct hf_http_resp *resp)
{
	(void)ctx;
	atomic_fetch_add(&H.handled, 1);
	if (strcmp(req->path, "/slow") == 0) {
		pthread_mutex_lock(&H.mu);
		H.slow_started = true;
		pthread_cond_broadcast(&H.cv);
		int64_t until = hf_now_ms() + 10000;
		while (!H.release && hf_now_ms() < until) {
			struct timespec ts = hf_timespec_in(CLOCK_REALTIME, 50);
			pthread_cond_timedwait(&H.cv, &H.mu, &ts);
		}
		pthread_mutex_unlock(&H.mu);
	}
	resp->content_type = "text/plain";
	HF_ASSERT(hf_buf_appendf(&resp->body, "%s %s %zu", req->method, req->path, req->body.len) == HF_OK);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || getsockname(fd, (struct sockaddr *)&sa, &n)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(sa.sin_port);
}

static struct hf_http_server *start(int port, int threads)
{
	struct hf_http_opts o = {.bind = "127.0.0.1", .port = port, .threads = threads, .max_body = 1024,
				 .max_resp = 4096, .conn_timeout_s = 10, .max_conns = 64, .log_place = "test.http"};
	struct hf_http_server *srv = NULL;
	return hf_http_start(&o, handler, NULL, &srv) == HF_OK ? srv : NULL;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static bool send_all(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;
	while (off < n) {
		ssize_t k = send(fd, s + off, n - off, MSG_NOSIGNAL);
		if (k <= 0)
			return false;
		off += (size_t)k;
	}
	return true;
}

/* Reads one answer (headers and a Content-Length body) within ms; its length, or -1. */
static int read_answer(int fd, char *buf, size_t cap, int ms)
{
	size_t len = 0;
	int64_t until = hf_now_ms() + ms;
	for (;;) {
		buf[len] = '\0';
		const char *end = strstr(buf, "\r\n\r\n");
		const char *cl = strstr(buf, "Content-Length: ");
		if (end && cl && cl < end) {
			size_t want = (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10);
			if (len >= want)
				return (int)len;
		}
		int64_t left = until - hf_now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || len + 1 >= cap || poll(&p, 1, (int)left) != 1)
			return -1;
		ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
		if (k <= 0)
			return -1;
		len += (size_t)k;
	}
}

static bool wait_slow_started(int ms)
{
	int64_t until = hf_now_ms() + ms;
	pthread_mutex_lock(&H.mu);
	while (!H.slow_started && hf_now_ms() < until) {
		struct timespec ts = hf_timespec_in(CLOCK_REALTIME, 1000);
		pthread_cond_timedwait(&H.cv, &H.mu, &ts);
	}
	bool ok = H.slow_started;
	pthread_mutex_unlock(&H.mu);
	return ok;
}

static void release_slow(void)
{
	pthread_mutex_lock(&H.mu);
	H.release = true;
	pthread_cond_broadcast(&H.cv);
	pthread_mutex_unlock(&H.mu);
}

static void reset(void)
{
	pthread_mutex_lock(&H.mu);
	H.slow_started = H.release = false;
	pthread_mutex_unlock(&H.mu);
	atomic_store(&H.handled, 0);
}

/* One request blocked in its handler; the requests of every other connection are answered meanwhile by the
 * other request thread. The connections are all open, and have each been answered once, before the
 * blocking request: with requests bound to the thread that accepted their connection, those that share
 * its thread would wait for it. */
static void test_blocked_handler_holds_up_no_other_connection(void)
{
	reset();
	int port = free_port();
	struct hf_http_server *srv = port > 0 ? start(port, 2) : NULL;
	if (!HF_CHECK_MSG(srv, "the server starts on 127.0.0.1:%d", port))
		return;
	int fds[FAST_CONNS + 1];
	char buf[2048];
	int warm = 0;
	for (int i = 0; i <= FAST_CONNS; i++) {
		fds[i] = dial(port);
		if (fds[i] >= 0 && send_all(fds[i], "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n") &&
		    read_answer(fds[i], buf, sizeof(buf), 3000) > 0)
			warm++;
	}
	HF_CHECK_MSG(warm == FAST_CONNS + 1, "%d connections open and answered once", warm);
	int slow = fds[FAST_CONNS];
	HF_CHECK(slow >= 0 && send_all(slow, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
	HF_CHECK_MSG(wait_slow_started(5000), "the slow request reached its handler");
	for (int i = 0; i < FAST_CONNS; i++)
		HF_CHECK(fds[i] >= 0 && send_all(fds[i], "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"));
	int answered = 0;
	for (int i = 0; i < FAST_CONNS; i++) {
		int n = fds[i] >= 0 ? read_answer(fds[i], buf, sizeof(buf), 3000) : -1;
		if (n > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "GET /fast 0"))
			answered++;
	}
	HF_CHECK_MSG(answered == FAST_CONNS, "%d of %d other connections answered while one handler is blocked",
		     answered, FAST_CONNS);
	release_slow();
	int n = slow >= 0 ? read_answer(slow, buf, sizeof(buf), 5000) : -1;
	HF_CHECK_MSG(n > 0 && strstr(buf, "GET /slow 0"), "the blocked request is answered once released");
	for (int i = 0; i <= FAST_CONNS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	hf_http_stop(srv);
}

/* A kept-alive connection carries requests one after the other; a request id is echoed; a body is read. */
static void test_keep_alive_request_id_and_body(void)
{
	reset();
	int port = free_port();
	struct hf_http_server *srv = port > 0 ? start(port, 3) : NULL;
	if (!HF_CHECK(srv))
		return;
	int fd = dial(port);
	char buf[2048];
	int ok = 0;
	for (int i = 0; i < 50 && fd >= 0; i++) {
		char req[256];
		snprintf(req, sizeof(req),
			 "POST /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: req-%d\r\nContent-Length: 5\r\n\r\nhello", i);
		char rid[32];
		snprintf(rid, sizeof(rid), "X-Request-Id: req-%d\r\n", i);
		if (send_all(fd, req) && read_answer(fd, buf, sizeof(buf), 3000) > 0 && strstr(buf, "POST /echo 5") &&
		    strcasestr(buf, rid))
			ok++;
	}
	HF_CHECK_MSG(ok == 50, "%d of 50 requests on one connection answered, each with its request id", ok);
	/* An announced oversize body: 413, and the handler never runs. */
	int before = atomic_load(&H.handled);
	static char big[5000 + 128];
	int k = snprintf(big, sizeof(big), "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
	memset(big + k, 'x', 5000);
	big[k + 5000] = '\0';
	HF_CHECK(fd >= 0 && send_all(fd, big));
	int n = fd >= 0 ? read_answer(fd, buf, sizeof(buf), 3000) : -1;
	HF_CHECK_MSG(n > 0 && strncmp(buf, "HTTP/1.1 413", 12) == 0 && strstr(buf, "too_big"), "oversize body: 413");
	HF_CHECK(atomic_load(&H.handled) == before);
	if (fd >= 0)
		close(fd);
	hf_http_stop(srv);
}

/* Stopping while a handler runs: that request is still answered, and the stop returns. */
static void *stopper(void *arg)
{
	hf_http_stop(arg);
	return NULL;
}

static void test_stop_answers_what_is_in_progress(void)
{
	reset();
	int port = free_port();
	struct hf_http_server *srv = port > 0 ? start(port, 2) : NULL;
	if (!HF_CHECK(srv))
		return;
	int fd = dial(port);
	HF_CHECK(fd >= 0 && send_all(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
	HF_CHECK(wait_slow_started(5000));
	pthread_t th;
	HF_CHECK(pthread_create(&th, NULL, stopper, srv) == 0);
	release_slow();
	char buf[2048];
	int n = fd >= 0 ? read_answer(fd, buf, sizeof(buf), 5000) : -1;
	HF_CHECK_MSG(n > 0 && strstr(buf, "GET /slow 0"), "the request in progress is answered during the stop");
	HF_CHECK(pthread_join(th, NULL) == 0);
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	HF_TEST(test_blocked_handler_holds_up_no_other_connection);
	HF_TEST(test_keep_alive_request_id_and_body);
	HF_TEST(test_stop_answers_what_is_in_progress);
	return hf_test_summary();
}
