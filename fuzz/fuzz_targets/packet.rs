#![no_main]
// See sshbridge::fuzzing::packet for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::packet(data));
