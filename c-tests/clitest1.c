/*
 * clitest1.c — the sshbridge counterpart of eCos' dropbear tests/clitest1.c: the drop-in C
 * API (cyg_dropbear_ssh_connect / cyg_dropbear_ssh_close) against real SSH servers.
 *
 * Usage:  clitest1 SERVER CASE      run one case (exit 0 pass, 1 fail, 77 skip)
 *         clitest1 SERVER all       run every case for SERVER in turn
 *         clitest1 --list           print SERVER/CASE pairs
 *
 * SERVER is "sshd" or "dropbear" (the fixture servers of scripts/ctest-servers.sh, described
 * by the file named in $CLITEST1_CONFIG), "user" (the server given at configure time through
 * the CYGTST_NET_DROPBEAR_TESTS_CLI_* CMake cache variables, compiled in like the eCos CDL
 * options), or "args" for the cases that need no server at all.
 *
 * Every case starts from the process's baseline (open descriptors in /proc/self/fd, threads
 * in /proc/self/task, both counted before the first connect) and must return to it after
 * cyg_dropbear_ssh_close (within a short bounded wait; longer after close(h, 0), whose worker
 * finishes in the background). SIGPIPE keeps its default disposition on purpose: the library
 * must never make the application receive it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dropbear.h"
#include "common.h"
#include "clitest1_config.h"

#define PASS 0

/* Host keys that belong to no server: pinning them must make connect fail. */
static const char WRONG_RSA_PUB[] =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCgqt6pMJt1uYKG4lQYoCR5/VHd0U/i4GA0J82UUII0KeXvWMTeBTg6sO"
    "Emb3iYDfFWe8GQ6AwoXdNxo0C+5+IHivvDsVqbmX3iDGw9pH+OTaq+ud5zrJ87AUikkHFbbDzTPR+MV8YYxmoDad8+YO"
    "Qc78hrmMFZXhulhNhWeNdQXPqLCR+QRPq21qCAfq7zVlORiK2FKz++6S5acnH7DIqegSXxGdUWD+J9D13la6j5y7DEOy"
    "K4aqlMTyjDLm/vsT94rxbS2jfkxX69bGxscX8gpTyDyisIsUHfGDBQN9xezi51Xbp/oRL9hWuPlLShQugvAkdVkYy8jip"
    "TnFwfr86j";
static const char WRONG_RSA_FP[] = "SHA256:F0bgPu15zwTxznkK/lNtDddker5jmxskO7KvjrJAHQo";
static const char WRONG_DSA_PUB[] =
    "ssh-dss AAAAB3NzaC1kc3MAAACBAIxumbFsffQ2NN8Vvf6A5Ui5WbtedkDG8Ud0KIpQrqEsvpPB7MC15gBpqFT+Z2Oup9"
    "f6Cki1KB1wTzaaU1Zcm+cSdBw778pm8k8Ewuc/+4E9j6Bpku2BHhBGvG6SCvZomlnfDzYQpg1v4Y29RN3EZDqjmtU1NLl"
    "QOxajp85LoDaBAAAAFQD3fziFtf2b4Z0UtP+/jRrssc+ZEwAAAIAGTAZYYJVeElIdWr9izRtEkN2k3FHu7Kgr/RGKTxPr+"
    "RyJLdFVIKZMTEE6w93Sc9b9J2omn6E/LLH6U/9bP3bmNozw7fKj78jIdoB+urOeXWjNEUpwrmetx68YgQFyq1mp/JZbLU"
    "72o1XTlhptq2UB86NoImgt9UBU9oeke7i/EgAAAIBEnktRMtkr/7OM0JFJEMF2aqjiJZh9XEfbNQ/qO3sPnz9pWbyF3Ym"
    "vYIsCQaZjod9hIvDkFwZDZ+L6Jefkf5YNu4gJEVvZEM1aexTrxM2+5xqWDAqD3Py+nkFGojWc/3PkOsOLixrGms4AFSnn5"
    "owRYh5OScSFExXnD6jWOllq/w==";
static const char WRONG_DSA_FP[] = "SHA256:krMLaBiQKYZLlemiHeC2e8TRRM0zuMfZAc/54q0MHB4";

/* ------------------------------------------------------------------------------------- */
/* Small utilities                                                                         */
/* ------------------------------------------------------------------------------------- */

static const char *g_server = "?";
static const char *g_case = "?";
static long g_timeout_ms = 120000;

#define fail(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
static int fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s/%s (%s:%d): ", g_server, g_case, file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return FAIL;
}

static int skip(const char *why)
{
    printf("SKIP %s/%s: %s\n", g_server, g_case, why);
    return SKIP;
}

#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (!(cond))                                                                        \
            return fail(__VA_ARGS__);                                                       \
    } while (0)

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

/* A growable byte buffer. */
struct buf {
    char *p;
    size_t n, cap;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            exit(FAIL);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static const char *buf_str(const struct buf *b)
{
    return b->p ? b->p : "";
}

/* Compare what arrived with what was expected; describe the first difference. */
static int same_bytes(const char *what, const struct buf *got, const char *want, size_t want_n)
{
    size_t i, n = got->n < want_n ? got->n : want_n;
    for (i = 0; i < n && got->p[i] == want[i]; i++) {
    }
    if (i == n && got->n == want_n)
        return 1;
    fprintf(stderr, "  %s differs: got %zu bytes, want %zu; first difference at offset %zu\n", what,
            got->n, want_n, i);
    fprintf(stderr, "  got:  \"%.*s\"\n  want: \"%.*s\"\n", (int)(got->n - i < 60 ? got->n - i : 60),
            got->p ? got->p + i : "", (int)(want_n - i < 60 ? want_n - i : 60), want + i);
    return 0;
}

static int read_file(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char tmp[4096];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        buf_add(out, tmp, (size_t)n);
    close(fd);
    return n < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------------------- */
/* SHA-256 (FIPS 180-4), to check what the remote sha256sum saw                            */
/* ------------------------------------------------------------------------------------- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (i = 0; i < 64; i++) {
        t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

/* Lower-case hex SHA-256 of data into hex[65]. */
static void sha256_hex(const void *data, size_t n, char hex[65])
{
    uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    const unsigned char *p = data;
    unsigned char tail[128];
    size_t full = n / 64 * 64, rest = n - full, tn;
    uint64_t bits = (uint64_t)n * 8;
    for (size_t i = 0; i < full; i += 64)
        sha256_block(h, p + i);
    memset(tail, 0, sizeof tail);
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    tn = rest + 1 + 8 <= 64 ? 64 : 128;
    for (int i = 0; i < 8; i++)
        tail[tn - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t i = 0; i < tn; i += 64)
        sha256_block(h, tail + i);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", h[i]);
}

/* ------------------------------------------------------------------------------------- */
/* Resource baseline: descriptors and threads                                              */
/* ------------------------------------------------------------------------------------- */

static int g_base_fds, g_base_tasks;

/* Wait up to wait_ms for descriptors and threads to be back at the baseline. */
static int back_to_baseline(long wait_ms)
{
    long start = now_ms();
    int fds, tasks;
    for (;;) {
        fds = fd_count();
        tasks = task_count();
        if (fds == g_base_fds && tasks == g_base_tasks)
            return PASS;
        if (now_ms() - start >= wait_ms)
            break;
        sleep_ms(20);
    }
    fail("resources not released after %ld ms: %d descriptors (baseline %d), %d threads (baseline %d)",
         wait_ms, fds, g_base_fds, tasks, g_base_tasks);
    dump_fds();
    return FAIL;
}

/* ------------------------------------------------------------------------------------- */
/* Server descriptions                                                                     */
/* ------------------------------------------------------------------------------------- */

struct server {
    const char *name;
    int af;               /* family used by the generic cases */
    const char *addr4;    /* NULL if not reachable over IPv4 */
    const char *addr6;    /* NULL if not reachable over IPv6 */
    int port;
    const char *username;
    const char *password; /* NULL: no password login */
    const char *host_rsa, *host_dsa;       /* public host key lines, or NULL */
    const char *host_rsa_fp, *host_dsa_fp; /* their SHA256 fingerprints, or NULL */
    const char *id_rsa;   /* private keys (Dropbear binary format), or NULL */
    int id_rsa_len;
    const char *id_dsa;
    int id_dsa_len;
    const char *id_rsa_text; /* the RSA key as NUL-terminated OpenSSH/PEM text, or NULL */
    int limit_handshakes;    /* max parallel logins (dropbear: MAX_UNAUTH_PER_IP 5) */
    const char *log;         /* the server's log file (fixture only), or NULL */
};

/* KEY='value' lines written by scripts/ctest-servers.sh. */
struct envfile {
    char *key[64], *val[64];
    int n;
};

static int load_envfile(const char *path, struct envfile *env)
{
    struct buf b = { 0 };
    if (read_file(path, &b) != 0)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq || env->n >= 64)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        size_t vn = strlen(v);
        if (vn >= 2 && v[0] == '\'' && v[vn - 1] == '\'') {
            v[vn - 1] = '\0';
            v++;
        }
        env->key[env->n] = xstrdup(line);
        env->val[env->n] = xstrdup(v);
        env->n++;
    }
    buf_free(&b);
    return 0;
}

static const char *env_get(const struct envfile *env, const char *prefix, const char *key)
{
    char full[128];
    snprintf(full, sizeof full, "%s%s", prefix, key);
    for (int i = 0; i < env->n; i++)
        if (strcmp(env->key[i], full) == 0)
            return env->val[i][0] ? env->val[i] : NULL;
    return NULL;
}

