/* smppsim.c - hifadhi-smppsim: an SMPP 3.4 SMSC (the mobile operator's end of Kannel's SMPP link) for tests.
 *
 * USSD over SMPP, delivery receipts that fail and SMSC throttling cannot be tested through fakesmsc (it drops
 * meta-data and its receipts always succeed), and an operator's SMSC cannot run here. This double speaks
 * SMPP 3.4 over a real loopback socket, as an SMSC does: it accepts binds (transceiver, transmitter, receiver)
 * with one configured system_id/password, answers enquire_link, takes every submit_sm (an MT from Kannel) with
 * a message id or with the error a switch asks for (throttling, rejection), appends each MT as one JSON line to
 * the MT log the tests read, sends delivery receipts (deliver_sm, esm_class 0x04) with the status a switch
 * chooses, and injects MO (deliver_sm: an SMS, or USSD with ussd_service_op and its_session_info) on demand.
 * docs/smppsim.md is the manual; this comment explains the shape.
 *
 * Shape: one SMPP thread owns every SMPP connection, the receipt timers and ALL use of libsmpp34, whose error
 * state (smpp34_errno, smpp34_strerror) is global, in one poll loop. A libmicrohttpd control listener on
 * another loopback port (one thread per connection: an MO request blocks until Kannel answers it) reads and
 * changes the switches under one mutex, and hands MO injections to the SMPP thread through a queue and an
 * eventfd; the request returns when Kannel's deliver_sm_resp arrives (bearerbox has stored the MO) or at a
 * deadline. Every size that comes from outside (PDU lengths, connections, queued bytes, pending receipts,
 * request bodies, texts) is capped before anything is allocated.
 *
 * This is a test tool, not part of the service: like paysim.c it uses libmicrohttpd and jansson directly, and
 * it keeps libsmpp34 inside this one file.
 */
#include "hf_base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <smpp34.h>
#include <smpp34_structs.h>
#include <smpp34_params.h>

#include "hf_buf.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_err.h"
#include "hf_gsm.h"
#include "hf_json.h"
#include "hf_log.h"

#define PLACE "smppsim"

/* Caps on everything that comes from outside. */
#define PDU_MAX 8192                /* command_length accepted from an ESME (Kannel's largest is ~1.3 KB) */
#define PACK_MAX 4096               /* our own PDUs, packed */
#define OUT_MAX ((size_t)1 << 20)   /* bytes queued to one ESME that does not read: then it is dropped */
#define CONNS_DEFAULT 8
#define CONNS_MAX 64
#define BIND_DEADLINE_MS 10000      /* a connection must bind within this */
#define BAD_BINDS_MAX 3             /* failed binds on one connection before it is closed */
#define BAD_PDUS_MAX 20             /* undecodable PDUs on one connection before it is closed */
#define INFLIGHT_MAX 256            /* deliver_sm sent and not yet answered, over all connections */
#define INFLIGHT_TIMEOUT_MS 10000
#define RECEIPTS_MAX 100000         /* receipts waiting to be sent */
#define RECEIPT_TRIES 30            /* receipts Kannel refused (temporary error), resent a second apart */
#define MO_QUEUE_MAX 1000
#define MO_WAIT_DEFAULT_MS 10000
#define MO_WAIT_MAX_MS 30000
#define BODY_MAX ((size_t)64 << 10) /* control request bodies */
#define RESP_MAX ((size_t)1 << 20)
#define BYTO_MAX 1000               /* per-destination receipt statuses */
#define ADDR_MAX 20                 /* source_addr, destination_addr: SMPP allows 20 characters */
#define SM_MAX 253                  /* short_message bytes libsmpp34 packs (its check is >= 254) */
#define PAYLOAD_MAX 1024            /* message_payload bytes libsmpp34 packs */
#define TEXT_IN_MAX 4096            /* bytes of MO text accepted in a control request */
#define MSGID_MAX 16
#define SWITCH_MAX 1000000
#define DELAY_MAX_MS 600000

/* ---- switches ----------------------------------------------------------------------------------------- */

/* Receipt statuses: the stat word of the receipt text, the message_state TLV (SMPP 3.4 5.2.28), its err. */
static const struct rstat {
	const char *stat;
	uint8_t state;
	const char *err;
} RSTATS[] = {
	{"DELIVRD", 2, "000"}, {"UNDELIV", 5, "001"}, {"REJECTD", 8, "002"}, {"EXPIRED", 3, "003"},
	{"DELETED", 4, "004"}, {"UNKNOWN", 7, "005"}, {"ACCEPTD", 6, "000"}, {"ENROUTE", 1, "000"},
};

/* The submit_sm_resp errors a test may ask for (the names libsmpp34 also knows). */
static const struct {
	uint32_t code;
	const char *name;
} REJECT_STATUSES[] = {
	{ESME_RSUBMITFAIL, "ESME_RSUBMITFAIL"}, {ESME_RTHROTTLED, "ESME_RTHROTTLED"}, {ESME_RMSGQFUL, "ESME_RMSGQFUL"},
	{ESME_RSYSERR, "ESME_RSYSERR"},         {ESME_RINVDSTADR, "ESME_RINVDSTADR"}, {ESME_RINVSRCADR, "ESME_RINVSRCADR"},
	{ESME_RX_T_APPN, "ESME_RX_T_APPN"},     {ESME_RX_P_APPN, "ESME_RX_P_APPN"},   {ESME_RX_R_APPN, "ESME_RX_R_APPN"},
	{ESME_RUNKNOWNERR, "ESME_RUNKNOWNERR"},
};

struct byto {
	char to[ADDR_MAX + 1];
	const struct rstat *stat; /* NULL: no receipt for this destination */
};

struct sim_cfg {
	const struct rstat *dlr_stat; /* NULL: "none", no receipts at all */
	int64_t dlr_delay_ms;
	int64_t throttle_every_n;     /* every Nth submit_sm is answered ESME_RTHROTTLED; 0 off */
	int64_t throttle_above_per_s; /* submit_sm beyond this many in one second are throttled; 0 off */
	int64_t reject_every_n;       /* every Nth submit_sm is answered reject_status; 0 off */
	uint32_t reject_status;
	struct byto *byto; /* owned; sorted by to */
	size_t nbyto;
};

struct stats {
	uint64_t connections, refused_connections, binds_ok, binds_failed, unbinds, enquire_links, bad_pdus;
	uint64_t submits, accepted, throttled, rejected;
	uint64_t receipts_sent, receipts_acked, receipts_refused, receipts_dropped;
	uint64_t mo_sent, mo_acked, mo_refused, mo_failed;
	uint64_t bound_tx, bound_rx; /* connections bound now that can send MT / receive MO and receipts */
	uint64_t receipts_pending;
};

/* ---- MO injections, from a control thread to the SMPP thread -------------------------------------------- */

struct mo_cmd {
	struct mo_cmd *next;
	int refs; /* the waiting control thread and the SMPP thread; under g.mu */
	char from[ADDR_MAX + 1], to[ADDR_MAX + 1], service_type[6];
	uint8_t from_ton, from_npi, to_ton, to_npi, esm_class, data_coding;
	uint8_t sm[SM_MAX];
	size_t sm_len;
	uint8_t payload[PAYLOAD_MAX]; /* used instead of short_message when the text is longer */
	size_t payload_len;
	int ussd_op;     /* -1: no ussd_service_op TLV */
	int32_t session; /* -1: no its_session_info TLV */
	/* The outcome, under g.mu. */
	bool done;
	const char *outcome; /* acked, refused, no_session, busy, timeout, connection_lost, stopping */
	uint32_t status, seq;
	pthread_cond_t cv;
};

/* ---- the SMPP side -------------------------------------------------------------------------------------- */

enum bind_mode { UNBOUND = 0, BOUND_TX, BOUND_RX, BOUND_TRX };

struct sess {
	int fd; /* -1: a free slot */
	uint64_t id;
	enum bind_mode mode;
	int64_t opened_ms, bound_ms;
	int bad_binds, bad_pdus;
	bool closing; /* close once the output is written (after unbind_resp) */
	uint8_t in[PDU_MAX];
	size_t in_len;
	struct hf_buf out;
	size_t out_off;
};

struct receipt {
	int64_t due_ms;
	int tries;
	char msg_id[MSGID_MAX + 1];
	char src[ADDR_MAX + 1], dst[ADDR_MAX + 1]; /* src: the subscriber (the MT's destination) */
	uint8_t src_ton, src_npi, dst_ton, dst_npi;
	const struct rstat *stat;
	char submit_date[11];
	char text[21];
};

struct inflight {
	bool used;
	uint32_t seq;
	uint64_t sess_id;
	int64_t sent_ms;
	struct mo_cmd *mo;   /* one of these two */
	struct receipt *rc;
};

static struct {
	/* Fixed at start. */
	char system_id[16], password[9];
	int mt_fd, listen_fd, wake_fd;
	size_t max_conns;
	uint16_t id_prefix;
	/* Shared with the control threads: under mu. */
	pthread_mutex_t mu;
	struct sim_cfg cfg;
	struct stats st;
	struct mo_cmd *mo_head, *mo_tail;
	size_t mo_queued;
	bool stop;
	/* The SMPP thread's own. */
	struct sess sess[CONNS_MAX];
	uint64_t next_sess_id, next_msg_id, submits, mt_records;
	uint32_t next_seq;
	int64_t window_s;
	int64_t window_count;
	struct receipt **heap;
	size_t nheap, heap_cap;
	struct inflight inflight[INFLIGHT_MAX];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .mt_fd = -1, .listen_fd = -1, .wake_fd = -1};

/* ---- small helpers -------------------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t mono_ms(void)
{
	return hf_mono_ms();
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* An address as SMPP carries it: 1-20 of [0-9A-Za-z*#] (a leading '+' is taken off by the caller). */
static bool addr_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > ADDR_MAX)
		return false;
	return strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz*#") == n;
}

static const struct rstat *rstat_find(const char *s)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(RSTATS); i++)
		if (strcmp(RSTATS[i].stat, s) == 0)
			return &RSTATS[i];
	return NULL;
}

/* Masked subscriber number for logs (phone numbers never go into a log in clear). */
static const char *masked(const char *addr, char out[32])
{
	return hf_mask_phone(addr, out, 32);
}

