/*
 * exttest.c — the extended C API (include/sshbridge.h) against the CTest fixture's real sshd
 * and Dropbear (scripts/ctest-servers.sh): options and their refusals, connecting by host
 * name, env and pty, many commands over one sshbridge_conn from 8 threads, a TCP forward,
 * the info line, error classes, the log callback, a host name with two addresses and the
 * server on one (dual_stack, under libnss_wrapper). Every case checks that descriptors and
 * threads are back to their counts afterwards.
 *
 * Usage: exttest CASE   (CLITEST1_CONFIG names the fixture's servers.env)
 * Exit status: 0 pass, 1 fail, 77 skip.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "sshbridge.h"

#define CHECK(cond, ...)                                                                                 \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                         \
            fprintf(stderr, __VA_ARGS__);                                                                \
            fprintf(stderr, "\n");                                                                       \
            return FAIL;                                                                                 \
        }                                                                                                \
    } while (0)

/* The fixture's settings (KEY='value' lines). */
static char g_env[8192];

static const char *cfg(const char *key)
{
    static char val[64][512];
    static int next;
    size_t kn = strlen(key);
    for (const char *l = g_env; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, kn) == 0 && l[kn] == '=' && l[kn + 1] == '\'') {
            const char *v = l + kn + 2, *end = strchr(v, '\'');
            char *out = val[next++ % 64];
            snprintf(out, 512, "%.*s", end ? (int)(end - v) : 0, v);
            return out;
        }
    }
    return NULL;
}

static int load_config(void)
{
    const char *path = getenv("CLITEST1_CONFIG");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return -1;
    size_t n = fread(g_env, 1, sizeof g_env - 1, f);
    g_env[n] = '\0';
    fclose(f);
    return 0;
}

static cyg_dropbear_authenticate password_auth(void)
{
    cyg_dropbear_authenticate a;
    memset(&a, 0, sizeof a);
    a.db_username = cfg("USERNAME");
    a.db_password = cfg("PASSWORD");
    return a;
}

static int port_of(const char *server)
{
    char key[64];
    snprintf(key, sizeof key, "%s_PORT", server);
    const char *p = cfg(key);
    return p ? atoi(p) : -1;
}

/* Read fd to EOF (bounded by 20 s) into buf (NUL-terminated). */
static long read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    long t0 = now_ms();
    while (now_ms() - t0 < 20000) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    buf[n] = '\0';
    return (long)n;
}

/* A listening TCP socket on 127.0.0.1 and a free port; -1 on failure. */
static int listen_loopback(int *port)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(l, 4) != 0 ||
        getsockname(l, (struct sockaddr *)&sin, &sl) != 0) {
        if (l >= 0)
            close(l);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return l;
}

static int g_fds, g_tasks;

static int baseline_again(void)
{
    long t0 = now_ms();
    while ((fd_count() != g_fds || task_count() != g_tasks) && now_ms() - t0 < 5000)
        sleep_ms(20);
    if (fd_count() != g_fds || task_count() != g_tasks) {
        dump_fds();
        fprintf(stderr, "FAIL: %d fds / %d threads, baseline %d / %d\n", fd_count(), task_count(), g_fds, g_tasks);
        return FAIL;
    }
    return 0;
}

/* Run `command` with options `o` on sshd by host name; output into out. */
static int run(const char *host, const char *server, sshbridge_options *o, const char *command, char *out, size_t cap,
               int *exitcode, cyg_dropbear_cli_handle *h)
{
    cyg_dropbear_authenticate a = password_auth();
    if (!sshbridge_connect(h, host, port_of(server), &a, command, o))
        return sshbridge_error_code(h);
    read_all(h->db_stdin_stdout, out, cap);
    cyg_dropbear_ssh_close(h, 1);
    *exitcode = h->db_exitcode;
    return 0;
}

/* ----------------------------------------------------------------------------------- */

