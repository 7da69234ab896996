#![no_main]
// See sshbridge::fuzzing::ident for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sshbridge::fuzzing::ident(data));