static void cfg_release(struct sim_cfg *c)
{
	free(c->byto);
	c->byto = NULL;
	c->nbyto = 0;
}

static int byto_cmp(const void *a, const void *b)
{
	return strcmp(((const struct byto *)a)->to, ((const struct byto *)b)->to);
}

/* Under g.mu. The receipt status for a destination: its own if it has one, else the default. */
static const struct rstat *cfg_stat_for(const char *to)
{
	struct byto key;
	if (!g.cfg.nbyto || !hf_strlcpy(key.to, to[0] == '+' ? to + 1 : to, sizeof(key.to)))
		return g.cfg.dlr_stat;
	const struct byto *b = bsearch(&key, g.cfg.byto, g.cfg.nbyto, sizeof(key), byto_cmp);
	return b ? b->stat : g.cfg.dlr_stat;
}

/* ---- text: GSM 03.38 (unpacked, one septet per octet as SMPP carries it), UCS-2, Latin-1 ----------------- */

/* 3GPP TS 23.038 default alphabet as Unicode (Unicode's GSM0338.TXT); 0x1B is the escape to the extension. */
static const uint16_t GSM_BASIC[128] = {
	0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D,
	0x00C5, 0x00E5, 0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x001B,
	0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027, 0x0028, 0x0029,
	0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F, 0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,
	0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F, 0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045,
	0x0046, 0x0047, 0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F, 0x0050, 0x0051, 0x0052, 0x0053,
	0x0054, 0x0055, 0x0056, 0x0057, 0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x0061,
	0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, 0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F,
	0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077, 0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1,
	0x00FC, 0x00E0,
};

static const struct {
	uint8_t code;
	uint16_t cp;
} GSM_EXT[] = {
	{0x0A, 0x000C}, {0x14, 0x005E}, {0x28, 0x007B}, {0x29, 0x007D}, {0x2F, 0x005C},
	{0x3C, 0x005B}, {0x3D, 0x007E}, {0x3E, 0x005D}, {0x40, 0x007C}, {0x65, 0x20AC},
};

static hf_err utf8_put(struct hf_buf *b, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp >= 0xD800 && cp <= 0xDFFF)
		cp = 0xFFFD;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return hf_buf_append(b, u, n);
}

/* What a phone would show for user data of this data_coding, as UTF-8; false for binary data. */
static bool text_decode(uint8_t dcs, const uint8_t *p, size_t n, struct hf_buf *out)
{
	int alphabet; /* 0 GSM, 1 binary, 2 UCS-2, 3 Latin-1, 4 IA5 */
	switch (dcs) {
	case 0x00: alphabet = 0; break;
	case 0x01: alphabet = 4; break;
	case 0x03: alphabet = 3; break;
	case 0x08: alphabet = 2; break;
	default:
		if ((dcs & 0xC0) == 0x00)
			alphabet = ((dcs >> 2) & 3) == 2 ? 2 : ((dcs >> 2) & 3) == 0 ? 0 : 1;
		else if ((dcs & 0xF0) == 0xF0)
			alphabet = (dcs & 0x04) ? 1 : 0;
		else
			alphabet = 1;
	}
	if (alphabet == 1)
		return false;
	hf_err e = HF_OK;
	for (size_t i = 0; i < n && !e; i++) {
		uint32_t cp;
		if (alphabet == 0) {
			uint8_t c = p[i] & 0x7F;
			cp = GSM_BASIC[c];
			if (c == 0x1B) {
				cp = 0x00A0; /* an escape with nothing known after it: a space, as 23.038 says */
				if (i + 1 < n)
					for (size_t k = 0; k < HF_ARRAY_LEN(GSM_EXT); k++)
						if (GSM_EXT[k].code == (p[i + 1] & 0x7F)) {
							cp = GSM_EXT[k].cp;
							i++;
							break;
						}
			}
		} else if (alphabet == 2) {
			if (i + 1 >= n) {
				cp = 0xFFFD;
			} else {
				cp = (uint32_t)p[i] << 8 | p[i + 1];
				i++;
				if (cp >= 0xD800 && cp <= 0xDBFF && i + 2 < n) {
					uint32_t lo = (uint32_t)p[i + 1] << 8 | p[i + 2];
					if (lo >= 0xDC00 && lo <= 0xDFFF) {
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						i += 2;
					}
				}
			}
		} else if (alphabet == 3) {
			cp = p[i];
		} else {
			cp = p[i] < 0x80 ? p[i] : 0xFFFD;
		}
		e = utf8_put(out, cp);
	}
	return e == HF_OK;
}

static int gsm_code(uint32_t cp, uint8_t out[2])
{
	for (int c = 0; c < 128; c++)
		if (GSM_BASIC[c] == cp && c != 0x1B) {
			out[0] = (uint8_t)c;
			return 1;
		}
	for (size_t k = 0; k < HF_ARRAY_LEN(GSM_EXT); k++)
		if (GSM_EXT[k].cp == cp) {
			out[0] = 0x1B;
			out[1] = GSM_EXT[k].code;
			return 2;
		}
	return 0;
}

/* UTF-8 s[0..n) as user data: GSM 03.38 when every character has a code (want "gsm" forces it, '?' for the
 * rest), else UCS-2 (UTF-16BE). Writes at most cap bytes; false when invalid UTF-8 or too long. */
static bool text_encode(const char *s, size_t n, const char *want, uint8_t *out, size_t cap, size_t *out_len,
			uint8_t *out_dcs)
{
	bool gsm = strcmp(want, "ucs2") != 0;
	if (strcmp(want, "auto") == 0) {
		for (size_t i = 0; i < n && gsm;) {
			uint32_t cp;
			size_t k = hf_utf8_decode(s + i, n - i, &cp);
			uint8_t c[2];
			if (!k)
				return false;
			gsm = gsm_code(cp, c) > 0;
			i += k;
		}
	}
	size_t len = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = hf_utf8_decode(s + i, n - i, &cp);
		if (!k || cp == 0)
			return false;
		i += k;
		uint8_t c[4];
		size_t m;
		if (gsm) {
			m = (size_t)gsm_code(cp, c);
			if (!m) {
				c[0] = 0x3F;
				m = 1;
			}
		} else if (cp < 0x10000) {
			c[0] = (uint8_t)(cp >> 8);
			c[1] = (uint8_t)cp;
			m = 2;
		} else {
			uint32_t v = cp - 0x10000, hi = 0xD800 + (v >> 10), lo = 0xDC00 + (v & 0x3FF);
			c[0] = (uint8_t)(hi >> 8);
			c[1] = (uint8_t)hi;
			c[2] = (uint8_t)(lo >> 8);
			c[3] = (uint8_t)lo;
			m = 4;
		}
		if (len + m > cap)
			return false;
		memcpy(out + len, c, m);
		len += m;
	}
	*out_len = len;
	*out_dcs = gsm ? 0x00 : 0x08;
	return true;
}

/* ---- the MT log --------------------------------------------------------------------------------------- */

static void mt_log_write(json_t *rec)
{
	char *line = json_dumps(rec, JSON_COMPACT);
	if (!line) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot render an MT record\"");
		return;
	}
	size_t n = strlen(line);
	char *buf = hf_xmalloc(n + 1);
	memcpy(buf, line, n);
	buf[n] = '\n';
	/* One write per line (O_APPEND): a reader never sees half a line of another write. */
	ssize_t w = write(g.mt_fd, buf, n + 1);
	if (w != (ssize_t)(n + 1))
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot append to the MT log\" errno=%d", errno);
	free(buf);
	free(line);
}

/* ---- sending PDUs (SMPP thread) ------------------------------------------------------------------------- */

static void sess_close(struct sess *s, const char *why);

/* Writes what the socket takes now of the queued output. */
static void sess_flush(struct sess *s)
{
	while (s->fd >= 0 && s->out_off < s->out.len) {
		ssize_t w = send(s->fd, s->out.data + s->out_off, s->out.len - s->out_off, MSG_NOSIGNAL);
		if (w > 0) {
			s->out_off += (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w < 0 && errno == EINTR)
			continue;
		sess_close(s, "write_failed");
		return;
	}
	if (s->fd >= 0 && s->out_off == s->out.len) {
		hf_buf_reset(&s->out);
		s->out_off = 0;
	}
}

/* Queues bytes to an ESME and writes what the socket takes now. A peer that stops reading is dropped. */
static void sess_send(struct sess *s, const uint8_t *p, size_t n)
{
	if (s->fd < 0)
		return;
	if (s->out.len - s->out_off + n > OUT_MAX || hf_buf_append(&s->out, p, n) != HF_OK) {
		sess_close(s, "output_full");
		return;
	}
	sess_flush(s);
}

/* Packs a PDU struct with libsmpp34 and sends it. */
static bool pdu_send(struct sess *s, uint32_t cmd, void *pdu)
{
	uint8_t buf[PACK_MAX];
	int len = 0;
	if (smpp34_pack(cmd, buf, (int)sizeof(buf), &len, pdu) != 0 || len < 16) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot pack a PDU\" command=0x%08x conn=%llu", cmd,
		       (unsigned long long)s->id);
		return false;
	}
	sess_send(s, buf, (size_t)len);
	return s->fd >= 0;
}

static uint32_t next_seq(void)
{
	if (++g.next_seq == 0 || g.next_seq > 0x7FFFFFFF)
		g.next_seq = 1;
	return g.next_seq;
}

static void send_header_only(struct sess *s, uint32_t cmd, uint32_t status, uint32_t seq)
{
	generic_nack_t h; /* every header-only PDU has the same layout */
	memset(&h, 0, sizeof(h));
	h.command_id = cmd;
	h.command_status = status;
	h.sequence_number = seq ? seq : 1;
	(void)pdu_send(s, cmd, &h);
}

static void send_submit_resp(struct sess *s, uint32_t seq, uint32_t status, const char *msg_id)
{
	submit_sm_resp_t r;
	memset(&r, 0, sizeof(r));
	r.command_id = SUBMIT_SM_RESP;
	r.command_status = status;
	r.sequence_number = seq;
	if (msg_id)
		hf_strlcpy((char *)r.message_id, msg_id, sizeof(r.message_id));
	(void)pdu_send(s, SUBMIT_SM_RESP, &r);
}

/* ---- in-flight deliver_sm ----------------------------------------------------------------------------- */

