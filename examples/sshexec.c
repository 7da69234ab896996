/*
 * sshexec — a small ssh(1) on sshbridge's C API (dropbear.h + the extended sshbridge.h).
 *
 *   sshexec [-tv] [-p port] [-l user] [-i keyfile]... [-k "hostkey"]... [-w passwordfile]
 *           [-o Option=value]... [-L [bind:]port:host:hostport]... host [command...]
 *
 *   -p port          server port (default 22)
 *   -l user          remote account (default: $USER)
 *   -i keyfile       private key: any format the library reads (Dropbear binary, OpenSSH,
 *                    PEM, PKCS#8); any number; asks for the passphrase of an encrypted one
 *   -k "hostkey"     pin the server's host key ("ssh-rsa AAAA..." as in ssh_host_*_key.pub);
 *                    any number; without -k or known_hosts options the host key is not
 *                    checked (eCos behaviour)
 *   -w passwordfile  password: the first line of this file
 *   -o Option=value  OpenSSH options: UserKnownHostsFile, StrictHostKeyChecking
 *                    (yes|accept-new|no), HashKnownHosts, SetEnv (NAME=VALUE ...),
 *                    ConnectTimeout, ServerAliveInterval, ServerAliveCountMax, KexAlgorithms,
 *                    HostKeyAlgorithms, Ciphers, MACs, Port, User; any other is an error
 *   -t               a pseudo-terminal (TERM and the size of our terminal)
 *   -L spec          forward local [bind:]port (bind default 127.0.0.1) to host:hostport
 *                    through the server, while the command runs
 *   -v               log the connection to stderr, then what was negotiated
 *   host             name or address (every address getaddrinfo returns, in turn)
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctype.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "sshbridge.h"

#define FAILURE 255
#define MAX_FILE (1024 * 1024)

static void usage(void)
{
    fprintf(stderr, "usage: sshexec [-tv] [-p port] [-l user] [-i keyfile]... [-k \"hostkey\"]... [-w passwordfile]\n"
                    "               [-o Option=value]... [-L [bind:]port:host:hostport]... host [command...]\n");
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
/* sendfile(out, in, NULL, count) with SIGPIPE held off: a closed socket is EPIPE in *err. */
static ssize_t sendfile_nosignal(int out, int in, size_t count, int *err)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = sendfile(out, in, NULL, count);
    *err = errno;
    if (w < 0 && *err == EPIPE) {
        const struct timespec now = { 0, 0 };
        while (sigtimedwait(&pipe_set, NULL, &now) == SIGPIPE) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return w;
}

