/* test_hf_qr.c - QR codes: the SVG and the terminal text draw exactly libqrencode's modules, with a quiet zone.
 *
 * No QR decoder is installed here, so instead of scanning the output the tests redraw it: the SVG path and
 * the half-block text are read back into a module grid and compared with the matrix libqrencode gives
 * for the same text at the same settings. A code that matches the matrix module for module and has its
 * quiet zone scans as well as libqrencode's own output.
 */
#include "hf_base.h"
#include "hf_qr.h"

#include <stdlib.h>
#include <string.h>

#include <qrencode.h>

#include "hf_test.h"

static const char uri[] = "otpauth://totp/Hifadhi:wanjiru.k?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
			  "&issuer=Hifadhi&algorithm=SHA1&digits=6&period=30";

/* The reference matrix, at the settings hf_qr documents. */
static QRcode *reference(const char *text)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	HF_ASSERT(qr != NULL);
	return qr;
}

static bool ref_dark(const QRcode *qr, int x, int y)
{
	return qr->data[y * qr->width + x] & 1;
}

/* Reads a decimal number at *p and advances past it. */
static int num(const char **p)
{
	int v = 0;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (*(*p)++ - '0');
	return v;
}

/* Paints the runs "MX Yh<run>v1h-<run>z" of the SVG's path into grid (n x n); false if the path has any
 * other shape. */
static bool paint_path(const char *d, const char *end, unsigned char *grid, int n)
{
	const char *p = d;
	while (p < end) {
		if (*p++ != 'M')
			return false;
		int x = num(&p);
		if (*p++ != ' ')
			return false;
		int y = num(&p);
		if (*p++ != 'h')
			return false;
		int run = num(&p);
		if (strncmp(p, "v1h-", 4) != 0)
			return false;
		p += 4;
		if (num(&p) != run || *p++ != 'z')
			return false;
		if (run < 1 || x < 0 || y < 0 || x + run > n || y >= n)
			return false;
		for (int i = 0; i < run; i++)
			grid[y * n + x + i] = 1;
	}
	return p == end;
}

