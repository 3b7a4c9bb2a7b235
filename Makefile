# hass: one Makefile. Probes nvcc, jansson, zlib and OpenMP and says what it builds.
#   make                 build libhass.a and build/bin/hass-*
#   make test            build, then run tests/run.sh (last line: "N passed, N failed")
#   make debug test      the same with ASan+UBSan, into build-debug/
#   make bench           benchmarks (not tests): see docs/PERF.md
#   make models          fetch SmolLM2-135M-Instruct into models/ (MODEL=qwen2.5-coder-1.5b, ...)
#   make deps            install the Debian packages the build and tests need (root or sudo)
#   make install PREFIX=/usr/local
#   CUDA=0 make          CPU-only build even where nvcc exists
#   WERROR=1 make        warnings are errors (CI)

PREFIX  ?= /usr/local
CC      ?= cc
ifeq ($(CC),cc)
  CC := gcc
endif

ifneq ($(filter debug,$(MAKECMDGOALS)),)
  BUILD    ?= build-debug
  OPTFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  SANITIZE := 1
else
  BUILD    ?= build
  OPTFLAGS := -O2 -g
  SANITIZE :=
endif

CFLAGS   ?= $(OPTFLAGS)
CFLAGS   += -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter -pthread
# libcore's folders, lowest first: a folder includes only headers of its own and lower folders
# (libcore/README.md; tests/layers.sh checks it)
LAYERS   := base io formats text engine spec train cli
INCLUDES := $(addprefix -Ilibcore/,$(LAYERS))
CPPFLAGS += -D_GNU_SOURCE $(INCLUDES)
LDFLAGS  += -pthread
LDLIBS   += -lm
ifeq ($(WERROR),1)
  CFLAGS += -Werror
endif

# ---- dependencies: jansson, zlib (required) --------------------------------------------------
# `make deps` installs what is missing (scripts/deps.sh: apt-get as root or through sudo, else the
# one line to run); it runs before the probe below, so `make deps models all` works in one go.
# Goals that build nothing (deps, models, clean, print-config) skip the probe; any other goal
# among them does not (`make models all` links with jansson like `make all`).
ifneq ($(filter deps,$(MAKECMDGOALS)),)
  ifneq ($(shell bash scripts/deps.sh >&2 && echo ok),ok)
    $(error ✗ make deps: the packages above are missing (scripts/deps.sh said why))
  endif
endif
NOBUILD_GOALS := clean deps models print-config
ifneq ($(filter-out $(NOBUILD_GOALS),$(or $(MAKECMDGOALS),all)),)
  ifeq ($(shell pkg-config --exists jansson && echo y),y)
    $(info ✓ jansson $(shell pkg-config --modversion jansson))
    CPPFLAGS += $(shell pkg-config --cflags jansson)
    LDLIBS   += $(shell pkg-config --libs jansson)
  else
    $(error ✗ jansson not found: run 'make deps' (as root or with sudo), or: apt-get install libjansson-dev pkg-config)
  endif
  ifeq ($(shell pkg-config --exists zlib && echo y),y)
    $(info ✓ zlib $(shell pkg-config --modversion zlib))
    CPPFLAGS += $(shell pkg-config --cflags zlib)
    LDLIBS   += $(shell pkg-config --libs zlib)
  else
    $(error ✗ zlib not found: run 'make deps' (as root or with sudo), or: apt-get install zlib1g-dev pkg-config)
  endif
endif

# ---- OpenMP (threads over all cores) ---------------------------------------------------------
ifneq ($(OMP),0)
  ifeq ($(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo y),y)
    CFLAGS  += -fopenmp
    LDFLAGS += -fopenmp
    OMP_MSG := ✓ OpenMP
  else
    OMP_MSG := ✗ OpenMP not found: single-threaded kernels
  endif
else
  OMP_MSG := ✗ OpenMP off (OMP=0)
endif

# ---- CUDA (optional) -------------------------------------------------------------------------
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(CUDA),0)
  NVCC :=