static const char *load_key(const char *path, int *len)
{
    struct buf b = { 0 };
    if (!path || read_file(path, &b) != 0 || b.n == 0) {
        buf_free(&b);
        *len = 0;
        return NULL;
    }
    *len = (int)b.n;
    return b.p; /* kept for the life of the process */
}

#if CLITEST1_USER_SERVER
#ifdef CYGTST_NET_DROPBEAR_TESTS_CLI_ID_RSA
static const unsigned char user_id_rsa[] = { CYGTST_NET_DROPBEAR_TESTS_CLI_ID_RSA };
#endif
#ifdef CYGTST_NET_DROPBEAR_TESTS_CLI_ID_DSA
static const unsigned char user_id_dsa[] = { CYGTST_NET_DROPBEAR_TESTS_CLI_ID_DSA };
#endif
#endif

/* Fill *s for server `name`; returns PASS, or FAIL/SKIP with a message. */
static int load_server(const char *name, struct server *s)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->af = AF_INET;
    if (strcmp(name, "args") == 0)
        return PASS;
#if CLITEST1_USER_SERVER
    if (strcmp(name, "user") == 0) {
        s->af = CYGTST_NET_DROPBEAR_TESTS_CLI_AF;
        if (s->af == AF_INET6)
            s->addr6 = CYGTST_NET_DROPBEAR_TESTS_CLI_SERVER_ADDR;
        else
            s->addr4 = CYGTST_NET_DROPBEAR_TESTS_CLI_SERVER_ADDR;
        s->port = CYGTST_NET_DROPBEAR_TESTS_CLI_SERVER_PORT;
        s->username = CYGTST_NET_DROPBEAR_TESTS_CLI_USERNAME;
#ifdef CYGTST_NET_DROPBEAR_TESTS_CLI_PASSWORD
        s->password = CYGTST_NET_DROPBEAR_TESTS_CLI_PASSWORD;
#endif
#ifdef CYGTST_NET_DROPBEAR_TESTS_CLI_HOST_RSA_KEY_PUB
        s->host_rsa = CYGTST_NET_DROPBEAR_TESTS_CLI_HOST_RSA_KEY_PUB;
#endif
#ifdef CYGTST_NET_DROPBEAR_TESTS_CLI_HOST_DSA_KEY_PUB
        s->host_dsa = CYGTST_NET_DROPBEAR_TESTS_CLI_HOST_DSA_KEY_PUB;
#endif
#ifdef CYGTST_NET_DROPBEAR_TESTS_CLI_ID_RSA
        s->id_rsa = (const char *)user_id_rsa;
        s->id_rsa_len = (int)sizeof user_id_rsa;
#endif
#ifdef CYGTST_NET_DROPBEAR_TESTS_CLI_ID_DSA
        s->id_dsa = (const char *)user_id_dsa;
        s->id_dsa_len = (int)sizeof user_id_dsa;
#endif
        s->limit_handshakes = 4;
        return PASS;
    }
#endif
    const char *prefix;
    if (strcmp(name, "sshd") == 0)
        prefix = "SSHD_";
    else if (strcmp(name, "dropbear") == 0)
        prefix = "DROPBEAR_";
    else
        return fail("unknown server %s (sshd, dropbear, user, args)", name);
    const char *path = getenv("CLITEST1_CONFIG");
    static struct envfile env;
    if (!path || !*path)
        return fail("CLITEST1_CONFIG is not set (run through ctest, which starts the servers)");
    if (load_envfile(path, &env) != 0)
        return fail("cannot read %s: %s (did the clitest1.servers.start fixture run?)", path, strerror(errno));
    const char *port = env_get(&env, prefix, "PORT");
    if (!port)
        return fail("%s has no %sPORT", path, prefix);
    s->port = atoi(port);
    s->addr4 = env_get(&env, "", "ADDR4");
    if (env_get(&env, "", "IPV6") && strcmp(env_get(&env, "", "IPV6"), "1") == 0)
        s->addr6 = env_get(&env, "", "ADDR6");
    s->username = env_get(&env, "", "USERNAME");
    s->password = env_get(&env, "", "PASSWORD");
    s->host_rsa = env_get(&env, prefix, "HOST_RSA_KEY_PUB");
    s->host_dsa = env_get(&env, prefix, "HOST_DSA_KEY_PUB");
    s->host_rsa_fp = env_get(&env, prefix, "HOST_RSA_FP");
    s->host_dsa_fp = env_get(&env, prefix, "HOST_DSA_FP");
    s->id_rsa = load_key(env_get(&env, "", "ID_RSA_FILE"), &s->id_rsa_len);
    s->id_dsa = load_key(env_get(&env, "", "ID_DSA_FILE"), &s->id_dsa_len);
    int text_len;
    s->id_rsa_text = load_key(env_get(&env, "", "ID_RSA_OPENSSH_FILE"), &text_len);
    s->limit_handshakes = strcmp(name, "dropbear") == 0 ? 4 : 0;
    s->log = env_get(&env, prefix, "LOG");
    if (!s->username)
        return fail("%s has no USERNAME", path);
    return PASS;
}

/* ------------------------------------------------------------------------------------- */
/* Connection helpers                                                                      */
/* ------------------------------------------------------------------------------------- */