static struct inflight *inflight_slot(void)
{
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (!g.inflight[i].used)
			return &g.inflight[i];
	return NULL;
}

/* Under no lock. Finishes an MO command: records the outcome and wakes its waiter; frees it when the waiter
 * is gone. */
static void mo_finish(struct mo_cmd *c, const char *outcome, uint32_t status, uint32_t seq)
{
	pthread_mutex_lock(&g.mu);
	c->done = true;
	c->outcome = outcome;
	c->status = status;
	c->seq = seq;
	if (strcmp(outcome, "acked") == 0)
		g.st.mo_acked++;
	else if (strcmp(outcome, "refused") == 0)
		g.st.mo_refused++;
	else
		g.st.mo_failed++;
	pthread_cond_signal(&c->cv);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&g.mu);
	if (last) {
		pthread_cond_destroy(&c->cv);
		free(c);
	}
}

/* ---- receipts: a min-heap by due time (SMPP thread) ----------------------------------------------------- */

static void heap_swap(size_t a, size_t b)
{
	struct receipt *t = g.heap[a];
	g.heap[a] = g.heap[b];
	g.heap[b] = t;
}

static void heap_push(struct receipt *r)
{
	if (g.nheap == g.heap_cap) {
		g.heap_cap = g.heap_cap ? g.heap_cap * 2 : 64;
		g.heap = hf_xrealloc(g.heap, g.heap_cap * sizeof(*g.heap));
	}
	size_t i = g.nheap++;
	g.heap[i] = r;
	while (i > 0 && g.heap[(i - 1) / 2]->due_ms > g.heap[i]->due_ms) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct receipt *heap_pop(void)
{
	HF_ASSERT(g.nheap > 0);
	struct receipt *top = g.heap[0];
	g.heap[0] = g.heap[--g.nheap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < g.nheap && g.heap[l]->due_ms < g.heap[m]->due_ms)
			m = l;
		if (r < g.nheap && g.heap[r]->due_ms < g.heap[m]->due_ms)
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
	return top;
}

static void receipts_count(void)
{
	size_t inflight = 0;
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (g.inflight[i].used && g.inflight[i].rc)
			inflight++;
	pthread_mutex_lock(&g.mu);
	g.st.receipts_pending = g.nheap + inflight;
	pthread_mutex_unlock(&g.mu);
}

/* A receipt Kannel did not take (temporary error, connection lost): again a second later, a few times. */
static void receipt_retry(struct receipt *r, bool count_try)
{
	if (count_try && ++r->tries >= RECEIPT_TRIES) {
		hf_log(HF_LOG_WARN, PLACE, "msg=\"receipt dropped after retries\" message_id=%s", r->msg_id);
		pthread_mutex_lock(&g.mu);
		g.st.receipts_dropped++;
		pthread_mutex_unlock(&g.mu);
		free(r);
		return;
	}
	r->due_ms = mono_ms() + 1000;
	heap_push(r);
}

/* ---- sessions ------------------------------------------------------------------------------------------- */

static void bound_counts(void)
{
	uint64_t tx = 0, rx = 0;
	for (size_t i = 0; i < CONNS_MAX; i++) {
		const struct sess *s = &g.sess[i];
		if (s->fd < 0)
			continue;
		tx += s->mode == BOUND_TX || s->mode == BOUND_TRX;
		rx += s->mode == BOUND_RX || s->mode == BOUND_TRX;
	}
	pthread_mutex_lock(&g.mu);
	g.st.bound_tx = tx;
	g.st.bound_rx = rx;
	pthread_mutex_unlock(&g.mu);
}

static void sess_close(struct sess *s, const char *why)
{
	if (s->fd < 0)
		return;
	hf_log(why && strcmp(why, "unbind") != 0 && strcmp(why, "stopping") != 0 ? HF_LOG_WARN : HF_LOG_INFO, PLACE,
	       "msg=\"connection closed\" conn=%llu reason=%s", (unsigned long long)s->id, why ? why : "peer");
	close(s->fd);
	s->fd = -1;
	s->mode = UNBOUND;
	hf_buf_release(&s->out);
	s->out_off = 0;
	s->in_len = 0;
	/* What was waiting for this connection's answer fails now rather than at its timeout. */
	for (size_t i = 0; i < INFLIGHT_MAX; i++) {
		struct inflight *f = &g.inflight[i];
		if (!f->used || f->sess_id != s->id)
			continue;
		f->used = false;
		if (f->mo)
			mo_finish(f->mo, "connection_lost", 0, f->seq);
		else if (f->rc)
			receipt_retry(f->rc, false);
	}
	bound_counts();
}

/* The connection a deliver_sm goes out on: bound to receive, the most recently bound first. */
static struct sess *sess_receiver(void)
{
	struct sess *best = NULL;
	for (size_t i = 0; i < CONNS_MAX; i++) {
		struct sess *s = &g.sess[i];
		if (s->fd >= 0 && !s->closing && (s->mode == BOUND_RX || s->mode == BOUND_TRX) &&
		    (!best || s->bound_ms > best->bound_ms))
			best = s;
	}
	return best;
}

static void on_bind(struct sess *s, uint32_t cmd, uint32_t seq, const uint8_t *pdu, size_t len)
{
	union {
		bind_transmitter_t tx;
		bind_receiver_t rx;
		bind_transceiver_t trx;
	} b;
	memset(&b, 0, sizeof(b));
	uint32_t status = ESME_ROK;
	const char *mode_name = cmd == BIND_TRANSCEIVER ? "transceiver" : cmd == BIND_TRANSMITTER ? "transmitter" : "receiver";
	if (s->mode != UNBOUND) {
		status = ESME_RALYBND;
	} else if (smpp34_unpack(cmd, &b, pdu, (int)len) != 0) {
		status = ESME_RBINDFAIL;
	} else {
		/* The three bind PDUs share the layout of their fields; the simulator's credentials are not secrets,
		 * but compared in constant time anyway, as every credential is. */
		const char *sid = (const char *)(cmd == BIND_TRANSCEIVER ? b.trx.system_id
						  : cmd == BIND_TRANSMITTER ? b.tx.system_id
									    : b.rx.system_id);
		const char *pw = (const char *)(cmd == BIND_TRANSCEIVER ? b.trx.password
						 : cmd == BIND_TRANSMITTER ? b.tx.password
									   : b.rx.password);
		size_t sl = strnlen(sid, 16), pl = strnlen(pw, 9);
		bool ok = sl == strlen(g.system_id) && pl == strlen(g.password) && hf_ct_equal(sid, g.system_id, sl) &&
			  hf_ct_equal(pw, g.password, pl);
		status = ok ? ESME_ROK : ESME_RBINDFAIL;
	}
	bind_transceiver_resp_t r; /* the three bind responses share their layout too */
	memset(&r, 0, sizeof(r));
	r.command_id = cmd | GENERIC_NACK;
	r.command_status = status;
	r.sequence_number = seq;
	hf_strlcpy((char *)r.system_id, "hfsim", sizeof(r.system_id));
	if (status == ESME_ROK) {
		s->mode = cmd == BIND_TRANSCEIVER ? BOUND_TRX : cmd == BIND_TRANSMITTER ? BOUND_TX : BOUND_RX;
		s->bound_ms = mono_ms();
	}
	pthread_mutex_lock(&g.mu);
	if (status == ESME_ROK)
		g.st.binds_ok++;
	else
		g.st.binds_failed++;
	pthread_mutex_unlock(&g.mu);
	(void)pdu_send(s, cmd | GENERIC_NACK, &r);
	if (status == ESME_ROK) {
		hf_log(HF_LOG_INFO, PLACE, "msg=\"bound\" conn=%llu mode=%s", (unsigned long long)s->id, mode_name);
		bound_counts();
	} else {
		hf_log(HF_LOG_WARN, PLACE, "msg=\"bind refused\" conn=%llu mode=%s status=0x%02x", (unsigned long long)s->id,
		       mode_name, status);
		if (status == ESME_RBINDFAIL && ++s->bad_binds >= BAD_BINDS_MAX)
			s->closing = true;
	}
}

/* How libsmpp34 decoded a submit_sm TLV (def_frame/submit_sm.tlv): 1 byte, 2 bytes, or the octets. */
static int submit_tlv_width(uint16_t tag)
{
	static const uint16_t w2[] = {0x0204, 0x020A, 0x020B, 0x020C, 0x1203, 0x1383};
	static const uint16_t w1[] = {0x000D, 0x0005, 0x020E, 0x020F, 0x0426, 0x0019, 0x0201, 0x0302,
				      0x0205, 0x1201, 0x1204, 0x0030, 0x0304, 0x020D, 0x1380};
	for (size_t i = 0; i < HF_ARRAY_LEN(w2); i++)
		if (w2[i] == tag)
			return 2;
	for (size_t i = 0; i < HF_ARRAY_LEN(w1); i++)
		if (w1[i] == tag)
			return 1;
	return 0;
}

static size_t tlv_bytes(const tlv_t *t, uint8_t out[MAX_TLV_SIZE])
{
	switch (submit_tlv_width(t->tag)) {
	case 1:
		out[0] = t->value.val08;
		return 1;
	case 2:
		out[0] = (uint8_t)(t->value.val16 >> 8);
		out[1] = (uint8_t)t->value.val16;
		return 2;
	default: {
		size_t n = t->length <= MAX_TLV_SIZE ? t->length : MAX_TLV_SIZE;
		memcpy(out, t->value.octet, n);
		return n;
	}
	}
}

/* A C string from the wire as JSON: printable ASCII kept, any other byte as '?' (addresses, service types). */
static json_t *json_ascii(const char *s)
{
	char buf[72];
	size_t n = 0;
	for (; s[n] && n + 1 < sizeof(buf); n++)
		buf[n] = s[n] >= 0x20 && s[n] < 0x7F ? s[n] : '?';
	buf[n] = '\0';
	return json_string(buf);
}

static void json_set_hex(json_t *o, const char *key, const uint8_t *p, size_t n)
{
	char *hex = hf_xmalloc(2 * n + 1);
	hex_of(p, n, hex);
	json_object_set_new(o, key, json_string(hex));
	free(hex);
}

/* The decision on one submit_sm, by the switches: 0 (accepted) or the error status, and the receipt. */
static uint32_t submit_decide(const char *to, const struct rstat **receipt, int64_t *delay_ms, const char **result)
{
	uint64_t n = ++g.submits;
	int64_t now_s = hf_now_ms() / 1000;
	if (now_s != g.window_s) {
		g.window_s = now_s;
		g.window_count = 0;
	}
	g.window_count++;
	pthread_mutex_lock(&g.mu);
	const struct sim_cfg *c = &g.cfg;
	uint32_t status = ESME_ROK;
	*result = "accepted";
	if ((c->throttle_every_n && n % (uint64_t)c->throttle_every_n == 0) ||
	    (c->throttle_above_per_s && g.window_count > c->throttle_above_per_s)) {
		status = ESME_RTHROTTLED;
		*result = "throttled";
		g.st.throttled++;
	} else if (c->reject_every_n && n % (uint64_t)c->reject_every_n == 0) {
		status = c->reject_status;
		*result = "rejected";
		g.st.rejected++;
	} else {
		g.st.accepted++;
	}
	g.st.submits++;
	*receipt = cfg_stat_for(to);
	*delay_ms = c->dlr_delay_ms;
	pthread_mutex_unlock(&g.mu);
	return status;
}

static void utc_stamp(char out[11])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	/* YYMMDDhhmm, as receipts carry it (SMPP 3.4 appendix B) */
	const int f[5] = {tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min};
	for (int i = 0; i < 5; i++) {
		out[2 * i] = (char)('0' + (f[i] / 10) % 10);
		out[2 * i + 1] = (char)('0' + f[i] % 10);
	}
	out[10] = '\0';
}

