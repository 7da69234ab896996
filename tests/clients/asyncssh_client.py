"""asyncssh client for the server-role interop matrix (tests/interop_server.rs).

Command line and exit codes as tests/clients/common.h:
  asyncssh_client.py -p PORT -u USER [-h HOST] [-i KEY | -P PASSWORD] [-k 'TYPE B64']
                     [-a SIGALG] [-t] [-s STATUSFILE] [COMMAND]
-a narrows asyncssh's signature_algs to that algorithm plus the host key types.
"""
import argparse
import asyncio
import os
import stat
import sys

import asyncssh

HOST_KEY_ALGS = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"]


def parse():
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("-h", dest="host", default="127.0.0.1")
    ap.add_argument("-p", dest="port", type=int, required=True)
    ap.add_argument("-u", dest="user", required=True)
    ap.add_argument("-i", dest="key")
    ap.add_argument("-P", dest="password")
    ap.add_argument("-k", dest="hostkey")
    ap.add_argument("-a", dest="sigalg")
    ap.add_argument("-t", dest="pty", action="store_true")
    ap.add_argument("-s", dest="status")
    ap.add_argument("command", nargs="?")
    return ap.parse_args()


async def run(o):
    opts = dict(username=o.user, agent_path=None, client_keys=[o.key] if o.key else None,
                password=o.password, login_timeout=30, config=None,
                known_hosts=(asyncssh.import_known_hosts(f"[{o.host}]:{o.port} {o.hostkey}\n")
                             if o.hostkey else None))
    if o.key:
        opts["preferred_auth"] = "publickey"
    else:
        opts["preferred_auth"] = "password"
        opts["client_keys"] = None
    if o.sigalg:
        ktype = o.hostkey.split()[0] if o.hostkey else "ssh-ed25519"
        host_algs = [a for a in HOST_KEY_ALGS if a == ktype or
                     (ktype == "ssh-rsa" and a.startswith("rsa-sha2-"))]
        opts["signature_algs"] = [o.sigalg] + [a for a in host_algs if a != o.sigalg]
    try:
        conn = await asyncssh.connect(o.host, o.port, **opts)
    except asyncssh.PermissionDenied as e:
        print(f"asyncssh_client: authentication failed: {e}", file=sys.stderr)
        return 2
    except asyncssh.HostKeyNotVerifiable as e:
        print(f"asyncssh_client: host key mismatch: {e}", file=sys.stderr)
        return 3
    # A character device (/dev/null) cannot be watched by the event loop: send EOF instead.
    stdin = (asyncssh.DEVNULL if stat.S_ISCHR(os.fstat(0).st_mode) and not os.isatty(0)
             else sys.stdin.buffer)
    async with conn:
        res = await conn.run(o.command, stdin=stdin, stdout=sys.stdout.buffer,
                             stderr=sys.stderr.buffer, encoding=None, check=False,
                             term_type="xterm" if o.pty else None,
                             request_pty="force" if o.pty else False)
    lines = []
    if res.exit_signal:
        lines.append(f"exit-signal {res.exit_signal[0]}")
    if res.exit_status is not None and not res.exit_signal:
        lines.append(f"exit-status {res.exit_status}")
    if o.status:
        with open(o.status, "a") as f:
            f.write("".join(l + "\n" for l in lines))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse())))
