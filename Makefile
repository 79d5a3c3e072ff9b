# credwatch build. `make` builds build/credwatch, `make test` runs every test,
# `make bench` the benchmarks, `make asan` the whole test suite under ASan+UBSan,
# `make asan-unit` only the cmocka suites and it_scan.sh under ASan+UBSan (CI),
# `make fuzz` every libFuzzer target for FUZZ_SECONDS each (tests/fuzz/).
# Sources are globbed so a new module is a new file pair, not a Makefile edit:
#   cmd/credwatch.c  the program's entry point (serve, scan, backup), above both folders
#   service/*.c  the engine (decoders, detection core, stores)
#   api/*.c      the HTTP layer
#   sink/*.c     delivery of findings to webhooks, Slack and PagerDuty (libcurl, libcrypto)
#   tests/test_*.c  cmocka suites, one binary each
#   tests/it_*.sh   integration scripts (real processes, loopback only)
#   tests/bench_*.c benchmark programs run by `make bench`

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2 -g
SAN     ?=
CFLAGS  ?= $(OPT)
# -Wno-format-truncation: snprintf into bounded fields cuts on purpose (the bounds are named).
CWFLAGS  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror -Wno-format-truncation -Iservice -Iapi -Isink $(SAN)
LIBS     = -lmicrohttpd -lgnutls -ljansson -lhiredis -llmdb -lyajl -lz -lcurl -lssl -lcrypto -lpthread -lm

