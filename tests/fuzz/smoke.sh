#!/usr/bin/env bash
# Runs every fuzz target for a bounded time. Needs a nightly toolchain (libFuzzer and the
# sanitizer flags are nightly-only). Without one it says so and exits 0 on a developer's
# machine, but fails under CI (`CI` set to anything but "false" or empty): a check that
# could not run must not pass.
#
#   tests/fuzz/smoke.sh            # 30 s per target
#   FUZZ_SECONDS=300 tests/fuzz/smoke.sh
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-30}"
targets=(frame_decoder cobs_accumulator translate log_batch edn_value json_value dialect_edn dialect_json lsp_framing nrepl_bencode nrepl_request blob_directive log_control header_fields log_ingest ws_frames ws_upgrade http_head)

under_ci() { [[ -n "${CI:-}" && "${CI}" != "false" ]]; }

if ! cargo +nightly --version >/dev/null 2>&1; then
    if under_ci; then
        echo "fuzz smoke: FAILED (no nightly toolchain under CI; .ci/run installs one)" >&2
        exit 1
    fi
    echo "fuzz smoke: SKIPPED (no nightly toolchain; install one with 'rustup toolchain install nightly --profile minimal')"
    exit 0
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

for target in "${targets[@]}"; do
    echo "fuzz smoke: ${target} for ${seconds}s"
    mkdir -p "corpus/${target}"
    # Checked-in seeds (seeds/<target>, where there are some) are read, never written.
    seeds=()
    if [[ -d "seeds/${target}" ]]; then seeds=("seeds/${target}"); fi
    cargo +nightly fuzz run --fuzz-dir . "${target}" "corpus/${target}" ${seeds[@]+"${seeds[@]}"} -- \
        -max_total_time="${seconds}" -max_len=4096 -timeout=10
done
echo "fuzz smoke: all ${#targets[@]} targets ran ${seconds}s without a crash"