static void pump(cyg_dropbear_cli_handle *h)
{
    /* Input goes in large chunks and is sent as soon as it is read: no poll() round trip
     * between reading stdin and handing the bytes to the library, and one only when the
     * socket is full (the library's socketpair takes 1 MiB before that happens). */
    static char in[262144], buf[65536];
    size_t in_len = 0, in_off = 0;
    int stdin_eof = 0, shut = 0, out_eof = 0, err_eof = 0, out_ok = 1, err_ok = 1;
    /* Worth trying before poll() says so: a regular file's read() never blocks (a terminal's
     * or a pipe's may, so for those poll() comes first). */
    struct stat st;
    const int in_file = fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode);
    int in_ready = in_file, out_ready = 1;
    /* A regular file goes to the socket with sendfile(): the kernel copies it from the page
     * cache into the socket, one copy of each byte fewer than read() + send(). That needs the
     * socket non-blocking (sendfile has no MSG_DONTWAIT) and SIGPIPE held off around the call
     * (it has no MSG_NOSIGNAL either). */
    int use_sendfile = in_file;
    if (use_sendfile) {
        int fl = fcntl(h->db_stdin_stdout, F_GETFL);
        use_sendfile = fl >= 0 && fcntl(h->db_stdin_stdout, F_SETFL, fl | O_NONBLOCK) == 0;
    }

    while (!out_eof || !err_eof) {
        /* stdin -> db_stdin_stdout, for as long as neither side would block, up to 2 MiB at
         * a time so remote output (and its end) is seen in between */
        size_t moved = 0;
        while ((!stdin_eof || in_off < in_len) && moved < (2u << 20)) {
            if (use_sendfile && in_off == in_len) {
                if (!out_ready)
                    break;
                int e = 0;
                ssize_t w = sendfile_nosignal(h->db_stdin_stdout, STDIN_FILENO, 1 << 20, &e);
                if (w > 0) {
                    moved += (size_t)w;
                    continue;
                }
                if (w == 0) {
                    stdin_eof = 1;
                } else if (e == EAGAIN || e == EWOULDBLOCK) {
                    out_ready = 0;
                } else if (e == EINTR) {
                    continue;
                } else if (e == EINVAL || e == ENOSYS) {
                    use_sendfile = 0; /* this file cannot be sent that way: read() it */
                    continue;
                } else {
                    stdin_eof = 1; /* the remote side takes no more input */
                }
                break;
            }
            if (in_off == in_len) {
                if (!in_ready)
                    break;
                ssize_t r = read(STDIN_FILENO, in, sizeof in);
                if (r > 0) {
                    in_len = (size_t)r;
                    in_off = 0;
                    in_ready = in_file;
                } else if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
                    in_ready = errno == EINTR;
                    if (!in_ready)
                        break;
                    continue;
                } else {
                    stdin_eof = 1; /* EOF, or stdin unusable (closed, a directory...) */
                    break;
                }
            }
            if (!out_ready)
                break;
            ssize_t w = send(h->db_stdin_stdout, in + in_off, in_len - in_off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                in_off += (size_t)w;
                moved += (size_t)w;
            } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                out_ready = 0;
            } else if (w < 0 && errno == EINTR) {
                continue;
            } else {
                in_off = in_len, stdin_eof = 1; /* the remote side takes no more input */
            }
        }
        if (stdin_eof && in_len == in_off && !shut) {
            shutdown(h->db_stdin_stdout, SHUT_WR); /* remote stdin sees EOF */
            shut = 1;
        }
        /* sendfile waits for room in the socket only: a file is always readable */
        const int want_out = in_off < in_len || (use_sendfile && !stdin_eof);
        struct pollfd pf[3] = {
            { (!stdin_eof && in_len == in_off && !use_sendfile) ? STDIN_FILENO : -1, POLLIN, 0 },
            /* left out once it has nothing to say: a hung-up socket would wake poll() at once */
            { (out_eof && !want_out) ? -1 : h->db_stdin_stdout, (short)((out_eof ? 0 : POLLIN) | (want_out ? POLLOUT : 0)), 0 },
            { err_eof ? -1 : h->db_stderr, POLLIN, 0 },
        };
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("sshexec: poll");
            return;
        }
        if (pf[0].revents)
            in_ready = 1;
        if (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))
            out_ready = 1;
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

/* Check an options call; on failure name what was refused and exit. */
static void opt_ok(int rc, const char *what, const char *value)
{
    if (rc != 0) {
        fprintf(stderr, "sshexec: %s %s refused (error %d)\n", what, value ? value : "", rc);
        exit(FAILURE);
    }
}

/* Ask for a passphrase on the terminal, without echo. */
static char *ask_passphrase(const char *file)
{
    static char pass[1024];
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return NULL;
    fprintf(tty, "Enter passphrase for key '%s': ", file);
    fflush(tty);
    struct termios t, quiet;
    int have = tcgetattr(fileno(tty), &t) == 0;
    if (have) {
        quiet = t;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    }
    char *r = fgets(pass, sizeof pass, tty);
    if (have)
        tcsetattr(fileno(tty), TCSAFLUSH, &t);
    fprintf(tty, "\n");
    fclose(tty);
    if (!r)
        return NULL;
    pass[strcspn(pass, "\r\n")] = '\0';
    return pass;
}

static void add_key_file(sshbridge_options *o, const char *file)
{
    size_t len;
    char *key = slurp(file, &len);
    int rc = sshbridge_options_add_identity(o, key, (int)len, NULL);
    if (rc == SSHBRIDGE_E_KEY) {
        char *pass = ask_passphrase(file);
        if (pass) {
            rc = sshbridge_options_add_identity(o, key, (int)len, pass);
            explicit_bzero(pass, strlen(pass));
        }
    }
    explicit_bzero(key, len);
    free(key);
    opt_ok(rc, "key file", file);
}