static int make_addr(struct sockaddr_storage *ss, int af, const char *host, int port)
{
    memset(ss, 0, sizeof *ss);
    if (af == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

/* The server's address for the generic cases. */
static int server_addr(const struct server *s, struct sockaddr_storage *ss)
{
    const char *a = s->af == AF_INET6 ? s->addr6 : s->addr4;
    if (!a || make_addr(ss, s->af, a, s->port) != 0)
        return fail("server %s has no usable address", s->name);
    return PASS;
}

enum { A_PASSWORD = 1, A_RSA = 2, A_DSA = 4, A_HOST_RSA = 8, A_HOST_DSA = 16, A_RSA_TEXT = 32 };

/* Authentication with the parts in `what`; the generic cases use default_auth(). */
static void make_auth(cyg_dropbear_authenticate *a, const struct server *s, int what)
{
    memset(a, 0, sizeof *a);
    a->db_username = s->username;
    if (what & A_PASSWORD)
        a->db_password = s->password;
    if (what & A_RSA) {
        a->db_id_rsa = s->id_rsa;
        a->db_id_rsa_keylen = s->id_rsa_len;
    }
    if (what & A_RSA_TEXT) {
        a->db_id_rsa = s->id_rsa_text;
        a->db_id_rsa_keylen = 0; /* NUL-terminated key text */
    }
    if (what & A_DSA) {
        a->db_id_dsa = s->id_dsa;
        a->db_id_dsa_keylen = s->id_dsa_len;
    }
    if (what & A_HOST_RSA)
        a->db_host_rsa_key_pub = s->host_rsa;
    if (what & A_HOST_DSA)
        a->db_host_dsa_key_pub = s->host_dsa;
}

static int default_auth_kind(const struct server *s)
{
    return s->password ? A_PASSWORD : s->id_rsa ? A_RSA : s->id_dsa ? A_DSA : 0;
}

static int need_server(const struct server *s)
{
    if (!default_auth_kind(s))
        return skip("no password or private key configured");
    return PASS;
}

static int connect_checked(cyg_dropbear_cli_handle *h, const struct sockaddr_storage *ss,
                           const cyg_dropbear_authenticate *a, const char *cmd)
{
    memset(h, 0xA5, sizeof *h); /* the library must not care what was in there */
    if (!cyg_dropbear_ssh_connect(h, ss, a, cmd))
        return fail("connect (command %s%s%s) failed: %s", cmd ? "\"" : "", cmd ? cmd : "NULL (shell)",
                    cmd ? "\"" : "", h->db_error);
    if (h->db_stdin_stdout < 0 || h->db_stderr < 0 || h->db_stdin_stdout == h->db_stderr)
        return fail("connect returned 1 but descriptors are %d/%d", h->db_stdin_stdout, h->db_stderr);
    /* Plain blocking sockets for the application (eCos: read() returns 0 at EOF), and
     * close-on-exec so a child the application starts cannot hold the connection open. */
    for (int i = 0; i < 2; i++) {
        int fd = i ? h->db_stderr : h->db_stdin_stdout;
        int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
        if (fl < 0 || fdf < 0 || (fl & O_NONBLOCK) || !(fdf & FD_CLOEXEC))
            return fail("%s (fd %d): flags %#x, fd flags %#x: want blocking and FD_CLOEXEC",
                        i ? "db_stderr" : "db_stdin_stdout", fd, fl, fdf);
    }
    return PASS;
}

/*
 * Feed `in` (if any) to the remote stdin, then shut our sending side down if `eof`; collect
 * remote stdout and stderr until both reach end-of-file. poll() all the way: no direction may
 * block another. Writing uses send(MSG_DONTWAIT) without MSG_NOSIGNAL: SIGPIPE stays lethal.
 */
static int exchange(cyg_dropbear_cli_handle *h, const void *in, size_t inlen, int eof, struct buf *out,
                    struct buf *err)
{
    const char *p = in;
    size_t sent = 0;
    int out_eof = 0, err_eof = 0, shut = 0;
    long deadline = now_ms() + g_timeout_ms;
    char tmp[16384];
    while (!out_eof || !err_eof) {
        if (sent == inlen && eof && !shut) {
            CHECK(shutdown(h->db_stdin_stdout, SHUT_WR) == 0, "shutdown(SHUT_WR): %s", strerror(errno));
            shut = 1;
        }
        struct pollfd pf[2] = {
            { h->db_stdin_stdout, (short)((out_eof ? 0 : POLLIN) | (sent < inlen ? POLLOUT : 0)), 0 },
            { err_eof ? -1 : h->db_stderr, POLLIN, 0 },
        };
        long left = deadline - now_ms();
        CHECK(left > 0, "timed out after %ld ms: sent %zu/%zu, stdout %zu bytes%s, stderr %zu bytes%s",
              g_timeout_ms, sent, inlen, out->n, out_eof ? " (eof)" : "", err->n, err_eof ? " (eof)" : "");
        int rc = poll(pf, 2, (int)(left > 1000 ? 1000 : left));
        if (rc < 0 && errno == EINTR)
            continue;
        CHECK(rc >= 0, "poll: %s", strerror(errno));
        if (pf[0].revents & POLLOUT && sent < inlen) {
            size_t n = inlen - sent > sizeof tmp ? sizeof tmp : inlen - sent;
            ssize_t w = send(h->db_stdin_stdout, p + sent, n, MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            else
                CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, "write to db_stdin_stdout: %s",
                      strerror(errno));
        }
        if (!out_eof && pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(h->db_stdin_stdout, tmp, sizeof tmp);
            if (r > 0)
                buf_add(out, tmp, (size_t)r);
            else if (r == 0)
                out_eof = 1;
            else
                CHECK(errno == EAGAIN || errno == EINTR, "read db_stdin_stdout: %s", strerror(errno));
        }
        if (!err_eof && pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(h->db_stderr, tmp, sizeof tmp);
            if (r > 0)
                buf_add(err, tmp, (size_t)r);
            else if (r == 0)
                err_eof = 1;
            else
                CHECK(errno == EAGAIN || errno == EINTR, "read db_stderr: %s", strerror(errno));
        }
        /* The remote may exit without reading everything: stop feeding it then. */
        if (out_eof && err_eof)
            break;
    }
    return PASS;
}

static int close_checked(cyg_dropbear_cli_handle *h, int wait)
{
    cyg_dropbear_ssh_close(h, wait);
    CHECK(h->db_stdin_stdout == -1 && h->db_stderr == -1, "after close(h, %d) descriptors are %d/%d, want -1/-1",
          wait, h->db_stdin_stdout, h->db_stderr);
    return PASS;
}

struct result {
    struct buf out, err;
    int exitcode;
};

static void result_free(struct result *r)
{
    buf_free(&r->out);
    buf_free(&r->err);
}

/* Connect, run `cmd` with `in` as its stdin (EOF after it), collect everything, close(h, 1). */
static int run_cmd(const struct server *s, const struct sockaddr_storage *ss, const cyg_dropbear_authenticate *a,
                   const char *cmd, const void *in, size_t inlen, struct result *r)
{
    cyg_dropbear_cli_handle h;
    memset(r, 0, sizeof *r);
    (void)s;
    if (connect_checked(&h, ss, a, cmd) != PASS)
        return FAIL;
    if (exchange(&h, in, inlen, 1, &r->out, &r->err) != PASS) {
        cyg_dropbear_ssh_close(&h, 0);
        return FAIL;
    }
    if (close_checked(&h, 1) != PASS)
        return FAIL;
    r->exitcode = h.db_exitcode;
    return PASS;
}

/* run_cmd with the server's default address and credentials. */
static int run_default(const struct server *s, const char *cmd, const void *in, size_t inlen, struct result *r)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    return run_cmd(s, &ss, &a, cmd, in, inlen, r);
}

/* Run `cmd`, expect exactly `want_out` on stdout and exit code `want_code`. */
static int expect_run(const struct server *s, const struct sockaddr_storage *ss, const cyg_dropbear_authenticate *a,
                      const char *cmd, const char *want_out, int want_code)
{
    struct result r;
    int rc = run_cmd(s, ss, a, cmd, NULL, 0, &r);
    if (rc == PASS && !same_bytes("stdout", &r.out, want_out, strlen(want_out)))
        rc = fail("unexpected output of \"%s\" (stderr: %s)", cmd, buf_str(&r.err));
    if (rc == PASS && r.exitcode != want_code)
        rc = fail("\"%s\": db_exitcode %d, want %d (stderr: %s)", cmd, r.exitcode, want_code, buf_str(&r.err));
    result_free(&r);
    return rc;
}

static int expect_run_default(const struct server *s, const char *cmd, const char *want_out, int want_code)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    return expect_run(s, &ss, &a, cmd, want_out, want_code);
}

/* Connect must fail: returns PASS if connect returned 0 with a non-empty, terminated db_error
 * containing every non-NULL needle (case-insensitive). */
static int expect_connect_fail(const struct sockaddr_storage *ss, const cyg_dropbear_authenticate *a, const char *cmd,
                               const char *what, const char *needle1, const char *needle2, long max_ms)
{
    cyg_dropbear_cli_handle h;
    memset(&h, 0xA5, sizeof h);
    long t0 = now_ms();
    int rc = cyg_dropbear_ssh_connect(&h, ss, a, cmd);
    long took = now_ms() - t0;
    if (rc != 0) {
        cyg_dropbear_ssh_close(&h, 0);
        return fail("%s: connect returned %d, want 0", what, rc);
    }
    CHECK(memchr(h.db_error, '\0', sizeof h.db_error) != NULL, "%s: db_error is not NUL-terminated", what);
    CHECK(h.db_error[0] != '\0', "%s: connect failed but db_error is empty", what);
    CHECK(!needle1 || strcasestr(h.db_error, needle1), "%s: db_error \"%s\" does not mention \"%s\"", what,
          h.db_error, needle1);
    CHECK(!needle2 || strcasestr(h.db_error, needle2), "%s: db_error \"%s\" does not mention \"%s\"", what,
          h.db_error, needle2);
    CHECK(h.db_stdin_stdout == -1 && h.db_stderr == -1, "%s: failed connect left descriptors %d/%d", what,
          h.db_stdin_stdout, h.db_stderr);
    CHECK(max_ms <= 0 || took <= max_ms, "%s: failing took %ld ms (limit %ld ms)", what, took, max_ms);
    printf("  %s: 0 after %ld ms, db_error: %s\n", what, took, h.db_error);
    /* Closing a handle whose connect failed is harmless. */
    cyg_dropbear_ssh_close(&h, 1);
    return PASS;
}

/* ------------------------------------------------------------------------------------- */
/* Cases against a server                                                                  */
/* ------------------------------------------------------------------------------------- */

/*
 * Which method the server says it accepted for the connection from local port `port`, from its
 * log (fixture servers only), looking at what was logged after offset `from`: "password",
 * "RSA" or "DSA"; NULL if not (yet) logged.
 *   sshd (LogLevel VERBOSE): "Accepted publickey for U from 127.0.0.1 port P ssh2: DSA SHA256:..."
 *   dropbear (-E):          "Pubkey auth succeeded for 'U' with ssh-dss key ... from 127.0.0.1:P"
 */
static const char *logged_method(const struct server *s, int port, size_t from)
{
    struct buf log = { 0 };
    const char *method = NULL;
    char p1[32], p2[32];
    snprintf(p1, sizeof p1, " port %d ", port);
    snprintf(p2, sizeof p2, ":%d\n", port);
    if (read_file(s->log, &log) != 0 || log.n <= from)
        return NULL;
    /* Local ports are reused: only lines logged since our connect count, the first one wins. */
    for (char *line = log.p + from; line && *line && !method;) {
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line + 1) : strlen(line);
        char save = line[n];
        line[n] = '\0';
        if (strstr(line, p1) || strstr(line, p2)) {
            if (strstr(line, "Accepted password") || strstr(line, "Password auth succeeded"))
                method = "password";
            else if (strstr(line, "Accepted publickey") || strstr(line, "Pubkey auth succeeded"))
                method = strstr(line, " DSA ") || strstr(line, "ssh-dss") ? "DSA"
                       : strstr(line, " RSA ") || strstr(line, "ssh-rsa") ? "RSA" : "other key";
        }
        line[n] = save;
        line = end ? end + 1 : NULL;
    }
    buf_free(&log);
    return method;
}

/* Log in with the credentials in `kind`; the server must accept the one named `want_method`
 * ("password", "RSA", "DSA": checked in its log when the fixture gives us the log). */
static int auth_case(const struct server *s, int kind, const char *missing, const char *word,
                     const char *want_method)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    struct result r;
    char cmd[96], want[64];
    if (missing)
        return skip(missing);
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, kind);
    struct stat st;
    size_t log_from = s->log && stat(s->log, &st) == 0 ? (size_t)st.st_size : 0;
    /* SSH_CONNECTION = "client-address client-port server-address server-port" */
    snprintf(cmd, sizeof cmd, "echo %s-ok; echo \"$SSH_CONNECTION\"", word);
    snprintf(want, sizeof want, "%s-ok\n", word);
    if (run_cmd(s, &ss, &a, cmd, NULL, 0, &r) != PASS)
        return FAIL;
    int rc = PASS, port = 0;
    const char *nl = strchr(buf_str(&r.out), '\n');
    if (r.exitcode != 0 || !nl || strncmp(buf_str(&r.out), want, strlen(want)) != 0 ||
        sscanf(nl + 1, "%*s %d", &port) != 1)
        rc = fail("output \"%s\", exit code %d (stderr: %s)", buf_str(&r.out), r.exitcode, buf_str(&r.err));
    result_free(&r);
    if (rc != PASS || !s->log)
        return rc;
    const char *got = NULL;
    for (long t0 = now_ms(); !(got = logged_method(s, port, log_from)) && now_ms() - t0 < 3000;)
        sleep_ms(50);
    CHECK(got, "no successful login from port %d in %s", port, s->log);
    CHECK(strcmp(got, want_method) == 0, "the server accepted %s, want %s", got, want_method);
    printf("  server log: %s accepted for local port %d\n", got, port);
    return PASS;
}

