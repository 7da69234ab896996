//! Make a user key without ssh-keygen, dropbearkey or dropbearconvert:
//!
//! ```text
//! cargo run --example keygen -- ed25519|ecdsa|rsa[:BITS] OUT [PASSPHRASE]
//! ```
//!
//! writes `OUT` (OpenSSH format, for `ssh -i`; encrypted when a passphrase is given),
//! `OUT.pub` (the line for the server's authorized_keys), `OUT.dropbear` (Dropbear's format,
//! for `dbclient -i`) and `OUT.h`: the Dropbear bytes as a C array, what `privatekey2c` makes
//! for an eCos application's `db_id_rsa` / `db_id_rsa_keylen`.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;

use sshbridge::keys::RSA_DEFAULT_BITS;
use sshbridge::{KeyKind, PrivateKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kind), Some(out)) = (args.first(), args.get(1)) else {
        return Err("usage: keygen ed25519|ecdsa|rsa[:BITS] OUT [PASSPHRASE]".into());
    };
    let kind = match kind.split_once(':') {
        None if kind == "ed25519" => KeyKind::Ed25519,
        None if kind == "ecdsa" => KeyKind::EcdsaP256,
        None if kind == "rsa" => KeyKind::Rsa(RSA_DEFAULT_BITS),
        Some(("rsa", bits)) => KeyKind::Rsa(bits.parse()?),
        _ => return Err(format!("unknown key kind {kind}").into()),
    };
    let key = PrivateKey::generate(kind)?;

    let secret = |path: &str, data: &[u8]| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(data)
    };
    secret(
        out,
        key.to_openssh(args.get(2).map(String::as_str))?.as_bytes(),
    )?;
    fs::write(
        format!("{out}.pub"),
        format!("{}\n", key.public_key().to_openssh()),
    )?;
    let dropbear = key.to_dropbear()?;
    secret(&format!("{out}.dropbear"), &dropbear)?;

    let mut c = format!(
        "/* {} */\nstatic const unsigned char db_id_key[] = {{",
        key.public_key()
    );
    for (i, b) in dropbear.iter().enumerate() {
        let sep = if i % 12 == 0 { "\n    " } else { " " };
        write!(c, "{sep}0x{b:02x},")?;
    }
    write!(
        c,
        "\n}};\nstatic const unsigned int db_id_key_len = {};\n",
        dropbear.len()
    )?;
    secret(&format!("{out}.h"), c.as_bytes())?;
    println!("{}", key.public_key().to_openssh());
    Ok(())
}