/* Known-hosts settings gathered from -o, applied once all are read. */
struct kh {
    const char *file;
    int mode; /* 0: not asked for */
    int hash;
};

/* -o Name=value (or "Name value"), names case-insensitive as in ssh_config. */
static void dash_o(sshbridge_options *o, char *arg, struct kh *kh, const char **port, const char **user, int *alive,
                   int *alive_max)
{
    char *v = arg + strcspn(arg, "= \t");
    if (*v)
        *v++ = '\0';
    v += strspn(v, "= \t");
    if (!*v) {
        fprintf(stderr, "sshexec: -o %s needs a value\n", arg);
        exit(FAILURE);
    }
    static const struct { const char *name; int kind; } algs[] = {
        { "KexAlgorithms", SSHBRIDGE_ALG_KEX }, { "HostKeyAlgorithms", SSHBRIDGE_ALG_HOSTKEY },
        { "Ciphers", SSHBRIDGE_ALG_CIPHER },    { "MACs", SSHBRIDGE_ALG_MAC },
    };
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (strcasecmp(arg, algs[i].name) == 0) {
            opt_ok(sshbridge_options_set_algorithms(o, algs[i].kind, v), arg, v);
            return;
        }
    if (strcasecmp(arg, "UserKnownHostsFile") == 0) {
        kh->file = v;
        if (!kh->mode)
            kh->mode = SSHBRIDGE_HOSTKEY_STRICT;
    } else if (strcasecmp(arg, "StrictHostKeyChecking") == 0) {
        if (strcasecmp(v, "yes") == 0)
            kh->mode = SSHBRIDGE_HOSTKEY_STRICT;
        else if (strcasecmp(v, "accept-new") == 0)
            kh->mode = SSHBRIDGE_HOSTKEY_ACCEPT_NEW;
        else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0)
            kh->mode = SSHBRIDGE_HOSTKEY_ACCEPT_ANY;
        else {
            fprintf(stderr, "sshexec: StrictHostKeyChecking %s: use yes, accept-new or no\n", v);
            exit(FAILURE);
        }
    } else if (strcasecmp(arg, "HashKnownHosts") == 0) {
        kh->hash = strcasecmp(v, "yes") == 0;
    } else if (strcasecmp(arg, "SetEnv") == 0) {
        for (char *save = NULL, *p = strtok_r(v, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) {
            char *eq = strchr(p, '=');
            if (!eq) {
                fprintf(stderr, "sshexec: SetEnv %s: not NAME=VALUE\n", p);
                exit(FAILURE);
            }
            *eq = '\0';
            opt_ok(sshbridge_options_set_env(o, p, eq + 1), "SetEnv", p);
        }
    } else if (strcasecmp(arg, "ConnectTimeout") == 0) {
        opt_ok(sshbridge_options_set_timeouts(o, atoi(v) * 1000, -1, -1), arg, v);
    } else if (strcasecmp(arg, "ServerAliveInterval") == 0) {
        *alive = atoi(v);
    } else if (strcasecmp(arg, "ServerAliveCountMax") == 0) {
        *alive_max = atoi(v);
    } else if (strcasecmp(arg, "Port") == 0) {
        *port = v;
    } else if (strcasecmp(arg, "User") == 0) {
        *user = v;
    } else {
        fprintf(stderr, "sshexec: unknown option -o %s\n", arg);
        exit(FAILURE);
    }
}

static void on_log(void *ud, int level, const char *line)
{
    static const char *names[] = { "", "error", "warning", "info", "debug" };
    (void)ud;
    fprintf(stderr, "sshexec: %s: %s\n", names[level >= 1 && level <= 4 ? level : 4], line);
}

/* -L: one listening socket, forwarded through the connection. */
struct local_fwd {
    int listener;
    char host[256];
    int port;
    sshbridge_conn *conn;
};

struct relay {
    int a, b;
};

