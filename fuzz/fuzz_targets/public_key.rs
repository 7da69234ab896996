#![no_main]
// See sshbridge::fuzzing::public_key for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::public_key(data));
