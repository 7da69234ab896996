/*
 * rss_sessions — resident memory added per idle sshbridge session, for scripts/bench.sh.
 *
 *   rss_sessions [-p port] -l user -i keyfile [-k "hostkey"] [-n sessions] [-c command] host
 *
 * Opens one warm-up session (one-time costs: allocator arenas, lazily initialised tables),
 * then `-n` more (default 100) in this one process through cyg_dropbear_ssh_connect, each a
 * separate TCP connection running `command` (default `cat`, which idles until EOF). With all
 * of them open and idle it compares VmRSS from /proc/self/status, then closes every session
 * (cyg_dropbear_ssh_close(h, 1): EOF to `cat`, wait for its exit status).
 *
 * Prints one line of key=value pairs:
 *   rss_start_kib   before any session
 *   rss_warm_kib    with the warm-up session open
 *   rss_after_kib   with warm-up + n sessions open
 *   per_session_kib (rss_after - rss_warm) / n
 *   first_session_kib rss_warm - rss_start
 *   threads         threads of this process with everything open
 *   fds             open descriptors with everything open
 *   failed_close    sessions whose command did not exit 0
 * Exit status 0 on success, 1 if a session could not be opened.
 *
 * Build: gcc -O2 -Iinclude bench/rss_sessions.c target/release/libsshbridge.a -lpthread -ldl -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dropbear.h"

static long status_field(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n - 1; /* the DIR's own descriptor */
}

static char *slurp(const char *path, int *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    char *buf = malloc(1 << 16);
    ssize_t n = buf ? read(fd, buf, (1 << 16) - 1) : -1;
    if (n <= 0) {
        perror(path);
        exit(1);
    }
    buf[n] = '\0';
    close(fd);
    *len = (int)n;
    return buf;
}

/* "type base64 [comment]" -> "type base64" */
static char *host_key_arg(char *arg)
{
    char *p = arg + strspn(arg, " \t");
    char *sp = p + strcspn(p, " \t");
    sp += strspn(sp, " \t");
    sp[strcspn(sp, " \t\r\n")] = '\0';
    return p;
}

int main(int argc, char **argv)
{
    const char *port = "22", *user = NULL, *keyfile = NULL, *command = "cat";
    char *hostkey = NULL;
    int n = 100, opt;
    while ((opt = getopt(argc, argv, "p:l:i:k:n:c:")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 'l': user = optarg; break;
        case 'i': keyfile = optarg; break;
        case 'k': hostkey = host_key_arg(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'c': command = optarg; break;
        default: goto usage;
        }
    }
    if (optind + 1 != argc || !user || !keyfile || n < 1) {
    usage:
        fprintf(stderr, "usage: rss_sessions [-p port] -l user -i keyfile [-k \"hostkey\"] [-n sessions] "
                        "[-c command] host\n");
        return 2;
    }

    /* 6 or so descriptors per session. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(argv[optind], port, &hints, &res) != 0 || !res) {
        fprintf(stderr, "rss_sessions: cannot resolve %s\n", argv[optind]);
        return 2;
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);

    cyg_dropbear_authenticate auth;
    memset(&auth, 0, sizeof auth);
    auth.db_username = user;
    auth.db_host_rsa_key_pub = hostkey;
    auth.db_id_rsa = slurp(keyfile, &auth.db_id_rsa_keylen);

    cyg_dropbear_cli_handle *h = calloc((size_t)n + 1, sizeof *h);
    if (!h)
        return 2;

    long rss_start = status_field("VmRSS");
    if (!cyg_dropbear_ssh_connect(&h[0], &addr, &auth, command)) {
        fprintf(stderr, "rss_sessions: warm-up session: %s\n", h[0].db_error);
        return 1;
    }
    sleep(1);
    long rss_warm = status_field("VmRSS");

    for (int i = 1; i <= n; i++) {
        if (!cyg_dropbear_ssh_connect(&h[i], &addr, &auth, command)) {
            fprintf(stderr, "rss_sessions: session %d: %s\n", i, h[i].db_error);
            for (int j = 0; j < i; j++)
                cyg_dropbear_ssh_close(&h[j], 0);
            return 1;
        }
    }
    sleep(2); /* let every worker reach its idle state */
    long rss_after = status_field("VmRSS");
    long threads = status_field("Threads");
    int fds = count_fds();

    int failed = 0;
    for (int i = 0; i <= n; i++) {
        cyg_dropbear_ssh_close(&h[i], 1);
        if (h[i].db_exitcode != 0)
            failed++;
    }
    printf("sessions=%d rss_start_kib=%ld rss_warm_kib=%ld rss_after_kib=%ld per_session_kib=%.1f "
           "first_session_kib=%ld threads=%ld fds=%d failed_close=%d\n",
           n, rss_start, rss_warm, rss_after, (double)(rss_after - rss_warm) / n, rss_warm - rss_start, threads,
           fds, failed);
    return 0;
}
