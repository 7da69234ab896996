#![no_main]
// See sshbridge::fuzzing::server for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::server(data));