static int c_options_refused(void)
{
    CHECK(sshbridge_options_set_env(NULL, "A", "b") == SSHBRIDGE_E_INVALID, "NULL options accepted");
    sshbridge_options *o = sshbridge_options_new();
    CHECK(o != NULL, "options_new");
    CHECK(sshbridge_options_set_timeouts(o, 0, -1, -1) == SSHBRIDGE_E_INVALID, "connect timeout 0 accepted");
    CHECK(sshbridge_options_set_keepalive(o, 100, 0) == SSHBRIDGE_E_INVALID, "keepalive max 0 accepted");
    CHECK(sshbridge_options_set_pty(o, "xterm", 0, 24) == SSHBRIDGE_E_INVALID, "pty 0 columns accepted");
    CHECK(sshbridge_options_set_algorithms(o, SSHBRIDGE_ALG_CIPHER, "rot13") == SSHBRIDGE_E_INVALID, "unknown cipher");
    CHECK(sshbridge_options_set_algorithms(o, 99, "aes128-ctr") == SSHBRIDGE_E_INVALID, "unknown kind");
    CHECK(sshbridge_options_set_env(o, "A=B", "c") == SSHBRIDGE_E_INVALID, "name with '=' accepted");
    CHECK(sshbridge_options_add_host_key(o, "ssh-ed25519 notbase64") == SSHBRIDGE_E_INVALID, "bad host key");
    CHECK(sshbridge_options_add_identity(o, "not a key", 0, NULL) == SSHBRIDGE_E_KEY, "bad identity");
    CHECK(sshbridge_options_set_timeouts(o, 5000, 5000, 5000) == SSHBRIDGE_OK, "good timeouts refused");
    CHECK(sshbridge_options_set_algorithms(o, SSHBRIDGE_ALG_CIPHER, "aes128-ctr,aes256-ctr") == SSHBRIDGE_OK, "list");
    sshbridge_options_free(o);
    sshbridge_options_free(NULL);
    cyg_dropbear_cli_handle h;
    CHECK(sshbridge_connect(&h, NULL, 22, NULL, "true", NULL) == 0, "NULL host accepted");
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_INVALID, "code %d for a NULL host", sshbridge_error_code(&h));
    CHECK(sshbridge_info(NULL, NULL, 0) == SSHBRIDGE_E_INVALID, "info(NULL)");
    CHECK(sshbridge_conn_exec(NULL, &h, "true") == 0 && sshbridge_error_code(&h) == SSHBRIDGE_E_INVALID, "exec NULL");
    CHECK(sshbridge_conn_forward(NULL, "x", 1) == SSHBRIDGE_E_INVALID, "forward NULL");
    sshbridge_conn_close(NULL);
    return baseline_again();
}

/* By host name ("localhost": every address in turn), with the info line and strict kex. */
static int c_hostname_info(void)
{
    sshbridge_options *o = sshbridge_options_new();
    CHECK(sshbridge_options_require_strict_kex(o, 1) == SSHBRIDGE_OK, "strict");
    cyg_dropbear_authenticate a = password_auth();
    cyg_dropbear_cli_handle h;
    CHECK(sshbridge_connect(&h, "localhost", port_of("SSHD"), &a, "echo by-name", o) == 1, "connect: %s", h.db_error);
    sshbridge_options_free(o); /* copied at connect */
    char info[512];
    int n = sshbridge_info(&h, info, sizeof info);
    printf("  info: %s\n", info);
    CHECK(n > 0 && strstr(info, "server SSH-2.0-OpenSSH") && strstr(info, "kex ") && strstr(info, "SHA256:") &&
              strstr(info, "strict kex on"),
          "info line \"%s\"", info);
    char small[8];
    CHECK(sshbridge_info(&h, small, sizeof small) == 7 && strlen(small) == 7, "info truncation");
    char out[256];
    read_all(h.db_stdin_stdout, out, sizeof out);
    cyg_dropbear_ssh_close(&h, 1);
    CHECK(strcmp(out, "by-name\n") == 0 && h.db_exitcode == 0, "output \"%s\" exit %d", out, h.db_exitcode);
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_OK, "error code %d after success", sshbridge_error_code(&h));
    return baseline_again();
}

static int c_env_pty(void)
{
    sshbridge_options *o = sshbridge_options_new();
    CHECK(sshbridge_options_set_env(o, "LANG", "C.UTF-8") == 0, "set_env");
    CHECK(sshbridge_options_set_pty(o, "vt100", 100, 30) == 0, "set_pty");
    char out[512];
    int code = -1;
    cyg_dropbear_cli_handle h;
    int rc = run("127.0.0.1", "SSHD", o, "echo \"$LANG $TERM\"; stty size; tty", out, sizeof out, &code, &h);
    CHECK(rc == 0, "connect with env and pty: %d %s", rc, h.db_error);
    printf("  output: %s", out);
    CHECK(strstr(out, "C.UTF-8 vt100") && strstr(out, "30 100") && strstr(out, "/dev/pts/"), "output \"%s\"", out);
    /* A variable the server does not accept is refused, with its class. */
    CHECK(sshbridge_options_set_env(o, "SSHBRIDGE_NOT_ACCEPTED", "1") == 0, "set_env 2");
    rc = run("127.0.0.1", "SSHD", o, "true", out, sizeof out, &code, &h);
    CHECK(rc == SSHBRIDGE_E_REFUSED && strstr(h.db_error, "SSHBRIDGE_NOT_ACCEPTED"), "refused env: %d \"%s\"", rc,
          h.db_error);
    sshbridge_options_free(o);
    return baseline_again();
}