static int c_password(const struct server *s)
{
    return auth_case(s, A_PASSWORD, s->password ? NULL : "no password configured", "password", "password");
}

static int c_rsa_key(const struct server *s)
{
    return auth_case(s, A_RSA, s->id_rsa ? NULL : "no RSA key configured", "rsa", "RSA");
}

/* The key as text: NUL-terminated with keylen 0, then with its exact length. */
static int c_rsa_key_text(const struct server *s)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    if (!s->id_rsa_text)
        return skip("no RSA key text (fixture only)");
    int rc = auth_case(s, A_RSA_TEXT, NULL, "rsa-text", "RSA");
    if (rc != PASS)
        return rc;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, A_RSA_TEXT);
    a.db_id_rsa_keylen = (int)strlen(s->id_rsa_text);
    return expect_run(s, &ss, &a, "echo rsa-text-len-ok", "rsa-text-len-ok\n", 0);
}

static int c_dsa_key(const struct server *s)
{
    return auth_case(s, A_DSA, s->id_dsa ? NULL : "no DSA key configured", "dsa", "DSA");
}

static int c_keys_both(const struct server *s)
{
    /* eCos: "If both keys are supplied then the dropbear code will try the DSA key first, then
     * the RSA key" (and keys before the password). */
    return auth_case(s, A_RSA | A_DSA | A_PASSWORD, s->id_rsa && s->id_dsa ? NULL : "needs both keys", "both-keys",
                     "DSA");
}

static int c_bad_password(const struct server *s)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, 0);
    a.db_password = "definitely-not-the-password";
    return expect_connect_fail(&ss, &a, "true", "wrong password", "auth", NULL, 30000);
}

static int hostkey_case(const struct server *s, int pins)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    if ((pins & A_HOST_RSA && !s->host_rsa) || (pins & A_HOST_DSA && !s->host_dsa))
        return skip("host key not configured");
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s) | pins);
    return expect_run(s, &ss, &a, "echo hostkey-ok", "hostkey-ok\n", 0);
}

static int c_hostkey_rsa(const struct server *s) { return hostkey_case(s, A_HOST_RSA); }
static int c_hostkey_dsa(const struct server *s) { return hostkey_case(s, A_HOST_DSA); }
static int c_hostkey_both(const struct server *s) { return hostkey_case(s, A_HOST_RSA | A_HOST_DSA); }

/* Pin a key the server does not have: connect returns 0 and names both fingerprints. */
static int mismatch_case(const struct server *s, int rsa)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    if (rsa)
        a.db_host_rsa_key_pub = WRONG_RSA_PUB;
    else
        a.db_host_dsa_key_pub = WRONG_DSA_PUB;
    const char *server_fp = rsa ? s->host_rsa_fp : s->host_dsa_fp;
    if (expect_connect_fail(&ss, &a, "echo must-not-run", rsa ? "wrong RSA host key" : "wrong DSA host key",
                            rsa ? WRONG_RSA_FP : WRONG_DSA_FP, server_fp, 30000) != PASS)
        return FAIL;
    return PASS;
}

static int c_hostkey_mismatch_rsa(const struct server *s) { return mismatch_case(s, 1); }
static int c_hostkey_mismatch_dsa(const struct server *s) { return mismatch_case(s, 0); }

static int family_case(const struct server *s, int af)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    struct result r;
    const char *addr = af == AF_INET6 ? s->addr6 : s->addr4;
    if (!addr)
        return skip(af == AF_INET6 ? "server not reachable over IPv6" : "server not reachable over IPv4");
    if (need_server(s) != PASS)
        return SKIP;
    CHECK(make_addr(&ss, af, addr, s->port) == 0, "bad address %s", addr);
    make_auth(&a, s, default_auth_kind(s));
    if (run_cmd(s, &ss, &a, "echo \"conn: $SSH_CONNECTION\"", NULL, 0, &r) != PASS)
        return FAIL;
    int rc = PASS;
    if (r.exitcode != 0)
        rc = fail("exit code %d", r.exitcode);
    else if (strncmp(buf_str(&r.out), "conn: ", 6) != 0)
        rc = fail("unexpected output \"%s\"", buf_str(&r.out));
    /* SSH_CONNECTION is "client port server port": the server saw our family's address. */
    else if (!strstr(buf_str(&r.out), af == AF_INET6 ? ":" : "."))
        rc = fail("SSH_CONNECTION \"%s\" is not an %s address", buf_str(&r.out), af == AF_INET6 ? "IPv6" : "IPv4");
    else
        printf("  %s", buf_str(&r.out));
    result_free(&r);
    return rc;
}

static int c_ipv4(const struct server *s) { return family_case(s, AF_INET); }
static int c_ipv6(const struct server *s) { return family_case(s, AF_INET6); }

static void seq_text(struct buf *b, int from, int to)
{
    char line[32];
    for (int i = from; i <= to; i++) {
        int n = snprintf(line, sizeof line, "%d\n", i);
        buf_add(b, line, (size_t)n);
    }
}

static int c_read(const struct server *s)
{
    struct result r;
    struct buf want = { 0 };
    if (need_server(s) != PASS)
        return SKIP;
    if (run_default(s, "seq 1 100000", NULL, 0, &r) != PASS)
        return FAIL;
    seq_text(&want, 1, 100000);
    int rc = PASS;
    if (!same_bytes("stdout", &r.out, want.p, want.n))
        rc = fail("seq 1 100000 arrived changed");
    else if (r.exitcode != 0 || r.err.n != 0)
        rc = fail("exit code %d, stderr \"%s\"", r.exitcode, buf_str(&r.err));
    result_free(&r);
    buf_free(&want);
    return rc;
}

/* 1 MiB of pseudo-random bytes (xorshift32, fixed seed). */
static char *mib_pattern(size_t n)
{
    char *p = xmalloc(n);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (char)(x >> 24);
    }
    return p;
}

static int c_write(const struct server *s)
{
    const size_t n = 1 << 20;
    struct result r;
    char hex[65], want[128];
    if (need_server(s) != PASS)
        return SKIP;
    char *data = mib_pattern(n);
    sha256_hex(data, n, hex);
    snprintf(want, sizeof want, "%s  -\n", hex);
    int rc = run_default(s, "sha256sum", data, n, &r);
    if (rc == PASS) {
        if (!same_bytes("stdout", &r.out, want, strlen(want)))
            rc = fail("the remote side saw different data (stderr: %s)", buf_str(&r.err));
        else if (r.exitcode != 0)
            rc = fail("exit code %d", r.exitcode);
        result_free(&r);
    }
    free(data);
    return rc;
}

static int c_cat(const struct server *s)
{
    const size_t n = 1 << 20;
    struct result r;
    if (need_server(s) != PASS)
        return SKIP;
    char *data = mib_pattern(n);
    int rc = run_default(s, "cat", data, n, &r);
    if (rc == PASS) {
        if (!same_bytes("stdout", &r.out, data, n))
            rc = fail("1 MiB through remote cat came back changed");
        else if (r.exitcode != 0)
            rc = fail("exit code %d", r.exitcode);
        result_free(&r);
    }
    free(data);
    return rc;
}

static int c_stderr(const struct server *s)
{
    struct result r;
    struct buf want_out = { 0 }, want_err = { 0 };
    if (need_server(s) != PASS)
        return SKIP;
    if (run_default(s, "seq 1 20000 >&2; echo out-marker; seq 20001 40000; echo err-marker >&2", NULL, 0, &r) != PASS)
        return FAIL;
    seq_text(&want_err, 1, 20000);
    buf_add(&want_err, "err-marker\n", 11);
    buf_add(&want_out, "out-marker\n", 11);
    seq_text(&want_out, 20001, 40000);
    int rc = PASS;
    if (!same_bytes("stdout", &r.out, want_out.p, want_out.n))
        rc = fail("stdout is not exactly the remote stdout");
    else if (!same_bytes("stderr", &r.err, want_err.p, want_err.n))
        rc = fail("stderr is not exactly the remote stderr");
    else if (r.exitcode != 0)
        rc = fail("exit code %d", r.exitcode);
    result_free(&r);
    buf_free(&want_out);
    buf_free(&want_err);
    return rc;
}

static int exit_case(const struct server *s, const char *cmd, int want)
{
    struct result r;
    if (need_server(s) != PASS)
        return SKIP;
    if (run_default(s, cmd, NULL, 0, &r) != PASS)
        return FAIL;
    int rc = r.exitcode == want ? PASS : fail("\"%s\": db_exitcode %d, want %d", cmd, r.exitcode, want);
    result_free(&r);
    return rc;
}

static int c_exit_0(const struct server *s) { return exit_case(s, "exit 0", 0); }
static int c_exit_1(const struct server *s) { return exit_case(s, "echo failing >&2; exit 1", 1); }
static int c_exit_44(const struct server *s) { return exit_case(s, "exit 44", 44); }
static int c_exit_255(const struct server *s) { return exit_case(s, "exit 255", 255); }
static int c_exit_signal(const struct server *s) { return exit_case(s, "kill -TERM $$; sleep 5", 128 + 15); }

