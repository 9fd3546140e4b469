/* receipt.c - ESC/POS bytes of a collection receipt, printing them, and reading them back (see receipt.h).
 *
 * Only a small, widely supported subset of ESC/POS is emitted (Epson's command reference):
 *   ESC @            initialise (clears a half-received command left by a previous job)
 *   ESC a n          justification (0 left, 1 centre)
 *   ESC E n          emphasis (bold) on/off
 *   ESC d n          print and feed n lines
 *   GS ( k           2D code, function 165 (QR): model 2 (fn 65), module size (fn 67), error correction M
 *                    (fn 69, 49), store the data (fn 80, pL pH = data length + 3), print it (fn 81)
 *   GS V 66 n        feed to the cutter and cut (partial cut where the printer has one)
 * The decoder accepts exactly this subset, so a change on one side shows up in the tests of the other.
 */
#include "hf_base.h"
#include "receipt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf_log.h"

#define PLACE "kiosk.receipt"

#define ESC 0x1b
#define GS 0x1d
#define LF 0x0a

/* A field longer than this is a caller's mistake (a thermal line holds 32 to 48 characters; the printer
 * wraps). The QR payload is a short URL; 256 bytes keeps the code small enough to scan off thermal paper. */
#define RECEIPT_FIELD_MAX 128
#define RECEIPT_QR_MAX 256
#define RECEIPT_QR_MODULE 6
/* What the printer device accepts in one write; a receipt is a few hundred bytes. */
#define RECEIPT_BYTES_MAX (64 * 1024)

static bool field_ok(const char *s, size_t max)
{
	if (!s || !*s)
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e || n >= max)
			return false;
	return true;
}

static hf_err put(struct hf_buf *out, const void *p, size_t n)
{
	return hf_buf_append(out, p, n);
}

static hf_err put_line(struct hf_buf *out, const char *label, const char *value)
{
	hf_err err = hf_buf_appendf(out, "%s%s", label, value);
	if (err)
		return err;
	return put(out, (const uint8_t[]){LF}, 1);
}

/* GS ( k pL pH cn fn [params]: cn 49 = QR code. */
static hf_err put_qr_fn(struct hf_buf *out, uint8_t fn, const void *params, size_t n)
{
	size_t plen = n + 2; /* cn and fn count */
	uint8_t head[7] = {GS, '(', 'k', (uint8_t)(plen & 0xff), (uint8_t)(plen >> 8), 49, fn};
	hf_err err = put(out, head, sizeof(head));
	if (err || n == 0)
		return err;
	return put(out, params, n);
}

static hf_err put_qr(struct hf_buf *out, const char *data)
{
	size_t len = strlen(data);
	hf_err err = put_qr_fn(out, 65, (const uint8_t[]){50, 0}, 2); /* model 2 */
	if (!err)
		err = put_qr_fn(out, 67, (const uint8_t[]){RECEIPT_QR_MODULE}, 1);
	if (!err)
		err = put_qr_fn(out, 69, (const uint8_t[]){49}, 1); /* error correction M (15%) */
	if (!err) {
		/* Store: m = 48, then the data; pL pH count cn, fn, m and the data. */
		size_t plen = len + 3;
		uint8_t head[8] = {GS, '(', 'k', (uint8_t)(plen & 0xff), (uint8_t)(plen >> 8), 49, 80, 48};
		err = put(out, head, sizeof(head));
		if (!err)
			err = put(out, data, len);
	}
	if (!err)
		err = put_qr_fn(out, 81, (const uint8_t[]){48}, 1); /* print the stored symbol */
	return err;
}

