# tseal - build, test, demo, benchmarks.
#
#   make demo        install missing Debian packages, build, run the main job on a sample model
#   make test        install missing Debian packages, build, run every test
#   make bench       codec benchmarks (synthetic + real model) with zstd baselines
#   make asan        build with ASan+UBSan into build-asan/    make asan-test  ... and run the tests
#   make fuzz        libFuzzer targets, FUZZ_SECONDS each       make gpu-test   GPU tests (skip w/o GPU)
#   make CUDA=0 ...  build without CUDA (the kernels/ stub)     make format     clang-format the tree
#   make emu-test    the CUDA code on a CPU emulator of the GPU (tests/emu/), under ASan+UBSan
#   make python-test the Python package's tests (CPU paths; GPU/torch ones skip without them)

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2
SAN     ?= 0
NVCC    ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
CUDA    ?= $(if $(NVCC),1,0)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= sm_90
# KERNEL_DEFS: -D options for the kernels only (nvcc, or g++ under EMU=1), e.g. the earlier
# control flow kept for measuring against: -DTSEAL_GEMV_INLINE_CHUNKS=1 -DTSEAL_DECODE_INLINE_CHUNKS=1
KERNEL_DEFS ?=
# Parallel jobs of the builds that make test, fuzz, fault-test and emu-test start themselves.
NPROC := $(shell nproc 2>/dev/null || echo 2)
# EMU=1: the CUDA emulator (tests/emu/README.md): kernels/*.cu built by g++, run on CPU fibers.
EMU     ?= 0
ifeq ($(EMU),1)
override CUDA := 1
endif
# Extra prefix holding headers/libs unpacked from Debian packages (the GPU machine; see bench/gpu_check.sh).
DEPS_PREFIX ?=
FUZZ_SECONDS ?= 30
THREADS ?= 0
V       ?= 0
Q       := $(if $(filter 1,$(V)),,@)

DEB_PKGS := gcc g++ libc6-dev libsodium-dev libssl-dev libcjson-dev libcriterion-dev libzstd-dev pkg-config curl ca-certificates unzip time openssl
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wvla -Wpointer-arith
HARDEN  := -fstack-protector-strong -fstack-clash-protection -fcf-protection -fPIC \
           -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2
INC     := -Iinclude -Icommon -Icodec -Icrypto -Ipackager -Ipolicy -Ikernels -Iloader -Ibench
ifneq ($(DEPS_PREFIX),)
# -isystem: headers unpacked from Debian packages are system headers, as they are in /usr/include
# (warnings inside their macros, e.g. Criterion's, must not fail -Werror).
INC     += -isystem $(DEPS_PREFIX)/usr/include -isystem $(DEPS_PREFIX)/usr/include/x86_64-linux-gnu
DEPLIB  := -L$(DEPS_PREFIX)/usr/lib/x86_64-linux-gnu -Wl,-rpath,$(DEPS_PREFIX)/usr/lib/x86_64-linux-gnu \
           -Wl,-rpath-link,$(DEPS_PREFIX)/usr/lib/x86_64-linux-gnu
endif
CFLAGS   = -std=gnu11 $(OPT) -g -pthread $(WARN) $(HARDEN) $(INC) -DTSEAL_CUDA=$(CUDA) $(EXTRA_CFLAGS)
# --as-needed: programs that use no cuBLAS symbol (the tests) do not load it (~600 MB mapped).
LDFLAGS := -pthread -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--as-needed $(DEPLIB) $(EXTRA_LDFLAGS)
LIBS    := -lsodium -lcrypto -lcjson -lzstd -lm

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(EMU),1)
CXX     ?= g++
# (a variable: a literal comma inside $(if ...) would split its arguments)
EMU_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LIBS    += -lstdc++
EMUFLAGS = -std=c++17 $(OPT) -g -pthread -fPIC -fstack-protector-strong -Wall -Wextra -Werror \
           -Wno-unknown-pragmas -Wno-unused-function -ffp-contract=off -Itests/emu/include $(INC) -DTSEAL_CUDA=1 \
           -D__CUDACC__ -D__CUDA_ARCH__=900 -include cuda_runtime.h $(KERNEL_DEFS) \
           $(if $(filter 1,$(SAN)),$(EMU_SAN))
