/* test_kiosk_receipt.c - the paper receipt: the bytes a thermal printer gets, and printing them.
 *
 * A receipt the printer cannot render, a QR code that does not hold the verification link, or a receipt
 * printed twice or half are what a beneficiary would hold in their hand. The bytes are checked against the
 * ESC/POS commands themselves (exact QR store command with its length bytes), and read back through
 * receipt_decode; printing is checked on a plain file (the dev printer) and a missing device.
 */
#include "hf_base.h"
#include "receipt.h"

#include <fcntl.h>

#include "hf_buf.h"
#include "hf_log.h"
#include "hf_test.h"

static const struct receipt sample = {
	.title = "HIFADHI - PAYMENT RECEIPT",
	.receipt_no = "R-2026-000123",
	.ben_no = "B12345678",
	.amount = "KES 4,000.00",
	.programme = "Inua Jamii OPCT",
	.pay_point = "Kibera-3",
	.kiosk_no = "K0042",
	.when = "2026-11-28 14:03",
	.verify_url = "https://hifadhi.example/r/R-2026-000123?c=7QF3K9",
	.footer = "Keep this receipt. Questions: dial *384#",
};

static bool contains(const struct hf_buf *b, const void *needle, size_t n)
{
	return b->len >= n && memmem(b->data, b->len, needle, n) != NULL;
}

static void test_escpos_bytes(void)
{
	struct hf_buf out;
	hf_buf_init(&out, 4096);
	HF_CHECK(receipt_escpos(&sample, &out) == HF_OK);
	HF_CHECK_MSG(out.len >= 2 && (uint8_t)out.data[0] == 0x1b && out.data[1] == '@', "starts with ESC @");
	/* QR: model 2, error correction M, then the store command with pL pH = payload + 3. */
	static const uint8_t model2[] = {0x1d, '(', 'k', 4, 0, 49, 65, 50, 0};
	static const uint8_t ecc_m[] = {0x1d, '(', 'k', 3, 0, 49, 69, 49};
	static const uint8_t print[] = {0x1d, '(', 'k', 3, 0, 49, 81, 48};
	HF_CHECK(contains(&out, model2, sizeof(model2)));
	HF_CHECK(contains(&out, ecc_m, sizeof(ecc_m)));
	HF_CHECK(contains(&out, print, sizeof(print)));
	size_t ulen = strlen(sample.verify_url);
	uint8_t store[8 + 128];
	HF_ASSERT(ulen < 128);
	const uint8_t head[8] = {0x1d, '(', 'k', (uint8_t)((ulen + 3) & 0xff), (uint8_t)((ulen + 3) >> 8), 49, 80, 48};
	memcpy(store, head, 8);
	memcpy(store + 8, sample.verify_url, ulen);
	HF_CHECK_MSG(contains(&out, store, 8 + ulen), "the store command holds exactly the link");
	static const uint8_t bold_on[] = {0x1b, 'E', 1}, centre[] = {0x1b, 'a', 1}, cut[] = {0x1d, 'V', 66, 0};
	HF_CHECK(contains(&out, bold_on, 3) && contains(&out, centre, 3));
	HF_CHECK_MSG(out.len >= 4 && memcmp(out.data + out.len - 4, cut, 4) == 0, "ends with the cut");
	/* The QR comes after every text line but the footer, and is printed after it is stored. */
	const char *amount = memmem(out.data, out.len, "KES 4,000.00", 12);
	const char *qr = memmem(out.data, out.len, store, 8);
	const char *printed = memmem(out.data, out.len, print, sizeof(print));
	HF_CHECK(amount && qr && printed && amount < qr && qr < printed);

	/* Decoded: the text lines and the QR payload. */
	struct hf_buf text, qrs;
	hf_buf_init(&text, 4096);
	hf_buf_init(&qrs, 1024);
	HF_CHECK(receipt_decode(out.data, out.len, &text, &qrs) == HF_OK);
	HF_CHECK(strcmp(hf_buf_cstr(&qrs), sample.verify_url) == 0);
	static const char want[] = "HIFADHI - PAYMENT RECEIPT\n"
				   "\n"
				   "Receipt:   R-2026-000123\n"
				   "Ben. no:   B12345678\n"
				   "Programme: Inua Jamii OPCT\n"
				   "Amount:    KES 4,000.00\n"
				   "Pay point: Kibera-3\n"
				   "Kiosk:     K0042\n"
				   "Date:      2026-11-28 14:03\n"
				   "\n"
				   "\n"
				   "Keep this receipt. Questions: dial *384#\n"
				   "\n";
	HF_CHECK_MSG(strcmp(hf_buf_cstr(&text), want) == 0, "decoded text:\n%s", hf_buf_cstr(&text));

	/* Without the optional programme line. */
	struct receipt r = sample;
	r.programme = NULL;
	hf_buf_reset(&out);
	hf_buf_reset(&text);
	hf_buf_reset(&qrs);
	HF_CHECK(receipt_escpos(&r, &out) == HF_OK);
	HF_CHECK(receipt_decode(out.data, out.len, &text, &qrs) == HF_OK);
	HF_CHECK(strstr(hf_buf_cstr(&text), "Programme") == NULL && strstr(hf_buf_cstr(&text), "KES 4,000.00"));

	/* A long link: the length bytes carry over into pH. */
	char url[257];
	memset(url, 'u', 256);
	url[256] = '\0';
	r.verify_url = url;
	hf_buf_reset(&out);
	hf_buf_reset(&qrs);
	hf_buf_reset(&text);
	HF_CHECK(receipt_escpos(&r, &out) == HF_OK);
	static const uint8_t long_store[] = {0x1d, '(', 'k', 3, 1, 49, 80, 48, 'u'};
	HF_CHECK_MSG(contains(&out, long_store, sizeof(long_store)), "pL pH = 259 = 3 + 1*256");
	HF_CHECK(receipt_decode(out.data, out.len, &text, &qrs) == HF_OK && qrs.len == 256);
	hf_buf_release(&out);
	hf_buf_release(&text);
	hf_buf_release(&qrs);
}