hf_err receipt_escpos(const struct receipt *r, struct hf_buf *out)
{
	const char *required[] = {r->title, r->receipt_no, r->ben_no, r->amount, r->pay_point, r->kiosk_no, r->when,
				  r->footer};
	for (size_t k = 0; k < HF_ARRAY_LEN(required); k++)
		if (!field_ok(required[k], RECEIPT_FIELD_MAX))
			return HF_EINVAL;
	if ((r->programme && !field_ok(r->programme, RECEIPT_FIELD_MAX)) || !field_ok(r->verify_url, RECEIPT_QR_MAX))
		return HF_EINVAL;

	size_t start = out->len;
	static const uint8_t init[] = {ESC, '@', ESC, 'a', 1, ESC, 'E', 1};
	static const uint8_t title_end[] = {LF, ESC, 'E', 0, ESC, 'a', 0, LF};
	static const uint8_t centre[] = {LF, ESC, 'a', 1};
	static const uint8_t cut[] = {LF, ESC, 'a', 0, ESC, 'd', 3, GS, 'V', 66, 0};
	hf_err err = put(out, init, sizeof(init));
	if (!err)
		err = hf_buf_append_str(out, r->title);
	if (!err)
		err = put(out, title_end, sizeof(title_end));
	if (!err)
		err = put_line(out, "Receipt:   ", r->receipt_no);
	if (!err)
		err = put_line(out, "Ben. no:   ", r->ben_no);
	if (!err && r->programme)
		err = put_line(out, "Programme: ", r->programme);
	if (!err)
		err = put(out, (const uint8_t[]){ESC, 'E', 1}, 3);
	if (!err)
		err = put_line(out, "Amount:    ", r->amount);
	if (!err)
		err = put(out, (const uint8_t[]){ESC, 'E', 0}, 3);
	if (!err)
		err = put_line(out, "Pay point: ", r->pay_point);
	if (!err)
		err = put_line(out, "Kiosk:     ", r->kiosk_no);
	if (!err)
		err = put_line(out, "Date:      ", r->when);
	if (!err)
		err = put(out, centre, sizeof(centre));
	if (!err)
		err = put_qr(out, r->verify_url);
	if (!err)
		err = put(out, (const uint8_t[]){LF}, 1);
	if (!err)
		err = put_line(out, "", r->footer);
	if (!err)
		err = put(out, cut, sizeof(cut));
	if (err) {
		/* Leave out as it was: half a receipt must not be printed by a caller that ignores the error. */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return err;
}

hf_err receipt_print(const char *printer_path, const struct hf_buf *bytes, char *msg, size_t msg_cap)
{
	if (msg && msg_cap)
		msg[0] = '\0';
	if (bytes->len == 0 || bytes->len > RECEIPT_BYTES_MAX) {
		if (msg && msg_cap)
			snprintf(msg, msg_cap, "receipt empty or larger than %d bytes", RECEIPT_BYTES_MAX);
		return HF_EINVAL;
	}
	/* No O_CREAT: a missing /dev/usb/lp0 must be reported, not replaced by a plain file in /dev. */
	int fd = open(printer_path, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (msg && msg_cap)
			snprintf(msg, msg_cap, "%s: %s", e == ENOENT || e == ENODEV || e == ENXIO ? "printer not found"
											      : "printer cannot be opened",
				 strerror(e));
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot open the printer\" errno=%d", e);
		return HF_EDEVICE;
	}
	/* One write: on a regular file with O_APPEND it lands whole and after whatever is there; a printer
	 * device gets the receipt as one job, never interleaved with another. */
	ssize_t w;
	do {
		w = write(fd, bytes->data, bytes->len);
	} while (w < 0 && errno == EINTR);
	int e = w < 0 ? errno : 0;
	const char *why = w < 0 ? "write failed" : (size_t)w != bytes->len ? "short write" : NULL;
	if (!why) {
		/* Character devices (the printer) may not support fsync: EINVAL there is not a failure. */
		struct stat sb;
		if (fsync(fd) != 0 && !(errno == EINVAL && fstat(fd, &sb) == 0 && !S_ISREG(sb.st_mode))) {
			e = errno;
			why = "sync failed";
		}
	}
	if (close(fd) != 0 && !why) {
		e = errno;
		why = "close failed";
	}
	if (why) {
		if (msg && msg_cap)
			snprintf(msg, msg_cap, "printer %s%s%s", why, e ? ": " : "", e ? strerror(e) : "");
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"printing failed\" why=\"%s\" errno=%d", why, e);
		return HF_EDEVICE;
	}
	return HF_OK;
}

hf_err receipt_decode(const void *bytes, size_t len, struct hf_buf *text_out, struct hf_buf *qr_out)
{
	const uint8_t *p = bytes;
	size_t i = 0;
	size_t line_start = text_out->len;
	bool have_qr = false;
	hf_err err = HF_OK;
	while (i < len && !err) {
		uint8_t c = p[i];
		if (c == LF) {
			err = hf_buf_append(text_out, "\n", 1);
			line_start = text_out->len;
			i++;
		} else if (c >= 0x20 && c <= 0x7e) {
			err = hf_buf_append(text_out, &p[i], 1);
			i++;
		} else if (c == ESC) {
			if (i + 1 >= len)
				return HF_EINVAL;
			uint8_t cmd = p[i + 1];
			if (cmd == '@') {
				i += 2;
			} else if (cmd == 'a' || cmd == 'E' || cmd == 'd') {
				if (i + 2 >= len)
					return HF_EINVAL;
				i += 3;
			} else {
				return HF_EINVAL;
			}
		} else if (c == GS) {
			if (i + 1 >= len)
				return HF_EINVAL;
			if (p[i + 1] == 'V') {
				/* GS V 66 n (function B) has an argument after m; GS V 0/1/48/49 do not. */
				if (i + 2 >= len)
					return HF_EINVAL;
				size_t need = p[i + 2] == 65 || p[i + 2] == 66 ? 4 : 3;
				if (len - i < need)
					return HF_EINVAL;
				i += need;
			} else if (p[i + 1] == '(' && i + 6 < len && p[i + 2] == 'k') {
				size_t plen = (size_t)p[i + 3] | ((size_t)p[i + 4] << 8);
				if (plen < 2 || len - (i + 5) < plen || p[i + 5] != 49)
					return HF_EINVAL;
				if (p[i + 6] == 80) { /* store: m = 48, then the data */
					if (plen < 3 || p[i + 7] != 48 || have_qr)
						return HF_EINVAL;
					have_qr = true;
					err = hf_buf_append(qr_out, &p[i + 8], plen - 3);
				}
				i += 5 + plen;
			} else {
				return HF_EINVAL;
			}
		} else {
			return HF_EINVAL;
		}
	}
	if (err)
		return err;
	/* Text after the last LF was never printed (a printer prints a line when it ends). */
	if (text_out->len > line_start) {
		text_out->len = line_start;
		text_out->data[line_start] = '\0';
	}
	return have_qr ? HF_OK : HF_EINVAL;
}