static void check_svg_matches(const char *text)
{
	QRcode *qr = reference(text);
	int w = qr->width, n = w + 8;
	struct hf_buf b;
	hf_buf_init(&b, 256 * 1024);
	if (!HF_CHECK(hf_qr_svg(text, &b) == HF_OK))
		goto out;
	const char *s = hf_buf_cstr(&b);
	HF_CHECK(strncmp(s, "<svg", 4) == 0);
	HF_CHECK(strstr(s, "xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
	HF_CHECK(strstr(s, "shape-rendering=\"crispEdges\"") != NULL);
	HF_CHECK(b.len >= 7 && strcmp(s + b.len - 7, "</svg>\n") == 0);
	char vb[64];
	snprintf(vb, sizeof(vb), "viewBox=\"0 0 %d %d\"", n, n);
	HF_CHECK_MSG(strstr(s, vb) != NULL, "no %s", vb);

	/* Exactly one path. */
	const char *path = strstr(s, "<path");
	if (!HF_CHECK(path != NULL))
		goto out;
	HF_CHECK(strstr(path + 1, "<path") == NULL);
	const char *d = strstr(path, " d=\"");
	if (!HF_CHECK(d != NULL))
		goto out;
	d += 4;
	const char *end = strchr(d, '"');
	if (!HF_CHECK(end != NULL))
		goto out;
	unsigned char *grid = calloc((size_t)n * (size_t)n, 1);
	HF_ASSERT(grid != NULL);
	if (HF_CHECK(paint_path(d, end, grid, n))) {
		unsigned wrong = 0;
		for (int y = 0; y < n; y++)
			for (int x = 0; x < n; x++) {
				bool in = x >= 4 && y >= 4 && x < w + 4 && y < w + 4;
				bool want = in && ref_dark(qr, x - 4, y - 4);
				wrong += grid[y * n + x] != want;
			}
		HF_CHECK_MSG(wrong == 0, "%u modules differ from libqrencode's (quiet zone included)", wrong);
	}
	free(grid);
out:
	hf_buf_release(&b);
	QRcode_free(qr);
}

static void test_svg(void)
{
	check_svg_matches(uri);
	check_svg_matches("https://hifadhi.example/notice/2024-07?lang=sw");
	check_svg_matches("a");
	check_svg_matches("0123456789");
}

/* Reads the text back into light/dark rows: n+1 rows (the last line's lower half included). */
static void check_text_matches(const char *text)
{
	QRcode *qr = reference(text);
	int w = qr->width, n = w + 8, lines = (n + 1) / 2;
	struct hf_buf b;
	hf_buf_init(&b, 64 * 1024);
	if (!HF_CHECK(hf_qr_text(text, &b) == HF_OK))
		goto out;
	const char *p = hf_buf_cstr(&b);
	int line_count = 0;
	for (const char *q = p; *q; q++)
		line_count += *q == '\n';
	HF_CHECK_MSG(line_count == lines, "%d lines, want %d", line_count, lines);

	unsigned wrong = 0, bad_chars = 0;
	for (int line = 0; line < lines && *p; line++) {
		for (int col = 0; col < n; col++) {
			bool top, bottom;
			if (*p == ' ') {
				top = bottom = false;
				p++;
			} else if (strncmp(p, "\xe2\x96\x80", 3) == 0) { /* upper half */
				top = true, bottom = false;
				p += 3;
			} else if (strncmp(p, "\xe2\x96\x84", 3) == 0) { /* lower half */
				top = false, bottom = true;
				p += 3;
			} else if (strncmp(p, "\xe2\x96\x88", 3) == 0) { /* full block */
				top = bottom = true;
				p += 3;
			} else {
				bad_chars++;
				p++;
				continue;
			}
			/* Drawn = light. Rows outside the symbol are quiet zone (light), except the half row below
			 * the last, which stays background. */
			for (int half = 0; half < 2; half++) {
				int y = line * 2 + half, x = col;
				bool drawn = half ? bottom : top;
				bool want;
				if (y >= n)
					want = false;
				else if (x < 4 || y < 4 || x >= w + 4 || y >= w + 4)
					want = true;
				else
					want = !ref_dark(qr, x - 4, y - 4);
				wrong += drawn != want;
			}
		}
		if (*p == '\n')
			p++;
		else
			bad_chars++;
	}
	HF_CHECK_MSG(bad_chars == 0, "%u unexpected characters", bad_chars);
	HF_CHECK_MSG(wrong == 0, "%u modules drawn wrong", wrong);
	HF_CHECK(*p == '\0');
out:
	hf_buf_release(&b);
	QRcode_free(qr);
}

static void test_text(void)
{
	check_text_matches(uri);
	check_text_matches("a");
	check_text_matches("https://hifadhi.example/notice/2024-07?lang=sw");
}

static void test_limits(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 1024 * 1024);
	HF_CHECK(hf_buf_append_str(&b, "keep") == HF_OK);

	char *big = malloc(HF_QR_TEXT_MAX + 2);
	HF_ASSERT(big != NULL);
	memset(big, 'x', HF_QR_TEXT_MAX + 1);
	big[HF_QR_TEXT_MAX + 1] = '\0';
	HF_CHECK(hf_qr_svg(big, &b) == HF_ETOOBIG);
	HF_CHECK(hf_qr_text(big, &b) == HF_ETOOBIG);
	/* Exactly at the limit is fine, in both forms; binary-looking text is kept byte for byte. */
	big[HF_QR_TEXT_MAX] = '\0';
	big[10] = (char)0xc3;
	big[11] = (char)0xa9;
	HF_CHECK(hf_qr_svg(big, &b) == HF_OK);
	HF_CHECK(hf_qr_text(big, &b) == HF_OK);
	hf_buf_reset(&b);
	HF_CHECK(hf_buf_append_str(&b, "keep") == HF_OK);
	free(big);

	HF_CHECK(hf_qr_svg("", &b) == HF_EINVAL);
	HF_CHECK(hf_qr_text("", &b) == HF_EINVAL);
	HF_CHECK(hf_qr_svg(NULL, &b) == HF_EINVAL);
	HF_CHECK(strcmp(hf_buf_cstr(&b), "keep") == 0);
	hf_buf_release(&b);

	/* A buffer that is too small gives HF_ETOOBIG and keeps what it held. */
	hf_buf_init(&b, 600);
	HF_CHECK(hf_buf_append_str(&b, "keep") == HF_OK);
	HF_CHECK(hf_qr_svg(uri, &b) == HF_ETOOBIG);
	HF_CHECK(b.len == 4 && strcmp(hf_buf_cstr(&b), "keep") == 0);
	HF_CHECK(hf_qr_text(uri, &b) == HF_ETOOBIG);
	HF_CHECK(b.len == 4 && strcmp(hf_buf_cstr(&b), "keep") == 0);
	hf_buf_release(&b);
}

int main(void)
{
	HF_TEST(test_svg);
	HF_TEST(test_text);
	HF_TEST(test_limits);
	return hf_test_summary();
}