/* More signals (RFC 4254 6.10 names): 128 + the Linux number. */
static int c_exit_signals(const struct server *s)
{
    static const struct {
        const char *name;
        int num;
    } sigs[] = { { "KILL", 9 }, { "HUP", 1 }, { "INT", 2 }, { "USR1", 10 }, { "ALRM", 14 } };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "kill -%s $$; sleep 5", sigs[i].name);
        int rc = exit_case(s, cmd, 128 + sigs[i].num);
        if (rc != PASS)
            return rc;
    }
    return PASS;
}

/* A command the remote shell cannot find: 127, with the shell's complaint on stderr only. */
static int c_command_not_found(const struct server *s)
{
    struct result r;
    if (need_server(s) != PASS)
        return SKIP;
    if (run_default(s, "no-such-command-sshbridge", NULL, 0, &r) != PASS)
        return FAIL;
    int rc = PASS;
    if (r.exitcode != 127 || r.out.n != 0 || r.err.n == 0)
        rc = fail("exit code %d (want 127), stdout \"%s\", stderr \"%s\"", r.exitcode, buf_str(&r.out),
                  buf_str(&r.err));
    else
        printf("  stderr: %s", buf_str(&r.err));
    result_free(&r);
    return rc;
}

static int c_shell(const struct server *s)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h;
    struct buf out = { 0 }, err = { 0 };
    static const char script[] = "echo hi; exit 3\n";
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    if (connect_checked(&h, &ss, &a, NULL) != PASS)
        return FAIL;
    /* No EOF from our side: the shell ends on its own "exit 3". */
    int rc = exchange(&h, script, strlen(script), 0, &out, &err);
    if (close_checked(&h, 1) != PASS)
        rc = FAIL;
    if (rc == PASS && !same_bytes("stdout", &out, "hi\n", 3))
        rc = fail("shell output (stderr: %s)", buf_str(&err));
    if (rc == PASS && h.db_exitcode != 3)
        rc = fail("shell exit code %d, want 3", h.db_exitcode);
    buf_free(&out);
    buf_free(&err);
    return rc;
}

/* close(h, 1) without reading anything: waits for the command, reports its exit code. */
static int close_wait_case(const struct server *s, const char *cmd, const void *in, size_t inlen, int want)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h;
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    if (connect_checked(&h, &ss, &a, cmd) != PASS)
        return FAIL;
    if (inlen) {
        /* Written, not shut down: close(h, 1) must deliver it and then send EOF. */
        const char *p = in;
        size_t sent = 0;
        while (sent < inlen) {
            ssize_t w = write(h.db_stdin_stdout, p + sent, inlen - sent);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                int e = errno;
                cyg_dropbear_ssh_close(&h, 0);
                return fail("write: %s", strerror(e));
            }
            sent += (size_t)w;
        }
    }
    long t0 = now_ms();
    if (close_checked(&h, 1) != PASS)
        return FAIL;
    long took = now_ms() - t0;
    CHECK(h.db_exitcode == want, "\"%s\": db_exitcode %d after close(h, 1), want %d (db_error \"%s\")", cmd,
          h.db_exitcode, want, h.db_error);
    printf("  close(h, 1) took %ld ms, exit code %d\n", took, h.db_exitcode);
    /* The worker was joined: everything is released right away (a thread may take a moment
     * to disappear from /proc after pthread_join returns). */
    return back_to_baseline(2000);
}

static int c_close_wait(const struct server *s) { return close_wait_case(s, "sleep 1; exit 5", NULL, 0, 5); }

static int c_close_wait_unread(const struct server *s)
{
    return close_wait_case(s, "seq 1 300000; seq 1 30000 >&2; exit 6", NULL, 0, 6);
}

static int c_close_wait_stdin(const struct server *s)
{
    static char data[100000];
    memset(data, 'x', sizeof data);
    return close_wait_case(s, "n=$(wc -c); [ \"$n\" -eq 100000 ] && exit 7; exit 8", data, sizeof data, 7);
}

/* close(h, 0): returns at once, descriptors -1, worker gone within a bounded time. */
static int close_nowait_case(const struct server *s, const char *cmd, size_t read_first)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h;
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    if (connect_checked(&h, &ss, &a, cmd) != PASS)
        return FAIL;
    size_t got = 0;
    char tmp[8192];
    while (got < read_first) {
        ssize_t r = read(h.db_stdin_stdout, tmp, sizeof tmp);
        if (r <= 0) {
            cyg_dropbear_ssh_close(&h, 0);
            return fail("read: %zd after %zu bytes", r, got);
        }
        got += (size_t)r;
    }
    long t0 = now_ms();
    if (close_checked(&h, 0) != PASS)
        return FAIL;
    long took = now_ms() - t0;
    CHECK(took < 1000, "close(h, 0) took %ld ms; it must return at once", took);
    t0 = now_ms();
    if (back_to_baseline(15000) != PASS)
        return FAIL;
    printf("  close(h, 0) returned after %ld ms; resources released %ld ms later\n", took, now_ms() - t0);
    return PASS;
}

static int c_close_nowait(const struct server *s) { return close_nowait_case(s, "yes", 256 * 1024); }
static int c_close_nowait_idle(const struct server *s) { return close_nowait_case(s, "sleep 3", 0); }

/* Closing twice, and closing NULL, are harmless. */
static int c_double_close(const struct server *s)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h;
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    if (connect_checked(&h, &ss, &a, "exit 9") != PASS)
        return FAIL;
    if (close_checked(&h, 1) != PASS)
        return FAIL;
    CHECK(h.db_exitcode == 9, "exit code %d, want 9", h.db_exitcode);
    cyg_dropbear_ssh_close(&h, 1);
    cyg_dropbear_ssh_close(&h, 0);
    CHECK(h.db_stdin_stdout == -1 && h.db_stderr == -1, "second close changed descriptors");
    CHECK(h.db_exitcode == 9, "second close changed the exit code to %d", h.db_exitcode);
    cyg_dropbear_ssh_close(NULL, 1);
    cyg_dropbear_ssh_close(NULL, 0);
    return PASS;
}

/* Garbage in the handle before connect is fine (connect fills every field). */
static int c_garbage_handle(const struct server *s)
{
    if (need_server(s) != PASS)
        return SKIP;
    /* Every connect_checked() already starts from a 0xA5-filled handle; all-ones here
     * (db_private = (void *)-1, descriptors -1, no NUL anywhere in db_error). */
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    memset(&h, 0xFF, sizeof h);
    CHECK(cyg_dropbear_ssh_connect(&h, &ss, &a, "echo garbage-ok"), "connect: %s", h.db_error);
    struct buf out = { 0 }, err = { 0 };
    int rc = exchange(&h, NULL, 0, 1, &out, &err);
    if (close_checked(&h, 1) != PASS)
        rc = FAIL;
    if (rc == PASS && !same_bytes("stdout", &out, "garbage-ok\n", 11))
        rc = fail("output");
    buf_free(&out);
    buf_free(&err);
    return rc;
}

/* Twenty connections one after the other, resources back to baseline after each. */
static int c_sequential(const struct server *s)
{
    if (need_server(s) != PASS)
        return SKIP;
    for (int i = 0; i < 20; i++) {
        char cmd[64], want[64];
        struct result r;
        snprintf(cmd, sizeof cmd, "echo seq-%d; exit %d", i, i);
        snprintf(want, sizeof want, "seq-%d\n", i);
        if (run_default(s, cmd, NULL, 0, &r) != PASS)
            return FAIL;
        int rc = PASS;
        if (!same_bytes("stdout", &r.out, want, strlen(want)) || r.exitcode != i)
            rc = fail("connection %d: exit code %d", i, r.exitcode);
        result_free(&r);
        if (rc != PASS || back_to_baseline(2000) != PASS)
            return FAIL;
    }
    return PASS;
}

/* 50 simultaneous connections from 50 threads. */
#define NCONC 50

struct conc {
    const struct server *s;
    int idx;
    pthread_barrier_t *barrier;
    sem_t *handshakes;
    int ok;
    char msg[400];
};

static void *conc_thread(void *arg)
{
    struct conc *c = arg;
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h;
    struct buf out = { 0 }, err = { 0 };
    const char *cmd = "read x; echo \"got $x\"; exit $x";
    const char *addr = c->s->af == AF_INET6 ? c->s->addr6 : c->s->addr4;
    make_addr(&ss, c->s->af, addr, c->s->port);
    make_auth(&a, c->s, default_auth_kind(c->s));
    memset(&h, 0xA5, sizeof h);
    if (c->handshakes)
        while (sem_wait(c->handshakes) != 0 && errno == EINTR) {
        }
    int connected = cyg_dropbear_ssh_connect(&h, &ss, &a, cmd);
    if (c->handshakes)
        sem_post(c->handshakes);
    /* Every thread holds its connection open until all 50 are up. */
    pthread_barrier_wait(c->barrier);
    if (!connected) {
        snprintf(c->msg, sizeof c->msg, "thread %d: connect failed: %s", c->idx, h.db_error);
        return NULL;
    }
    char line[32], want[32];
    snprintf(line, sizeof line, "%d\n", c->idx);
    snprintf(want, sizeof want, "got %d\n", c->idx);
    int rc = exchange(&h, line, strlen(line), 1, &out, &err);
    cyg_dropbear_ssh_close(&h, 1);
    if (rc != PASS)
        snprintf(c->msg, sizeof c->msg, "thread %d: exchange failed", c->idx);
    else if (h.db_stdin_stdout != -1 || h.db_stderr != -1)
        snprintf(c->msg, sizeof c->msg, "thread %d: descriptors not -1 after close", c->idx);
    else if (strcmp(buf_str(&out), want) != 0)
        snprintf(c->msg, sizeof c->msg, "thread %d: output \"%s\", want \"%s\" (stderr \"%s\")", c->idx,
                 buf_str(&out), want, buf_str(&err));
    else if (h.db_exitcode != c->idx)
        snprintf(c->msg, sizeof c->msg, "thread %d: exit code %d, want %d", c->idx, h.db_exitcode, c->idx);
    else
        c->ok = 1;
    buf_free(&out);
    buf_free(&err);
    return NULL;
}