/* One direction of a relay: bytes read from one socket, waiting to be written to the other. */
struct half {
    char buf[65536];
    size_t len, off;
    int eof, shut;
};

/* Copy both ways between two sockets until both directions reached EOF, never blocking one
 * direction on the other (the remote end may echo: each side must keep being read). */
static void *relay_thread(void *arg)
{
    struct relay r = *(struct relay *)arg;
    free(arg);
    int fd[2] = { r.a, r.b };
    struct half *h = calloc(2, sizeof *h); /* h[0]: a -> b, h[1]: b -> a */
    if (!h)
        goto out;
    while (!(h[0].shut && h[1].shut)) {
        struct pollfd pf[2];
        for (int i = 0; i < 2; i++) {
            struct half *in = &h[i], *out = &h[1 - i];
            pf[i].fd = fd[i];
            pf[i].events = (short)((!in->eof && in->len == 0 ? POLLIN : 0) | (out->off < out->len ? POLLOUT : 0));
            pf[i].revents = 0;
        }
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            struct half *in = &h[i], *out = &h[1 - i];
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR) && !in->eof && in->len == 0) {
                ssize_t n = recv(fd[i], in->buf, sizeof in->buf, MSG_DONTWAIT);
                if (n > 0) {
                    in->len = (size_t)n;
                    in->off = 0;
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    in->eof = 1;
                }
            }
            if (pf[i].revents & (POLLOUT | POLLERR) && out->off < out->len) {
                ssize_t w = send(fd[i], out->buf + out->off, out->len - out->off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w > 0) {
                    out->off += (size_t)w;
                    if (out->off == out->len)
                        out->len = out->off = 0;
                } else if (errno != EAGAIN && errno != EINTR) {
                    out->len = out->off = 0; /* the peer is gone: drop what it cannot take */
                    out->eof = 1;
                }
            }
        }
        /* A direction that reached EOF and was fully written: pass the EOF on. */
        for (int i = 0; i < 2; i++)
            if (h[i].eof && h[i].len == 0 && !h[i].shut) {
                shutdown(fd[1 - i], SHUT_WR);
                h[i].shut = 1;
            }
    }
    free(h);
out:
    close(r.a);
    close(r.b);
    return NULL;
}

static void *listen_thread(void *arg)
{
    struct local_fwd *f = arg;
    for (;;) {
        int c = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        int fd = sshbridge_conn_forward(f->conn, f->host, f->port);
        if (fd < 0) {
            fprintf(stderr, "sshexec: forward to %s:%d failed (error %d)\n", f->host, f->port, fd);
            close(c);
            continue;
        }
        struct relay *r = malloc(sizeof *r);
        pthread_t t;
        if (!r) {
            close(c);
            close(fd);
            continue;
        }
        r->a = c;
        r->b = fd;
        if (pthread_create(&t, NULL, relay_thread, r) != 0) {
            close(c);
            close(fd);
            free(r);
            continue;
        }
        pthread_detach(t);
    }
}

