# Hifadhi - one Makefile for all programs, tests and benchmarks. Outputs go under build/.
#   make              build every program
#   make run          the whole stack on loopback with demo data (installs what it needs)
#   make test         every test suite against a throwaway MariaDB (installs what it needs)
#   make test SAN=address,undefined   the same under sanitizers
#   make bench        benchmarks, reported as ratios to baselines measured in the same run

SAN ?=
ifeq ($(SAN),)
BUILD := build/release
SANFLAGS :=
OPTFLAGS := -O2 -D_FORTIFY_SOURCE=3 -fstack-protector-strong
else
BUILD := build/san
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
PKGS := libmicrohttpd libmariadb libsodium jansson libcurl inih
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null | sed 's/-I/-isystem /g')
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lm -lpthread

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

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

PROGS := $(CORE_BIN)

.PHONY: all deps run test unit bench clean install-deps
all: $(PROGS) $(UNIT_BIN) $(BENCH_BIN)

deps:
	@deploy/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBHF): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(AR) rcs $@ $^

$(CORE_BIN): $(CORE_OBJ) $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CORE_OBJ) $(LIBHF) $(PKG_LIBS)

# Unit tests may #include a core .c file to reach its statics; they link lib/ only.
$(BUILD)/tests/%: tests/unit/%.c $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -Icore -Itests/unit $(LDFLAGS) -o $@ $< $(LIBHF) $(PKG_LIBS)

$(BUILD)/bench/%: tests/bench/%.c $(LIBHF)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BENCH   $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBHF) $(PKG_LIBS)

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

-include $(LIB_OBJ:.o=.d) $(CORE_OBJ:.o=.d) $(UNIT_BIN:=.d) $(BENCH_BIN:=.d)
