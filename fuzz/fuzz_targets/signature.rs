#![no_main]
// See sshbridge::fuzzing::signature for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::signature(data));
