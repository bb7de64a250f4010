//! Every API key and version the broker decodes, with the heap a decoded request holds
//! checked against its frame (`spate::fuzz::request`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spate::fuzz;

#[global_allocator]
static ALLOCATOR: fuzz::CountingAllocator = fuzz::CountingAllocator;

fuzz_target!(|data: &[u8]| {
    fuzz::request(data);
});