static void on_submit(struct sess *s, uint32_t seq, const uint8_t *pdu, size_t len)
{
	if (s->mode != BOUND_TX && s->mode != BOUND_TRX) {
		send_submit_resp(s, seq, ESME_RINVBNDSTS, NULL);
		return;
	}
	submit_sm_t m;
	memset(&m, 0, sizeof(m));
	if (smpp34_unpack(SUBMIT_SM, &m, pdu, (int)len) != 0) {
		/* libsmpp34's trace ends with the field it stopped at, "[name:value(reason)]": only the name is logged
		 * (the value may be a subscriber's number). */
		char field[40] = "?";
		const char *last = strrchr(smpp34_strerror, '[');
		if (last) {
			size_t k = strcspn(last + 1, ":]");
			if (k > 0 && k < sizeof(field) && strspn(last + 1, "abcdefghijklmnopqrstuvwxyz_().") >= k) {
				memcpy(field, last + 1, k);
				field[k] = '\0';
			}
		}
		hf_log(HF_LOG_WARN, PLACE, "msg=\"undecodable submit_sm\" conn=%llu field=%s", (unsigned long long)s->id,
		       field);
		/* libsmpp34 loses the TLV it was decoding when a PDU is malformed (a few hundred bytes): an ESME that
		 * keeps sending such PDUs is disconnected. */
		destroy_tlv(m.tlv);
		pthread_mutex_lock(&g.mu);
		g.st.bad_pdus++;
		pthread_mutex_unlock(&g.mu);
		send_header_only(s, GENERIC_NACK, ESME_RINVCMDLEN, seq);
		if (++s->bad_pdus >= BAD_PDUS_MAX)
			s->closing = true;
		return;
	}
	char to[ADDR_MAX + 1], from[ADDR_MAX + 1];
	hf_strlcpy(to, (const char *)m.destination_addr, sizeof(to));
	hf_strlcpy(from, (const char *)m.source_addr, sizeof(from));

	/* The user data: short_message, or message_payload when short_message is empty; TLVs in PDU order. */
	const tlv_t *list[64];
	size_t nt = 0;
	for (const tlv_t *t = m.tlv; t && nt < HF_ARRAY_LEN(list); t = t->next)
		list[nt++] = t;
	const uint8_t *data = m.short_message;
	size_t dlen = m.sm_length;
	uint8_t payload[MAX_TLV_SIZE];
	int ussd_op = -1;
	uint8_t session[2];
	bool has_session = false;
	json_t *tlvs = json_object();
	for (size_t i = nt; i-- > 0;) {
		uint8_t v[MAX_TLV_SIZE];
		size_t vn = tlv_bytes(list[i], v);
		char key[8];
		snprintf(key, sizeof(key), "0x%04x", list[i]->tag);
		json_set_hex(tlvs, key, v, vn);
		if (list[i]->tag == TLVID_message_payload && m.sm_length == 0) {
			memcpy(payload, v, vn);
			data = payload;
			dlen = vn;
		} else if (list[i]->tag == TLVID_ussd_service_op && vn == 1) {
			ussd_op = v[0];
		} else if (list[i]->tag == TLVID_its_session_info && vn == 2) {
			memcpy(session, v, 2);
			has_session = true;
		}
	}
	const uint8_t *udh = NULL;
	size_t udh_len = 0;
	if ((m.esm_class & 0x40) && dlen >= 1 && (size_t)data[0] + 1 <= dlen) {
		udh = data;
		udh_len = (size_t)data[0] + 1;
		data += udh_len;
		dlen -= udh_len;
	}

	const struct rstat *rs = NULL;
	int64_t delay_ms = 0;
	const char *result = NULL;
	uint32_t status = submit_decide(to, &rs, &delay_ms, &result);
	char msg_id[MSGID_MAX + 1] = "";
	if (status == ESME_ROK)
		snprintf(msg_id, sizeof(msg_id), "%04X%08llX", g.id_prefix, (unsigned long long)++g.next_msg_id);
	send_submit_resp(s, seq, status, status == ESME_ROK ? msg_id : NULL);

	/* Registered delivery bits 0-1: 1 a receipt either way, 2 only on failure (SMPP 3.4 5.2.17). */
	int rd = m.registered_delivery & 3;
	bool want = status == ESME_ROK && rs && (rd == 1 || (rd == 2 && rs->state != 2));
	struct hf_buf text;
	hf_buf_init(&text, 4 * PAYLOAD_MAX + 16);
	bool is_text = text_decode(m.data_coding, data, dlen, &text);

	json_t *rec = json_object();
	json_object_set_new(rec, "n", json_integer((json_int_t)++g.mt_records));
	json_object_set_new(rec, "ts_ms", json_integer((json_int_t)hf_now_ms()));
	json_object_set_new(rec, "conn", json_integer((json_int_t)s->id));
	json_object_set_new(rec, "seq", json_integer((json_int_t)seq));
	json_object_set_new(rec, "status", json_integer((json_int_t)status));
	json_object_set_new(rec, "result", json_string(result));
	json_object_set_new(rec, "message_id", status == ESME_ROK ? json_string(msg_id) : json_null());
	json_object_set_new(rec, "service_type", json_ascii((const char *)m.service_type));
	json_object_set_new(rec, "from", json_ascii(from));
	json_object_set_new(rec, "from_ton", json_integer(m.source_addr_ton));
	json_object_set_new(rec, "from_npi", json_integer(m.source_addr_npi));
	json_object_set_new(rec, "to", json_ascii(to));
	json_object_set_new(rec, "to_ton", json_integer(m.dest_addr_ton));
	json_object_set_new(rec, "to_npi", json_integer(m.dest_addr_npi));
	json_object_set_new(rec, "esm_class", json_integer(m.esm_class));
	json_object_set_new(rec, "protocol_id", json_integer(m.protocol_id));
	json_object_set_new(rec, "registered_delivery", json_integer(m.registered_delivery));
	json_object_set_new(rec, "data_coding", json_integer(m.data_coding));
	if (udh)
		json_set_hex(rec, "udh", udh, udh_len);
	else
		json_object_set_new(rec, "udh", json_null());
	json_set_hex(rec, "data", data, dlen);
	json_object_set_new(rec, "text", is_text ? json_string(hf_buf_cstr(&text)) : json_null());
	json_object_set_new(rec, "tlvs", tlvs);
	json_object_set_new(rec, "ussd_service_op", ussd_op >= 0 ? json_integer(ussd_op) : json_null());
	if (has_session)
		json_set_hex(rec, "its_session_info", session, 2);
	else
		json_object_set_new(rec, "its_session_info", json_null());
	json_object_set_new(rec, "receipt", want ? json_string(rs->stat) : json_null());
	mt_log_write(rec);
	json_decref(rec);

	char mto[32];
	hf_log(HF_LOG_DEBUG, PLACE, "msg=\"submit_sm\" conn=%llu to=%s result=%s status=0x%02x message_id=%s",
	       (unsigned long long)s->id, masked(to, mto), result, status, msg_id[0] ? msg_id : "-");

	if (want) {
		pthread_mutex_lock(&g.mu);
		bool room = g.st.receipts_pending < RECEIPTS_MAX;
		pthread_mutex_unlock(&g.mu);
		if (!room) {
			hf_log(HF_LOG_WARN, PLACE, "msg=\"too many receipts waiting; this one is dropped\" message_id=%s", msg_id);
		} else {
			struct receipt *r = hf_xcalloc(1, sizeof(*r));
			r->due_ms = mono_ms() + delay_ms;
			hf_strlcpy(r->msg_id, msg_id, sizeof(r->msg_id));
			hf_strlcpy(r->src, to, sizeof(r->src));
			r->src_ton = m.dest_addr_ton;
			r->src_npi = m.dest_addr_npi;
			hf_strlcpy(r->dst, from, sizeof(r->dst));
			r->dst_ton = m.source_addr_ton;
			r->dst_npi = m.source_addr_npi;
			r->stat = rs;
			utc_stamp(r->submit_date);
			/* The receipt's text: the first 20 characters, printable ASCII only (the rest as '.'). */
			const char *t = is_text ? hf_buf_cstr(&text) : "";
			size_t k = 0;
			for (; t[k] && k < 20; k++)
				r->text[k] = t[k] >= 0x20 && t[k] < 0x7F ? t[k] : '.';
			r->text[k] = '\0';
			heap_push(r);
			receipts_count();
		}
	}
	hf_buf_release(&text);
	destroy_tlv(m.tlv);
}

