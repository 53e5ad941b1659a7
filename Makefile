# ivcs build, test and benchmark entry points. See README.md.
#
#   make         build dist/ (headers, engine component, ivcs binary, libivcs,
#                web viewer)
#   make test    everything CI runs: lint, headers and C layouts, unit, viewer
#                unit, media matrix, cloud, C API and viewer-in-Chromium tests,
#                import check, fuzz smoke, example
#   make demo    the cloud on ./demo-data, a virtual camera recording into
#                it and the viewer URL, until Ctrl-C (scripts/demo.sh)
#   make bench   benchmarks (prints ratio tables): ivcs mux vs ffmpeg, cloud vs nginx,
#                libivcs push latency / CPU / RSS / size against their targets

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

.PHONY: all setup sim demo dist engine cli engine-cwasm hostile-engines lib example viewer viewer-unit test lint unit matrix check-imports check-headers check-layout fuzz-smoke bench fixtures clean

all: dist

# Installs what the build and the tests need (idempotent; scripts/setup.sh says what).
setup:
	scripts/setup.sh

engine: setup
	$(ENGINE_ENV) $(CARGO) build $(ENGINE_FLAGS)
	mkdir -p target/engine
	cp $(ENGINE_WASM) target/engine/engine.wasm

cli:
	$(CARGO) build --release -p ivcs-cli

# The host's precompiled engine: libivcs embeds it (libivcs/build.rs), so it
# is made by the freshly built CLI before the library is compiled.
engine-cwasm: engine cli
	target/release/ivcs engine compile target/engine/engine.wasm -o target/engine/engine.cwasm

# Test engines that turn hostile (tests/hostile-engine), for libivcs's
# containment and probation tests: one build per behaviour, each compiled
# for this host into target/hostile/KIND.cwasm. Never copied to dist/.
HOSTILE_KINDS := passthrough loop-in-tick memory-bomb trap wrong-contract bad-credentials other-world
HOSTILE_TARGET_DIR := target/hostile-build
hostile-engines: cli
	mkdir -p target/hostile
	for k in $(HOSTILE_KINDS); do \
		features=$$(test $$k = passthrough || echo "--features $$k"); \
		$(ENGINE_ENV) $(CARGO) build -p ivcs-hostile-engine $$features --target wasm32-wasip2 \
			--profile wasm-hostile -Zbuild-std=std,panic_abort --target-dir $(HOSTILE_TARGET_DIR) && \
		cp $(HOSTILE_TARGET_DIR)/wasm32-wasip2/wasm-hostile/ivcs_hostile_engine.wasm target/hostile/$$k.wasm && \
		target/release/ivcs engine compile target/hostile/$$k.wasm -o target/hostile/$$k.cwasm || exit 1; \
	done

