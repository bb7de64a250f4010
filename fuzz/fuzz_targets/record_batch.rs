//! Every RecordBatch parser, broker's and client's (`spate::fuzz::record_batches`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spate::fuzz::record_batches(data);
});
