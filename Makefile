# Hifadhi - one Makefile for all programs, tests and benchmarks. Outputs go under build/.
#   make              build every program
#   make run          the whole stack on loopback with demo data (installs what it needs)
#   make test         every test suite against a throwaway MariaDB (installs what it needs)
#   make test SAN=address,undefined   the same under sanitizers
#   make bench        benchmarks, reported as ratios to baselines measured in the same run

SAN ?=
# BUILDDIR=build/NAME builds into another folder (two builds of one tree never share objects).
ifeq ($(SAN),)
BUILD := $(or $(BUILDDIR),build/release)
SANFLAGS :=
OPTFLAGS := -O2 -D_FORTIFY_SOURCE=3 -fstack-protector-strong
else
BUILD := $(or $(BUILDDIR),build/san)
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
OPTFLAGS := -O1 -g
endif

CC ?= cc
V ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif
PKGS := libmicrohttpd libmariadb libsodium jansson libcurl inih libcrypto libqrencode
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null | sed 's/-I/-isystem /g')
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lcrack -lm -lpthread

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla \
	-Wwrite-strings -Wpointer-arith
CFLAGS := -std=c17 $(WARN) $(OPTFLAGS) -g -fPIE $(SANFLAGS) -Ilib $(PKG_CFLAGS) -MMD -MP
LDFLAGS := -pie -Wl,-z,relro,-z,now $(SANFLAGS)

LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIBHF := $(BUILD)/lib/libhf.a