static int c_concurrent(const struct server *s)
{
    pthread_t t[NCONC];
    struct conc c[NCONC];
    pthread_barrier_t barrier;
    sem_t sem;
    if (need_server(s) != PASS)
        return SKIP;
    pthread_barrier_init(&barrier, NULL, NCONC);
    if (s->limit_handshakes)
        sem_init(&sem, 0, (unsigned)s->limit_handshakes);
    long t0 = now_ms();
    for (int i = 0; i < NCONC; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].s = s;
        c[i].idx = i;
        c[i].barrier = &barrier;
        c[i].handshakes = s->limit_handshakes ? &sem : NULL;
        CHECK(pthread_create(&t[i], NULL, conc_thread, &c[i]) == 0, "pthread_create %d", i);
    }
    int ok = 0;
    for (int i = 0; i < NCONC; i++) {
        pthread_join(t[i], NULL);
        if (c[i].ok)
            ok++;
        else
            fprintf(stderr, "  %s\n", c[i].msg);
    }
    pthread_barrier_destroy(&barrier);
    if (s->limit_handshakes)
        sem_destroy(&sem);
    CHECK(ok == NCONC, "%d of %d concurrent connections failed", NCONC - ok, NCONC);
    printf("  %d concurrent connections (%s parallel logins) in %ld ms\n", NCONC,
           s->limit_handshakes ? "limited" : "unlimited", now_ms() - t0);
    return PASS;
}


/* The command is an SSH "string" (RFC 4254 6.5): bytes, not necessarily UTF-8. eCos'
 * Dropbear passes them through; a Latin-1 file name must reach the remote shell. */
static int c_command_latin1(const struct server *s)
{
    if (need_server(s) != PASS)
        return SKIP;
    /* printf '%s' '<0xE9>' | od -An -tx1  →  " e9" */
    return expect_run_default(s, "printf '%s' '\xe9' | od -An -tx1 | tr -d ' '", "e9\n", 0);
}

/* A long command (20000 bytes) arrives intact, or (Dropbear: MAX_CMD_LEN) fails cleanly; a
 * command longer than any SSH packet fails cleanly. Never a crash or a hang. */
static int c_long_command(const struct server *s)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    static const size_t sizes[] = { 20000, 300000 };
    for (size_t i = 0; i < 2; i++) {
        size_t n = sizes[i];
        char *cmd = xmalloc(n + 16), *want = xmalloc(n + 2);
        memcpy(cmd, "echo ", 5);
        memset(cmd + 5, 'x', n);
        cmd[5 + n] = '\0';
        memset(want, 'x', n);
        want[n] = '\n';
        want[n + 1] = '\0';
        cyg_dropbear_cli_handle h;
        memset(&h, 0xA5, sizeof h);
        int rc = PASS;
        if (cyg_dropbear_ssh_connect(&h, &ss, &a, cmd)) {
            struct buf out = { 0 }, err = { 0 };
            rc = exchange(&h, NULL, 0, 1, &out, &err);
            if (close_checked(&h, 1) != PASS)
                rc = FAIL;
            if (rc == PASS && (!same_bytes("stdout", &out, want, n + 1) || h.db_exitcode != 0))
                rc = fail("%zu-byte command: wrong output or exit code %d", n, h.db_exitcode);
            if (rc == PASS)
                printf("  %zu-byte command ran\n", n);
            buf_free(&out);
            buf_free(&err);
        } else {
            if (!h.db_error[0] || !memchr(h.db_error, '\0', sizeof h.db_error))
                rc = fail("%zu-byte command: connect failed without a message", n);
            else
                printf("  %zu-byte command refused: %s\n", n, h.db_error);
        }
        free(cmd);
        free(want);
        if (rc != PASS || back_to_baseline(2000) != PASS)
            return FAIL;
    }
    return PASS;
}

/* The server side dies mid-session: the application sees EOF, close(h, 1) returns promptly
 * with db_exitcode -1 and a message. */
static int c_connection_lost(const struct server *s)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h;
    struct buf out = { 0 }, err = { 0 };
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    /* sshd runs the session as the user, so the command may kill it; Dropbear's runs as root.
     * The command waits for our "go" so "before" has surely left the server first. */
    if (connect_checked(&h, &ss, &a, "echo before; read go; kill -9 $PPID 2>/dev/null || { echo cannot-kill; exit 0; }; sleep 5") !=
        PASS)
        return FAIL;
    char tmp[64];
    while (out.n < 7) {
        ssize_t r = read(h.db_stdin_stdout, tmp, sizeof tmp);
        if (r <= 0) {
            cyg_dropbear_ssh_close(&h, 0);
            return fail("no \"before\" from the command (read %zd)", r);
        }
        buf_add(&out, tmp, (size_t)r);
    }
    if (write(h.db_stdin_stdout, "go\n", 3) != 3) {
        cyg_dropbear_ssh_close(&h, 0);
        return fail("write: %s", strerror(errno));
    }
    long t0 = now_ms();
    int rc = exchange(&h, NULL, 0, 0, &out, &err);
    long eof_ms = now_ms() - t0;
    t0 = now_ms();
    if (close_checked(&h, 1) != PASS)
        rc = FAIL;
    long close_ms = now_ms() - t0;
    if (rc == PASS && strstr(buf_str(&out), "cannot-kill")) {
        buf_free(&out);
        buf_free(&err);
        return skip("the command cannot kill this server's session process");
    }
    if (rc == PASS && strcmp(buf_str(&out), "before\n") != 0)
        rc = fail("output \"%s\"", buf_str(&out));
    if (rc == PASS && eof_ms > 4000)
        rc = fail("EOF took %ld ms after the server died", eof_ms);
    if (rc == PASS && close_ms > 5000)
        rc = fail("close(h, 1) took %ld ms on a dead connection", close_ms);
    if (rc == PASS && h.db_exitcode != -1)
        rc = fail("db_exitcode %d, want -1 (no exit status was sent)", h.db_exitcode);
    if (rc == PASS && !h.db_error[0])
        rc = fail("db_error is empty after the connection was lost");
    if (rc == PASS)
        printf("  EOF after %ld ms, close(h, 1) %ld ms, db_exitcode %d, db_error: %s\n", eof_ms, close_ms,
               h.db_exitcode, h.db_error);
    buf_free(&out);
    buf_free(&err);
    return rc;
}

/* An application with a busy SIGALRM handler installed without SA_RESTART: every blocking
 * call the library makes in the application's thread (connect, close(h, 1)) must retry EINTR. */
static volatile sig_atomic_t g_ticks;
static void on_alarm(int sig)
{
    (void)sig;
    g_ticks++;
}

static int c_signals(const struct server *s)
{
    struct sigaction sa, old;
    struct itimerval on = { { 0, 500 }, { 0, 500 } }, off = { { 0, 0 }, { 0, 0 } };
    if (need_server(s) != PASS)
        return SKIP;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    setitimer(ITIMER_REAL, &on, NULL);
    int rc = PASS;
    for (int i = 0; i < 5 && rc == PASS; i++) {
        char cmd[64], want[64];
        snprintf(cmd, sizeof cmd, "sleep 0.2; echo tick-%d; exit %d", i, 20 + i);
        snprintf(want, sizeof want, "tick-%d\n", i);
        rc = expect_run_default(s, cmd, want, 20 + i);
    }
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    if (rc == PASS)
        printf("  %d SIGALRMs during 5 connections\n", (int)g_ticks);
    return rc;
}

/* 20 connections closed with close(h, 0) at the same time while their commands still write:
 * every detached worker must finish on its own. */
#define NNOWAIT 20

static int c_concurrent_nowait(const struct server *s)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h[NNOWAIT];
    char tmp[4096];
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    int n = 0, rc = PASS;
    for (; n < NNOWAIT; n++) {
        if (connect_checked(&h[n], &ss, &a, "yes") != PASS) {
            rc = FAIL;
            break;
        }
        if (read(h[n].db_stdin_stdout, tmp, sizeof tmp) <= 0) {
            rc = fail("connection %d: no output", n);
            n++;
            break;
        }
    }
    long t0 = now_ms();
    for (int i = 0; i < n; i++)
        cyg_dropbear_ssh_close(&h[i], 0);
    long took = now_ms() - t0;
    if (rc != PASS)
        return rc;
    CHECK(took < 2000, "%d close(h, 0) calls took %ld ms", n, took);
    t0 = now_ms();
    if (back_to_baseline(20000) != PASS)
        return FAIL;
    printf("  %d close(h, 0) in %ld ms; every worker gone %ld ms later\n", n, took, now_ms() - t0);
    return PASS;
}

/* close(h, 0) and then leave main() at once, with the worker still running: the process must
 * exit normally (status 0), with no crash from the detached thread during exit. */
