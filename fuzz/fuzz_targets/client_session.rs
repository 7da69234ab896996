#![no_main]
// See sshbridge::fuzzing::client_session for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::client_session(data));