struct job {
    sshbridge_conn *c;
    int i, ok;
    char out[64];
};

static void *exec_job(void *arg)
{
    struct job *j = arg;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "sleep 0.2; echo job-%d", j->i);
    cyg_dropbear_cli_handle h;
    if (!sshbridge_conn_exec(j->c, &h, cmd)) {
        snprintf(j->out, sizeof j->out, "exec: %.50s", h.db_error);
        return NULL;
    }
    read_all(h.db_stdin_stdout, j->out, sizeof j->out);
    cyg_dropbear_ssh_close(&h, 1);
    char want[32];
    snprintf(want, sizeof want, "job-%d\n", j->i);
    j->ok = strcmp(j->out, want) == 0 && h.db_exitcode == 0;
    return NULL;
}

/* 8 commands at once over one connection, from 8 threads. */
static int c_conn_many(void)
{
    cyg_dropbear_authenticate a = password_auth();
    char err[256];
    sshbridge_conn *c = sshbridge_conn_open("127.0.0.1", port_of("SSHD"), &a, NULL, err, sizeof err);
    CHECK(c, "conn_open: %s", err);
    struct job jobs[8];
    pthread_t t[8];
    long t0 = now_ms();
    for (int i = 0; i < 8; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].c = c;
        jobs[i].i = i;
        CHECK(pthread_create(&t[i], NULL, exec_job, &jobs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    long took = now_ms() - t0;
    sshbridge_conn_close(c);
    for (int i = 0; i < 8; i++)
        CHECK(jobs[i].ok, "job %d: \"%s\"", i, jobs[i].out);
    printf("  8 commands of 0.2 s each over one connection in %ld ms\n", took);
    CHECK(took < 1500, "the commands did not run at once (%ld ms)", took);
    return baseline_again();
}

static void *echo_server(void *arg)
{
    int l = *(int *)arg;
    int s = accept(l, NULL, NULL);
    if (s < 0)
        return NULL;
    char b[65536];
    ssize_t n;
    while ((n = read(s, b, sizeof b)) > 0)
        if (write(s, b, (size_t)n) != n)
            break;
    close(s);
    return NULL;
}

/* A socket joined to a direct-tcpip channel: 1 MiB through a local echo server. */
static int c_conn_forward(void)
{
    int port, l = listen_loopback(&port);
    CHECK(l >= 0, "listen");
    pthread_t t;
    pthread_create(&t, NULL, echo_server, &l);
    cyg_dropbear_authenticate a = password_auth();
    char err[256];
    sshbridge_conn *c = sshbridge_conn_open("127.0.0.1", port_of("SSHD"), &a, NULL, err, sizeof err);
    CHECK(c, "conn_open: %s", err);
    int fd = sshbridge_conn_forward(c, "127.0.0.1", port);
    CHECK(fd >= 0, "conn_forward: %d", fd);
    static char out[1 << 20], in[(1 << 20) + 1];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 7 + i / 251);
    size_t sent = 0, got = 0;
    long t0 = now_ms();
    while (got < sizeof out && now_ms() - t0 < 20000) {
        struct pollfd p = { fd, POLLIN | (sent < sizeof out ? POLLOUT : 0), 0 };
        poll(&p, 1, 200);
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, out + sent, sizeof out - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        if (p.revents & POLLIN) {
            ssize_t r = read(fd, in + got, sizeof in - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
    }
    shutdown(fd, SHUT_WR);
    char extra[16];
    long tail = read_all(fd, extra, sizeof extra);
    close(fd);
    pthread_join(t, NULL);
    close(l);
    sshbridge_conn_close(c);
    CHECK(got == sizeof out && memcmp(in, out, sizeof out) == 0 && tail == 0, "echo through the forward: %zu of %zu",
          got, sizeof out);
    /* A closed port: the server's refusal, as a class. */
    c = sshbridge_conn_open("127.0.0.1", port_of("SSHD"), &a, NULL, err, sizeof err);
    CHECK(c, "conn_open 2: %s", err);
    int rc = sshbridge_conn_forward(c, "127.0.0.1", 1);
    sshbridge_conn_close(c);
    CHECK(rc == SSHBRIDGE_E_REFUSED, "forward to a closed port gave %d", rc);
    return baseline_again();
}

/* Error classes: wrong password, wrong pinned key, closed port, no common cipher, timeout. */
static int c_error_codes(void)
{
    cyg_dropbear_authenticate a = password_auth();
    cyg_dropbear_cli_handle h;
    a.db_password = "wrong";
    CHECK(sshbridge_connect(&h, "127.0.0.1", port_of("SSHD"), &a, "true", NULL) == 0, "wrong password");
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_AUTH, "wrong password: %d %s", sshbridge_error_code(&h), h.db_error);
    a = password_auth();
    sshbridge_options *o = sshbridge_options_new();
    CHECK(sshbridge_options_add_host_key(o, cfg("DROPBEAR_HOST_RSA_KEY_PUB")) == 0, "host key");
    CHECK(sshbridge_connect(&h, "127.0.0.1", port_of("SSHD"), &a, "true", o) == 0, "wrong host key accepted");
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_HOSTKEY_CHANGED, "host key: %d %s", sshbridge_error_code(&h),
          h.db_error);
    sshbridge_options_free(o);
    CHECK(sshbridge_connect(&h, "127.0.0.1", 1, &a, "true", NULL) == 0, "port 1");
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_CONNECT, "closed port: %d %s", sshbridge_error_code(&h), h.db_error);
    o = sshbridge_options_new();
    CHECK(sshbridge_options_set_algorithms(o, SSHBRIDGE_ALG_CIPHER, "aes256-gcm@openssh.com") == 0, "gcm only");
    CHECK(sshbridge_connect(&h, "127.0.0.1", port_of("DROPBEAR"), &a, "true", o) == 0, "dropbear has no GCM");
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_ALGORITHM, "no cipher: %d %s", sshbridge_error_code(&h), h.db_error);
    sshbridge_options_free(o);
    /* A server that accepts TCP and says nothing: the handshake timeout of the options. */
    int port, l = listen_loopback(&port);
    CHECK(l >= 0, "listen");
    o = sshbridge_options_new();
    CHECK(sshbridge_options_set_timeouts(o, 1000, 400, -1) == 0, "timeouts");
    long t0 = now_ms();
    CHECK(sshbridge_connect(&h, "127.0.0.1", port, &a, "true", o) == 0, "silent server");
    long took = now_ms() - t0;
    close(l);
    sshbridge_options_free(o);
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_TIMEOUT && took < 2000, "silent server: %d after %ld ms (%s)",
          sshbridge_error_code(&h), took, h.db_error);
    return baseline_again();
}

