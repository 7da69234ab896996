#![no_main]
// See sshbridge::fuzzing::private_key for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::private_key(data));
