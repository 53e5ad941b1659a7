# ivcs build, test and benchmark entry points. See README.md.
#
#   make         build dist/ (headers, engine component, ivcs binary, web viewer)
#   make test    everything CI runs: lint, unit, media matrix (with the viewer in
#                Chromium), import check, fuzz smoke
#   make bench   benchmarks (prints ratio tables): ivcs mux vs ffmpeg, cloud vs nginx

SHELL := /bin/bash
CARGO ?= cargo
DIST := dist
ENGINE_TARGET_DIR := target/engine-build
ENGINE_WASM := $(ENGINE_TARGET_DIR)/wasm32-wasip2/wasm-release/ivcs_engine.wasm

# The engine is built with std rebuilt so that a panic is a bare trap
# (`-Cpanic=immediate-abort`): no panic machinery, so no wasi:cli imports.
# See docs/design/engine-build.md.
ENGINE_ENV := RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Ctarget-feature=+simd128"
ENGINE_FLAGS := -p ivcs-engine --target wasm32-wasip2 --profile wasm-release \
	-Zbuild-std=std,panic_abort --target-dir $(ENGINE_TARGET_DIR)

.PHONY: all dist engine cli viewer viewer-unit test lint unit matrix check-imports check-headers fuzz-smoke bench fixtures clean

all: dist

engine:
	$(ENGINE_ENV) $(CARGO) build $(ENGINE_FLAGS)
	mkdir -p target/engine
	cp $(ENGINE_WASM) target/engine/engine.wasm

cli:
	$(CARGO) build --release -p ivcs-cli

# The web viewer (npm ci for hls.js, then a copy; docs/design/viewer.md), next
# to target/release/ivcs, which looks in <exe>/../share/ivcs/viewer.
viewer:
	scripts/build-viewer.sh target/share/ivcs/viewer

viewer-unit:
	cd viewer && node --test test/

dist: engine cli
	mkdir -p $(DIST)/bin $(DIST)/engine $(DIST)/include $(DIST)/lib $(DIST)/share/ivcs
	scripts/build-viewer.sh $(DIST)/share/ivcs/viewer
	cp target/release/ivcs $(DIST)/bin/ivcs
	cp target/engine/engine.wasm $(DIST)/engine/engine.wasm
	$(DIST)/bin/ivcs engine precompile $(DIST)/engine/engine.wasm $(DIST)/engine/engine.cwasm
	cp $(DIST)/engine/engine.cwasm target/engine/engine.cwasm
	# C headers arrive with libivcs; copy whatever exists.
	find include -maxdepth 1 -name '*.h' -exec cp {} $(DIST)/include/ \;

check-imports: dist
	$(DIST)/bin/ivcs engine imports --check $(DIST)/engine/engine.wasm

check-headers:
	mkdir -p target/c
	gcc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude tests/c/headers.c -o target/c/headers && target/c/headers
	gcc -std=c99 -Wall -Wextra -Werror -pedantic -DIV_CS_FIVE_CHANNELS -Iinclude tests/c/headers.c -o target/c/headers5 && target/c/headers5
	g++ -x c++ -Wall -Wextra -Werror -pedantic -Iinclude tests/c/headers.c -o target/c/headers-cxx && target/c/headers-cxx

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	$(ENGINE_ENV) $(CARGO) clippy $(ENGINE_FLAGS) -- -D warnings

fixtures:
	scripts/gen-fixtures.sh

unit:
	$(CARGO) test --release --workspace --exclude ivcs-tests

matrix: dist fixtures
	IVCS_BIN=$(CURDIR)/$(DIST)/bin/ivcs $(CARGO) test --release -p ivcs-tests

fuzz-smoke:
	scripts/fuzz-smoke.sh 10

test: lint check-headers check-imports unit viewer-unit matrix fuzz-smoke

bench: dist
	scripts/gen-fixtures.sh --bench
	IVCS_BIN=$(CURDIR)/$(DIST)/bin/ivcs scripts/bench-mux.sh
	IVCS_BIN=$(CURDIR)/$(DIST)/bin/ivcs scripts/bench-cloud.sh

clean:
	rm -rf $(DIST) target
