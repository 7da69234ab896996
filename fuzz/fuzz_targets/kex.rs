#![no_main]
// See sshbridge::fuzzing::kex for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::kex(data));
