/* common.h — shared by the C clients of the server-role interop matrix
 * (tests/clients/libssh2_client.c, tests/clients/libssh_client.c; driven by
 * tests/interop_server.rs). Header-only: each client is one translation unit.
 *
 * Command line (the same for the Python clients):
 *   CLIENT -p PORT -u USER [-h HOST] [-i KEYFILE | -P PASSWORD] [-k "TYPE BASE64"]
 *          [-a SIGALG] [-t] [-s STATUSFILE] [COMMAND]
 *   -k  expected host key: the connection is dropped (exit 3) when the server offers another
 *   -a  public key signature algorithm to use (rsa-sha2-256 / rsa-sha2-512), exit 4 if the
 *       library cannot be told
 *   -t  request a pty
 *   no COMMAND: request a shell
 * stdin goes to the remote stdin (then EOF), remote stdout to stdout, remote stderr to stderr.
 * STATUSFILE receives "exit-status N" and/or "exit-signal NAME" lines.
 * Exit codes: 0 session ran (whatever the remote status), 1 error, 2 authentication refused,
 * 3 host key mismatch, 4 unsupported option.
 */
#ifndef MATRIX_CLIENT_COMMON_H
#define MATRIX_CLIENT_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct opts {
    const char *host, *user, *key, *password, *hostkey, *sigalg, *status, *command;
    int port, pty;
};

static inline void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s -p PORT -u USER [-h HOST] [-i KEY | -P PASSWORD] [-k 'TYPE B64'] "
            "[-a SIGALG] [-t] [-s STATUSFILE] [COMMAND]\n",
            argv0);
    exit(1);
}

static inline struct opts parse_opts(int argc, char **argv)
{
    struct opts o;
    int c;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    while ((c = getopt(argc, argv, "h:p:u:i:P:k:a:ts:")) != -1) {
        switch (c) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'u': o.user = optarg; break;
        case 'i': o.key = optarg; break;
        case 'P': o.password = optarg; break;
        case 'k': o.hostkey = optarg; break;
        case 'a': o.sigalg = optarg; break;
        case 't': o.pty = 1; break;
        case 's': o.status = optarg; break;
        default: usage(argv[0]);
        }
    }
    if (optind < argc)
        o.command = argv[optind++];
    if (optind != argc || o.port <= 0 || !o.user || (!o.key && !o.password))
        usage(argv[0]);
    return o;
}

/* Blocking TCP connection to host:port (IPv4), or exit 1. */
static inline int tcp_connect(const char *host, int port)
{
    struct sockaddr_in sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "connect %s:%d: %s\n", host, port, strerror(errno));
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Write all of buf to fd; exit 1 on error. */
static inline void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "write fd %d: %s\n", fd, strerror(errno));
            exit(1);
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* The base64 field of "TYPE BASE64 [comment]" decoded into out (max cap bytes); returns
 * its length or -1. */
static inline long b64_field(const char *line, unsigned char *out, size_t cap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(line, ' ');
    unsigned long acc = 0;
    int bits = 0;
    size_t n = 0;
    if (!p)
        return -1;
    for (p++; *p && *p != ' ' && *p != '='; p++) {
        const char *q = strchr(tab, *p);
        if (!q)
            return -1;
        acc = (acc << 6) | (unsigned long)(q - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)n;
}

static inline void write_status(const char *path, const char *line)
{
    FILE *f;
    if (!path)
        return;
    f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fprintf(f, "%s\n", line);
    fclose(f);
}

#endif