else ifeq ($(CUDA),1)
CUDA_LIBDIR := $(CUDA_HOME)/lib64
LIBS    += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublas -lcudart -lstdc++
# --fmad=false: no multiply-add is contracted behind the code's back, so device arithmetic is
# exactly what the source (and the C reference, and the emulator of make emu-test) computes;
# the GEMV's fused multiply-adds are explicit (__fmaf_rn).
NVFLAGS := -arch=$(CUDA_ARCH) -O3 -lineinfo -std=c++17 --fmad=false $(INC) -DTSEAL_CUDA=1 \
           $(KERNEL_DEFS) -Xcompiler -fPIC,-Wall,-Wextra,-Werror,-fstack-protector-strong
endif

# Library sources, split by dependency (common <- codec <- packager/crypto <- loader/policy).
LIB_C   := $(wildcard common/*.c codec/*.c crypto/*.c packager/*.c loader/*.c policy/*.c bench/*.c)
# kernels/*_nocuda.c are the stubs of the CUDA entry points, built instead of kernels/*.cu.
KER_C   := $(filter-out %_nocuda.c,$(wildcard kernels/*.c))
ifeq ($(CUDA),1)
KER_CU  := $(wildcard kernels/*.cu)
else
KER_C   += $(wildcard kernels/*_nocuda.c)
KER_CU  :=
endif
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(LIB_C) $(KER_C)) $(patsubst %.cu,$(BUILD)/%.cu.o,$(KER_CU))
ifeq ($(EMU),1)
LIB_OBJ += $(BUILD)/tests/emu/emu.o
endif
CLI_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c))
TEST_C  := $(wildcard tests/*.c)
TEST_OBJ:= $(patsubst %.c,$(BUILD)/%.o,$(TEST_C))
GPUT_OBJ:= $(patsubst tests/gpu/%.c,$(BUILD)/tests/gpu.obj/%.o,$(wildcard tests/gpu/*.c))
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))

.PHONY: test-build fault-test attacks-test attacks-regen deps-fuzz all deps demo test test-run unit cli-test fuzz-replay nocuda-check bench asan asan-test \
        fuzz gpu-test emu-test format format-check clean weights

all: $(BUILD)/tseal $(BUILD)/libtseal.a $(BUILD)/libtseal.so

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null \
	  || { echo "error: could not install:$$missing" >&2; exit 1; }; fi

# The codec's hot loops need -O3 (vectorised plane join, unrolled bit writer).
$(BUILD)/codec/%.o: OPT = -O3

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/gpu.obj/%.o: tests/gpu/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

ifeq ($(EMU),1)
$(BUILD)/%.cu.o: %.cu tests/emu/launch.pl
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  EMU-CXX $<")
	$(Q)tests/emu/launch.pl $< > $(BUILD)/$*.emu.cpp
	$(Q)$(CXX) $(EMUFLAGS) -MMD -MP -MT $@ -c $(BUILD)/$*.emu.cpp -o $@

$(BUILD)/tests/emu/emu.o: tests/emu/emu.cpp tests/emu/include/cuda_runtime.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(EMUFLAGS) -c $< -o $@

# The memory scan alone (emu-test runs its GPU-path case without building the whole suite).
$(BUILD)/tests/memscan: $(BUILD)/tests/test_memscan.o $(BUILD)/libtseal.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pie $(LDFLAGS) -o $@ $< $(BUILD)/libtseal.a $(LIBS) -lcriterion

# The emulator's own test: kernels with one deliberate bug each (tests/emu/selftest.cu).
$(BUILD)/tests/emu/selftest: $(BUILD)/tests/emu/selftest.cu.o $(BUILD)/tests/emu/emu.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) -pie $(LDFLAGS) -o $@ $^ $(if $(filter 1,$(SAN)),$(EMU_SAN)) -ldl
else
$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@
endif

$(BUILD)/libtseal.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/libtseal.so: $(LIB_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tseal: $(CLI_OBJ) $(BUILD)/libtseal.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pie $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libtseal.a $(LIBS)

$(BUILD)/tests/unit: $(TEST_OBJ) $(BUILD)/libtseal.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pie $(LDFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libtseal.a $(LIBS) -lcriterion

$(BUILD)/tests/gpu: $(GPUT_OBJ) $(BUILD)/libtseal.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pie $(LDFLAGS) -o $@ $(GPUT_OBJ) $(BUILD)/libtseal.a $(LIBS) -lcriterion

# Fuzz targets replayed over their corpus and past crashers (no libFuzzer needed).
$(BUILD)/fuzz/replay-%: fuzz/fuzz_%.c fuzz/replay.c $(BUILD)/libtseal.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -pie $(LDFLAGS) -o $@ fuzz/fuzz_$*.c fuzz/replay.c $(BUILD)/libtseal.a $(LIBS)

# ---- the two commands ------------------------------------------------------------------

demo: deps
	@$(MAKE) --no-print-directory all
	@bench/demo.sh $(BUILD)

# CI (`.ci/run`) runs exactly this: the suite, the same suite under ASan+UBSan (leaks fail
# it), every fuzz target for FUZZ_CI_SECONDS on top of the corpus replay, fault injection, and
# the CUDA code on the CPU emulator of the GPU.
FUZZ_CI_SECONDS ?= 10
# Builds run NPROC jobs at a time; the tests themselves run one step after the other.
test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) test-build
	@$(MAKE) --no-print-directory test-run
	@$(MAKE) --no-print-directory python-test
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CUDA=0 OPT=-O1 -j$(NPROC) test-build
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CUDA=0 OPT=-O1 test-run
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_CI_SECONDS)
	@$(MAKE) --no-print-directory fault-test
	@$(MAKE) --no-print-directory emu-test
	@echo "make test: everything passed"

# What test-run needs built (make test builds it in parallel first).
test-build: all $(BUILD)/tests/unit $(addprefix $(BUILD)/fuzz/replay-,$(FUZZ_TARGETS))

test-run: test-build
	@bench/fetch-weights.sh $(BUILD) || echo "warning: real model unavailable; its tests will skip"
	@$(MAKE) --no-print-directory unit fuzz-replay cli-test attacks-test
	@if [ "$(BUILD)" = build ]; then $(MAKE) --no-print-directory nocuda-check; fi
	@echo "all tests passed ($(BUILD))"

# Under sanitizers a report inside a forked Criterion worker does not fail the test by itself:
# keep the log and fail on any ASan, LSan or UBSan report.
unit: $(BUILD)/tests/unit
ifeq ($(SAN),1)
	@TSEAL_BIN=$(BUILD)/tseal ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  $(BUILD)/tests/unit --jobs=$$(nproc) --short-filename 2>&1 | tee $(BUILD)/unit.log; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	  if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" $(BUILD)/unit.log; then \
	    echo "sanitizer reports found (see $(BUILD)/unit.log)"; exit 1; fi
else
	TSEAL_BIN=$(BUILD)/tseal $(BUILD)/tests/unit --jobs=$$(nproc) --short-filename
endif

fuzz-replay: $(addprefix $(BUILD)/fuzz/replay-,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  $(BUILD)/fuzz/replay-$$t fuzz/corpus/$$t fuzz/crashers/$$t || exit 1; done

cli-test: $(BUILD)/tseal
	@tests/cli.sh $(BUILD)/tseal

# The attack corpus (tests/attacks/): crafted files replayed through the CLI, each with its
# expected exit code and message. attacks-regen rewrites the committed files.
attacks-test: $(BUILD)/tseal
	@tests/attacks/run.sh $(BUILD)/tseal

attacks-regen: $(BUILD)/libtseal.a
	@mkdir -p $(BUILD)/tests/attacks
	$(Q)$(CC) $(CFLAGS) -pie $(LDFLAGS) -o $(BUILD)/tests/attacks/gen_attacks \
	    tests/attacks/gen/gen_attacks.c $(BUILD)/libtseal.a $(LIBS)
	$(BUILD)/tests/attacks/gen_attacks tests/attacks

# The library and CLI must also build without CUDA (the kernels/ stub).
nocuda-check:
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=build-nocuda CUDA=0 all >/dev/null
	@build-nocuda/tseal --help >/dev/null && echo "no-CUDA build: ok"

weights: all
	@bench/fetch-weights.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/fetch-weights.sh $(BUILD) || echo "warning: real model unavailable"
	@bench/run-bench.sh $(BUILD)

# ---- sanitizers, fuzzing, GPU ------------------------------------------------------------

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CUDA=0 OPT=-O1 all build-asan/tests/unit

asan-test: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CUDA=0 OPT=-O1 test-run

# libFuzzer targets: the library is built once with clang and the fuzzer-no-link
# instrumentation, then each target links against it; fuzz/run.sh runs them FUZZ_SECONDS each
# from their corpora, one per CPU at a time.
FUZZ_CC    ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_SAN   := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_PKGS  := clang libclang-rt-14-dev

deps-fuzz:
	@missing=""; for p in $(FUZZ_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null \
	  || { echo "error: could not install:$$missing" >&2; exit 1; }; fi

fuzz: deps deps-fuzz
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) CUDA=0 OPT=-O1 \
	  EXTRA_CFLAGS="$(FUZZ_SAN)" $(FUZZ_BUILD)/libtseal.a
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_CC) -std=gnu11 -g -O1 $(INC) -DTSEAL_CUDA=0 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined fuzz/fuzz_$$t.c $(FUZZ_BUILD)/libtseal.a \
	    -o $(FUZZ_BUILD)/fuzz-$$t -lsodium -lcrypto -lcjson -lzstd -lm -pthread || exit 1; done
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Fault injection (tests/fault/README.md): an ASan+UBSan CLI whose allocations and I/O calls
# go through hooks that fail the Nth call; tests/fault/run.sh sweeps N through pack, verify
# and unpack and demands a clean error, no leak and no partial output every time.
FAULT_WRAPS := malloc calloc realloc strdup strndup sodium_malloc sodium_free \
  EVP_MD_CTX_new EVP_KDF_fetch EVP_KDF_CTX_new cJSON_CreateObject cJSON_CreateArray \
  cJSON_CreateString cJSON_CreateNumber cJSON_Print cJSON_PrintUnformatted cJSON_Duplicate \
  cJSON_ParseWithLength cJSON_ParseWithLengthOpts cJSON_AddItemToObject cJSON_AddNullToObject \
  cJSON_AddTrueToObject cJSON_AddFalseToObject cJSON_AddBoolToObject cJSON_AddNumberToObject \
  cJSON_AddStringToObject cJSON_AddObjectToObject cJSON_AddArrayToObject \
  EVP_CIPHER_fetch EVP_CIPHER_CTX_new EVP_PKEY_CTX_new_from_name EVP_PKEY_CTX_new_from_pkey \
  EVP_PKEY_fromdata EVP_PKEY_get_bn_param EVP_PKEY_Q_keygen ECDSA_SIG_new d2i_ECDSA_SIG \
  BN_bin2bn BIO_new BIO_new_mem_buf PEM_read_bio_PrivateKey_ex PEM_read_bio_PUBKEY_ex \
  PEM_read_bio_X509 PEM_read_bio_X509_CRL d2i_X509 i2d_X509 X509_get_ext_d2i \
  ASN1_STRING_to_UTF8 X509_STORE_new X509_STORE_CTX_new X509_STORE_add_cert X509_STORE_add_crl \
  OPENSSL_sk_new_null \
  open read __read_chk pread __pread_chk write pwrite fsync close rename link mkstemp mkdtemp \
  mkdir opendir
# build-asan/tseal-fault: make asan's objects, linked with fault.o and one --wrap per function.
$(BUILD)/tseal-fault: $(CLI_OBJ) $(BUILD)/libtseal.a $(BUILD)/tests/fault/fault.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -pie $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libtseal.a $(BUILD)/tests/fault/fault.o \
	  $(foreach f,$(FAULT_WRAPS),-Wl,--wrap=$(f)) $(LIBS)

fault-test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=build-asan SAN=1 CUDA=0 OPT=-O1 build-asan/tseal-fault
	@tests/fault/run.sh build-asan/tseal-fault

gpu-test: all $(BUILD)/tests/gpu
	$(BUILD)/tests/gpu --jobs=1 --short-filename

# The CUDA code without a GPU (tests/emu/README.md): kernels/*.cu compiled by g++ against an
# emulated CUDA runtime (CUDA threads as fibers, device memory under ASan+UBSan), running the GPU
# tests, the GPU-path memory scan, `tseal load --check` and the GPU benchmarks on small shapes.
emu-test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=build-emu EMU=1 SAN=1 OPT=-O1 \
	  build-emu/tseal build-emu/libtseal.so build-emu/tests/gpu build-emu/tests/memscan \
	  build-emu/tests/emu/selftest
	@tests/emu/run.sh build-emu

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cu' '*.cuh')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h' '*.cu' '*.cuh')

clean:
	rm -rf build build-asan build-nocuda build-fuzz build-fault build-emu

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- the Python package (python/, tests/python/) ------------------------------------------
# CPU paths of python/tseal (open, verify, decode to NumPy through the C decoders, slices,
# errors, offline `pip install ./python`); GPU and torch tests skip without them. Debian's
# python3 on purpose (/usr/bin/python3), whatever python3 comes first on PATH.
PY_PKGS := python3 python3-numpy python3-pytest python3-pip
.PHONY: python-deps python-test

python-deps:
	@missing=""; for p in $(PY_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null \
	  || { echo "error: could not install:$$missing" >&2; exit 1; }; fi

python-test: deps python-deps
	@$(MAKE) --no-print-directory $(BUILD)/libtseal.so $(BUILD)/tseal
	PYTHONDONTWRITEBYTECODE=1 TSEAL_LIB=$(abspath $(BUILD))/libtseal.so \
	  TSEAL_BIN=$(abspath $(BUILD))/tseal /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
