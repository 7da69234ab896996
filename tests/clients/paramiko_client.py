"""paramiko client for the server-role interop matrix (tests/interop_server.rs).

Command line and exit codes as tests/clients/common.h:
  paramiko_client.py -p PORT -u USER [-h HOST] [-i KEY | -P PASSWORD] [-k 'TYPE B64']
                     [-a SIGALG] [-t] [-s STATUSFILE] [COMMAND]
paramiko ignores "exit-signal": a command killed by a signal reports exit status -1.
"""
import argparse
import base64
import os
import sys
import threading

import paramiko

RSA_ALGS = ["rsa-sha2-256", "rsa-sha2-512"]


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


def pump(src, dst):
    while True:
        data = src(65536)
        if not data:
            break
        dst.write(data)
        dst.flush()


def main():
    o = parse()
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if o.hostkey:
        ktype, b64 = o.hostkey.split()[:2]
        key = paramiko.PKey.from_type_string(ktype, base64.b64decode(b64))
        client.get_host_keys().add(f"[{o.host}]:{o.port}", ktype, key)
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    disabled = {}
    if o.sigalg:
        if o.sigalg not in RSA_ALGS:
            print(f"paramiko_client: cannot force {o.sigalg}", file=sys.stderr)
            return 4
        disabled = {"pubkeys": [a for a in RSA_ALGS if a != o.sigalg]}
    try:
        client.connect(o.host, o.port, username=o.user, key_filename=o.key,
                       password=o.password, look_for_keys=False, allow_agent=False,
                       disabled_algorithms=disabled, timeout=30, banner_timeout=30,
                       auth_timeout=30)
    except paramiko.AuthenticationException as e:
        print(f"paramiko_client: authentication failed: {e}", file=sys.stderr)
        return 2
    except paramiko.BadHostKeyException as e:
        print(f"paramiko_client: host key mismatch: {e}", file=sys.stderr)
        return 3
    chan = client.get_transport().open_session()
    if o.pty:
        chan.get_pty()
    if o.command is not None:
        chan.exec_command(o.command)
    else:
        chan.invoke_shell()

    def feed():
        try:
            while True:
                data = sys.stdin.buffer.read1(65536)
                if not data:
                    break
                chan.sendall(data)
            chan.shutdown_write()
        except OSError:
            pass

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=pump, args=(chan.recv_stderr, sys.stderr.buffer))]
    for t in threads:
        t.start()
    pump(chan.recv, sys.stdout.buffer)
    threads[1].join()
    status = chan.recv_exit_status()
    if o.status:
        with open(o.status, "a") as f:
            f.write(f"exit-status {status}\n")
    client.close()
    return 0


if __name__ == "__main__":
    code = main()
    # The stdin feeder is a daemon thread that may sit in a read of stdin: leave without the
    # interpreter's shutdown, which would abort on the stdin lock that thread holds
    # ("_enter_buffered_busy: could not acquire lock").
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
