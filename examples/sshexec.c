/*
 * sshexec — run a command on an SSH server through sshbridge's eCos-compatible C API.
 *
 *   sshexec [-p port] [-l user] [-i keyfile] [-k "hostkey"] [-w passwordfile] host [command...]
 *
 *   -p port          server port (default 22)
 *   -l user          remote account (default: $USER)
 *   -i keyfile       private key: any format the library reads (Dropbear binary, OpenSSH,
 *                    PEM, PKCS#8; unencrypted); up to two -i
 *   -k "hostkey"     pin the server's host key ("ssh-rsa AAAA..." as in ssh_host_*_key.pub);
 *                    up to two -k; without -k the host key is not checked (eCos behaviour)
 *   -w passwordfile  password: the first line of this file
 *   host             name or address (IPv4 or IPv6; every address getaddrinfo returns is
 *                    tried until one accepts the TCP connection)
 *   command          run by the remote shell; without one the remote side starts a shell
 *                    that reads its commands from our stdin
 *
 * Our stdin goes to the remote stdin (EOF included), remote stdout to our stdout, remote
 * stderr to our stderr. The exit status is the remote command's (128+N if a signal N killed
 * it); 255 if the connection could not be made, with the library's db_error on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dropbear.h"

#define FAILURE 255
#define MAX_FILE (1024 * 1024)

static void usage(void)
{
    fprintf(stderr, "usage: sshexec [-p port] [-l user] [-i keyfile] [-k \"hostkey\"] [-w passwordfile] "
                    "host [command...]\n");
    exit(FAILURE);
}

/* Whole file into a NUL-terminated heap buffer; *len gets its size (NUL not counted). */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "sshexec: %s: %s\n", path, strerror(errno));
        exit(FAILURE);
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "sshexec: out of memory\n");
            exit(FAILURE);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "sshexec: %s: %s\n", path, strerror(errno));
            exit(FAILURE);
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            if (cap >= MAX_FILE) {
                fprintf(stderr, "sshexec: %s: larger than %d bytes\n", path, MAX_FILE);
                exit(FAILURE);
            }
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* "type base64 [comment]" → "type base64" (the library wants no comment, like eCos). */
static const char *host_key_arg(char *arg)
{
    char *p = arg + strspn(arg, " \t");
    char *sp = p + strcspn(p, " \t");
    sp += strspn(sp, " \t");
    sp[strcspn(sp, " \t\r\n")] = '\0';
    return p;
}

/* Write all of buf to fd (our stdout or stderr). Returns 0, or -1 if that fd is gone. */
static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Move data until the remote command's stdout and stderr both reach end-of-file:
 * stdin → db_stdin_stdout (then shutdown(SHUT_WR) for EOF), db_stdin_stdout → stdout,
 * db_stderr → stderr. One poll() loop, so no direction can block another.
 */
