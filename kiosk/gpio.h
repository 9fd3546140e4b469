/* gpio.h - the kiosk's lamps, buzzer, cash drawer and switches. kiosk/gpio.c is the ONLY file that
 * includes <gpiod.h> (libgpiod 1.6; the 2.x API differs, another reason to keep it in one file).
 *
 * Two backends behind one interface, chosen by the config:
 *   "chip:gpiochip0"   real lines on a GPIO character device (production);
 *   "fake:PATH"        a fake board for dev and tests (these machines have no GPIO at all): the kiosk
 *                      listens on the unix stream socket PATH; a test connects and speaks lines of text:
 *                        test -> kiosk:  "IN <name> 0|1\n"        an input changes (tamper, door, help)
 *                                        "GET <name>\n"            asks for an output's value
 *                        kiosk -> test:  "OUT <name> 0|1\n"        every output change, as it happens
 *                                        "VAL <name> 0|1\n"        the answer to GET
 *                      Several test connections may be open (at most 8); each gets every OUT line, from
 *                      the moment it connected (connections waiting to be accepted are taken before each
 *                      OUT). Values are logical (1 = active): the fake stands for the board and its wiring,
 *                      so the map's active-low flags apply to the real backend only. Lines longer than 64
 *                      bytes, unknown commands and unknown or unmapped names are ignored; a connection that
 *                      does not read its OUT lines is dropped rather than allowed to stall the kiosk.
 * Line names: outputs lamp_green, lamp_red, lamp_fault, buzzer, drawer; inputs tamper, door, help.
 * The line map (offset and active level per name) comes from the config; unmapped names are ignored
 * (a kiosk without a drawer simply has none).
 *
 * Inputs are debounced (20 ms) and reported as edges through a pollable fd: the daemon's loop polls
 * gpio_event_fd() and calls gpio_read_event() when it is readable.
 */
#ifndef KIOSK_GPIO_H
#define KIOSK_GPIO_H

#include "hf_base.h"
#include "hf_err.h"

enum gpio_out { GPIO_LAMP_GREEN, GPIO_LAMP_RED, GPIO_LAMP_FAULT, GPIO_BUZZER, GPIO_DRAWER, GPIO_OUT_COUNT };
enum gpio_in { GPIO_TAMPER, GPIO_DOOR, GPIO_HELP, GPIO_IN_COUNT };

struct gpio_line_map {
	int out_offset[GPIO_OUT_COUNT]; /* -1: not fitted */
	bool out_active_low[GPIO_OUT_COUNT];
	int in_offset[GPIO_IN_COUNT];	/* -1: not fitted */
	bool in_active_low[GPIO_IN_COUNT];
};

struct gpio;

struct gpio_event {
	enum gpio_in line;
	bool active; /* tamper open, door open, help pressed */
};

const char *gpio_out_name(enum gpio_out o);
const char *gpio_in_name(enum gpio_in i);

/* backend: "chip:NAME" or "fake:PATH" as above. Outputs start inactive. HF_EDEVICE when the chip or a line
 * cannot be had (msg says which), HF_EINVAL for a malformed backend string. */
HF_MUST_CHECK hf_err gpio_open(const char *backend, const struct gpio_line_map *map, struct gpio **out, char *msg,
			       size_t msg_cap);
void gpio_close(struct gpio *g);

/* An unmapped output is accepted and does nothing. HF_EDEVICE when the line cannot be driven. */
HF_MUST_CHECK hf_err gpio_set(struct gpio *g, enum gpio_out o, bool on);
/* Drives o active for ms milliseconds, then inactive (blocks for ms; pulses are short: drawer 200 ms,
 * beep 100 ms). HF_EINVAL unless 0 < ms <= 5000. */
HF_MUST_CHECK hf_err gpio_pulse(struct gpio *g, enum gpio_out o, int ms);
/* Debounced level of an input (true = active): the level at open, then as last reported through
 * gpio_read_event. An unmapped input reads inactive. */
HF_MUST_CHECK hf_err gpio_get(struct gpio *g, enum gpio_in i, bool *active);

/* Readable when an input changed (and, for the fake backend, when a test connection has a line to read:
 * gpio_read_event then serves it and may return HF_ENOTFOUND = nothing for the caller). */
int gpio_event_fd(struct gpio *g);
/* HF_OK with *ev filled; HF_ENOTFOUND when there was nothing (yet) for the caller. Never blocks. */
HF_MUST_CHECK hf_err gpio_read_event(struct gpio *g, struct gpio_event *ev);

#endif