static void on_deliver_answer(struct sess *s, uint32_t seq, uint32_t status)
{
	for (size_t i = 0; i < INFLIGHT_MAX; i++) {
		struct inflight *f = &g.inflight[i];
		if (!f->used || f->seq != seq || f->sess_id != s->id)
			continue;
		f->used = false;
		if (f->mo) {
			mo_finish(f->mo, status == ESME_ROK ? "acked" : "refused", status, seq);
		} else if (f->rc) {
			pthread_mutex_lock(&g.mu);
			if (status == ESME_ROK)
				g.st.receipts_acked++;
			else
				g.st.receipts_refused++;
			pthread_mutex_unlock(&g.mu);
			if (status == ESME_ROK)
				free(f->rc);
			else
				receipt_retry(f->rc, true);
			receipts_count();
		}
		return;
	}
	hf_log(HF_LOG_WARN, PLACE, "msg=\"answer to no deliver_sm of ours\" conn=%llu seq=%u", (unsigned long long)s->id,
	       seq);
}

static void on_pdu(struct sess *s, const uint8_t *pdu, size_t len)
{
	uint32_t cmd = be32(pdu + 4), status = be32(pdu + 8), seq = be32(pdu + 12);
	switch (cmd) {
	case BIND_TRANSCEIVER:
	case BIND_TRANSMITTER:
	case BIND_RECEIVER:
		on_bind(s, cmd, seq, pdu, len);
		break;
	case ENQUIRE_LINK:
		pthread_mutex_lock(&g.mu);
		g.st.enquire_links++;
		pthread_mutex_unlock(&g.mu);
		send_header_only(s, ENQUIRE_LINK_RESP, ESME_ROK, seq);
		break;
	case UNBIND:
		pthread_mutex_lock(&g.mu);
		g.st.unbinds++;
		pthread_mutex_unlock(&g.mu);
		send_header_only(s, UNBIND_RESP, ESME_ROK, seq);
		s->closing = true;
		break;
	case SUBMIT_SM:
		on_submit(s, seq, pdu, len);
		break;
	case DELIVER_SM_RESP:
		/* Only the header matters (its message_id is unused and empty): status and sequence number. */
		on_deliver_answer(s, seq, status);
		break;
	case GENERIC_NACK:
		on_deliver_answer(s, seq, status ? status : ESME_RUNKNOWNERR);
		break;
	case ENQUIRE_LINK_RESP:
	case UNBIND_RESP:
		break;
	default:
		if (!(cmd & GENERIC_NACK)) /* a request we do not serve (query_sm, data_sm, ...) */
			send_header_only(s, GENERIC_NACK, ESME_RINVCMDID, seq);
		break;
	}
}

/* Reads what the socket has and handles every whole PDU in it. */
static void sess_read(struct sess *s)
{
	for (;;) {
		ssize_t r = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, 0);
		if (r == 0) {
			sess_close(s, "peer_closed");
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				sess_close(s, "read_failed");
			return;
		}
		s->in_len += (size_t)r;
		size_t off = 0;
		while (s->fd >= 0 && s->in_len - off >= 16) {
			uint32_t n = be32(s->in + off);
			if (n < 16 || n > PDU_MAX) {
				/* Framing is lost: say so once and hang up (SMPP 3.4 2.11: generic_nack, invalid length). */
				send_header_only(s, GENERIC_NACK, ESME_RINVCMDLEN, be32(s->in + off + 12));
				pthread_mutex_lock(&g.mu);
				g.st.bad_pdus++;
				pthread_mutex_unlock(&g.mu);
				sess_close(s, "bad_length");
				return;
			}
			if (s->in_len - off < n)
				break;
			/* libsmpp34 reads C strings with strlen: each PDU gets a NUL after its end, in a copy. */
			uint8_t pdu[PDU_MAX + 1];
			memcpy(pdu, s->in + off, n);
			pdu[n] = 0;
			off += n;
			on_pdu(s, pdu, n);
		}
		if (s->fd < 0)
			return;
		memmove(s->in, s->in + off, s->in_len - off);
		s->in_len -= off;
		if ((size_t)r < 512)
			return; /* drained (probably): poll again rather than spin on EAGAIN */
	}
}