/* Parse [bind:]port:host:hostport and listen. */
static struct local_fwd *parse_forward(char *spec)
{
    char *parts[4];
    int n = 0;
    for (char *save = NULL, *p = strtok_r(spec, ":", &save); p && n < 4; p = strtok_r(NULL, ":", &save))
        parts[n++] = p;
    if (n < 3) {
        fprintf(stderr, "sshexec: -L needs [bind:]port:host:hostport\n");
        exit(FAILURE);
    }
    const char *bind_addr = n == 4 ? parts[0] : "127.0.0.1";
    int lport = atoi(parts[n - 3]);
    struct local_fwd *f = calloc(1, sizeof *f);
    if (!f)
        exit(FAILURE);
    snprintf(f->host, sizeof f->host, "%s", parts[n - 2]);
    f->port = atoi(parts[n - 1]);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)lport);
    int one = 1;
    f->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(f->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (inet_pton(AF_INET, bind_addr, &sin.sin_addr) != 1 || bind(f->listener, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        listen(f->listener, 16) != 0) {
        fprintf(stderr, "sshexec: -L %s:%d: %s\n", bind_addr, lport, strerror(errno));
        exit(FAILURE);
    }
    return f;
}

int main(int argc, char **argv)
{
    const char *port = "22", *user = getenv("USER"), *pwfile = NULL;
    int opt, pty = 0, verbose = 0, nfwd = 0, alive = -1, alive_max = -1;
    struct kh kh = { NULL, 0, 0 };
    struct local_fwd *fwds[16];
    sshbridge_options *o = sshbridge_options_new();
    if (!o)
        return FAILURE;

    while ((opt = getopt(argc, argv, "+p:l:i:k:w:o:L:tvh")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 'l': user = optarg; break;
        case 'w': pwfile = optarg; break;
        case 'i': add_key_file(o, optarg); break;
        case 'k': opt_ok(sshbridge_options_add_host_key(o, host_key_arg(optarg)), "host key", optarg); break;
        case 'o': dash_o(o, optarg, &kh, &port, &user, &alive, &alive_max); break;
        case 't': pty = 1; break;
        case 'v': verbose = 1; break;
        case 'L':
            if (nfwd == 16) {
                fprintf(stderr, "sshexec: at most 16 -L\n");
                return FAILURE;
            }
            fwds[nfwd++] = parse_forward(optarg);
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
    if (kh.mode) {
        opt_ok(sshbridge_options_set_known_hosts(o, kh.file, kh.mode), "known hosts", kh.file);
        opt_ok(sshbridge_options_hash_known_hosts(o, kh.hash), "HashKnownHosts", NULL);
    }
    if (alive >= 0 || alive_max >= 0)
        opt_ok(sshbridge_options_set_keepalive(o, (alive >= 0 ? alive : 15) * 1000, alive_max > 0 ? alive_max : 3),
               "ServerAlive", NULL);
    if (pty) {
        struct winsize ws = { 24, 80, 0, 0 };
        ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws);
        const char *term = getenv("TERM");
        opt_ok(sshbridge_options_set_pty(o, term && *term ? term : "xterm", ws.ws_col ? ws.ws_col : 80,
                                         ws.ws_row ? ws.ws_row : 24),
               "pty", NULL);
    }
    if (verbose)
        opt_ok(sshbridge_options_set_log(o, on_log, NULL), "log", NULL);

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
    size_t len;
    char *password = NULL;
    if (pwfile) {
        password = slurp(pwfile, &len);
        password[strcspn(password, "\r\n")] = '\0';
        auth.db_password = password;
    }
    int nport = atoi(port);
    cyg_dropbear_cli_handle h;
    int connected;
    sshbridge_conn *conn = NULL;
    if (nfwd > 0) {
        char err[CYG_DROPBEAR_MAX_ERROR];
        conn = sshbridge_conn_open(host, nport, &auth, o, err, sizeof err);
        if (!conn) {
            fprintf(stderr, "sshexec: %s port %s: %s\n", host, port, err);
            return FAILURE;
        }
        for (int i = 0; i < nfwd; i++) {
            pthread_t t;
            fwds[i]->conn = conn;
            if (pthread_create(&t, NULL, listen_thread, fwds[i]) == 0)
                pthread_detach(t);
        }
        connected = sshbridge_conn_exec(conn, &h, command);
    } else {
        connected = sshbridge_connect(&h, host, nport, &auth, command, o);
    }
    /* The library copied what it needs. */
    sshbridge_options_free(o);
    if (password) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    free(command);
    if (!connected) {
        fprintf(stderr, "sshexec: %s port %s: %s\n", host, port, h.db_error);
        return FAILURE;
    }
    if (verbose) {
        char info[512];
        if (sshbridge_info(&h, info, sizeof info) > 0)
            fprintf(stderr, "sshexec: %s\n", info);
    }

    pump(&h);
    cyg_dropbear_ssh_close(&h, 1); /* closes db_stdin_stdout and db_stderr too */
    if (h.db_exitcode < 0) {
        fprintf(stderr, "sshexec: no exit status from the server%s%s\n", h.db_error[0] ? ": " : "", h.db_error);
        return FAILURE;
    }
    return h.db_exitcode;
}