static void test_refused_fields(void)
{
	struct hf_buf out;
	hf_buf_init(&out, 4096);
	struct receipt r = sample;
	r.pay_point = "Kibera-3 \xc3\xa9"; /* é */
	HF_CHECK_MSG(receipt_escpos(&r, &out) == HF_EINVAL && out.len == 0, "non-ASCII refused, nothing written");
	r = sample;
	r.ben_no = "B1\x1b@";
	HF_CHECK_MSG(receipt_escpos(&r, &out) == HF_EINVAL, "a control byte could inject printer commands");
	r = sample;
	r.footer = "line\nbreak";
	HF_CHECK(receipt_escpos(&r, &out) == HF_EINVAL);
	r = sample;
	r.amount = NULL;
	HF_CHECK(receipt_escpos(&r, &out) == HF_EINVAL);
	r = sample;
	r.receipt_no = "";
	HF_CHECK(receipt_escpos(&r, &out) == HF_EINVAL);
	r = sample;
	r.programme = "Inua \x80";
	HF_CHECK(receipt_escpos(&r, &out) == HF_EINVAL);
	char url[300];
	memset(url, 'u', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	r = sample;
	r.verify_url = url;
	HF_CHECK_MSG(receipt_escpos(&r, &out) == HF_EINVAL, "a QR payload past 256 bytes");
	HF_CHECK(out.len == 0);
	/* A cap hit half way leaves the buffer as it was. */
	struct hf_buf small;
	hf_buf_init(&small, 100);
	HF_CHECK(hf_buf_append_str(&small, "before") == HF_OK);
	HF_CHECK(receipt_escpos(&sample, &small) == HF_ETOOBIG);
	HF_CHECK(strcmp(hf_buf_cstr(&small), "before") == 0);
	hf_buf_release(&small);
	hf_buf_release(&out);
}

static void test_decode_refuses_other_bytes(void)
{
	struct hf_buf text, qr;
	hf_buf_init(&text, 4096);
	hf_buf_init(&qr, 1024);
	struct hf_buf out;
	hf_buf_init(&out, 4096);
	HF_ASSERT(receipt_escpos(&sample, &out) == HF_OK);
	/* Every cut short of the whole is refused or loses the QR: never read past the end. */
	size_t refused = 0;
	for (size_t n = 0; n < out.len; n++) {
		hf_buf_reset(&text);
		hf_buf_reset(&qr);
		if (receipt_decode(out.data, n, &text, &qr) != HF_OK)
			refused++;
	}
	HF_CHECK_MSG(refused > 0, "%zu of %zu prefixes refused", refused, out.len);
	static const uint8_t odd[][4] = {{0x1b, 'Z', 0, 0}, {0x1d, '(', 'k', 0xff}, {0x07, 'a', 'b', '\n'}, {0x1b, 0, 0, 0}};
	for (size_t k = 0; k < HF_ARRAY_LEN(odd); k++) {
		hf_buf_reset(&text);
		hf_buf_reset(&qr);
		HF_CHECK(receipt_decode(odd[k], sizeof(odd[k]), &text, &qr) == HF_EINVAL);
	}
	hf_buf_reset(&qr);
	HF_CHECK_MSG(receipt_decode("\x1b@hello\n", 8, &text, &qr) == HF_EINVAL, "no QR: not a receipt");
	hf_buf_release(&out);
	hf_buf_release(&text);
	hf_buf_release(&qr);
}

static void test_print(void)
{
	char dir[64], path[128];
	hf_test_tmpdir(dir, sizeof(dir));
	hf_test_write_file(dir, "printer.out", "", 0600, path, sizeof(path));
	struct hf_buf out;
	hf_buf_init(&out, 4096);
	HF_ASSERT(receipt_escpos(&sample, &out) == HF_OK);
	char msg[256] = "";
	HF_CHECK(receipt_print(path, &out, msg, sizeof(msg)) == HF_OK);
	HF_CHECK(receipt_print(path, &out, msg, sizeof(msg)) == HF_OK);
	/* Appended: two whole receipts, one after the other. */
	int fd = open(path, O_RDONLY);
	HF_ASSERT(fd >= 0);
	char *back = hf_xmalloc(2 * out.len + 1);
	ssize_t n = read(fd, back, 2 * out.len + 1);
	close(fd);
	HF_CHECK(n == (ssize_t)(2 * out.len));
	HF_CHECK(n == (ssize_t)(2 * out.len) && memcmp(back, out.data, out.len) == 0 &&
		 memcmp(back + out.len, out.data, out.len) == 0);
	free(back);

	char missing[160];
	snprintf(missing, sizeof(missing), "%s/lp0", dir);
	msg[0] = '\0';
	HF_CHECK(receipt_print(missing, &out, msg, sizeof(msg)) == HF_EDEVICE);
	HF_CHECK_MSG(strstr(msg, "printer not found") != NULL, "message: %s", msg);
	struct stat sb;
	HF_CHECK_MSG(stat(missing, &sb) != 0, "no file is created in place of a missing printer");
	HF_CHECK(receipt_print(dir, &out, msg, sizeof(msg)) == HF_EDEVICE && msg[0]);
	hf_buf_release(&out);
	hf_test_rmtree(dir);
}

int main(void)
{
	hf_log_set_filter("kiosk.receipt.none"); /* the error cases log on purpose */
	HF_TEST(test_escpos_bytes);
	HF_TEST(test_refused_fields);
	HF_TEST(test_decode_refuses_other_bytes);
	HF_TEST(test_print);
	return hf_test_summary();
}