# libivcs without Cranelift (loads precompiled engines only: small).
lib: engine-cwasm
	$(CARGO) build --release -p ivcs-lib
	mkdir -p $(DIST)/lib/pkgconfig $(DIST)/include
	cp target/release/libivcs.a target/release/libivcs.so $(DIST)/lib/
	sed -e 's/@VERSION@/$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)/' \
		libivcs/ivcs.pc.in > $(DIST)/lib/pkgconfig/ivcs.pc
	cp include/*.h $(DIST)/include/

# The web viewer (npm ci for hls.js, then a copy; docs/design/viewer.md), next
# to target/release/ivcs, which looks in <exe>/../share/ivcs/viewer.
viewer: setup
	scripts/build-viewer.sh target/share/ivcs/viewer

viewer-unit: setup
	cd viewer && node --test test/

dist: engine cli engine-cwasm lib
	mkdir -p $(DIST)/bin $(DIST)/engine $(DIST)/include $(DIST)/lib $(DIST)/share/ivcs
	scripts/build-viewer.sh $(DIST)/share/ivcs/viewer
	cp target/release/ivcs $(DIST)/bin/ivcs
	cp target/engine/engine.wasm $(DIST)/engine/engine.wasm
	cp target/engine/engine.cwasm $(DIST)/engine/engine.cwasm
	cp include/*.h $(DIST)/include/

# The example firmware, linked through pkg-config: statically and shared.
example: setup lib
	mkdir -p target/c
	gcc -std=c99 -Wall -Wextra -Werror -pedantic -pthread examples/firmware.c \
		$$(PKG_CONFIG_PATH=$(DIST)/lib/pkgconfig pkg-config --cflags --static --libs ivcs | sed 's/-livcs/-l:libivcs.a/') \
		-o target/c/firmware-static
	gcc -std=c99 -Wall -Wextra -Werror -pedantic -pthread examples/firmware.c \
		$$(PKG_CONFIG_PATH=$(DIST)/lib/pkgconfig pkg-config --cflags --libs ivcs) \
		-Wl,-rpath,$(CURDIR)/$(DIST)/lib -o target/c/firmware-shared

check-imports: dist
	$(DIST)/bin/ivcs engine imports --check $(DIST)/engine/engine.wasm

# C and Rust agree on every struct's size and field offsets, on x86_64 and
# on a 32-bit target (i686: gcc -m32 and rustc --target i686-unknown-linux-gnu).
check-layout: setup
	mkdir -p target/c
	for bits in 64 32; do \
		gcc -std=c99 -Wall -Wextra -Werror -pedantic -m$$bits -Iinclude tests/c/layout.c -o target/c/layout-c$$bits && \
		target/c/layout-c$$bits > target/c/layout-c$$bits.txt || exit 1; \
	done
	rustc --edition 2024 -O tests/layout/main.rs -o target/c/layout-rs64
	rustc --edition 2024 -O --target i686-unknown-linux-gnu tests/layout/main.rs -o target/c/layout-rs32
	target/c/layout-rs64 > target/c/layout-rs64.txt
	target/c/layout-rs32 > target/c/layout-rs32.txt
	diff -u target/c/layout-c64.txt target/c/layout-rs64.txt
	diff -u target/c/layout-c32.txt target/c/layout-rs32.txt
	@echo "layouts agree on x86_64 and i686 ($$(grep -c . target/c/layout-c64.txt) lines each)"

check-headers:
	mkdir -p target/c
	gcc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude tests/c/headers.c -o target/c/headers && target/c/headers
	gcc -std=c99 -Wall -Wextra -Werror -pedantic -DIV_CS_FIVE_CHANNELS -Iinclude tests/c/headers.c -o target/c/headers5 && target/c/headers5
	g++ -x c++ -Wall -Wextra -Werror -pedantic -Iinclude tests/c/headers.c -o target/c/headers-cxx && target/c/headers-cxx

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	$(ENGINE_ENV) $(CARGO) clippy $(ENGINE_FLAGS) -- -D warnings

fixtures: setup
	scripts/gen-fixtures.sh

# libivcs's Rust tests need the precompiled engine it embeds.
unit: engine-cwasm
	$(CARGO) test --release --workspace --exclude ivcs-tests

matrix: dist fixtures hostile-engines
	IVCS_BIN=$(CURDIR)/$(DIST)/bin/ivcs $(CARGO) test --release -p ivcs-tests

fuzz-smoke: setup
	scripts/fuzz-smoke.sh 10

test: setup lint check-headers check-layout check-imports unit viewer-unit matrix fuzz-smoke example

demo: dist
	scripts/demo.sh

# The scenario library in virtual time (host-sim; docs/guide/scenarios.md).
sim: dist
	$(DIST)/bin/ivcs sim host-sim/scenarios/*.toml --seeds 1..2 --trace-dir target/sim

bench: dist
	scripts/gen-fixtures.sh --bench
	IVCS_BIN=$(CURDIR)/$(DIST)/bin/ivcs scripts/bench-mux.sh
	IVCS_BIN=$(CURDIR)/$(DIST)/bin/ivcs scripts/bench-cloud.sh
	IVCS_BIN=$(CURDIR)/$(DIST)/bin/ivcs scripts/bench-libivcs.sh
	IVCS_BIN=$(CURDIR)/$(DIST)/bin/ivcs scripts/bench-sim.sh

clean:
	rm -rf $(DIST) target