CORE_SRC := $(wildcard core/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_BIN := $(BUILD)/bin/hifadhi-core
# Everything of core but main(): benchmarks that drive core modules directly link it.
CORE_LIB := $(BUILD)/core/libcore.a

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

GW_SRC := $(wildcard gateway/*.c)
GW_OBJ := $(GW_SRC:%.c=$(BUILD)/%.o)
GW_BIN := $(BUILD)/bin/hifadhi-gateway

# The payment provider simulator (a test double for G2P Connect and mobile-money B2C providers).
PAYSIM_BIN := $(BUILD)/bin/hifadhi-paysim

# The SMPP SMSC simulator (USSD over SMPP, delivery receipts, throttling) for Kannel in tests.
SMPPSIM_BIN := $(BUILD)/bin/hifadhi-smppsim

# The kiosk terminal daemon: the only program linking libfprint (kiosk/reader.c) and libgpiod (kiosk/gpio.c).
KIOSK_PKGS := libfprint-2 libgpiod glib-2.0
KIOSK_CFLAGS = $(shell pkg-config --cflags $(KIOSK_PKGS) 2>/dev/null | sed 's/-I/-isystem /g')
KIOSK_LIBS = $(shell pkg-config --libs $(KIOSK_PKGS) 2>/dev/null)
KIOSK_SRC := $(wildcard kiosk/*.c)
KIOSK_OBJ := $(KIOSK_SRC:%.c=$(BUILD)/%.o)
KIOSK_BIN := $(BUILD)/bin/hifadhi-kiosk
# Everything of the kiosk but main(): its unit tests (tests/unit/test_kiosk_*.c) link it.
KIOSK_LIB := $(BUILD)/kiosk/libkiosk.a

PROGS := $(CORE_BIN) $(GW_BIN) $(PAYSIM_BIN) $(SMPPSIM_BIN) $(KIOSK_BIN)

.PHONY: all deps run test unit bench clean install-deps
all: $(PROGS) $(UNIT_BIN) $(BENCH_BIN)

deps:
	@deploy/deps.sh

$(BUILD)/kiosk/%.o: kiosk/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(KIOSK_CFLAGS) -c $< -o $@

$(KIOSK_LIB): $(filter-out $(BUILD)/kiosk/main.o,$(KIOSK_OBJ))
	@mkdir -p $(dir $@)
	$(Q)$(AR) rcs $@ $^

$(KIOSK_BIN): $(BUILD)/kiosk/main.o $(KIOSK_LIB) $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(BUILD)/kiosk/main.o $(KIOSK_LIB) $(LIBHF) $(KIOSK_LIBS) $(PKG_LIBS)

# Kiosk unit tests link the kiosk's modules (and may #include one to reach its statics).
$(BUILD)/tests/test_kiosk_%: tests/unit/test_kiosk_%.c $(KIOSK_LIB) $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(KIOSK_CFLAGS) -Ikiosk -Itests/unit $(LDFLAGS) -o $@ $< $(KIOSK_LIB) $(LIBHF) $(KIOSK_LIBS) $(PKG_LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBHF): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(AR) rcs $@ $^

$(CORE_LIB): $(filter-out $(BUILD)/core/main.o,$(CORE_OBJ))
	@mkdir -p $(dir $@)
	$(Q)$(AR) rcs $@ $^

$(CORE_BIN): $(CORE_OBJ) $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CORE_OBJ) $(LIBHF) $(PKG_LIBS)

# Unit tests may #include a core .c file to reach its statics; they link lib/ only.
$(GW_BIN): $(GW_OBJ) $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(GW_OBJ) $(LIBHF) $(PKG_LIBS)

$(SMPPSIM_BIN): tests/sim/smppsim.c $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(shell pkg-config --cflags libsmpp34 2>/dev/null) $(LDFLAGS) -o $@ $< $(LIBHF) \
		$(shell pkg-config --libs libsmpp34 2>/dev/null) $(PKG_LIBS)

$(PAYSIM_BIN): tests/sim/paysim.c $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBHF) $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -Icore -Itests/unit $(LDFLAGS) -o $@ $< $(LIBHF) $(PKG_LIBS)

$(BUILD)/bench/kbench_%: tests/bench/kbench_%.c $(KIOSK_LIB) $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BENCH   $@")
	$(Q)$(CC) $(CFLAGS) $(KIOSK_CFLAGS) -Ikiosk $(LDFLAGS) -o $@ $< $(KIOSK_LIB) $(LIBHF) $(KIOSK_LIBS) $(PKG_LIBS)

$(BUILD)/bench/%: tests/bench/%.c $(CORE_LIB) $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BENCH   $@")
	$(Q)$(CC) $(CFLAGS) -Icore $(LDFLAGS) -o $@ $< $(CORE_LIB) $(LIBHF) $(PKG_LIBS)

run: deps
	@$(MAKE) --no-print-directory all
	@deploy/run.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all
	@tests/run_all.sh $(BUILD)

unit: $(UNIT_BIN)
	@tests/run_unit.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/run.sh $(BUILD)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CORE_OBJ:.o=.d) $(GW_OBJ:.o=.d) $(KIOSK_OBJ:.o=.d) $(PAYSIM_BIN).d $(UNIT_BIN:=.d) $(BENCH_BIN:=.d)

# ---- fuzzing (tests/fuzz/) ----------------------------------------------------------------------------
#   make fuzz [FUZZ_SECONDS=30] [FUZZ_TARGETS="json_body config"]
#       builds every tests/fuzz/fuzz_<target>.c with clang's libFuzzer, ASan and UBSan into build/fuzz/ and
#       runs each for FUZZ_SECONDS over a COPY of its committed seeds (tests/fuzz/corpus/<target>/): new
#       inputs go to build/fuzz/corpus-<target>/, a crash to build/fuzz/crashes-<target>/ and fails make.
#   make fuzz-build    only builds them.
# Needs the Debian packages clang and libclang-rt-14-dev (libFuzzer). The committed corpora are also
# replayed with gcc by every build (make, make test, make unit, also with SAN=): one unit suite per target,
# $(BUILD)/tests/test_fuzzreplay_<target>, from the target and tests/fuzz/replay_main.c.
FUZZ_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_ALL := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c17 $(WARN) -O1 -g $(FUZZ_SANFLAGS) -fsanitize=fuzzer-no-link -Ilib $(PKG_CFLAGS) -MMD -MP
# hf_http.c is left out: no target uses the HTTP server (and clang's -Wformat-nonliteral refuses its
# microhttpd log callback).
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_DIR)/%.o,$(filter-out lib/hf_http.c,$(LIB_SRC)))
FUZZ_LIBHF := $(FUZZ_DIR)/lib/libhf.a
FUZZ_BIN := $(FUZZ_ALL:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_REPLAY_BIN := $(FUZZ_ALL:%=$(BUILD)/tests/test_fuzzreplay_%)
# libFuzzer options for every target, then per target (-max_len: the importer needs room for a file of
# more than one batch; a dictionary tests/fuzz/<target>.dict is used when present).
FUZZ_OPTS := -timeout=30 -print_final_stats=1
FUZZ_OPTS_csv_import := -max_len=16384
FUZZ_OPTS_json_body := -max_len=8192
FUZZ_OPTS_config := -max_len=4096
FUZZ_OPTS_validate := -max_len=1024
FUZZ_OPTS_menus := -max_len=16384
FUZZ_OPTS_sms_templates := -max_len=8192
FUZZ_OPTS_provider_msg := -max_len=8192
FUZZ_OPTS_recon_csv := -max_len=8192

.PHONY: fuzz fuzz-build fuzz-check-cc

fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-build: $(FUZZ_BIN)

fuzz-check-cc:
	@mkdir -p $(FUZZ_DIR)
	@deploy/deps.sh clang libclang-rt-14-dev
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "make fuzz: $(FUZZ_CC) not found; install the Debian packages" \
		"clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
		| $(FUZZ_CC) -x c -fsanitize=fuzzer -o $(FUZZ_DIR)/.cc-check - >/dev/null 2>&1 \
		|| { echo "make fuzz: $(FUZZ_CC) cannot link libFuzzer; install the Debian package libclang-rt-14-dev" >&2; exit 1; }

$(FUZZ_DIR)/lib/%.o: lib/%.c | fuzz-check-cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIBHF): $(FUZZ_LIB_OBJ)
	$(Q)$(AR) rcs $@ $^

# A target #includes the core .c files it needs, like the unit tests.
$(FUZZ_DIR)/obj/fuzz_%.o: tests/fuzz/fuzz_%.c | fuzz-check-cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Icore -c $< -o $@

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz_%.o $(FUZZ_LIBHF)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SANFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIBHF) $(PKG_LIBS)

# One run: seeds copied (never written back), findings kept under build/fuzz/, the log's tail on a crash.
fuzz-run-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus-$* $(FUZZ_DIR)/crashes-$*
	@for f in tests/fuzz/corpus/$*/*; do [ -e $(FUZZ_DIR)/corpus-$*/$${f##*/} ] || cp "$$f" $(FUZZ_DIR)/corpus-$*/ || exit 1; done
	@echo "  FUZZ    $* for $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/fuzz-$*.log)"
	@if ! $< $(FUZZ_OPTS) $(FUZZ_OPTS_$*) $(addprefix -dict=,$(wildcard tests/fuzz/$*.dict)) \
		-max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_DIR)/crashes-$*/ \
		$(FUZZ_DIR)/corpus-$* >$(FUZZ_DIR)/fuzz-$*.log 2>&1; then \
		tail -n 60 $(FUZZ_DIR)/fuzz-$*.log; \
		echo "make fuzz: $* FAILED; the input is in $(FUZZ_DIR)/crashes-$*/ (replay: $< FILE)" >&2; \
		exit 1; \
	fi
	@grep -E '^#[0-9]+' $(FUZZ_DIR)/fuzz-$*.log | tail -n 1 | sed 's/^/  done    $*: /'

# The committed corpus replayed with gcc and this build's flags (SAN= included), as a unit suite.
$(BUILD)/tests/fuzz/fuzz_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Icore -c $< -o $@

$(BUILD)/tests/fuzz/replay_%.o: tests/fuzz/replay_main.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -DHF_FUZZ_CORPUS_DIR='"tests/fuzz/corpus/$*"' -c $< -o $@

$(BUILD)/tests/test_fuzzreplay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_%.o $(LIBHF)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(BUILD)/tests/fuzz/fuzz_$*.o $(BUILD)/tests/fuzz/replay_$*.o $(LIBHF) $(PKG_LIBS)

# Kept between runs (make would delete these intermediates of the pattern chains above).
.SECONDARY: $(FUZZ_ALL:%=$(BUILD)/tests/fuzz/fuzz_%.o) $(FUZZ_ALL:%=$(BUILD)/tests/fuzz/replay_%.o) \
	$(FUZZ_ALL:%=$(FUZZ_DIR)/obj/fuzz_%.o) $(FUZZ_BIN)

all: $(FUZZ_REPLAY_BIN)
unit: $(FUZZ_REPLAY_BIN)

-include $(wildcard $(FUZZ_DIR)/lib/*.d $(FUZZ_DIR)/obj/*.d $(BUILD)/tests/fuzz/*.d)
