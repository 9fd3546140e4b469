/* receipt.h - the paper receipt of a collection: ESC/POS for a thermal receipt printer, with a QR code that
 * anyone can scan to check the receipt against core (GET /r/{receipt}?c={check}), so a deduction by an
 * agent is visible.
 *
 * The printer is a device file (/dev/usb/lp0) in production and a plain file in dev; each receipt is
 * written whole with one write and fsync. The QR code is sent as the printer's own QR command
 * (GS ( k, model 2, error correction M), which every ESC/POS printer of the last decade understands.
 * Text is printed in the printer's default code page, so receipts use ASCII only (amounts, numbers, the
 * pay point and short fixed words in the kiosk's language transliterated to ASCII by the caller).
 */
#ifndef KIOSK_RECEIPT_H
#define KIOSK_RECEIPT_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

struct receipt {
	const char *title;	 /* "HIFADHI - PAYMENT RECEIPT" (ASCII) */
	const char *receipt_no;	 /* from core */
	const char *ben_no;
	const char *amount;	 /* formatted, "KES 4,000.00" */
	const char *programme;	 /* may be NULL */
	const char *pay_point;
	const char *kiosk_no;
	const char *when;	 /* "2026-11-28 14:03" local time */
	const char *verify_url;	 /* what the QR code holds */
	const char *footer;	 /* "Keep this receipt. Questions: dial *384#" (ASCII) */
};

/* Appends the ESC/POS bytes of r (init, centred title, lines, QR, feed and cut) to out. HF_EINVAL when a
 * field is missing, empty, longer than 128 characters (the QR payload: 256) or not printable ASCII (a control
 * byte would be a printer command); HF_ETOOBIG when out's cap is hit. On error out is left as it was. */
HF_MUST_CHECK hf_err receipt_escpos(const struct receipt *r, struct hf_buf *out);

/* Writes the bytes to the printer device or file (appending; O_APPEND, one write, fsync). The path must
 * exist (it is never created: a missing /dev/usb/lp0 is reported, not replaced by a file). HF_EDEVICE when
 * the printer is absent or the write fails (msg says why, e.g. "printer not found"); HF_EINVAL for no
 * bytes or more than 64 KiB. The write blocks while a printer device holds it back (paper out). */
HF_MUST_CHECK hf_err receipt_print(const char *printer_path, const struct hf_buf *bytes, char *msg, size_t msg_cap);

/* Extracts, from ESC/POS bytes written by receipt_escpos, the text lines and the QR payload (tests and
 * the dev "printer" viewer use this; it understands only what receipt_escpos emits). */
HF_MUST_CHECK hf_err receipt_decode(const void *bytes, size_t len, struct hf_buf *text_out, struct hf_buf *qr_out);

#endif
