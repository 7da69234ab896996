#![no_main]
// See sshbridge::fuzzing::message for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::message(data));
