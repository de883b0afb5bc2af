# qspi-gdb — every target sets up what it needs itself (Debian packages when root, a .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := openocd gdb-multiarch gcc-arm-none-eabi libnewlib-arm-none-eabi python3-venv
STAMP := $(VENV)/.installed

# make flash-ext FILE=image.bin ADDR=0x11E98000 BOARD=nrf5340dk [CONFIG=ext_mem.json] [ARGS=...]
# The values are taken literally: $(value ...) keeps make from expanding what a name holds (a
# file called 'a$(shell cmd)b.bin' would otherwise run cmd while make reads this line), and
# := keeps it from expanding them later; export hands them to the recipe's shell as
# environment variables.
override FILE := $(value FILE)
override ADDR := $(value ADDR)
override BOARD := $(value BOARD)
override CONFIG := $(value CONFIG)
override ARGS := $(value ARGS)
export FILE ADDR BOARD CONFIG ARGS

.PHONY: all deps venv test demo bench faults flash-ext loader zephyr-loader zephyr-app clean

all: test

# Debian packages the tests and the tool use; installed only when missing, only as root.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "missing Debian packages:$$missing (run as root or: sudo apt-get install$$missing)" >&2; exit 1; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

venv: $(STAMP)

test: deps venv
	$(BIN)/python -m pytest -q

demo: deps venv
	$(BIN)/qspi-gdb demo

bench: deps venv
	$(BIN)/python tests/bench/run_all.py

# The seeded fault campaign (README "Reliability"): >= 200 faults in the virtual board and the
# processes around it; writes build/faults/faults.jsonl and faults.md, prints the table.
FAULTS_ARGS ?=
faults: deps venv
	$(BIN)/python tests/faults/campaign.py $(FAULTS_ARGS)

# FILE, ADDR, BOARD and CONFIG reach the shell as environment variables (exported above, taken
# literally), never pasted into the command text: a name with a quote, a space, a $ or a $(...)
# stays one argument and runs nothing. ARGS is split into words on purpose (no globbing). make
# itself exits 2 on any failure; the tool's own exit code (README "Exit codes") is in make's
# "Error N" line.
flash-ext: deps venv
	@if [ -z "$$FILE" ]; then \
		echo "usage: make flash-ext FILE=image.bin|.hex|.elf [ADDR=0x11E98000] BOARD=nrf5340dk [CONFIG=ext_mem.json] [ARGS='--no-verify ...']" >&2; \
		exit 2; \
	fi
	@set -fx; $(BIN)/qspi-gdb flash "$$FILE" $${ADDR:+--addr "$$ADDR"} $${BOARD:+--board "$$BOARD"} \
		$${CONFIG:+--config "$$CONFIG"} $$ARGS

# Rebuild the prebuilt loader ELFs into qspi_gdb/loader/elf/ (needs arm-none-eabi-gcc).
loader: deps
	$(MAKE) -C loader_fw

# Build loader_fw/zephyr against your Zephyr tree for both DKs (nothing of Zephyr is shipped):
#   ZEPHYR_BASE=~/zephyrproject/zephyr make zephyr-loader
# -> build/zephyr-loader/<board>/zephyr/zephyr.elf, for `qspi-gdb flash --loader`. The toolchain
# is Debian's arm-none-eabi-gcc (ZEPHYR_TOOLCHAIN_VARIANT=cross-compile) unless the environment
# names another one (zephyr for the Zephyr SDK); ZEPHYR_MODULES, if set, lists the module paths
# when there is no west workspace. ZEPHYR_JOBS=N limits the build's parallel jobs;
# ZEPHYR_CMAKE_ARGS is passed to CMake (e.g. -DBUILD_VERSION=v4.1.0 for a tree without .git).
# `make zephyr-app ZEPHYR_APP=dir ZEPHYR_APP_BUILD=dir` builds any Zephyr application the same
# way for both DKs (the opt-in Zephyr tests build samples/drivers/spi_flash with it).
ZEPHYR_BOARDS := nrf52840dk/nrf52840 nrf5340dk/nrf5340/cpuapp
ZEPHYR_LOADER_BUILD ?= build/zephyr-loader
ZEPHYR_JOBS ?=
ZEPHYR_CMAKE_ARGS ?=
NEWLIB_SYSROOT := /usr/lib/arm-none-eabi/newlib
override ZEPHYR_APP := $(value ZEPHYR_APP)
override ZEPHYR_APP_BUILD := $(value ZEPHYR_APP_BUILD)
export ZEPHYR_APP ZEPHYR_APP_BUILD

zephyr-loader: override ZEPHYR_APP := loader_fw/zephyr
zephyr-loader: override ZEPHYR_APP_BUILD := $(ZEPHYR_LOADER_BUILD)

zephyr-loader zephyr-app:
	@what="make $@"; \
	if [ -z "$$ZEPHYR_BASE" ]; then \
		echo "$$what: ZEPHYR_BASE is not set; point it at a Zephyr tree with the hal_nordic and cmsis modules (export ZEPHYR_BASE=~/zephyrproject/zephyr)" >&2; \
		exit 2; \
	fi; \
	if [ -z "$$ZEPHYR_APP" ] || [ -z "$$ZEPHYR_APP_BUILD" ]; then \
		echo "usage: make zephyr-app ZEPHYR_APP=app-dir ZEPHYR_APP_BUILD=build-dir" >&2; exit 2; \
	fi; \
	missing=""; for t in cmake ninja dtc; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		echo "$$what: missing build tools:$$missing (Debian: apt-get install cmake ninja-build device-tree-compiler)" >&2; \
		exit 2; \
	fi
	@set -e; \
	export ZEPHYR_TOOLCHAIN_VARIANT="$${ZEPHYR_TOOLCHAIN_VARIANT:-cross-compile}"; \
	extra=""; \
	if [ "$$ZEPHYR_TOOLCHAIN_VARIANT" = cross-compile ]; then \
		export CROSS_COMPILE="$${CROSS_COMPILE:-/usr/bin/arm-none-eabi-}"; \
		if [ -d $(NEWLIB_SYSROOT) ]; then extra="-DSYSROOT_DIR=$(NEWLIB_SYSROOT)"; fi; \
	fi; \
	for board in $(ZEPHYR_BOARDS); do \
		dir="$$ZEPHYR_APP_BUILD/$${board%%/*}"; \
		echo "== $$board -> $$dir/zephyr/zephyr.elf ($$ZEPHYR_TOOLCHAIN_VARIANT)"; \
		cmake -G Ninja -S "$$ZEPHYR_APP" -B "$$dir" -DBOARD="$$board" $$extra $(ZEPHYR_CMAKE_ARGS); \
		cmake --build "$$dir" $${ZEPHYR_JOBS:+--parallel $$ZEPHYR_JOBS}; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