static int c_exit_with_worker(const struct server *s)
{
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate a;
    cyg_dropbear_cli_handle h;
    char tmp[4096];
    if (need_server(s) != PASS)
        return SKIP;
    if (server_addr(s, &ss) != PASS)
        return FAIL;
    make_auth(&a, s, default_auth_kind(s));
    /* The worker ends as soon as the server confirms the channel's close, a loopback round
     * trip: on a loaded machine this thread may not run again before that. Such a try tests
     * nothing, so it is repeated (up to 5 times) until one leaves with the worker running. */
    for (int attempt = 1; attempt <= 5; attempt++) {
        if (connect_checked(&h, &ss, &a, "yes") != PASS)
            return FAIL;
        CHECK(read(h.db_stdin_stdout, tmp, sizeof tmp) > 0, "no output");
        cyg_dropbear_ssh_close(&h, 0);
        if (task_count() > g_base_tasks)
            return PASS; /* main returns right away (no baseline wait for this case) */
        printf("  try %d: the worker was already gone; again\n", attempt);
    }
    return fail("the worker was gone after close(h, 0) in 5 tries; the case tests nothing");
}

/* ------------------------------------------------------------------------------------- */
/* Argument checks: no server needed                                                       */
/* ------------------------------------------------------------------------------------- */

/* A loopback port nothing listens on: bound but not listening, so nobody else takes it. */
static int closed_port(int af, int *fd_out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    make_addr(&ss, af, af == AF_INET6 ? "::1" : "127.0.0.1", 0);
    if (bind(fd, (struct sockaddr *)&ss, af == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        close(fd);
        return -1;
    }
    *fd_out = fd;
    return ntohs(af == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Valid-looking arguments pointing at a closed port: an argument error must win. */
struct argctx {
    struct sockaddr_storage ss;
    cyg_dropbear_authenticate auth;
    int holder;
};

static int arg_setup(struct argctx *c)
{
    int port = closed_port(AF_INET, &c->holder);
    CHECK(port > 0, "cannot reserve a loopback port: %s", strerror(errno));
    make_addr(&c->ss, AF_INET, "127.0.0.1", port);
    memset(&c->auth, 0, sizeof c->auth);
    c->auth.db_username = "sshbtest";
    c->auth.db_password = "irrelevant";
    return PASS;
}

static int c_null_handle(const struct server *s)
{
    struct argctx c;
    (void)s;
    if (arg_setup(&c) != PASS)
        return FAIL;
    CHECK(cyg_dropbear_ssh_connect(NULL, &c.ss, &c.auth, "true") == 0, "connect(NULL handle) did not return 0");
    cyg_dropbear_ssh_close(NULL, 0);
    cyg_dropbear_ssh_close(NULL, 1);
    close(c.holder);
    return PASS;
}

static int c_null_addr(const struct server *s)
{
    struct argctx c;
    (void)s;
    if (arg_setup(&c) != PASS)
        return FAIL;
    int rc = expect_connect_fail(NULL, &c.auth, "true", "NULL addr", "addr", NULL, 2000);
    close(c.holder);
    return rc;
}

static int c_null_auth(const struct server *s)
{
    struct argctx c;
    (void)s;
    if (arg_setup(&c) != PASS)
        return FAIL;
    int rc = expect_connect_fail(&c.ss, NULL, "true", "NULL auth", "auth", NULL, 2000);
    close(c.holder);
    return rc;
}

static int c_null_username(const struct server *s)
{
    struct argctx c;
    (void)s;
    if (arg_setup(&c) != PASS)
        return FAIL;
    c.auth.db_username = NULL;
    int rc = expect_connect_fail(&c.ss, &c.auth, "true", "NULL db_username", "username", NULL, 2000);
    c.auth.db_username = "";
    if (rc == PASS)
        rc = expect_connect_fail(&c.ss, &c.auth, "true", "empty db_username", "username", NULL, 2000);
    close(c.holder);
    return rc;
}

static int c_garbage_handle_args(const struct server *s)
{
    /* Every argument case starts from a 0xA5-filled handle; here also all-0xFF with a NULL
     * auth, then the error must still be a proper string. */
    struct argctx c;
    cyg_dropbear_cli_handle h;
    (void)s;
    if (arg_setup(&c) != PASS)
        return FAIL;
    memset(&h, 0xFF, sizeof h);
    int rc = cyg_dropbear_ssh_connect(&h, &c.ss, NULL, "true");
    close(c.holder);
    CHECK(rc == 0, "connect with NULL auth returned %d", rc);
    CHECK(memchr(h.db_error, '\0', sizeof h.db_error) && h.db_error[0], "db_error not a non-empty string");
    CHECK(h.db_stdin_stdout == -1 && h.db_stderr == -1, "descriptors %d/%d after failure", h.db_stdin_stdout,
          h.db_stderr);
    cyg_dropbear_ssh_close(&h, 1); /* closing a failed handle does nothing */
    return PASS;
}

static int c_bad_family(const struct server *s)
{
    struct argctx c;
    (void)s;
    if (arg_setup(&c) != PASS)
        return FAIL;
    int rc = PASS;
    static const int fams[] = { AF_UNIX, AF_UNSPEC, AF_PACKET, 12345 };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0] && rc == PASS; i++) {
        struct sockaddr_storage ss;
        char what[64];
        memcpy(&ss, &c.ss, sizeof ss);
        ss.ss_family = (sa_family_t)fams[i];
        snprintf(what, sizeof what, "address family %d", fams[i]);
        rc = expect_connect_fail(&ss, &c.auth, "true", what, "family", NULL, 2000);
    }
    close(c.holder);
    return rc;
}

static int c_bad_hostkey(const struct server *s)
{
    static const char *const bad[] = {
        "ssh-rsa !!!not*base64!!!",
        "garbage",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCgqt6pMJt1",   /* truncated blob */
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIB9Lb3Jn",           /* type/blob disagree, truncated */
        "ssh-foo AAAAB3NzaC1yc2EAAAADAQABAAABAQCgqt6pMJt1uY", /* unknown type */
    };
    struct argctx c;
    (void)s;
    if (arg_setup(&c) != PASS)
        return FAIL;
    int rc = PASS;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] && rc == PASS; i++) {
        char what[96];
        snprintf(what, sizeof what, "db_host_rsa_key_pub \"%.40s\"", bad[i]);
        c.auth.db_host_rsa_key_pub = bad[i];
        c.auth.db_host_dsa_key_pub = NULL;
        rc = expect_connect_fail(&c.ss, &c.auth, "true", what, "host", NULL, 2000);
        if (rc != PASS)
            break;
        snprintf(what, sizeof what, "db_host_dsa_key_pub \"%.40s\"", bad[i]);
        c.auth.db_host_rsa_key_pub = NULL;
        c.auth.db_host_dsa_key_pub = bad[i];
        rc = expect_connect_fail(&c.ss, &c.auth, "true", what, "host", NULL, 2000);
    }
    close(c.holder);
    return rc;
}

static int c_bad_privkey(const struct server *s)
{
    struct argctx c;
    unsigned char junk[600];
    /* Dropbear's format starts with the key type as an SSH string: a plausible header. */
    static const unsigned char dbhead[] = { 0, 0, 0, 7, 's', 's', 'h', '-', 'r', 's', 'a', 0, 0, 0, 0x40 };
    static const char pem[] = "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n";
    static const char openssh[] = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    (void)s;
    if (arg_setup(&c) != PASS)
        return FAIL;
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (unsigned char)(x >> 16);
    }
    struct {
        const void *p;
        int len;
        const char *what;
        const char *needle;
    } bad[] = {
        { junk, (int)sizeof junk, "600 random bytes", "id_" },
        { dbhead, (int)sizeof dbhead, "truncated Dropbear-format header", "id_" },
        { junk, 1, "one byte", "id_" },
        { pem, 0, "PEM text with a bad body (keylen 0)", "id_" },
        { openssh, 0, "OpenSSH text with a bad body (keylen 0)", "id_" },
        { junk, -5, "negative keylen", "length" },
    };
    int rc = PASS;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] && rc == PASS; i++) {
        for (int slot = 0; slot < 2 && rc == PASS; slot++) {
            char what[128];
            c.auth.db_id_rsa = slot ? NULL : bad[i].p;
            c.auth.db_id_rsa_keylen = slot ? 0 : bad[i].len;
            c.auth.db_id_dsa = slot ? bad[i].p : NULL;
            c.auth.db_id_dsa_keylen = slot ? bad[i].len : 0;
            snprintf(what, sizeof what, "db_id_%s: %s", slot ? "dsa" : "rsa", bad[i].what);
            rc = expect_connect_fail(&c.ss, &c.auth, "true", what, bad[i].needle, NULL, 2000);
        }
    }
    close(c.holder);
    return rc;
}

static int c_closed_port(const struct server *s)
{
    (void)s;
    int rc = PASS;
    for (int i = 0; i < 2 && rc == PASS; i++) {
        int af = i ? AF_INET6 : AF_INET, holder;
        struct sockaddr_storage ss;
        cyg_dropbear_authenticate a;
        int port = closed_port(af, &holder);
        if (port <= 0) {
            if (af == AF_INET6) {
                printf("  (no IPv6 loopback: IPv4 only)\n");
                break;
            }
            return fail("cannot reserve a loopback port: %s", strerror(errno));
        }
        make_addr(&ss, af, af == AF_INET6 ? "::1" : "127.0.0.1", port);
        memset(&a, 0, sizeof a);
        a.db_username = "sshbtest";
        a.db_password = "irrelevant";
        rc = expect_connect_fail(&ss, &a, "true", af == AF_INET6 ? "closed port on ::1" : "closed port on 127.0.0.1",
                                 NULL, NULL, 2000);
        close(holder);
    }
    return rc;
}


