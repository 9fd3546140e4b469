/* hf_qr.h - QR codes as SVG (for the web console) and as text (for a terminal), on libqrencode.
 *
 * Used to hand an officer's authenticator secret (an otpauth:// URI, see hf_totp.h) to their phone without
 * anyone typing it, and for short links on printed notices. Error correction is level M (15% of the code
 * may be dirty or damaged) and text is encoded byte for byte (8-bit mode, case kept), so a URI comes back
 * exactly as it went in. Both functions are thread-safe.
 */
#ifndef HF_QR_H
#define HF_QR_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

/* Longest text accepted, in bytes: enough for any URI we hand out, and it keeps the code (version 26 at
 * most, 121 modules a side) easy to scan from a laptop screen. */
#define HF_QR_TEXT_MAX 1024

/* Appends a standalone SVG document (no XML declaration; it starts with "<svg") to out. The viewBox is in
 * modules: the code's width plus a 4-module quiet zone on each side, "0 0 N N". A white background <rect>
 * and ONE <path> holding every dark module, with shape-rendering="crispEdges" so no seams appear when
 * scaled; width and height are 4 px per module and can be overridden by CSS. Allow out up to 256 KiB for
 * the largest codes (a few KiB for an otpauth URI).
 * HF_EINVAL for empty text, HF_ETOOBIG for text over HF_QR_TEXT_MAX bytes or when out's cap is hit,
 * HF_EINTERNAL if libqrencode fails (out of memory). On error out is left as it was. */
HF_MUST_CHECK hf_err hf_qr_svg(const char *text, struct hf_buf *out);

/* Appends the code as UTF-8 text for a terminal, two module rows per line using the half blocks
 * U+2580 (upper), U+2584 (lower), U+2588 (full) and a space; each line ends with '\n'. A 4-module quiet
 * zone surrounds the code, so there are (width + 8 + 1) / 2 lines of width + 8 characters.
 * Polarity: LIGHT modules and the quiet zone are drawn as block characters (in the terminal's text colour)
 * and DARK modules as spaces (the terminal's background). On the usual light-text-on-dark terminal this
 * shows a normal dark-on-light code. On a dark-text-on-light terminal the code appears inverted: many
 * phone cameras read that too, but not every scanner does, so prefer the SVG where a browser is at hand.
 * The half row below the last module row (the symbol plus quiet zone is an odd number of rows) is left
 * as background. Allow out up to 64 KiB. Errors as for hf_qr_svg. */
HF_MUST_CHECK hf_err hf_qr_text(const char *text, struct hf_buf *out);

#endif