static int g_log_lines, g_log_auth;
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_log(void *ud, int level, const char *line)
{
    pthread_mutex_lock(&g_log_lock);
    (*(int *)ud)++;
    g_log_lines++;
    if (level == 3 && strstr(line, "authenticated as"))
        g_log_auth++;
    pthread_mutex_unlock(&g_log_lock);
}

static int c_log(void)
{
    int mine = 0;
    sshbridge_options *o = sshbridge_options_new();
    CHECK(sshbridge_options_set_log(o, on_log, &mine) == SSHBRIDGE_OK, "set_log");
    char out[64];
    int code;
    cyg_dropbear_cli_handle h;
    CHECK(run("127.0.0.1", "SSHD", o, "echo logged", out, sizeof out, &code, &h) == 0, "connect: %s", h.db_error);
    sshbridge_options_free(o);
    pthread_mutex_lock(&g_log_lock);
    int lines = g_log_lines, auth = g_log_auth;
    pthread_mutex_unlock(&g_log_lock);
    printf("  %d log lines, %d of them the authentication result\n", lines, auth);
    CHECK(lines > 3 && auth == 1 && mine == lines, "log lines %d, auth lines %d, ud count %d", lines, auth, mine);
    return baseline_again();
}

/* known_hosts from C: accept-new records a line ssh-keygen -F finds; strict refuses an unknown
 * host and a changed key, each with its class. */
