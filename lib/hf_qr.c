/* hf_qr.c - QR code rendering; the libqrencode adapter (the only file that includes qrencode.h).
 *
 * libqrencode does the encoding (segmenting, Reed-Solomon, masking); this file only draws its module
 * matrix, either as one SVG path or as terminal text, always with the 4-module quiet zone the standard
 * requires: without it phone scanners often fail to find the code next to other page content.
 */
#include "hf_base.h"
#include "hf_qr.h"

#include <errno.h>
#include <string.h>

#include <qrencode.h>

#define QUIET 4

static hf_err encode(const char *text, QRcode **out)
{
	if (!text || !*text)
		return HF_EINVAL;
	if (strnlen(text, HF_QR_TEXT_MAX + 1) > HF_QR_TEXT_MAX)
		return HF_ETOOBIG;
	errno = 0;
	/* Version 0 = the smallest that fits; QR_MODE_8 with case sensitivity keeps every byte as it is. */
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!qr)
		return errno == ERANGE ? HF_ETOOBIG : errno == EINVAL ? HF_EINVAL : HF_EINTERNAL;
	HF_ASSERT(qr->width >= 21 && qr->width <= 177);
	*out = qr;
	return HF_OK;
}

/* Module (x, y) of the symbol is dark (bit 0 of libqrencode's byte; the other bits say what it is for). */
static bool dark(const QRcode *qr, int x, int y)
{
	if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
		return false;
	return qr->data[(size_t)y * (size_t)qr->width + (size_t)x] & 1;
}

static void undo(struct hf_buf *out, size_t start)
{
	if (out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
}

hf_err hf_qr_svg(const char *text, struct hf_buf *out)
{
	QRcode *qr = NULL;
	hf_err err = encode(text, &qr);
	if (err)
		return err;
	size_t start = out->len;
	int w = qr->width, n = w + 2 * QUIET;
	err = hf_buf_appendf(out,
			     "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 %d %d\" "
			     "width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\">\n"
			     "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n<path fill=\"#000\" d=\"",
			     n, n, n * 4, n * 4, n, n);
	/* One subpath per horizontal run of dark modules keeps the path short (about half the size of one
	 * square per module) and leaves no hairline gaps between neighbours when scaled. */
	for (int y = 0; y < w && !err; y++) {
		for (int x = 0; x < w && !err;) {
			if (!dark(qr, x, y)) {
				x++;
				continue;
			}
			int run = 1;
			while (dark(qr, x + run, y))
				run++;
			err = hf_buf_appendf(out, "M%d %dh%dv1h-%dz", x + QUIET, y + QUIET, run, run);
			x += run;
		}
	}
	if (!err)
		err = hf_buf_append_str(out, "\"/>\n</svg>\n");
	if (err)
		undo(out, start);
	QRcode_free(qr);
	return err;
}

hf_err hf_qr_text(const char *text, struct hf_buf *out)
{
	/* Indexed by (top is light) * 2 + (bottom is light): light modules are drawn, dark ones are blank. */
	static const char *const cell[4] = {" ", "\xe2\x96\x84", "\xe2\x96\x80", "\xe2\x96\x88"};
	QRcode *qr = NULL;
	hf_err err = encode(text, &qr);
	if (err)
		return err;
	size_t start = out->len;
	int n = qr->width + 2 * QUIET;
	for (int row = 0; row < n && !err; row += 2) {
		for (int col = 0; col < n && !err; col++) {
			int x = col - QUIET;
			bool top = !dark(qr, x, row - QUIET);
			/* Below the last row there is nothing: leave it as background. */
			bool bottom = row + 1 < n && !dark(qr, x, row + 1 - QUIET);
			err = hf_buf_append_str(out, cell[top * 2 + bottom]);
		}
		if (!err)
			err = hf_buf_append(out, "\n", 1);
	}
	if (err)
		undo(out, start);
	QRcode_free(qr);
	return err;
}