endif
CUDA_ARCH ?= 90
ifneq ($(NVCC),)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDA_VER  := $(shell $(NVCC) --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
  CUDA_MSG  := ✓ nvcc $(CUDA_VER) ($(NVCC)): CUDA kernels for sm_$(CUDA_ARCH) + PTX, cuBLAS
  CPPFLAGS  += -DHASS_WITH_CUDA -DHASS_CUDA_VERSION='"$(CUDA_VER)"' -DHASS_CUDA_ARCH='"sm_$(CUDA_ARCH)"'
  NVCCFLAGS ?= -O3 -lineinfo
  NVCCFLAGS += -std=c++17 $(INCLUDES) -gencode arch=compute_$(CUDA_ARCH),code=sm_$(CUDA_ARCH) \
               -gencode arch=compute_$(CUDA_ARCH),code=compute_$(CUDA_ARCH) \
               -Xcompiler -Wall,-Wextra,-Wno-unused-parameter -DHASS_WITH_CUDA
  ifeq ($(WERROR),1)
    NVCCFLAGS += -Werror all-warnings
  endif
  KSRC   := $(wildcard kernels/*.cu)
  KOBJ   := $(patsubst kernels/%.cu,$(BUILD)/kernels/%.o,$(KSRC))
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
else
  CUDA_MSG := ✗ nvcc not found (or CUDA=0): CPU-only build
  KOBJ   :=
endif

# ---- sources ---------------------------------------------------------------------------------
LIBSRC  := $(wildcard $(addsuffix /*.c,$(addprefix libcore/,$(LAYERS))))
LIBOBJ  := $(patsubst libcore/%.c,$(BUILD)/libcore/%.o,$(LIBSRC))
LIB     := $(BUILD)/libhass.a
BINS    := $(patsubst cmd/%.c,$(BUILD)/bin/%,$(wildcard cmd/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
HDRS    := $(wildcard $(addsuffix /*.h,$(addprefix libcore/,$(LAYERS))))

.PHONY: all debug test bench models deps install clean print-config check
all: banner $(BINS) $(UNIT_TESTS)
debug: all

banner:
	@echo "$(CUDA_MSG)"
	@echo "$(OMP_MSG)"
	@echo "building into $(BUILD)/"
.PHONY: banner

$(BUILD)/libcore/%.o: libcore/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/kernels/%.o: kernels/%.cu $(HDRS) $(wildcard kernels/*.cuh) | $(BUILD)/kernels
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIB): $(LIBOBJ) $(KOBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: cmd/%.c $(LIB) $(HDRS) | $(BUILD)/bin
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(LIB) $(HDRS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $< -o $@ $(LDFLAGS) $(LIB) $(LDLIBS)

$(BUILD)/kernels $(BUILD)/bin $(BUILD)/tests:
	@mkdir -p $@

test: all
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) bash tests/run.sh

check: test
	@bash tests/man-lint.sh

bench: all
	@BUILD=$(BUILD) bash scripts/bench.sh

# MODEL=smollm2 (default), qwen2.5-coder-1.5b, qwen2.5-coder-0.5b
models:
	@MODEL=$(MODEL) bash scripts/fetch-models.sh

deps:
	@:

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	for f in man/*.1; do install -m 644 $$f $(DESTDIR)$(PREFIX)/share/man/man1/; done
	for f in man/*.5; do [ -e $$f ] && install -m 644 $$f $(DESTDIR)$(PREFIX)/share/man/man5/ || true; done
	for f in man/*.7; do [ -e $$f ] && install -m 644 $$f $(DESTDIR)$(PREFIX)/share/man/man7/ || true; done

print-config:
	@echo "CC=$(CC) NVCC=$(NVCC) BUILD=$(BUILD) CUDA_ARCH=$(CUDA_ARCH)"

clean:
	rm -rf build build-debug

# ---- fuzzing (tests/fuzz/README.md): libcore again with clang, ASan+UBSan and libFuzzer -------
#   make fuzz                     build the targets into build-fuzz/, run each FUZZ_SECONDS
#   make fuzz FUZZ_TARGETS=gguf   only some targets (names without fuzz_)
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build-fuzz
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -std=c11 -pthread -Wall -Wno-unused-parameter \
                -Wno-unknown-pragmas -D_GNU_SOURCE $(INCLUDES)
# clang 14 knows no "f16c" for __builtin_cpu_supports; the readers fuzzed never reach the SIMD
# kernels, so the C paths are taken everywhere
FUZZ_FLAGS   += '-D__builtin_cpu_supports(x)=0'
FUZZ_LIBS    := $(shell pkg-config --libs jansson zlib 2>/dev/null) -lm
FUZZ_OBJ     := $(patsubst libcore/%.c,$(FUZZ_BUILD)/libcore/%.o,$(LIBSRC))
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
.PHONY: fuzz fuzz-build
fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh long $(FUZZ_TARGETS)
fuzz-build: $(FUZZ_BINS)
# the SIMD kernel files at -O0: the fuzzed readers never reach them, and ASan at -O1 takes clang
# over ten minutes on their unrolled register-blocked kernels
FUZZ_SIMD    := $(addprefix $(FUZZ_BUILD)/libcore/engine/,cpu_kernels_x86.o kquant_avx2.o kquant_avx512.o)
$(FUZZ_SIMD): FUZZ_OPT := -O0
$(FUZZ_BUILD)/libcore/%.o: libcore/%.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_OPT) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/libhass.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_BUILD)/libhass.a $(HDRS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< -o $@ $(FUZZ_BUILD)/libhass.a $(FUZZ_LIBS)