static int c_known_hosts(void)
{
    char dir[] = "/tmp/sshbridge-exttest-XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    char file[256], cmd[512], out[64];
    snprintf(file, sizeof file, "%s/known_hosts", dir);
    int port = port_of("SSHD"), code;
    cyg_dropbear_cli_handle h;
    sshbridge_options *o = sshbridge_options_new();
    CHECK(sshbridge_options_set_known_hosts(o, file, 99) == SSHBRIDGE_E_INVALID, "mode 99 accepted");
    CHECK(sshbridge_options_set_known_hosts(o, file, SSHBRIDGE_HOSTKEY_STRICT) == 0, "strict");
    CHECK(run("127.0.0.1", "SSHD", o, "true", out, sizeof out, &code, &h) == SSHBRIDGE_E_HOSTKEY_UNKNOWN,
          "unknown host under strict: %d %s", sshbridge_error_code(&h), h.db_error);
    CHECK(sshbridge_options_set_known_hosts(o, file, SSHBRIDGE_HOSTKEY_ACCEPT_NEW) == 0, "accept-new");
    CHECK(run("127.0.0.1", "SSHD", o, "echo first", out, sizeof out, &code, &h) == 0 && strcmp(out, "first\n") == 0,
          "accept-new: %s", h.db_error);
    snprintf(cmd, sizeof cmd, "ssh-keygen -F '[127.0.0.1]:%d' -f %s >/dev/null", port, file);
    CHECK(system(cmd) == 0, "ssh-keygen -F does not find the recorded host");
    CHECK(sshbridge_options_set_known_hosts(o, file, SSHBRIDGE_HOSTKEY_STRICT) == 0, "strict 2");
    CHECK(run("127.0.0.1", "SSHD", o, "echo again", out, sizeof out, &code, &h) == 0, "known host: %s", h.db_error);
    /* Another key under the same name: a changed key. */
    FILE *f = fopen(file, "w");
    CHECK(f, "rewrite");
    fprintf(f, "[127.0.0.1]:%d %s\n", port, cfg("DROPBEAR_HOST_RSA_KEY_PUB"));
    fclose(f);
    CHECK(run("127.0.0.1", "SSHD", o, "true", out, sizeof out, &code, &h) == SSHBRIDGE_E_HOSTKEY_CHANGED &&
              strstr(h.db_error, "CHANGED"),
          "changed key: %d %s", sshbridge_error_code(&h), h.db_error);
    sshbridge_options_free(o);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "rm");
    return baseline_again();
}

/* A key given only through the options logs in (no password in auth). */
static int c_identity(void)
{
    const char *path = cfg("ID_RSA_FILE");
    FILE *f = path ? fopen(path, "rb") : NULL;
    CHECK(f, "no ID_RSA_FILE in the fixture");
    static char key[16384];
    size_t n = fread(key, 1, sizeof key, f);
    fclose(f);
    sshbridge_options *o = sshbridge_options_new();
    CHECK(sshbridge_options_add_identity(o, key, (int)n, NULL) == 0, "add_identity");
    cyg_dropbear_authenticate a;
    memset(&a, 0, sizeof a);
    a.db_username = cfg("USERNAME");
    cyg_dropbear_cli_handle h;
    CHECK(sshbridge_connect(&h, "127.0.0.1", port_of("SSHD"), &a, "whoami", o) == 1, "key login: %s", h.db_error);
    sshbridge_options_free(o);
    char out[64];
    read_all(h.db_stdin_stdout, out, sizeof out);
    cyg_dropbear_ssh_close(&h, 1);
    CHECK(strncmp(out, cfg("USERNAME"), strlen(cfg("USERNAME"))) == 0, "whoami \"%s\"", out);
    /* Without it the same auth has nothing to offer. */
    CHECK(sshbridge_connect(&h, "127.0.0.1", port_of("SSHD"), &a, "whoami", NULL) == 0, "login without credentials");
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_AUTH, "code %d: %s", sshbridge_error_code(&h), h.db_error);
    return baseline_again();
}

/* A TCP proxy to sshd that stops passing the server's bytes on cue (a frozen server). */
struct freezer {
    int listener, upstream_port;
    volatile int frozen;
};

static void *freezer_thread(void *arg)
{
    struct freezer *f = arg;
    int c = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)f->upstream_port);
    if (c < 0 || connect(s, (struct sockaddr *)&sin, sizeof sin) != 0)
        goto out;
    char b[65536];
    for (;;) {
        struct pollfd p[2] = { { c, POLLIN, 0 }, { f->frozen ? -1 : s, POLLIN, 0 } };
        if (poll(p, 2, 100) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            ssize_t n = read(c, b, sizeof b);
            if (n <= 0 || send(s, b, (size_t)n, MSG_NOSIGNAL) != n)
                break;
        }
        if (!f->frozen && p[1].revents) {
            ssize_t n = read(s, b, sizeof b);
            if (n <= 0 || send(c, b, (size_t)n, MSG_NOSIGNAL) != n)
                break;
        }
    }
