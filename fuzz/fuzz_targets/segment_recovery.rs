//! Segment recovery on arbitrary files (`spate::fuzz::segment_recovery`), in one folder
//! reused for every input.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn folder() -> &'static PathBuf {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("spate-fuzz-recovery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz folder");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    spate::fuzz::segment_recovery(data, folder());
});