/* A fake server on loopback that misbehaves in one way per accepted connection. */
enum { H_RESET, H_CLOSE, H_GARBAGE_BANNER, H_BANNER_THEN_CLOSE, H_BANNER_THEN_JUNK, H_SILENT, H_COUNT };
static const char *const HOSTILE_NAMES[] = {
    "reset at once", "close at once", "garbage instead of a banner", "banner, then close",
    "banner, then 1 MiB of junk", "silent (accepts, never speaks)",
};

struct hostile {
    int lfd;
    int modes[H_COUNT];
    int nmodes;
};

static void *hostile_thread(void *arg)
{
    struct hostile *hs = arg;
    for (int i = 0; i < hs->nmodes; i++) {
        int fd = accept4(hs->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return NULL;
        char buf[4096];
        switch (hs->modes[i]) {
        case H_RESET: {
            struct linger lg = { 1, 0 };
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        case H_CLOSE:
            break;
        case H_GARBAGE_BANNER:
            (void)!write(fd, "HTTP/1.0 400 Bad Request\r\n\r\n", 28);
            sleep_ms(100);
            break;
        case H_BANNER_THEN_CLOSE:
            (void)!write(fd, "SSH-2.0-hostile\r\n", 17);
            (void)!read(fd, buf, sizeof buf);
            break;
        case H_BANNER_THEN_JUNK: {
            (void)!write(fd, "SSH-2.0-hostile\r\n", 17);
            char *junk = mib_pattern(1 << 20);
            size_t off = 0;
            while (off < (1u << 20)) {
                ssize_t w = send(fd, junk + off, (1u << 20) - off, MSG_NOSIGNAL);
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            free(junk);
            break;
        }
        case H_SILENT:
            /* Read whatever comes until the client gives up. */
            while (read(fd, buf, sizeof buf) > 0) {
            }
            break;
        }
        close(fd);
    }
    return NULL;
}

/* Run the client against the fake server for each mode; connect must return 0 with a message
 * within max_ms. A write to a reset connection must not raise SIGPIPE (default disposition). */
static int hostile_case(const int *modes, int nmodes, long max_ms)
{
    struct hostile hs;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    cyg_dropbear_authenticate a;
    pthread_t t;
    memset(&hs, 0, sizeof hs);
    hs.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    make_addr(&ss, AF_INET, "127.0.0.1", 0);
    CHECK(hs.lfd >= 0 && bind(hs.lfd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) == 0 &&
              listen(hs.lfd, 8) == 0 && getsockname(hs.lfd, (struct sockaddr *)&ss, &len) == 0,
          "cannot start the fake server: %s", strerror(errno));
    memcpy(hs.modes, modes, sizeof hs.modes[0] * (size_t)nmodes);
    hs.nmodes = nmodes;
    CHECK(pthread_create(&t, NULL, hostile_thread, &hs) == 0, "pthread_create");
    memset(&a, 0, sizeof a);
    a.db_username = "sshbtest";
    a.db_password = "irrelevant";
    int rc = PASS;
    for (int i = 0; i < nmodes && rc == PASS; i++)
        rc = expect_connect_fail(&ss, &a, "true", HOSTILE_NAMES[modes[i]], NULL, NULL, max_ms);
    if (rc != PASS) {
        /* Unblock the fake server's accept(). */
        shutdown(hs.lfd, SHUT_RDWR);
    }
    pthread_join(t, NULL);
    close(hs.lfd);
    return rc;
}

static int c_hostile_server(const struct server *s)
{
    static const int modes[] = { H_RESET, H_CLOSE, H_GARBAGE_BANNER, H_BANNER_THEN_CLOSE, H_BANNER_THEN_JUNK };
    (void)s;
    return hostile_case(modes, (int)(sizeof modes / sizeof modes[0]), 5000);
}

/* The library bounds the handshake (30 s): a silent server cannot hang connect forever. */
static int c_silent_server(const struct server *s)
{
    static const int modes[] = { H_SILENT };
    (void)s;
    return hostile_case(modes, 1, 45000);
}

/* ------------------------------------------------------------------------------------- */
/* Case table and main                                                                     */
/* ------------------------------------------------------------------------------------- */

struct tcase {
    const char *name;
    int (*fn)(const struct server *);
    int server; /* 1: needs a server; 0: argument case (server "args") */
    int no_baseline; /* the case deliberately exits with a worker still running */
};

static const struct tcase CASES[] = {
    { "password", c_password, 1, 0 },
    { "rsa_key", c_rsa_key, 1, 0 },
    { "rsa_key_text", c_rsa_key_text, 1, 0 },
    { "dsa_key", c_dsa_key, 1, 0 },
    { "keys_both", c_keys_both, 1, 0 },
    { "bad_password", c_bad_password, 1, 0 },
    { "hostkey_rsa", c_hostkey_rsa, 1, 0 },
    { "hostkey_dsa", c_hostkey_dsa, 1, 0 },
    { "hostkey_both", c_hostkey_both, 1, 0 },
    { "hostkey_mismatch_rsa", c_hostkey_mismatch_rsa, 1, 0 },
    { "hostkey_mismatch_dsa", c_hostkey_mismatch_dsa, 1, 0 },
    { "ipv4", c_ipv4, 1, 0 },
    { "ipv6", c_ipv6, 1, 0 },
    { "read", c_read, 1, 0 },
    { "write", c_write, 1, 0 },
    { "cat", c_cat, 1, 0 },
    { "stderr", c_stderr, 1, 0 },
    { "exit_0", c_exit_0, 1, 0 },
    { "exit_1", c_exit_1, 1, 0 },
    { "exit_44", c_exit_44, 1, 0 },
    { "exit_255", c_exit_255, 1, 0 },
    { "exit_signal", c_exit_signal, 1, 0 },
    { "exit_signals", c_exit_signals, 1, 0 },
    { "command_not_found", c_command_not_found, 1, 0 },
    { "shell", c_shell, 1, 0 },
    { "close_wait", c_close_wait, 1, 0 },
    { "close_wait_unread", c_close_wait_unread, 1, 0 },
    { "close_wait_stdin", c_close_wait_stdin, 1, 0 },
    { "close_nowait", c_close_nowait, 1, 0 },
    { "close_nowait_idle", c_close_nowait_idle, 1, 0 },
    { "double_close", c_double_close, 1, 0 },
    { "garbage_handle", c_garbage_handle, 1, 0 },
    { "sequential", c_sequential, 1, 0 },
    { "concurrent", c_concurrent, 1, 0 },
    { "concurrent_nowait", c_concurrent_nowait, 1, 0 },
    { "command_latin1", c_command_latin1, 1, 0 },
    { "long_command", c_long_command, 1, 0 },
    { "connection_lost", c_connection_lost, 1, 0 },
    { "signals", c_signals, 1, 0 },
    { "exit_with_worker", c_exit_with_worker, 1, 1 },
    { "null_handle", c_null_handle, 0, 0 },
    { "null_addr", c_null_addr, 0, 0 },
    { "null_auth", c_null_auth, 0, 0 },
    { "null_username", c_null_username, 0, 0 },
    { "garbage_handle", c_garbage_handle_args, 0, 0 },
    { "bad_family", c_bad_family, 0, 0 },
    { "bad_hostkey", c_bad_hostkey, 0, 0 },
    { "bad_privkey", c_bad_privkey, 0, 0 },
    { "closed_port", c_closed_port, 0, 0 },
    { "hostile_server", c_hostile_server, 0, 0 },
    { "silent_server", c_silent_server, 0, 0 },
};

#define NCASES (sizeof CASES / sizeof CASES[0])

static int run_case(const struct tcase *tc, const struct server *s)
{
    g_case = tc->name;
    long t0 = now_ms();
    int rc = tc->fn(s);
    /* Whatever the case did, it must leave nothing behind. Cases that end with
     * close(h, 0) already waited; the others closed with wait, so this is quick. */
    if (rc == PASS && !tc->no_baseline)
        rc = back_to_baseline(2000);
    if (rc == PASS)
        printf("PASS %s/%s (%ld ms)\n", s->name, tc->name, now_ms() - t0);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NCASES; i++)
            printf("%s/%s\n", CASES[i].server ? "SERVER" : "args", CASES[i].name);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s sshd|dropbear|user|args CASE|all\n       %s --list\n", argv[0], argv[0]);
        return 2;
    }
    const char *t = getenv("CLITEST1_TIMEOUT_MS");
    if (t && atol(t) > 0)
        g_timeout_ms = atol(t);
    g_server = argv[1];
    g_case = argv[2];

    /* Baseline before the library does anything. */
    g_base_fds = fd_count();
    g_base_tasks = task_count();

    static struct server s; /* static: what it points to stays reachable for LeakSanitizer */
    int rc = load_server(argv[1], &s);
    if (rc != PASS)
        return rc;
    int want_server = strcmp(argv[1], "args") != 0;
    int all = strcmp(argv[2], "all") == 0, found = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < NCASES; i++) {
        if (CASES[i].server != want_server || (!all && strcmp(CASES[i].name, argv[2]) != 0))
            continue;
        if (all && CASES[i].no_baseline)
            continue; /* would leave a worker running under the cases after it */
        found++;
        rc = run_case(&CASES[i], &s);
        failed += rc == FAIL;
        skipped += rc == SKIP;
    }
    if (!found) {
        fprintf(stderr, "unknown case %s for server %s (see --list)\n", argv[2], argv[1]);
        return 2;
    }
    if (all)
        printf("%s: %d cases, %d failed, %d skipped\n", argv[1], found, failed, skipped);
    if (failed)
        return FAIL;
    return found == skipped ? SKIP : PASS;
}
