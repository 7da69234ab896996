/* libssh_client.c — a libssh (0.10) client for the server-role interop matrix
 * (tests/interop_server.rs). Command line and exit codes: see common.h.
 *
 * -a sets SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES, so an RSA key signs with exactly that
 * algorithm. Exit status and exit signal come from channel callbacks (libssh 0.10 has no
 * getter for the signal). Writes never exceed the peer's window, so a blocking write never
 * waits for a window the other direction would have to open.
 */
#include "common.h"

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>

static char exit_line[256];

static void on_exit_status(ssh_session s, ssh_channel c, int status, void *u)
{
    (void)s, (void)c, (void)u;
    snprintf(exit_line, sizeof exit_line, "exit-status %d", status);
}

static void on_exit_signal(ssh_session s, ssh_channel c, const char *sig, int core,
                           const char *msg, const char *lang, void *u)
{
    (void)s, (void)c, (void)core, (void)msg, (void)lang, (void)u;
    snprintf(exit_line, sizeof exit_line, "exit-signal %s", sig);
}

static void die_ssh(ssh_session s, const char *what, int code)
{
    fprintf(stderr, "libssh_client: %s: %s\n", what, ssh_get_error(s));
    exit(code);
}

int main(int argc, char **argv)
{
    struct opts o = parse_opts(argc, argv);
    ssh_session s = ssh_new();
    ssh_channel ch;
    struct ssh_channel_callbacks_struct cb;
    static char inbuf[32768], outbuf[32768];
    size_t in_len = 0, in_off = 0;
    int stdin_open = 1, eof_sent = 0, rc;
    unsigned int port = (unsigned int)o.port;
    int verbosity = SSH_LOG_NOLOG;

    if (!s)
        return 1;
    ssh_options_set(s, SSH_OPTIONS_HOST, o.host);
    ssh_options_set(s, SSH_OPTIONS_PORT, &port);
    ssh_options_set(s, SSH_OPTIONS_USER, o.user);
    ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
    ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
    ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    if (o.sigalg && ssh_options_set(s, SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES, o.sigalg) != 0)
        die_ssh(s, "PUBLICKEY_ACCEPTED_TYPES", 4);
    if (ssh_connect(s) != SSH_OK)
        die_ssh(s, "connect", 1);

    if (o.hostkey) {
        ssh_key srv = NULL;
        char *b64 = NULL;
        const char *want = strchr(o.hostkey, ' ');
        size_t wlen;
        if (ssh_get_server_publickey(s, &srv) != SSH_OK ||
            ssh_pki_export_pubkey_base64(srv, &b64) != SSH_OK)
            die_ssh(s, "server host key", 1);
        want = want ? want + 1 : "";
        wlen = strcspn(want, " ");
        if (strlen(b64) != wlen || memcmp(b64, want, wlen) != 0) {
            fprintf(stderr, "libssh_client: host key mismatch\n");
            return 3;
        }
        ssh_string_free_char(b64);
        ssh_key_free(srv);
    }

    if (o.key) {
        ssh_key priv = NULL;
        if (ssh_pki_import_privkey_file(o.key, NULL, NULL, NULL, &priv) != SSH_OK) {
            fprintf(stderr, "libssh_client: cannot read key %s\n", o.key);
            return 1;
        }
        rc = ssh_userauth_publickey(s, NULL, priv);
        ssh_key_free(priv);
    } else {
        rc = ssh_userauth_password(s, NULL, o.password);
    }
    if (rc != SSH_AUTH_SUCCESS)
        die_ssh(s, "authentication failed", 2);

    ch = ssh_channel_new(s);
    if (!ch || ssh_channel_open_session(ch) != SSH_OK)
        die_ssh(s, "channel open", 1);
    memset(&cb, 0, sizeof cb);
    cb.channel_exit_status_function = on_exit_status;
    cb.channel_exit_signal_function = on_exit_signal;
    ssh_callbacks_init(&cb);
    ssh_set_channel_callbacks(ch, &cb);
    if (o.pty && ssh_channel_request_pty(ch) != SSH_OK)
        die_ssh(s, "pty request", 1);
    rc = o.command ? ssh_channel_request_exec(ch, o.command) : ssh_channel_request_shell(ch);
    if (rc != SSH_OK)
        die_ssh(s, o.command ? "exec request" : "shell request", 1);

    for (;;) {
        int progress = 0, out_eof = 0, err_eof = 0, n, nfds;
        struct pollfd pf[2];

        if (in_off < in_len) {
            uint32_t win = ssh_channel_window_size(ch);
            size_t want = in_len - in_off;
            if (win > 0) {
                if (want > win)
                    want = win;
                n = ssh_channel_write(ch, inbuf + in_off, (uint32_t)want);
                if (n == SSH_ERROR)
                    die_ssh(s, "channel write", 1);
                in_off += (size_t)n;
                progress = n > 0;
            }
        }
        if (!stdin_open && in_off == in_len && !eof_sent) {
            if (ssh_channel_send_eof(ch) != SSH_OK)
                die_ssh(s, "send eof", 1);
            eof_sent = 1;
        }
        for (int is_err = 0; is_err <= 1; is_err++) {
            for (;;) {
                n = ssh_channel_read_nonblocking(ch, outbuf, sizeof outbuf, is_err);
                if (n > 0) {
                    write_all(is_err ? 2 : 1, outbuf, (size_t)n);
                    progress = 1;
                    continue;
                }
                if (n == SSH_ERROR)
                    die_ssh(s, "channel read", 1);
                if (n == SSH_EOF || (n == 0 && ssh_channel_is_eof(ch))) {
                    if (is_err)
                        err_eof = 1;
                    else
                        out_eof = 1;
                }
                break;
            }
        }
        if (out_eof && err_eof)
            break;
        if (progress)
            continue;

        pf[0].fd = ssh_get_fd(s);
        pf[0].events = POLLIN;
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
            ssize_t r = read(0, inbuf, sizeof inbuf);
            if (r > 0) {
                in_len = (size_t)r;
                in_off = 0;
            } else if (r == 0 || errno != EINTR) {
                stdin_open = 0;
            }
        }
    }

    /* Exit status / signal arrive with or after EOF; this waits for them or the close. */
    (void)ssh_channel_get_exit_status(ch);
    if (!exit_line[0])
        snprintf(exit_line, sizeof exit_line, "exit-status none");
    write_status(o.status, exit_line);
    ssh_channel_send_eof(ch);
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    ssh_disconnect(s);
    ssh_free(s);
    return 0;
}
