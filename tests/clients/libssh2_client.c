/* libssh2_client.c — a libssh2 client for the server-role interop matrix
 * (tests/interop_server.rs). Command line and exit codes: see common.h.
 *
 * libssh2 1.10 (Debian 12) has no way to choose the public key signature algorithm: -a is
 * refused with exit 4. The data pump is libssh2's non-blocking mode and poll(2), so a full
 * window in one direction never stops the other.
 */
#include "common.h"

#include <libssh2.h>
#include <poll.h>

static LIBSSH2_SESSION *session;

static void die_ssh(const char *what, int code)
{
    char *msg = NULL;
    libssh2_session_last_error(session, &msg, NULL, 0);
    fprintf(stderr, "libssh2_client: %s: %s\n", what, msg ? msg : "?");
    exit(code);
}

int main(int argc, char **argv)
{
    struct opts o = parse_opts(argc, argv);
    LIBSSH2_CHANNEL *ch;
    static char inbuf[32768], outbuf[32768];
    size_t in_len = 0, in_off = 0;
    int sock, stdin_open = 1, eof_sent = 0, rc;
    char line[256];

    if (o.sigalg) {
        fprintf(stderr, "libssh2_client: libssh2 %s cannot choose the signature algorithm\n",
                LIBSSH2_VERSION);
        return 4;
    }
    if (libssh2_init(0) != 0)
        return 1;
    sock = tcp_connect(o.host, o.port);
    session = libssh2_session_init();
    if (!session)
        return 1;
    libssh2_session_set_blocking(session, 1);
    if (libssh2_session_handshake(session, sock) != 0)
        die_ssh("handshake", 1);

    if (o.hostkey) {
        unsigned char want[4096];
        size_t len = 0;
        int type = 0;
        const char *got = libssh2_session_hostkey(session, &len, &type);
        long wlen = b64_field(o.hostkey, want, sizeof want);
        if (!got || wlen < 0 || (size_t)wlen != len || memcmp(got, want, len) != 0) {
            fprintf(stderr, "libssh2_client: host key mismatch\n");
            return 3;
        }
    }

    if (o.key)
        rc = libssh2_userauth_publickey_fromfile(session, o.user, NULL, o.key, NULL);
    else
        rc = libssh2_userauth_password(session, o.user, o.password);
    if (rc != 0)
        die_ssh("authentication failed", 2);

    ch = libssh2_channel_open_session(session);
    if (!ch)
        die_ssh("channel open", 1);
    if (o.pty && libssh2_channel_request_pty(ch, "xterm") != 0)
        die_ssh("pty request", 1);
    rc = o.command ? libssh2_channel_exec(ch, o.command) : libssh2_channel_shell(ch);
    if (rc != 0)
        die_ssh(o.command ? "exec request" : "shell request", 1);

    libssh2_session_set_blocking(session, 0);
    for (;;) {
        int progress = 0, out_done = 0, err_done = 0;
        ssize_t n;
        struct pollfd pf[2];
        int nfds = 0, dirs;

        /* stdin -> channel */
        if (in_off < in_len) {
            n = libssh2_channel_write(ch, inbuf + in_off, in_len - in_off);
            if (n > 0) {
                in_off += (size_t)n;
                progress = 1;
            } else if (n != LIBSSH2_ERROR_EAGAIN) {
                die_ssh("channel write", 1);
            }
        }
        if (!stdin_open && in_off == in_len && !eof_sent) {
            rc = libssh2_channel_send_eof(ch);
            if (rc == 0) {
                eof_sent = 1;
                progress = 1;
            } else if (rc != LIBSSH2_ERROR_EAGAIN) {
                die_ssh("send eof", 1);
            }
        }
        /* channel -> stdout, stderr */
        for (;;) {
            n = libssh2_channel_read(ch, outbuf, sizeof outbuf);
            if (n > 0) {
                write_all(1, outbuf, (size_t)n);
                progress = 1;
                continue;
            }
            if (n == 0)
                out_done = 1;
            else if (n != LIBSSH2_ERROR_EAGAIN)
                die_ssh("channel read", 1);
            break;
        }
        for (;;) {
            n = libssh2_channel_read_stderr(ch, outbuf, sizeof outbuf);
            if (n > 0) {
                write_all(2, outbuf, (size_t)n);
                progress = 1;
                continue;
            }
            if (n == 0)
                err_done = 1;
            else if (n != LIBSSH2_ERROR_EAGAIN)
                die_ssh("channel read stderr", 1);
            break;
        }
        if (libssh2_channel_eof(ch) && out_done && err_done)
            break;
        if (progress)
            continue;

        /* Nothing moved: sleep until the socket or stdin can. */
        dirs = libssh2_session_block_directions(session);
        pf[0].fd = sock;
        pf[0].events = POLLIN;
        if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
            pf[0].events |= POLLOUT;
        nfds = 1;
        if (stdin_open && in_off == in_len) {
            pf[1].fd = 0;
            pf[1].events = POLLIN;
            nfds = 2;
        }
        if (poll(pf, (nfds_t)nfds, 100) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        if (nfds == 2 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            n = read(0, inbuf, sizeof inbuf);
            if (n > 0) {
                in_len = (size_t)n;
                in_off = 0;
            } else if (n == 0 || errno != EINTR) {
                stdin_open = 0;
            }
        }
    }

    libssh2_session_set_blocking(session, 1);
    libssh2_channel_close(ch);
    libssh2_channel_wait_closed(ch);
    {
        char *sig = NULL;
        size_t siglen = 0;
        if (libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL, NULL) == 0 &&
            sig) {
            snprintf(line, sizeof line, "exit-signal %.*s", (int)siglen, sig);
            write_status(o.status, line);
        } else {
            snprintf(line, sizeof line, "exit-status %d", libssh2_channel_get_exit_status(ch));
            write_status(o.status, line);
        }
    }
    libssh2_channel_free(ch);
    libssh2_session_disconnect(session, "done");
    libssh2_session_free(session);
    close(sock);
    libssh2_exit();
    return 0;
}
