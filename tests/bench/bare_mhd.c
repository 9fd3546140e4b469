/* bare_mhd.c - the benchmark baseline: a bare libmicrohttpd server with the same threading as hifadhi-core.
 *
 * It answers every GET with a fixed JSON body the size of a beneficiary record, with no database, no
 * crypto and no routing, so `make bench` can report hifadhi-core's lookup throughput as a ratio to what
 * the HTTP layer alone achieves on the same machine in the same run.
 * usage: bare_mhd PORT THREADS
 */
#include "hf_base.h"

#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

static const char body[] =
	"{\"ben_no\":\"123456789\",\"household\":\"987654321\",\"relationship\":\"head\",\"given_name\":\"Wanjiru\","
	"\"family_name\":\"Kamau\",\"date_of_birth\":\"1948-03-12\",\"national_id\":\"12345678\",\"phone\":\"+254712345678\","
	"\"sex\":\"female\",\"disability\":\"none\",\"language\":\"sw\",\"version\":1,\"created_at\":\"2026-01-01T00:00:00.000000Z\","
	"\"updated_at\":\"2026-01-01T00:00:00.000000Z\",\"enrolments\":[{\"id\":\"1\",\"programme\":\"OPCT\",\"status\":\"enrolled\","
	"\"target\":\"individual\",\"version\":1}]}";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	if (!*con_cls) {
		*con_cls = (void *)1;
		return MHD_YES;
	}
	*upload_data_size = 0;
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bare_mhd PORT THREADS\n");
		return 2;
	}
	int64_t port = 0, threads = 0;
	char *end;
	port = strtol(argv[1], &end, 10);
	if (*end || port < 1 || port > 65535)
		return 2;
	threads = strtol(argv[2], &end, 10);
	if (*end || threads < 1 || threads > 256)
		return 2;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ITC, (uint16_t)port, NULL, NULL, on_request, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
		MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bare_mhd: cannot listen on %lld\n", (long long)port);
		return 1;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int sig;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
