/*
 * libssh2_exec — run one command over SSH with libssh2, the libssh2 peer of scripts/bench.sh.
 *
 *   libssh2_exec [-p port] -l user -i keyfile [-k "hostkey"] host command
 *
 *   -i keyfile   private key (OpenSSH format, unencrypted; the public key is derived from it)
 *   -k hostkey   "type base64 [comment]" as in ssh_host_*_key.pub: the server's host key must
 *                be exactly this one (without -k it is not checked)
 *
 * Our stdin goes to the remote command's stdin (then EOF), its stdout to our stdout, its
 * stderr to our stderr; the exit status is the remote command's (128+N for signal N when the
 * server names a known signal, 255 on connection errors). Default libssh2 algorithms and
 * channel window; one non-blocking loop with poll(), the way libssh2's own examples pump.
 *
 * Build: gcc -O2 -o libssh2_exec bench/libssh2_exec.c -lssh2
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAILURE 255

static void die(LIBSSH2_SESSION *s, const char *what)
{
    char *msg = NULL;
    if (s)
        libssh2_session_last_error(s, &msg, NULL, 0);
    fprintf(stderr, "libssh2_exec: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
    exit(FAILURE);
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode the base64 field of "type base64 [comment]"; returns its length. */
static size_t host_key_blob(const char *line, unsigned char *out, size_t cap)
{
    const char *p = line + strspn(line, " \t");
    p += strcspn(p, " \t");
    p += strspn(p, " \t");
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0, v;
    for (; *p && (v = b64val((unsigned char)*p)) >= 0; p++) {
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return 0;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static void write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return; /* our output is gone; keep draining the channel */
        buf += w;
        n -= (size_t)w;
    }
}

static const struct {
    const char *name;
    int num;
} signals[] = { { "HUP", 1 },   { "INT", 2 },   { "QUIT", 3 },  { "ILL", 4 },   { "ABRT", 6 },
                { "FPE", 8 },   { "KILL", 9 },  { "SEGV", 11 }, { "PIPE", 13 }, { "ALRM", 14 },
                { "TERM", 15 }, { "USR1", 10 }, { "USR2", 12 } };

int main(int argc, char **argv)
{
    const char *port = "22", *user = NULL, *keyfile = NULL, *hostkey = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "+p:l:i:k:")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 'l': user = optarg; break;
        case 'i': keyfile = optarg; break;
        case 'k': hostkey = optarg; break;
        default: goto usage;
        }
    }
    if (optind + 2 != argc || !user || !keyfile) {
    usage:
        fprintf(stderr, "usage: libssh2_exec [-p port] -l user -i keyfile [-k \"hostkey\"] host command\n");
        return FAILURE;
    }
    const char *host = argv[optind], *command = argv[optind + 1];

    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai) {
        fprintf(stderr, "libssh2_exec: %s: %s\n", host, gai_strerror(gai));
        return FAILURE;
    }
    int sock = -1;
    for (ai = res; ai && sock < 0; ai = ai->ai_next) {
        sock = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (sock >= 0 && connect(sock, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(sock);
            sock = -1;
        }
    }
    freeaddrinfo(res);
    if (sock < 0) {
        perror("libssh2_exec: connect");
        return FAILURE;
    }

    if (libssh2_init(0) != 0)
        die(NULL, "libssh2_init failed");
    LIBSSH2_SESSION *s = libssh2_session_init();
    if (!s)
        die(NULL, "libssh2_session_init failed");
    libssh2_session_set_blocking(s, 1);
    if (libssh2_session_handshake(s, sock) != 0)
        die(s, "handshake");

    if (hostkey) {
        unsigned char want[4096];
        size_t want_len = host_key_blob(hostkey, want, sizeof want), got_len = 0;
        int type;
        const char *got = libssh2_session_hostkey(s, &got_len, &type);
        if (!got || want_len == 0 || got_len != want_len || memcmp(got, want, want_len) != 0)
            die(NULL, "host key mismatch");
    }

    if (libssh2_userauth_publickey_fromfile(s, user, NULL, keyfile, NULL) != 0)
        die(s, "public key authentication");

    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s);
    if (!ch)
        die(s, "channel open");
    if (libssh2_channel_exec(ch, command) != 0)
        die(s, "exec");

    /* Pump, non-blocking. */
    libssh2_session_set_blocking(s, 0);
    int in_flags = fcntl(STDIN_FILENO, F_GETFL);
    static char in[65536], buf[65536];
    size_t in_len = 0, in_off = 0;
    int stdin_eof = in_flags < 0, eof_sent = 0;
    for (;;) {
        int progress = 0;
        ssize_t n;
        while ((n = libssh2_channel_read(ch, buf, sizeof buf)) > 0) {
            write_all(STDOUT_FILENO, buf, (size_t)n);
            progress = 1;
        }
        if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
            die(s, "channel read");
        while ((n = libssh2_channel_read_stderr(ch, buf, sizeof buf)) > 0) {
            write_all(STDERR_FILENO, buf, (size_t)n);
            progress = 1;
        }
        if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
            die(s, "channel read (stderr)");
        while (in_off < in_len) {
            n = libssh2_channel_write(ch, in + in_off, in_len - in_off);
            if (n == LIBSSH2_ERROR_EAGAIN)
                break;
            if (n < 0)
                die(s, "channel write");
            in_off += (size_t)n;
            progress = 1;
        }
        if (stdin_eof && in_off == in_len && !eof_sent) {
            int rc = libssh2_channel_send_eof(ch);
            if (rc == 0)
                eof_sent = 1, progress = 1;
            else if (rc != LIBSSH2_ERROR_EAGAIN)
                die(s, "send eof");
        }
        if (libssh2_channel_eof(ch))
            break;

        /* Wait for the socket (in the direction libssh2 needs) and, when we want input,
         * for stdin. A readable stdin is read right away. */
        int want_in = !stdin_eof && in_off == in_len;
        if (progress && !want_in)
            continue;
        int dirs = libssh2_session_block_directions(s);
        struct pollfd pf[2] = {
            { sock, (short)(((dirs & LIBSSH2_SESSION_BLOCK_INBOUND) || !dirs ? POLLIN : 0) |
                            (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND ? POLLOUT : 0)), 0 },
            { want_in ? STDIN_FILENO : -1, POLLIN, 0 },
        };
        /* At most 100 ms: libssh2 1.10.0 sometimes answers EAGAIN with a packet already read
         * off the socket and not yet processed, and the socket then stays quiet; with an
         * unbounded wait 1 GiB downloads stopped for good (all five of one benchmark run, 4 of
         * 4 in a check; with the bound, 4 of 4 took 3.0-3.1 s, as the runs that never stopped). */
        if (poll(pf, 2, progress ? 0 : 100) < 0 && errno != EINTR)
            die(NULL, "poll");
        if (want_in && pf[1].revents) {
            ssize_t r = read(STDIN_FILENO, in, sizeof in);
            if (r > 0)
                in_len = (size_t)r, in_off = 0;
            else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                stdin_eof = 1;
        }
    }

    libssh2_session_set_blocking(s, 1);
    libssh2_channel_close(ch);
    libssh2_channel_wait_closed(ch);
    int code = libssh2_channel_get_exit_status(ch);
    char *sig = NULL;
    libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL, NULL);
    if (sig) {
        code = FAILURE;
        for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
            if (strcmp(sig, signals[i].name) == 0)
                code = 128 + signals[i].num;
        libssh2_free(s, sig);
    }
    libssh2_channel_free(ch);
    libssh2_session_disconnect(s, "bye");
    libssh2_session_free(s);
    close(sock);
    libssh2_exit();
    return code;
}