out:
    if (c >= 0)
        close(c);
    close(s);
    return NULL;
}

/* The keepalive option: a server that freezes is declared dead in interval x (max + 1). */
static int c_keepalive(void)
{
    struct freezer f = { -1, port_of("SSHD"), 0 };
    int port;
    f.listener = listen_loopback(&port);
    CHECK(f.listener >= 0, "listen");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, freezer_thread, &f) == 0, "pthread_create");
    sshbridge_options *o = sshbridge_options_new();
    CHECK(sshbridge_options_set_keepalive(o, 300, 2) == 0, "keepalive");
    cyg_dropbear_authenticate a = password_auth();
    cyg_dropbear_cli_handle h;
    CHECK(sshbridge_connect(&h, "127.0.0.1", port, &a, "sleep 30", o) == 1, "connect: %s", h.db_error);
    sshbridge_options_free(o);
    f.frozen = 1;
    long t0 = now_ms();
    char out[64];
    read_all(h.db_stdin_stdout, out, sizeof out);
    long eof_ms = now_ms() - t0;
    cyg_dropbear_ssh_close(&h, 1);
    pthread_join(t, NULL);
    close(f.listener);
    printf("  EOF %ld ms after the freeze (keepalive 300 ms x 2); db_error \"%s\"\n", eof_ms, h.db_error);
    CHECK(eof_ms < 3000, "no EOF within 3 s of the freeze (%ld ms)", eof_ms);
    CHECK(h.db_exitcode == -1 && sshbridge_error_code(&h) == SSHBRIDGE_E_TIMEOUT && strstr(h.db_error, "stopped answering"),
          "exit %d, code %d, \"%s\"", h.db_exitcode, sshbridge_error_code(&h), h.db_error);
    return baseline_again();
}

/* A server without strict key exchange (a scripted one: banner and a KEXINIT without
 * kex-strict-s-v00@openssh.com, then silence): refused at once when the options require it. */
static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void *no_strict_server(void *arg)
{
    int l = *(int *)arg, c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return NULL;
    static const char *lists[10] = { "curve25519-sha256", "ssh-ed25519", "chacha20-poly1305@openssh.com",
                                     "chacha20-poly1305@openssh.com", "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", "" };
    unsigned char pkt[1024], *p = pkt + 5;
    *p++ = 20; /* SSH_MSG_KEXINIT */
    memset(p, 7, 16), p += 16;
    for (int i = 0; i < 10; i++) {
        size_t n = strlen(lists[i]);
        put32(p, (uint32_t)n), memcpy(p + 4, lists[i], n), p += 4 + n;
    }
    *p++ = 0, put32(p, 0), p += 4;
    size_t payload = (size_t)(p - pkt - 5), pad = 8 - (payload + 5) % 8;
    if (pad < 4)
        pad += 8;
    memset(p, 0, pad), p += pad;
    put32(pkt, (uint32_t)(1 + payload + pad)), pkt[4] = (unsigned char)pad;
    const char *banner = "SSH-2.0-nostrict\r\n";
    if (write(c, banner, strlen(banner)) > 0 && write(c, pkt, (size_t)(p - pkt)) > 0) {
        char b[4096];
        while (read(c, b, sizeof b) > 0) {
        }
    }
    close(c);
    return NULL;
}

static int c_strict_kex(void)
{
    int port, l = listen_loopback(&port);
    CHECK(l >= 0, "listen");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, no_strict_server, &l) == 0, "pthread_create");
    sshbridge_options *o = sshbridge_options_new();
    CHECK(sshbridge_options_require_strict_kex(o, 1) == 0 && sshbridge_options_set_timeouts(o, 2000, 3000, -1) == 0, "options");
    cyg_dropbear_authenticate a = password_auth();
    cyg_dropbear_cli_handle h;
    long t0 = now_ms();
    CHECK(sshbridge_connect(&h, "127.0.0.1", port, &a, "true", o) == 0, "a server without strict kex accepted");
    long took = now_ms() - t0;
    sshbridge_options_free(o);
    pthread_join(t, NULL);
    close(l);
    printf("  refused after %ld ms: %s\n", took, h.db_error);
    CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_REFUSED && strstr(h.db_error, "CVE-2023-48795") && took < 1500,
          "code %d after %ld ms: %s", sshbridge_error_code(&h), took, h.db_error);
    return baseline_again();
}