static void pump(cyg_dropbear_cli_handle *h)
{
    char in[65536], buf[65536];
    size_t in_len = 0, in_off = 0;
    int stdin_eof = 0, shut = 0, out_eof = 0, err_eof = 0, out_ok = 1, err_ok = 1;

    while (!out_eof || !err_eof) {
        if (stdin_eof && in_len == in_off && !shut) {
            shutdown(h->db_stdin_stdout, SHUT_WR); /* remote stdin sees EOF */
            shut = 1;
        }
        struct pollfd pf[3] = {
            { (!stdin_eof && in_len == in_off) ? STDIN_FILENO : -1, POLLIN, 0 },
            { h->db_stdin_stdout, (short)((out_eof ? 0 : POLLIN) | (in_off < in_len ? POLLOUT : 0)), 0 },
            { err_eof ? -1 : h->db_stderr, POLLIN, 0 },
        };
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("sshexec: poll");
            return;
        }
        if (pf[0].revents) {
            ssize_t r = read(STDIN_FILENO, in, sizeof in);
            if (r > 0) {
                in_len = (size_t)r;
                in_off = 0;
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                stdin_eof = 1; /* EOF, or stdin unusable (closed, a directory...) */
            }
        }
        if (pf[1].revents & POLLOUT && in_off < in_len) {
            ssize_t w = send(h->db_stdin_stdout, in + in_off, in_len - in_off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                in_off += (size_t)w;
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                in_off = in_len, stdin_eof = 1; /* the remote side takes no more input */
        }
        if (!out_eof && pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(h->db_stdin_stdout, buf, sizeof buf);
            if (r > 0) {
                if (out_ok && write_all(STDOUT_FILENO, buf, (size_t)r) != 0)
                    out_ok = 0; /* keep draining so the remote command can finish */
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                out_eof = 1;
            }
        }
        if (!err_eof && pf[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(h->db_stderr, buf, sizeof buf);
            if (r > 0) {
                if (err_ok && write_all(STDERR_FILENO, buf, (size_t)r) != 0)
                    err_ok = 0;
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                err_eof = 1;
            }
        }
    }
}

int main(int argc, char **argv)
{
    const char *port = "22", *user = getenv("USER"), *hostkeys[2] = { NULL, NULL };
    const char *keyfiles[2] = { NULL, NULL }, *pwfile = NULL;
    int nkeys = 0, nhostkeys = 0, opt;

    while ((opt = getopt(argc, argv, "+p:l:i:k:w:h")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 'l': user = optarg; break;
        case 'w': pwfile = optarg; break;
        case 'i':
            if (nkeys == 2) {
                fprintf(stderr, "sshexec: at most two -i\n");
                return FAILURE;
            }
            keyfiles[nkeys++] = optarg;
            break;
        case 'k':
            if (nhostkeys == 2) {
                fprintf(stderr, "sshexec: at most two -k\n");
                return FAILURE;
            }
            hostkeys[nhostkeys++] = host_key_arg(optarg);
            break;
        default: usage();
        }
    }
    if (optind >= argc)
        usage();
    const char *host = argv[optind++];
    if (!user || !*user) {
        fprintf(stderr, "sshexec: no user name: use -l user\n");
        return FAILURE;
    }

    /* The command: the remaining arguments joined by spaces, as ssh(1) does. */
    char *command = NULL;
    if (optind < argc) {
        size_t n = 1;
        for (int i = optind; i < argc; i++)
            n += strlen(argv[i]) + 1;
        command = calloc(1, n);
        if (!command)
            return FAILURE;
        for (int i = optind; i < argc; i++) {
            if (i > optind)
                strcat(command, " ");
            strcat(command, argv[i]);
        }
    }

    cyg_dropbear_authenticate auth;
    memset(&auth, 0, sizeof auth);
    auth.db_username = user;
    auth.db_host_rsa_key_pub = hostkeys[0];
    auth.db_host_dsa_key_pub = hostkeys[1];
    size_t len;
    char *key0 = NULL, *key1 = NULL, *password = NULL;
    if (keyfiles[0]) {
        key0 = slurp(keyfiles[0], &len);
        auth.db_id_rsa = key0; /* the slot names are eCos'; any key type fits either slot */
        auth.db_id_rsa_keylen = (int)len;
    }
    if (keyfiles[1]) {
        key1 = slurp(keyfiles[1], &len);
        auth.db_id_dsa = key1;
        auth.db_id_dsa_keylen = (int)len;
    }
    if ((key0 && !auth.db_id_rsa_keylen) || (key1 && !auth.db_id_dsa_keylen)) {
        fprintf(stderr, "sshexec: empty key file\n");
        return FAILURE;
    }
    if (pwfile) {
        password = slurp(pwfile, &len);
        password[strcspn(password, "\r\n")] = '\0';
        auth.db_password = password;
    }

    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "sshexec: %s port %s: %s\n", host, port, gai_strerror(gai));
        return FAILURE;
    }

    cyg_dropbear_cli_handle h;
    int connected = 0;
    for (ai = res; ai && !connected; ai = ai->ai_next) {
        struct sockaddr_storage ss;
        char name[NI_MAXHOST] = "?";
        memset(&ss, 0, sizeof ss);
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        getnameinfo(ai->ai_addr, ai->ai_addrlen, name, sizeof name, NULL, 0, NI_NUMERICHOST);
        connected = cyg_dropbear_ssh_connect(&h, &ss, &auth, command);
        if (!connected) {
            /* Only a failed TCP connection is worth trying the next address for. */
            int next = ai->ai_next && strstr(h.db_error, "TCP connect") != NULL;
            fprintf(stderr, "sshexec: %s port %s: %s\n", name, port, h.db_error);
            if (!next)
                break;
        }
    }
    freeaddrinfo(res);
    /* The library copied what it needs during connect. */
    if (password) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    if (key0) {
        explicit_bzero(key0, (size_t)auth.db_id_rsa_keylen);
        free(key0);
    }
    if (key1) {
        explicit_bzero(key1, (size_t)auth.db_id_dsa_keylen);
        free(key1);
    }
    free(command);
    if (!connected)
        return FAILURE;

    pump(&h);
    cyg_dropbear_ssh_close(&h, 1); /* closes db_stdin_stdout and db_stderr too */
    if (h.db_exitcode < 0) {
        fprintf(stderr, "sshexec: no exit status from the server%s%s\n", h.db_error[0] ? ": " : "", h.db_error);
        return FAILURE;
    }
    return h.db_exitcode;
}
