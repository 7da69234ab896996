/*
 * hop — what a transfer costs a client that only moves the bytes, for scripts/bench.sh
 * (issue 16): the floor under sshexec's CPU with the drop-in C API's design, no SSH in it.
 *
 *   hop MODE MIB
 *
 * MODE:
 *   tcp       a child process sends MIB MiB of zeros over loopback TCP in 32 KiB writes (as
 *             sshd sends one packet at a time); this process reads it in 64 KiB reads and
 *             throws it away: what any client pays to receive, ssh included.
 *   pair      a thread writes MIB MiB in 32 KiB writes (one SSH packet's data) into a
 *             socketpair whose ends have a 1 MiB send buffer (as cyg_dropbear_ssh_connect's);
 *             the main thread reads it in 64 KiB reads (as examples/sshexec.c): what the C
 *             API's socketpair costs by itself (two kernel copies of each byte and the wake-ups
 *             between the threads).
 *   tcp-pair  both: a thread reads TCP in 64 KiB reads and writes what it got into the
 *             socketpair in 32 KiB writes, the main thread reads the socketpair. This is
 *             sshexec's download without the decryption and the SSH framing.
 *   send      the other way: this process writes MIB MiB over loopback TCP in 256 KiB writes
 *             to a child that reads and throws it away: what any client pays to send.
 *   pair-send the main thread writes 256 KiB at a time into the socketpair, a thread reads it
 *             in reads of up to 256 KiB and writes each to TCP: sshexec's upload without the
 *             encryption and the framing (and with fewer, larger reads than the library's).
 *
 * Prints one line: <wall_s> <user_s> <sys_s> <app_reads>, CPU from getrusage(RUSAGE_SELF),
 * every thread of this process, not the sending child.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PACKET 32768
#define READ_SIZE 65536
#define SOCK_BUFFER (1 << 20)

static long long total;
static int pair[2] = { -1, -1 };
static int tcp = -1;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Write all of len bytes of buf to fd. */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w <= 0)
            die("hop: write");
        buf += w;
        len -= (size_t)w;
    }
}

/* A connected loopback TCP socket whose peer, a child process, sends `total` zero bytes
 * (or, with `sink`, reads until end of file and throws it away). */
static int tcp_child(int sink)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000001);
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) != 0)
        die("hop: listen");
    pid_t pid = fork();
    if (pid < 0)
        die("hop: fork");
    if (pid == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
            die("hop: connect");
        if (sink) {
            static char buf[READ_SIZE];
            while (read(s, buf, sizeof buf) > 0) {
            }
            _exit(0);
        }
        static char zeros[PACKET];
        for (long long left = total; left > 0; left -= PACKET)
            write_all(s, zeros, left < PACKET ? (size_t)left : PACKET);
        _exit(0);
    }
    int c = accept(l, NULL, NULL);
    if (c < 0)
        die("hop: accept");
    close(l);
    return c;
}

/* pair: zeros into the socketpair. tcp-pair: what TCP brings, into the socketpair. */
static void *feeder(void *arg)
{
    (void)arg;
    static char buf[READ_SIZE];
    long long left = total;
    while (left > 0) {
        size_t n;
        if (tcp >= 0) {
            ssize_t r = read(tcp, buf, sizeof buf);
            if (r <= 0)
                die("hop: read tcp");
            n = (size_t)r;
        } else {
            n = left < PACKET ? (size_t)left : PACKET;
        }
        for (size_t off = 0; off < n; off += PACKET)
            write_all(pair[0], buf + off, n - off < PACKET ? n - off : PACKET);
        left -= (long long)n;
    }
    shutdown(pair[0], SHUT_WR);
    return NULL;
}

/* pair-send: the socketpair's data onto TCP, 256 KiB at a time (the cheapest way: the
 * library reads one packet's 32 KiB at a time and sends what it queued in one write). */
static void *sender(void *arg)
{
    (void)arg;
    static char buf[4 * READ_SIZE];
    for (;;) {
        ssize_t r = read(pair[0], buf, sizeof buf);
        if (r < 0)
            die("hop: read socketpair");
        if (r == 0)
            break;
        write_all(tcp, buf, (size_t)r);
    }
    shutdown(tcp, SHUT_WR);
    return NULL;
}

/* send and pair-send: the application's side, 256 KiB writes. */
static void upload(int fd)
{
    static char zeros[4 * READ_SIZE];
    for (long long left = total; left > 0; left -= (long long)sizeof zeros)
        write_all(fd, zeros, left < (long long)sizeof zeros ? (size_t)left : sizeof zeros);
}

static double secs(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    const char *m = argc == 3 ? argv[1] : "";
    const int sending = strcmp(m, "send") == 0 || strcmp(m, "pair-send") == 0;
    if (argc != 3 || atoll(argv[2]) <= 0 ||
        (strcmp(m, "tcp") != 0 && strcmp(m, "pair") != 0 && strcmp(m, "tcp-pair") != 0 && !sending)) {
        fprintf(stderr, "usage: hop tcp|pair|tcp-pair|send|pair-send MIB\n");
        return 2;
    }
    total = atoll(argv[2]) * 1048576LL;
    const int use_tcp = strcmp(m, "pair") != 0;
    const int use_pair = strcmp(m, "tcp") != 0 && strcmp(m, "send") != 0;
    if (use_tcp)
        tcp = tcp_child(sending);
    pthread_t t;
    if (use_pair) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
            die("hop: socketpair");
        int sz = SOCK_BUFFER;
        for (int i = 0; i < 2; i++)
            setsockopt(pair[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (sending) {
        if (use_pair && pthread_create(&t, NULL, sender, NULL) != 0) {
            fprintf(stderr, "hop: cannot start a thread\n");
            return 1;
        }
        upload(use_pair ? pair[1] : tcp);
        if (use_pair) {
            shutdown(pair[1], SHUT_WR);
            pthread_join(t, NULL);
        } else {
            shutdown(tcp, SHUT_WR);
        }
        wait(NULL); /* the child has read everything */
        clock_gettime(CLOCK_MONOTONIC, &t1);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("%.6f %.6f %.6f 0\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
               secs(ru.ru_utime), secs(ru.ru_stime));
        return 0;
    }
    if (use_pair && pthread_create(&t, NULL, feeder, NULL) != 0) {
        fprintf(stderr, "hop: cannot start a thread\n");
        return 1;
    }
    const int app = use_pair ? pair[1] : tcp;
    static char buf[READ_SIZE];
    long long got = 0, reads = 0;
    for (;;) {
        ssize_t r = read(app, buf, sizeof buf);
        if (r < 0)
            die("hop: read");
        if (r == 0)
            break;
        got += r;
        reads++;
    }
    if (use_pair)
        pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (use_tcp)
        wait(NULL);
    if (got != total) {
        fprintf(stderr, "hop: read %lld of %lld bytes\n", got, total);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%.6f %.6f %.6f %lld\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           secs(ru.ru_utime), secs(ru.ru_stime), reads);
    return 0;
}