/* A host name with two addresses, the server on only one of them: sshbridge_connect tries every
 * address getaddrinfo returns, in its order. libnss_wrapper (LD_PRELOAD, set by CTest) serves
 * c-tests/dual-stack.hosts: v6first.sshbridge.test is ::1 then 127.0.0.1, v4first.sshbridge.test
 * 127.0.0.1 then ::1. The fixture's sshd_split listens on 127.0.0.1:P4 and [::1]:P6 only, so
 * v6first:P4 and v4first:P6 are refused on the first address and must succeed on the second;
 * v6first:P6 and v4first:P4 succeed on the first. $SSH_CONNECTION names the address that served. */
static int resolved_order(const char *name, char *out, size_t cap)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo(name, NULL, &hints, &res);
    out[0] = '\0';
    if (e != 0) {
        snprintf(out, cap, "getaddrinfo: %s", gai_strerror(e));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN] = "?";
        const void *src = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                                    : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        inet_ntop(ai->ai_family, src, ip, sizeof ip);
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", n ? " " : "", ip);
    }
    freeaddrinfo(res);
    return 0;
}

/* errno of a plain TCP connect to ip:port (0: it connected). */
static int tcp_probe(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
    if (fam == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6, s6->sin6_port = htons((uint16_t)port), sl = sizeof *s6;
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET, s4->sin_port = htons((uint16_t)port), sl = sizeof *s4;
        inet_pton(AF_INET, ip, &s4->sin_addr);
    }
    int s = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return errno;
    int r = connect(s, (struct sockaddr *)&ss, sl) == 0 ? 0 : errno;
    close(s);
    return r;
}

static int nss_wrapper_loaded(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "libnss_wrapper") != NULL;
    if (f)
        fclose(f);
    return found;
}