static void sess_accept(void)
{
	for (;;) {
		int fd = accept4(g.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct sess *slot = NULL;
		size_t open = 0;
		for (size_t i = 0; i < CONNS_MAX; i++) {
			if (g.sess[i].fd >= 0)
				open++;
			else if (!slot)
				slot = &g.sess[i];
		}
		if (!slot || open >= g.max_conns) {
			close(fd);
			pthread_mutex_lock(&g.mu);
			g.st.refused_connections++;
			pthread_mutex_unlock(&g.mu);
			hf_log(HF_LOG_WARN, PLACE, "msg=\"connection refused: too many\" max=%zu", g.max_conns);
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		memset(slot, 0, offsetof(struct sess, in));
		slot->fd = fd;
		slot->id = ++g.next_sess_id;
		slot->opened_ms = mono_ms();
		slot->in_len = 0;
		hf_buf_init(&slot->out, OUT_MAX);
		slot->out_off = 0;
		pthread_mutex_lock(&g.mu);
		g.st.connections++;
		pthread_mutex_unlock(&g.mu);
		hf_log(HF_LOG_INFO, PLACE, "msg=\"connection\" conn=%llu", (unsigned long long)slot->id);
	}
}

/* ---- MO and receipts out (SMPP thread) ------------------------------------------------------------------ */

static void mo_dispatch(struct mo_cmd *c)
{
	struct sess *s = sess_receiver();
	if (!s) {
		mo_finish(c, "no_session", 0, 0);
		return;
	}
	struct inflight *f = inflight_slot();
	if (!f) {
		mo_finish(c, "busy", 0, 0);
		return;
	}
	deliver_sm_t d;
	memset(&d, 0, sizeof(d));
	d.command_id = DELIVER_SM;
	d.sequence_number = next_seq();
	hf_strlcpy((char *)d.service_type, c->service_type, sizeof(d.service_type));
	d.source_addr_ton = c->from_ton;
	d.source_addr_npi = c->from_npi;
	hf_strlcpy((char *)d.source_addr, c->from, sizeof(d.source_addr));
	d.dest_addr_ton = c->to_ton;
	d.dest_addr_npi = c->to_npi;
	hf_strlcpy((char *)d.destination_addr, c->to, sizeof(d.destination_addr));
	d.esm_class = c->esm_class;
	d.data_coding = c->data_coding;
	d.sm_length = (uint8_t)c->sm_len;
	memcpy(d.short_message, c->sm, c->sm_len);
	tlv_t t_payload, t_op, t_sess;
	tlv_t *head = NULL;
	if (c->payload_len) {
		memset(&t_payload, 0, sizeof(t_payload));
		t_payload.tag = TLVID_message_payload;
		t_payload.length = (uint16_t)c->payload_len;
		memcpy(t_payload.value.octet, c->payload, c->payload_len);
		t_payload.next = head;
		head = &t_payload;
	}
	if (c->session >= 0) {
		memset(&t_sess, 0, sizeof(t_sess));
		t_sess.tag = TLVID_its_session_info;
		t_sess.length = 2;
		t_sess.value.val16 = (uint16_t)c->session;
		t_sess.next = head;
		head = &t_sess;
	}
	if (c->ussd_op >= 0) {
		/* Not in libsmpp34's deliver_sm table: packed as octets, one byte. */
		memset(&t_op, 0, sizeof(t_op));
		t_op.tag = TLVID_ussd_service_op;
		t_op.length = 1;
		t_op.value.octet[0] = (uint8_t)c->ussd_op;
		t_op.next = head;
		head = &t_op;
	}
	d.tlv = head;
	char mfrom[32];
	if (!pdu_send(s, DELIVER_SM, &d)) {
		mo_finish(c, "connection_lost", 0, d.sequence_number);
		return;
	}
	*f = (struct inflight){.used = true, .seq = d.sequence_number, .sess_id = s->id, .sent_ms = mono_ms(), .mo = c};
	pthread_mutex_lock(&g.mu);
	g.st.mo_sent++;
	pthread_mutex_unlock(&g.mu);
	hf_log(HF_LOG_INFO, PLACE, "msg=\"mo sent\" conn=%llu seq=%u from=%s ussd_service_op=%d", (unsigned long long)s->id,
	       d.sequence_number, masked(c->from, mfrom), c->ussd_op);
}

static void receipt_send(struct receipt *r)
{
	struct sess *s = sess_receiver();
	struct inflight *f = s ? inflight_slot() : NULL;
	if (!s || !f) {
		/* Nobody to take it (Kannel away) or the window is full: an SMSC keeps receipts and tries later. */
		r->due_ms = mono_ms() + (s ? 100 : 500);
		heap_push(r);
		return;
	}
	char done[11], body[SM_MAX + 1];
	utc_stamp(done);
	int n = snprintf(body, sizeof(body),
			 "id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s", r->msg_id,
			 r->stat->state == 2 ? "001" : "000", r->submit_date, done, r->stat->stat, r->stat->err, r->text);
	HF_ASSERT(n > 0 && (size_t)n < sizeof(body));
	deliver_sm_t d;
	memset(&d, 0, sizeof(d));
	d.command_id = DELIVER_SM;
	d.sequence_number = next_seq();
	d.source_addr_ton = r->src_ton;
	d.source_addr_npi = r->src_npi;
	hf_strlcpy((char *)d.source_addr, r->src, sizeof(d.source_addr));
	d.dest_addr_ton = r->dst_ton;
	d.dest_addr_npi = r->dst_npi;
	hf_strlcpy((char *)d.destination_addr, r->dst, sizeof(d.destination_addr));
	d.esm_class = 0x04; /* SMSC delivery receipt */
	d.data_coding = 0;
	d.sm_length = (uint8_t)n;
	memcpy(d.short_message, body, (size_t)n);
	tlv_t t_id, t_state;
	memset(&t_id, 0, sizeof(t_id));
	memset(&t_state, 0, sizeof(t_state));
	t_id.tag = TLVID_receipted_message_id;
	t_id.length = (uint16_t)(strlen(r->msg_id) + 1); /* a C-octet string: the NUL counts */
	memcpy(t_id.value.octet, r->msg_id, t_id.length);
	t_state.tag = TLVID_message_state;
	t_state.length = 1;
	t_state.value.val08 = r->stat->state;
	t_id.next = &t_state;
	d.tlv = &t_id;
	if (!pdu_send(s, DELIVER_SM, &d)) {
		receipt_retry(r, false);
		return;
	}
	*f = (struct inflight){.used = true, .seq = d.sequence_number, .sess_id = s->id, .sent_ms = mono_ms(), .rc = r};
	pthread_mutex_lock(&g.mu);
	g.st.receipts_sent++;
	pthread_mutex_unlock(&g.mu);
	hf_log(HF_LOG_DEBUG, PLACE, "msg=\"receipt sent\" conn=%llu message_id=%s stat=%s", (unsigned long long)s->id,
	       r->msg_id, r->stat->stat);
}

/* ---- the SMPP thread's loop ----------------------------------------------------------------------------- */

static void wake(void)
{
	uint64_t one = 1;
	if (write(g.wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one) && errno != EAGAIN)
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot wake the SMPP thread\" errno=%d", errno);
}

static void timers(int64_t now)
{
	while (g.nheap && g.heap[0]->due_ms <= now)
		receipt_send(heap_pop());
	for (size_t i = 0; i < INFLIGHT_MAX; i++) {
		struct inflight *f = &g.inflight[i];
		if (!f->used || now - f->sent_ms < INFLIGHT_TIMEOUT_MS)
			continue;
		f->used = false;
		if (f->mo)
			mo_finish(f->mo, "timeout", 0, f->seq);
		else if (f->rc)
			receipt_retry(f->rc, true);
	}
	for (size_t i = 0; i < CONNS_MAX; i++) {
		struct sess *s = &g.sess[i];
		if (s->fd >= 0 && s->mode == UNBOUND && now - s->opened_ms > BIND_DEADLINE_MS)
			sess_close(s, "no_bind");
	}
	receipts_count();
}

static void *smpp_main(void *arg)
{
	(void)arg;
	struct pollfd pfd[CONNS_MAX + 2];
	struct sess *who[CONNS_MAX + 2];
	uint64_t ids[CONNS_MAX + 2];
	for (;;) {
		pthread_mutex_lock(&g.mu);
		bool stop = g.stop;
		struct mo_cmd *mo = g.mo_head;
		g.mo_head = g.mo_tail = NULL;
		g.mo_queued = 0;
		pthread_mutex_unlock(&g.mu);
		while (mo) {
			struct mo_cmd *next = mo->next;
			if (stop)
				mo_finish(mo, "stopping", 0, 0);
			else
				mo_dispatch(mo);
			mo = next;
		}
		if (stop)
			break;
		int64_t now = mono_ms();
		timers(now);
		for (size_t i = 0; i < CONNS_MAX; i++) {
			struct sess *s = &g.sess[i];
			if (s->fd >= 0 && s->closing && s->out_off == s->out.len)
				sess_close(s, "unbind");
		}
		int timeout = 1000;
		if (g.nheap) {
			int64_t d = g.heap[0]->due_ms - now;
			timeout = d < 0 ? 0 : d < timeout ? (int)d : timeout;
		}
		nfds_t n = 0;
		pfd[n] = (struct pollfd){.fd = g.wake_fd, .events = POLLIN};
		ids[n] = 0;
		who[n++] = NULL;
		pfd[n] = (struct pollfd){.fd = g.listen_fd, .events = POLLIN};
		ids[n] = 0;
		who[n++] = NULL;
		for (size_t i = 0; i < CONNS_MAX; i++) {
			struct sess *s = &g.sess[i];
			if (s->fd < 0)
				continue;
			pfd[n] = (struct pollfd){.fd = s->fd,
						 .events = (short)(POLLIN | (s->out_off < s->out.len ? POLLOUT : 0))};
			ids[n] = s->id;
			who[n++] = s;
		}
		int r = poll(pfd, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			hf_log(HF_LOG_ERROR, PLACE, "msg=\"poll failed\" errno=%d", errno);
			break;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;
			while (read(g.wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
				;
		}
		if (pfd[1].revents & POLLIN)
			sess_accept();
		for (nfds_t i = 2; i < n; i++) {
			struct sess *s = who[i];
			if (s->fd < 0 || s->id != ids[i])
				continue; /* closed meanwhile */
			if (pfd[i].revents & POLLOUT)
				sess_flush(s);
			if (s->fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				sess_read(s);
		}
	}
	for (size_t i = 0; i < CONNS_MAX; i++)
		sess_close(&g.sess[i], "stopping");
	for (size_t i = 0; i < INFLIGHT_MAX; i++) {
		struct inflight *f = &g.inflight[i];
		if (!f->used)
			continue;
		f->used = false;
		if (f->mo)
			mo_finish(f->mo, "stopping", 0, f->seq);
		free(f->rc);
	}
	while (g.nheap)
		free(heap_pop());
	free(g.heap);
	return NULL;
}

/* ---- switches from JSON (control threads and start-up) -------------------------------------------------- */

static bool int_of(json_t *v, int64_t min, int64_t max, int64_t *out)
{
	if (!json_is_integer(v))
		return false;
	json_int_t x = json_integer_value(v);
	if (x < min || x > max)
		return false;
	*out = x;
	return true;
}

/* Parses one receipt-status map {"254700000001": "UNDELIV", ...} into a sorted table (owned by the caller). */
static bool byto_parse(json_t *v, struct byto **out, size_t *out_n)
{
	*out = NULL;
	*out_n = 0;
	if (json_is_null(v))
		return true;
	if (!json_is_object(v) || json_object_size(v) > BYTO_MAX)
		return false;
	struct byto *t = hf_xcalloc(json_object_size(v) + 1, sizeof(*t));
	size_t n = 0;
	const char *to;
	json_t *sv;
	json_object_foreach(v, to, sv) {
		const char *s = json_string_value(sv);
		const char *bare = to[0] == '+' ? to + 1 : to;
		if (!s || !addr_valid(bare) || !hf_strlcpy(t[n].to, bare, sizeof(t[n].to)) ||
		    (strcmp(s, "none") != 0 && !(t[n].stat = rstat_find(s)))) {
			free(t);
			return false;
		}
		n++;
	}
	qsort(t, n, sizeof(*t), byto_cmp);
	*out = t;
	*out_n = n;
	return true;
}

/* Applies the keys present in o to the switches, all or nothing; err says what was wrong. Takes g.mu. */
static hf_err cfg_apply(json_t *o, struct hf_buf *err)
{
	pthread_mutex_lock(&g.mu);
	struct sim_cfg next = g.cfg;
	bool byto_given = false;
	struct byto *byto = NULL;
	size_t nbyto = 0;
	hf_err e = HF_OK;
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		bool ok = true;
		if (strcmp(key, "dlr_stat") == 0) {
			const char *s = json_string_value(v);
			if (s && strcmp(s, "none") == 0)
				next.dlr_stat = NULL;
			else
				ok = s && (next.dlr_stat = rstat_find(s)) != NULL;
		} else if (strcmp(key, "dlr_delay_ms") == 0) {
			ok = int_of(v, 0, DELAY_MAX_MS, &next.dlr_delay_ms);
		} else if (strcmp(key, "throttle_every_n") == 0) {
			ok = int_of(v, 0, SWITCH_MAX, &next.throttle_every_n);
		} else if (strcmp(key, "throttle_above_per_s") == 0) {
			ok = int_of(v, 0, SWITCH_MAX, &next.throttle_above_per_s);
		} else if (strcmp(key, "reject_every_n") == 0) {
			ok = int_of(v, 0, SWITCH_MAX, &next.reject_every_n);
		} else if (strcmp(key, "reject_status") == 0) {
			int64_t x = 0;
			ok = false;
			if (int_of(v, 1, 0xFF, &x))
				for (size_t i = 0; i < HF_ARRAY_LEN(REJECT_STATUSES); i++)
					ok = ok || REJECT_STATUSES[i].code == (uint32_t)x;
			if (ok)
				next.reject_status = (uint32_t)x;
		} else if (strcmp(key, "dlr_stat_by_to") == 0) {
			free(byto);
			byto_given = true;
			ok = byto_parse(v, &byto, &nbyto);
		} else {
			hf_buf_note(err, "unknown switch '%s'", key);
			e = HF_EINVAL;
			break;
		}
		if (!ok) {
			hf_buf_note(err, "bad value for '%s'", key);
			e = HF_EINVAL;
			break;
		}
	}
	if (!e) {
		if (byto_given) {
			free(g.cfg.byto);
			next.byto = byto;
			next.nbyto = nbyto;
			byto = NULL;
		}
		g.cfg = next;
	}
	pthread_mutex_unlock(&g.mu);
	free(byto);
	return e;
}

static const char *reject_status_name(uint32_t code)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(REJECT_STATUSES); i++)
		if (REJECT_STATUSES[i].code == code)
			return REJECT_STATUSES[i].name;
	return "?";
}

/* Under g.mu. */
static json_t *cfg_json(void)
{
	json_t *byto = json_object();
	for (size_t i = 0; i < g.cfg.nbyto; i++)
		json_object_set_new(byto, g.cfg.byto[i].to, json_string(g.cfg.byto[i].stat ? g.cfg.byto[i].stat->stat : "none"));
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:o}", "dlr_stat", g.cfg.dlr_stat ? g.cfg.dlr_stat->stat : "none",
			 "dlr_delay_ms", (json_int_t)g.cfg.dlr_delay_ms, "throttle_every_n", (json_int_t)g.cfg.throttle_every_n,
			 "throttle_above_per_s", (json_int_t)g.cfg.throttle_above_per_s, "reject_every_n",
			 (json_int_t)g.cfg.reject_every_n, "reject_status", (json_int_t)g.cfg.reject_status,
			 "reject_status_name", reject_status_name(g.cfg.reject_status), "dlr_stat_by_to", byto);
}

/* ---- the control listener --------------------------------------------------------------------------------- */

struct out {
	int status;
	json_t *body; /* owned */
};

static void out_set(struct out *o, int status, json_t *body)
{
	o->status = status;
	json_decref(o->body);
	o->body = body ? body : json_pack("{s:s}", "error", "cannot render the answer");
	if (!body)
		o->status = 500;
}

static void out_error(struct out *o, int status, const char *message)
{
	out_set(o, status, json_pack("{s:s}", "error", message));
}

