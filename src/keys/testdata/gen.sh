#!/bin/sh
# Regenerates the key fixtures in this directory with the real tools:
#   dropbearkey / dropbearconvert (dropbear-bin 2022.83), ssh-keygen (OpenSSH 9.2), openssl 3.0.
# Every key is random, so re-running changes every file; the tests only compare files with
# each other (a private key's public half against the tool's .pub line and ssh-keygen -l).
#
#   NAME.dropbear   Dropbear's binary format     NAME.openssh   OpenSSH's format
#   NAME.pem        PKCS#1 / OpenSSL DSA / SEC1  NAME.pkcs8     PKCS#8 (unencrypted)
#   NAME-enc.*      passphrase "test-pass"       NAME.pub       the tool's public line
#   NAME.fp         ssh-keygen -lf NAME.pub      NAME.sshsig    ssh-keygen -Y sign of sshsig.msg
#   db-*            keys made by dropbearkey; the others by ssh-keygen or openssl
set -eu
cd "$(dirname "$0")"
rm -f ./*.dropbear ./*.openssh ./*.pem ./*.pkcs8 ./*.pub ./*.fp ./*.tmp ./*.sshsig ./*.msg

pubfp() { # $1 = base name: record ssh-keygen's fingerprint of $1.pub
    ssh-keygen -lf "$1.pub" > "$1.fp"
}
dbpub() { # $1 = dropbear key: its public line as dropbearkey -y prints it
    dropbearkey -y -f "$1.dropbear" | grep -E '^(ssh-|ecdsa-)' > "$1.pub"
}
to_openssh() { # $1 = PEM key file, $2 = output: rewrite in OpenSSH's own format
    cp "$1" "$2"; ssh-keygen -q -p -P "" -N "" -f "$2" >/dev/null
}
to_enc() { # $1 = key file, $2 = output: OpenSSH format, bcrypt-pbkdf + aes256-ctr, "test-pass"
    cp "$1" "$2"; ssh-keygen -q -p -P "" -N "test-pass" -f "$2" >/dev/null
}

# --- Keys made by dropbearkey (Dropbear's binary format) and dropbearconvert's exports ---
dropbearkey -t rsa -s 1024 -f db-rsa1024.dropbear >/dev/null 2>&1
dropbearkey -t dss -f db-dss.dropbear >/dev/null 2>&1
dropbearkey -t ed25519 -f db-ed25519.dropbear >/dev/null 2>&1
dropbearkey -t ecdsa -s 256 -f db-ecdsa256.dropbear >/dev/null 2>&1
dropbearkey -t ecdsa -s 384 -f db-ecdsa384.dropbear >/dev/null 2>&1
for k in db-rsa1024 db-dss db-ed25519 db-ecdsa256; do dbpub $k; pubfp $k; done
# dropbearconvert writes OpenSSH's format for rsa/ed25519/ecdsa and PEM for dss.
dropbearconvert dropbear openssh db-rsa1024.dropbear db-rsa1024.openssh >/dev/null 2>&1
dropbearconvert dropbear openssh db-ed25519.dropbear db-ed25519.openssh >/dev/null 2>&1
dropbearconvert dropbear openssh db-ecdsa256.dropbear db-ecdsa256.openssh >/dev/null 2>&1
dropbearconvert dropbear openssh db-dss.dropbear db-dss.pem >/dev/null 2>&1

# --- Keys made by ssh-keygen, in every format, and converted to Dropbear's format ---
ssh-keygen -q -t rsa -b 2048 -m PEM -N "" -C "rsa2048@sshbridge" -f rsa2048.pem
ssh-keygen -q -t dsa -m PEM -N "" -C "dsa@sshbridge" -f dsa.pem
ssh-keygen -q -t ecdsa -b 256 -m PEM -N "" -C "ecdsa256@sshbridge" -f ecdsa256.pem
ssh-keygen -q -t ed25519 -N "" -C "ed25519@sshbridge" -f ed25519.openssh
ssh-keygen -q -t ecdsa -b 384 -N "" -C "ecdsa384@sshbridge" -f ecdsa384.openssh
for k in rsa2048 dsa ecdsa256; do
    mv $k.pem.pub $k.pub
    to_openssh $k.pem $k.openssh
    to_enc $k.pem $k-enc.openssh
    openssl pkcs8 -topk8 -nocrypt -in $k.pem -out $k.pkcs8
    dropbearconvert openssh dropbear $k.pem $k.dropbear >/dev/null 2>&1
    pubfp $k
done
mv ed25519.openssh.pub ed25519.pub
to_enc ed25519.openssh ed25519-enc.openssh
dropbearconvert openssh dropbear ed25519.openssh ed25519.dropbear >/dev/null 2>&1
pubfp ed25519
rm -f ecdsa384.openssh.pub

# ed25519 in PKCS#8 (ssh-keygen cannot write it): openssl, with the public line built from
# openssl's own SubjectPublicKeyInfo (the last 32 bytes are the raw key).
openssl genpkey -algorithm ed25519 -out ed25519-openssl.pkcs8
openssl pkey -in ed25519-openssl.pkcs8 -pubout -outform DER | tail -c 32 > raw.tmp
python3 - > ed25519-openssl.pub <<'PY'
import base64, struct
raw = open("raw.tmp", "rb").read()
t = b"ssh-ed25519"
blob = struct.pack(">I", len(t)) + t + struct.pack(">I", len(raw)) + raw
print("ssh-ed25519 " + base64.b64encode(blob).decode() + " openssl")
PY
pubfp ed25519-openssl

# ssh-dss as FIPS 186-2 allows it, beyond the 1024-bit keys ssh-keygen makes: a 2048-bit p
# with a 160-bit q, from openssl, in PKCS#8 and OpenSSL's DSA PEM, ssh-keygen's public line.
openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 \
    -pkeyopt dsa_paramgen_q_bits:160 -out dsa2048q160.tmp
openssl genpkey -paramfile dsa2048q160.tmp -out dsa2048q160.pkcs8
openssl pkey -in dsa2048q160.pkcs8 -traditional -out dsa2048q160.pem
ssh-keygen -y -f dsa2048q160.pem > dsa2048q160.pub

# Formats we refuse with a clear message: legacy OpenSSL-encrypted PEM, encrypted PKCS#8.
ssh-keygen -q -t ecdsa -b 256 -m PEM -N "test-pass" -C "" -f legacy-enc.pem
rm -f legacy-enc.pem.pub
openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:test-pass -in ecdsa256.pem -out ecdsa256-enc.pkcs8

# Signatures made by OpenSSH (ssh-keygen -Y sign, namespace "file") over sshsig.msg, for
# checking our verifier against a real signer. ssh-keygen wants FILE.pub next to FILE.
printf 'sshbridge signed message\n' > sshsig.msg
for pair in db-rsa1024:db-rsa1024.openssh db-dss:db-dss.pem db-ed25519:db-ed25519.openssh \
            db-ecdsa256:db-ecdsa256.openssh rsa2048:rsa2048.pem dsa:dsa.pem \
            ecdsa256:ecdsa256.pem ed25519:ed25519.openssh; do
    base=${pair%%:*}; file=${pair#*:}
    cp "$base.pub" "$file.pub"
    ssh-keygen -q -Y sign -f "$file" -n file sshsig.msg 2>/dev/null
    mv sshsig.msg.sig "$base.sshsig"
    rm -f "$file.pub"
done
rm -f ./*.tmp