static int c_dual_stack(void)
{
    if (!nss_wrapper_loaded() || !getenv("NSS_WRAPPER_HOSTS")) {
        printf("SKIP: libnss_wrapper is not preloaded: install it (Debian: libnss-wrapper, scripts/install-deps.sh) and "
               "re-run cmake, which finds it; CTest then runs this case with LD_PRELOAD=libnss_wrapper.so and "
               "NSS_WRAPPER_HOSTS=c-tests/dual-stack.hosts\n");
        return SKIP;
    }
    const char *p4s = cfg("SSHD_V4ONLY_PORT"), *p6s = cfg("SSHD_V6ONLY_PORT");
    if (!p4s || !*p4s || !p6s || !*p6s) {
        printf("SKIP: no ::1 on lo, so the fixture started no sshd_split (127.0.0.1:P4 and [::1]:P6)\n");
        return SKIP;
    }
    int p4 = atoi(p4s), p6 = atoi(p6s);
    char order[256];
    /* The resolver first: nss_wrapper keeps its hosts file open after the first lookup, so the
     * descriptor baseline is taken again after these two. */
    CHECK(resolved_order("v6first.sshbridge.test", order, sizeof order) == 0 && strcmp(order, "::1 127.0.0.1") == 0,
          "v6first.sshbridge.test resolves to \"%s\", want \"::1 127.0.0.1\"", order);
    CHECK(resolved_order("v4first.sshbridge.test", order, sizeof order) == 0 && strcmp(order, "127.0.0.1 ::1") == 0,
          "v4first.sshbridge.test resolves to \"%s\", want \"127.0.0.1 ::1\"", order);
    g_fds = fd_count();
    g_tasks = task_count();
    /* Nothing answers on the other address of either port. */
    int e = tcp_probe("::1", p4);
    CHECK(e == ECONNREFUSED, "[::1]:%d: %s, want connection refused", p4, e ? strerror(e) : "connected");
    e = tcp_probe("127.0.0.1", p6);
    CHECK(e == ECONNREFUSED, "127.0.0.1:%d: %s, want connection refused", p6, e ? strerror(e) : "connected");
    CHECK(tcp_probe("127.0.0.1", p4) == 0 && tcp_probe("::1", p6) == 0, "sshd_split is not listening");

    static const struct {
        const char *name, *served_by;
        int v6port, attempt;
    } cases[] = {
        { "v6first.sshbridge.test", "127.0.0.1", 0, 2 }, /* ::1 refused, then 127.0.0.1 */
        { "v4first.sshbridge.test", "::1", 1, 2 },       /* 127.0.0.1 refused, then ::1 */
        { "v6first.sshbridge.test", "::1", 1, 1 },
        { "v4first.sshbridge.test", "127.0.0.1", 0, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int port = cases[i].v6port ? p6 : p4;
        cyg_dropbear_authenticate a = password_auth();
        cyg_dropbear_cli_handle h;
        long t0 = now_ms();
        CHECK(sshbridge_connect(&h, cases[i].name, port, &a, "echo \"$SSH_CONNECTION\"; exit 3", NULL) == 1,
              "%s port %d: %s", cases[i].name, port, h.db_error);
        long took = now_ms() - t0;
        char info[512];
        int n = sshbridge_info(&h, info, sizeof info);
        const char *fp = cfg("SSHD_HOST_RSA_FP");
        CHECK(n > 0 && strstr(info, "server SSH-2.0-OpenSSH") && fp && strstr(info, fp), "info line \"%s\" (want %s)",
              info, fp ? fp : "?");
        char out[256], cip[64] = "", sip[64] = "";
        int cport = 0, sport = 0;
        read_all(h.db_stdin_stdout, out, sizeof out);
        cyg_dropbear_ssh_close(&h, 1);
        printf("  %s:%d (server on %s only, attempt %d) in %ld ms: SSH_CONNECTION %s", cases[i].name, port,
               cases[i].served_by, cases[i].attempt, took, out);
        CHECK(sscanf(out, "%63s %d %63s %d", cip, &cport, sip, &sport) == 4, "SSH_CONNECTION \"%s\"", out);
        CHECK(strcmp(sip, cases[i].served_by) == 0 && sport == port && strcmp(cip, cases[i].served_by) == 0,
              "%s:%d served by %s port %d from %s, want %s", cases[i].name, port, sip, sport, cip, cases[i].served_by);
        CHECK(h.db_exitcode == 3, "exit code %d, want 3", h.db_exitcode);
        CHECK(sshbridge_error_code(&h) == SSHBRIDGE_OK, "error code %d after success", sshbridge_error_code(&h));
    }
    /* Neither address answers: every one tried, the error names the last. */
    static const struct {
        const char *name, *last;
    } closed[] = { { "v6first.sshbridge.test", "127.0.0.1:1" }, { "v4first.sshbridge.test", "[::1]:1" } };
    for (size_t i = 0; i < sizeof closed / sizeof closed[0]; i++) {
        cyg_dropbear_authenticate a = password_auth();
        cyg_dropbear_cli_handle h;
        CHECK(sshbridge_connect(&h, closed[i].name, 1, &a, "true", NULL) == 0, "%s port 1 connected", closed[i].name);
        printf("  %s:1: %s\n", closed[i].name, h.db_error);
        CHECK(sshbridge_error_code(&h) == SSHBRIDGE_E_CONNECT && strstr(h.db_error, closed[i].last),
              "%s port 1: code %d \"%s\", want SSHBRIDGE_E_CONNECT naming %s", closed[i].name, sshbridge_error_code(&h),
              h.db_error, closed[i].last);
    }
    return baseline_again();
}

struct tcase {
    const char *name;
    int (*fn)(void);
};

static const struct tcase CASES[] = {
    { "options_refused", c_options_refused }, { "hostname_info", c_hostname_info }, { "env_pty", c_env_pty },
    { "conn_many", c_conn_many },             { "conn_forward", c_conn_forward },   { "error_codes", c_error_codes },
    { "log", c_log },                         { "known_hosts", c_known_hosts },     { "identity", c_identity },
    { "keepalive", c_keepalive },             { "strict_kex", c_strict_kex },       { "dual_stack", c_dual_stack },
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: exttest CASE\n");
        return FAIL;
    }
    if (load_config() != 0) {
        fprintf(stderr, "CLITEST1_CONFIG is not set or unreadable (run through ctest)\n");
        return SKIP;
    }
    g_fds = fd_count();
    g_tasks = task_count();
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        if (strcmp(CASES[i].name, argv[1]) == 0) {
            int rc = CASES[i].fn();
            printf("%s exttest.%s\n", rc == 0 ? "PASS" : rc == SKIP ? "SKIP" : "FAIL", argv[1]);
            return rc;
        }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return FAIL;
}