static json_t *stats_json(void)
{
	pthread_mutex_lock(&g.mu);
	const struct stats *s = &g.st;
	json_t *v = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
			      " s:I, s:I, s:I, s:I, s:I}",
			      "connections", (json_int_t)s->connections, "refused_connections",
			      (json_int_t)s->refused_connections, "binds_ok", (json_int_t)s->binds_ok, "binds_failed",
			      (json_int_t)s->binds_failed, "unbinds", (json_int_t)s->unbinds, "enquire_links",
			      (json_int_t)s->enquire_links, "bad_pdus", (json_int_t)s->bad_pdus, "submits",
			      (json_int_t)s->submits, "accepted", (json_int_t)s->accepted, "throttled",
			      (json_int_t)s->throttled, "rejected", (json_int_t)s->rejected, "receipts_sent",
			      (json_int_t)s->receipts_sent, "receipts_acked", (json_int_t)s->receipts_acked,
			      "receipts_refused", (json_int_t)s->receipts_refused, "receipts_dropped",
			      (json_int_t)s->receipts_dropped, "receipts_pending", (json_int_t)s->receipts_pending, "mo_sent",
			      (json_int_t)s->mo_sent, "mo_acked", (json_int_t)s->mo_acked, "mo_refused",
			      (json_int_t)s->mo_refused, "mo_failed", (json_int_t)s->mo_failed, "bound_tx",
			      (json_int_t)s->bound_tx, "bound_rx", (json_int_t)s->bound_rx, "mo_queued",
			      (json_int_t)g.mo_queued);
	pthread_mutex_unlock(&g.mu);
	return v;
}

static bool mo_addr(json_t *req, const char *key, char out[ADDR_MAX + 1], uint8_t *ton, uint8_t *npi, bool subscriber)
{
	const char *s = json_string_value(json_object_get(req, key));
	if (!s)
		return false;
	bool plus = s[0] == '+';
	const char *bare = plus ? s + 1 : s;
	if (!addr_valid(bare) || !hf_strlcpy(out, bare, ADDR_MAX + 1))
		return false;
	bool digits = strspn(bare, "0123456789") == strlen(bare);
	/* A subscriber's number goes as international (Kannel then gives it a '+'); a short code or USSD string
	 * as unknown; letters as alphanumeric. Overridable with from_ton/to_ton and *_npi. */
	if (!digits && strspn(bare, "0123456789*#") != strlen(bare)) {
		*ton = 5;
		*npi = 0;
	} else if (subscriber || plus) {
		*ton = 1;
		*npi = 1;
	} else {
		*ton = 0;
		*npi = 1;
	}
	char k[16];
	int64_t x;
	snprintf(k, sizeof(k), "%s_ton", key);
	json_t *v = json_object_get(req, k);
	if (v) {
		if (!int_of(v, 0, 6, &x))
			return false;
		*ton = (uint8_t)x;
	}
	snprintf(k, sizeof(k), "%s_npi", key);
	v = json_object_get(req, k);
	if (v) {
		if (!int_of(v, 0, 18, &x))
			return false;
		*npi = (uint8_t)x;
	}
	return true;
}

/* POST /mo {"from","to","text"[,"coding":"auto|gsm|ucs2"][,"ussd_service_op":N][,"its_session_info":N]
 *           [,"service_type":S][,"esm_class":N][,"wait_ms":N][,"from_ton":N,...]} */
static void ctl_mo(json_t *req, struct out *o)
{
	static const char *const allowed[] = {"from", "to", "text", "coding", "ussd_service_op", "its_session_info",
					      "service_type", "esm_class", "wait_ms", "from_ton", "from_npi", "to_ton",
					      "to_npi", NULL};
	const char *key;
	json_t *v;
	json_object_foreach(req, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			ok = ok || strcmp(allowed[i], key) == 0;
		if (!ok) {
			out_error(o, 400, "unknown field");
			return;
		}
	}
	struct mo_cmd *c = hf_xcalloc(1, sizeof(*c));
	c->ussd_op = -1;
	c->session = -1;
	int64_t x, wait_ms = MO_WAIT_DEFAULT_MS;
	const char *text = json_string_value(json_object_get(req, "text"));
	const char *coding = json_string_value(json_object_get(req, "coding"));
	const char *stype = json_string_value(json_object_get(req, "service_type"));
	const char *bad = NULL;
	if (!mo_addr(req, "from", c->from, &c->from_ton, &c->from_npi, true))
		bad = "from must be 1-20 of [0-9A-Za-z*#], a leading + allowed";
	else if (!mo_addr(req, "to", c->to, &c->to_ton, &c->to_npi, false))
		bad = "to must be 1-20 of [0-9A-Za-z*#], a leading + allowed";
	else if (!text || json_string_length(json_object_get(req, "text")) > TEXT_IN_MAX)
		bad = "text must be a string of at most 4096 bytes";
	else if (coding && strcmp(coding, "auto") != 0 && strcmp(coding, "gsm") != 0 && strcmp(coding, "ucs2") != 0)
		bad = "coding must be auto, gsm or ucs2";
	else if ((v = json_object_get(req, "ussd_service_op")) && !json_is_null(v) && !int_of(v, 0, 255, &x))
		bad = "ussd_service_op must be 0-255";
	else if ((v = json_object_get(req, "its_session_info")) && !json_is_null(v) && !int_of(v, 0, 0xFFFF, &x))
		bad = "its_session_info must be 0-65535 (two bytes, big-endian)";
	else if (stype && strlen(stype) > 5)
		bad = "service_type is at most 5 characters";
	else if ((v = json_object_get(req, "esm_class")) && !int_of(v, 0, 255, &x))
		bad = "esm_class must be 0-255";
	else if ((v = json_object_get(req, "wait_ms")) && !int_of(v, 0, MO_WAIT_MAX_MS, &wait_ms))
		bad = "wait_ms must be 0-30000";
	if (!bad) {
		size_t tl = json_string_length(json_object_get(req, "text"));
		uint8_t enc[PAYLOAD_MAX];
		size_t n = 0;
		if (!text_encode(text, tl, coding ? coding : "auto", enc, sizeof(enc), &n, &c->data_coding)) {
			bad = "text does not fit one MO (1024 bytes encoded) or has a NUL";
		} else if (n <= SM_MAX) {
			memcpy(c->sm, enc, n);
			c->sm_len = n;
		} else {
			memcpy(c->payload, enc, n);
			c->payload_len = n;
		}
	}
	if (bad) {
		free(c);
		out_error(o, 400, bad);
		return;
	}
	if ((v = json_object_get(req, "ussd_service_op")) && int_of(v, 0, 255, &x))
		c->ussd_op = (int)x;
	if ((v = json_object_get(req, "its_session_info")) && int_of(v, 0, 0xFFFF, &x))
		c->session = (int32_t)x;
	if ((v = json_object_get(req, "esm_class")) && int_of(v, 0, 255, &x))
		c->esm_class = (uint8_t)x;
	hf_strlcpy(c->service_type, stype ? stype : c->ussd_op >= 0 ? "USSD" : "", sizeof(c->service_type));

	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->refs = 2;
	pthread_mutex_lock(&g.mu);
	if (g.stop || g.mo_queued >= MO_QUEUE_MAX) {
		bool stopping = g.stop;
		pthread_mutex_unlock(&g.mu);
		pthread_cond_destroy(&c->cv);
		free(c);
		out_error(o, 503, stopping ? "stopping" : "too many MO waiting");
		return;
	}
	if (g.mo_tail)
		g.mo_tail->next = c;
	else
		g.mo_head = c;
	g.mo_tail = c;
	g.mo_queued++;
	pthread_mutex_unlock(&g.mu);
	wake();

	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	int64_t ns = dl.tv_nsec + (wait_ms % 1000) * 1000000;
	dl.tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000);
	dl.tv_nsec = (long)(ns % 1000000000);
	pthread_mutex_lock(&g.mu);
	while (!c->done)
		if (pthread_cond_timedwait(&c->cv, &g.mu, &dl) == ETIMEDOUT)
			break;
	bool done = c->done;
	const char *outcome = c->outcome;
	uint32_t status = c->status, seq = c->seq;
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&g.mu);
	if (last) {
		pthread_cond_destroy(&c->cv);
		free(c);
	}
	if (!done) {
		out_set(o, 202, json_pack("{s:s}", "outcome", "pending")); /* sent, or about to be; no answer yet */
		return;
	}
	int http = strcmp(outcome, "acked") == 0 || strcmp(outcome, "refused") == 0 ? 200
		   : strcmp(outcome, "timeout") == 0				     ? 504
										     : 503;
	out_set(o, http, json_pack("{s:s, s:I, s:I}", "outcome", outcome, "status", (json_int_t)status, "seq",
				   (json_int_t)seq));
}

static bool client_is_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr || ci->client_addr->sa_family != AF_INET)
		return false;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)ci->client_addr;
	return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
}

static void route(struct MHD_Connection *conn, const char *method, const char *url, const char *body, size_t len,
		  struct out *o)
{
	bool post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
	if (!client_is_loopback(conn)) {
		out_error(o, 403, "the control listener answers loopback clients only");
		return;
	}
	json_t *req = NULL;
	if (post) {
		req = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(req)) {
			json_decref(req);
			out_error(o, 400, "the body must be one JSON object");
			return;
		}
	}
	if (strcmp(url, "/health") == 0 && get) {
		pthread_mutex_lock(&g.mu);
		json_t *v = json_pack("{s:b, s:I, s:I}", "ok", 1, "bound_tx", (json_int_t)g.st.bound_tx, "bound_rx",
				      (json_int_t)g.st.bound_rx);
		pthread_mutex_unlock(&g.mu);
		out_set(o, 200, v);
	} else if (strcmp(url, "/stats") == 0 && get) {
		out_set(o, 200, stats_json());
	} else if (strcmp(url, "/config") == 0 && (get || post)) {
		struct hf_buf err;
		hf_buf_init(&err, 256);
		if (post && cfg_apply(req, &err) != HF_OK) {
			out_error(o, 400, hf_buf_cstr(&err));
		} else {
			pthread_mutex_lock(&g.mu);
			json_t *v = cfg_json();
			pthread_mutex_unlock(&g.mu);
			out_set(o, 200, v);
			if (post)
				hf_log(HF_LOG_INFO, PLACE, "msg=\"switches changed\"");
		}
		hf_buf_release(&err);
	} else if (strcmp(url, "/mo") == 0 && post) {
		ctl_mo(req, o);
	} else {
		out_error(o, 404, "no such control endpoint (GET /health, GET /stats, GET|POST /config, POST /mo)");
	}
	json_decref(req);
}