LIB_SRC  = $(wildcard service/*.c) $(wildcard api/*.c) $(wildcard sink/*.c) $(BUILD)/openapi_blob.c $(BUILD)/ui_blob.c
LIB_OBJ  = $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(BUILD)/%,$(LIB_SRC))) $(BUILD)/obj/openapi_blob.o \
           $(BUILD)/obj/ui_blob.o
UI_FILES = $(wildcard ui/*)
TEST_SRC = $(wildcard tests/test_*.c)
TEST_BIN = $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC = $(wildcard tests/bench_*.c)
BENCH_BIN = $(patsubst tests/%.c,$(BUILD)/tests/%,$(BENCH_SRC))
HDRS     = $(wildcard service/*.h api/*.h sink/*.h tests/*.h)

.PHONY: all deps run test unit integration bench asan asan-unit fuzz fuzz-build fuzz-seeds clean lint

all: deps $(BUILD)/credwatch

deps:
	@scripts/deps.sh build

# Each object depends on the headers it includes, as the compiler lists them (-MMD), not on all.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CWFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(LIB_OBJ:.o=.d) $(BUILD)/obj/cmd/credwatch.d $(TEST_BIN:=.d)

# The OpenAPI document is compiled into the binary so GET /openapi.json needs no file at run time.
$(BUILD)/openapi_blob.c: openapi/openapi.json scripts/embed.sh
	@mkdir -p $(BUILD)
	scripts/embed.sh openapi/openapi.json cw_openapi_json > $@

$(BUILD)/obj/openapi_blob.o: $(BUILD)/openapi_blob.c
	@mkdir -p $(dir $@)
	$(CC) $(CWFLAGS) $(CFLAGS) -c $< -o $@

# The findings page (ui/, every file) likewise, within UI_MAX_BYTES (api/api_ui.h). The folder itself
# is a prerequisite: a file deleted from it changes its time, and must stop being served.
$(BUILD)/ui_blob.c: ui $(UI_FILES) scripts/embed_ui.sh api/api_ui.h
	@mkdir -p $(BUILD)
	scripts/embed_ui.sh ui $$(sed -n 's/^#define UI_MAX_BYTES \([0-9]*\).*/\1/p' api/api_ui.h) > $@.tmp
	@mv $@.tmp $@

$(BUILD)/obj/ui_blob.o: $(BUILD)/ui_blob.c
	@mkdir -p $(dir $@)
	$(CC) $(CWFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libcw.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/credwatch: $(BUILD)/obj/cmd/credwatch.o $(BUILD)/libcw.a
	$(CC) $(CWFLAGS) $(CFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libcw.a
	@mkdir -p $(dir $@)
	$(CC) $(CWFLAGS) -Itests $(CFLAGS) -MMD -MP -MF $@.d $< $(BUILD)/libcw.a -o $@ $(LIBS) -lcmocka

# The one run command: installs what is missing, builds, serves on 127.0.0.1:8080 with the
# durable store (no Redis) in ./credwatch-data unless CREDWATCH_DATA_DIR names another directory:
# findings, triage and key state survive a restart; rm -rf credwatch-data starts afresh (server
# stopped). CREDWATCH_STORE=memory keeps nothing. Other settings come from the environment (README).
run: all
	CREDWATCH_DATA_DIR="$${CREDWATCH_DATA_DIR:-./credwatch-data}" $(BUILD)/credwatch serve

# The one test command: builds, runs every suite, prints `N passed, N failed` last.
test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(BUILD)/credwatch $(TEST_BIN) $(BUILD)/tests/bench_decode
	@BUILD=$(BUILD) tests/run_all.sh

unit:
	@$(MAKE) --no-print-directory $(TEST_BIN)
	@BUILD=$(BUILD) ONLY=unit tests/run_all.sh

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory OPT="-O2 -g -DNDEBUG" $(BUILD)/credwatch $(BENCH_BIN)
	@BUILD=$(BUILD) tests/bench.sh

# Soak: 2 instances over a Redis restarted every REDIS_RESTART_SECONDS, mixed load for SOAK_SECONDS,
# then every acknowledged event stored once, one finding per stolen key, RSS growth < 5% (tests/soak.sh).
.PHONY: soak
soak:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(BUILD)/credwatch
	@BUILD=$(BUILD) SOAK_SECONDS=$(or $(SOAK_SECONDS),600) REDIS_RESTART_SECONDS=$(or $(REDIS_RESTART_SECONDS),120) \
	  sh tests/soak.sh

# Same suites under AddressSanitizer and UndefinedBehaviorSanitizer, in their own build tree.
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# Unit suites and the scan tests (one of them threaded) under the sanitizers: the part of `make asan` CI can afford
# (the integration scripts under ASan take most of its time and test the same code paths).
ASAN_BUILD = build-asan
asan-unit:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" $(ASAN_BUILD)/credwatch \
	  $(patsubst $(BUILD)/%,$(ASAN_BUILD)/%,$(TEST_BIN)) $(ASAN_BUILD)/tests/bench_decode
	@BUILD=$(ASAN_BUILD) ONLY=unit tests/run_all.sh
	@BUILD=$(ASAN_BUILD) timeout -k 5 600 sh tests/it_scan.sh
	@BUILD=$(ASAN_BUILD) timeout -k 5 600 sh tests/it_scan_jobs.sh

# libFuzzer targets (tests/fuzz/fuzz_*.c) need clang: the library is rebuilt in build-fuzz/ with
# coverage instrumentation, each harness links libFuzzer's main. `make fuzz` runs each target for
# FUZZ_SECONDS over its committed seeds (tests/fuzz/corpus/<target>/); new inputs go to
# build-fuzz/corpus/<target>/, crashes to build-fuzz/crashes/.
FUZZ_BUILD   = build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SRC     = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     = $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=undefined
# -Wno-unknown-warning-option: clang does not know gcc's -Wno-format-truncation (CWFLAGS).

$(FUZZ_BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_common.h $(FUZZ_BUILD)/libcw.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CWFLAGS) -Itests/fuzz $(CFLAGS) -fsanitize=fuzzer $< $(FUZZ_BUILD)/libcw.a -o $@ $(LIBS)

fuzz-build:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN) -Wno-unknown-warning-option" $(FUZZ_BIN)

# fuzz_codec's seeds are det_encode blobs of the fixtures' keys (the other seeds: make_corpus.py).
fuzz-seeds: $(BUILD)/libcw.a
	@mkdir -p $(BUILD)/tests tests/fuzz/corpus/fuzz_codec
	$(CC) $(CWFLAGS) $(CFLAGS) tests/fuzz/seed_codec.c $(BUILD)/libcw.a -o $(BUILD)/tests/seed_codec $(LIBS)
	/usr/bin/python3 tests/fuzz/make_corpus.py
	$(BUILD)/tests/seed_codec tests/fuzz/corpus/fuzz_codec tests/fuzz/corpus/fuzz_decode/ct-*

fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(notdir $(FUZZ_BIN))

lint: $(BUILD)/credwatch
	@! grep -nE '\b(sprintf|strcpy|strcat|atoi|gets|strtok)[[:space:]]*\(' service/*.[ch] api/*.[ch] sink/*.[ch] cmd/*.c || \
	  (echo "banned function used" >&2; exit 1)
	@BUILD=$(BUILD) /usr/bin/python3 scripts/layout_check.py

clean:
	rm -rf build build-asan $(FUZZ_BUILD)