struct conn_state {
	struct hf_buf body;
	bool too_big;
	uint64_t discarded;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct conn_state *st = *con_cls;
	if (!st) {
		st = hf_xcalloc(1, sizeof(*st));
		hf_buf_init(&st->body, BODY_MAX);
		*con_cls = st;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!st->too_big && hf_buf_append(&st->body, upload_data, *upload_data_size) != HF_OK)
			st->too_big = true;
		/* An oversize body is read and dropped so that the client sees the 413, up to a point. */
		if (st->too_big && (st->discarded += *upload_data_size) > 16 * (uint64_t)BODY_MAX)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	struct out o = {.status = 500, .body = NULL};
	if (st->too_big)
		out_error(&o, 413, "request body larger than 64 KiB");
	else
		route(conn, method, url, st->body.data ? st->body.data : "", st->body.len, &o);
	struct hf_buf b;
	hf_buf_init(&b, RESP_MAX);
	if (hf_json_dump(o.body, &b) != HF_OK || hf_buf_append_str(&b, "\n") != HF_OK) {
		hf_buf_reset(&b);
		HF_ASSERT(hf_buf_append_str(&b, "{\"error\":\"answer too large\"}\n") == HF_OK);
		o.status = 500;
	}
	json_decref(o.body);
	size_t blen = b.len;
	char *data = hf_buf_steal(&b);
	struct MHD_Response *r = MHD_create_response_from_buffer(blen, data, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)o.status, r);
	MHD_destroy_response(r);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct conn_state *st = *con_cls;
	if (!st)
		return;
	hf_buf_release(&st->body);
	free(st);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) HF_PRINTF(2, 0);
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (msg[i] == '"')
			msg[i] = '\'';
	hf_log(HF_LOG_WARN, PLACE, "msg=\"microhttpd: %s\"", msg);
}

/* ---- start-up ------------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hifadhi-smppsim --port N --control-port N --mt-log FILE [--bind 127.0.0.1]\n"
		"                       [--system-id hifadhi] [--password hf-sim] [--max-conns 8] [--config FILE.json]\n"
		"                       [--dlr-stat DELIVRD|UNDELIV|REJECTD|EXPIRED|none] [--dlr-delay-ms N]\n"
		"                       [--throttle-every-n N] [--throttle-above-per-s N] [--reject-every-n N]\n"
		"                       [--reject-status N] [--log-level debug|info|warn|error]\n"
		"\n"
		"An SMPP 3.4 SMSC for tests (docs/smppsim.md): SMPP on --port, a JSON control listener on\n"
		"--control-port (GET /health, GET /stats, GET|POST /config, POST /mo), every MT appended to --mt-log\n"
		"as one JSON line. Port 0 picks a free one; the line \"smppsim listening on smpp ADDR:PORT control\n"
		"ADDR:PORT\" on stderr says which, once both listen. SIGTERM or SIGINT stops it.\n");
}

static int listen_smpp(const struct sockaddr_in *sa, uint16_t *out_port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in got;
	socklen_t gl = sizeof(got);
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&got, &gl) != 0) {
		close(fd);
		return -1;
	}
	*out_port = ntohs(got.sin_port);
	return fd;
}

int main(int argc, char **argv)
{
	const char *bind_addr = "127.0.0.1", *mt_log = NULL, *config_file = NULL, *level = "info";
	const char *system_id = "hifadhi", *password = "hf-sim";
	int64_t port = -1, cport = -1, max_conns = CONNS_DEFAULT;
	json_t *switches = json_object();
	int rc = 2;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			json_decref(switches);
			return 0;
		}
		if (i + 1 >= argc)
			goto bad_usage;
		const char *v = argv[++i];
		int64_t x = 0;
		if (strcmp(a, "--port") == 0) {
			if (hf_parse_i64(v, 0, 65535, &port))
				goto bad_usage;
		} else if (strcmp(a, "--control-port") == 0) {
			if (hf_parse_i64(v, 0, 65535, &cport))
				goto bad_usage;
		} else if (strcmp(a, "--max-conns") == 0) {
			if (hf_parse_i64(v, 1, CONNS_MAX, &max_conns))
				goto bad_usage;
		} else if (strcmp(a, "--bind") == 0) {
			bind_addr = v;
		} else if (strcmp(a, "--mt-log") == 0) {
			mt_log = v;
		} else if (strcmp(a, "--config") == 0) {
			config_file = v;
		} else if (strcmp(a, "--system-id") == 0) {
			system_id = v;
		} else if (strcmp(a, "--password") == 0) {
			password = v;
		} else if (strcmp(a, "--log-level") == 0) {
			level = v;
		} else if (strcmp(a, "--dlr-stat") == 0) {
			json_object_set_new(switches, "dlr_stat", json_string(v));
		} else if (strcmp(a, "--dlr-delay-ms") == 0 || strcmp(a, "--throttle-every-n") == 0 ||
			   strcmp(a, "--throttle-above-per-s") == 0 || strcmp(a, "--reject-every-n") == 0 ||
			   strcmp(a, "--reject-status") == 0) {
			if (hf_parse_i64(v, 0, SWITCH_MAX, &x))
				goto bad_usage;
			char key[32];
			hf_strlcpy(key, a + 2, sizeof(key));
			for (char *p = key; *p; p++)
				if (*p == '-')
					*p = '_';
			json_object_set_new(switches, key, json_integer((json_int_t)x));
		} else {
			goto bad_usage;
		}
	}
	enum hf_log_level lv;
	if (port < 0 || cport < 0 || !mt_log || !hf_log_level_parse(level, &lv))
		goto bad_usage;
	hf_log_set_level(lv);
	if (!*system_id || strlen(system_id) > 15 || !*password || strlen(password) > 8) {
		fprintf(stderr, "hifadhi-smppsim: --system-id is 1-15 characters and --password 1-8 (SMPP 3.4 limits)\n");
		goto out;
	}
	hf_strlcpy(g.system_id, system_id, sizeof(g.system_id));
	hf_strlcpy(g.password, password, sizeof(g.password));
	g.max_conns = (size_t)max_conns;
	g.cfg = (struct sim_cfg){.dlr_stat = &RSTATS[0], .reject_status = ESME_RSUBMITFAIL};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in csa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cport)};
	if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1 || inet_pton(AF_INET, bind_addr, &csa.sin_addr) != 1) {
		fprintf(stderr, "hifadhi-smppsim: --bind must be a numeric IPv4 address\n");
		goto out;
	}
	rc = 1;
	struct hf_buf err;
	hf_buf_init(&err, 512);
	if (config_file) {
		struct hf_buf b;
		hf_err e = hf_file_read(config_file, BODY_MAX, false, &b);
		json_t *file = e ? NULL : json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, NULL);
		hf_buf_release(&b);
		if (!json_is_object(file) || cfg_apply(file, &err) != HF_OK) {
			fprintf(stderr, "hifadhi-smppsim: config %s: %s\n", config_file,
				err.len ? hf_buf_cstr(&err) : "unreadable, or not one JSON object");
			json_decref(file);
			hf_buf_release(&err);
			goto out;
		}
		json_decref(file);
	}
	if (cfg_apply(switches, &err) != HF_OK) {
		fprintf(stderr, "hifadhi-smppsim: %s\n", hf_buf_cstr(&err));
		hf_buf_release(&err);
		goto out;
	}
	hf_buf_release(&err);
	g.mt_fd = open(mt_log, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (g.mt_fd < 0) {
		fprintf(stderr, "hifadhi-smppsim: cannot open the MT log %s: %s\n", mt_log, strerror(errno));
		goto out;
	}
	/* A restarted simulator goes on numbering where the log ends: "n" is the record's line number. */
	for (;;) {
		char chunk[65536];
		ssize_t r = read(g.mt_fd, chunk, sizeof(chunk));
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			g.mt_records += chunk[i] == '\n';
	}
	for (size_t i = 0; i < CONNS_MAX; i++)
		g.sess[i].fd = -1;
	uint8_t tag[2];
	hf_random_bytes(tag, sizeof(tag));
	g.id_prefix = (uint16_t)(tag[0] << 8 | tag[1]); /* message ids of two runs never collide in Kannel's DLR store */
	uint16_t smpp_port = 0;
	g.listen_fd = listen_smpp(&sa, &smpp_port);
	g.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g.listen_fd < 0 || g.wake_fd < 0) {
		fprintf(stderr, "hifadhi-smppsim: cannot listen on %s:%lld: %s\n", bind_addr, (long long)port, strerror(errno));
		goto out;
	}

	/* Signals are taken by this thread with sigwait; every thread started below inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
			MHD_USE_ITC,
		(uint16_t)cport, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&csa, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
		MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024),
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 64u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "hifadhi-smppsim: cannot listen on %s:%lld (control)\n", bind_addr, (long long)cport);
		goto out;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned real_cport = di ? di->port : (unsigned)cport;
	pthread_t smpp_thread;
	HF_ASSERT(pthread_create(&smpp_thread, NULL, smpp_main, NULL) == 0);
	hf_log(HF_LOG_INFO, PLACE, "msg=\"started\" smpp_port=%u control_port=%u max_conns=%zu", smpp_port, real_cport,
	       g.max_conns);
	fprintf(stderr, "smppsim listening on smpp %s:%u control %s:%u\n", bind_addr, smpp_port, bind_addr, real_cport);
	int sig = 0;
	sigwait(&set, &sig);
	hf_log(HF_LOG_INFO, PLACE, "msg=\"stopping\" signal=%d", sig);
	pthread_mutex_lock(&g.mu);
	g.stop = true;
	pthread_mutex_unlock(&g.mu);
	wake();
	pthread_join(smpp_thread, NULL);
	MHD_stop_daemon(d);
	hf_log(HF_LOG_INFO, PLACE, "msg=\"stopped\"");
	rc = 0;
	goto out;

bad_usage:
	usage(stderr);
	rc = 2;
out:
	json_decref(switches);
	pthread_mutex_lock(&g.mu);
	cfg_release(&g.cfg);
	pthread_mutex_unlock(&g.mu);
	if (g.mt_fd >= 0)
		close(g.mt_fd);
	if (g.listen_fd >= 0)
		close(g.listen_fd);
	if (g.wake_fd >= 0)
		close(g.wake_fd);
	return rc;
}
