/*
 * common.h — helpers shared by the C test programs (clitest1.c, soak.c): clocks, allocation,
 * and the /proc/self counts every case compares with its baseline.
 */
#ifndef SSHBRIDGE_CTESTS_COMMON_H
#define SSHBRIDGE_CTESTS_COMMON_H

#include <stddef.h>

/* CTest's exit codes: failure, and "skipped" (SKIP_RETURN_CODE). */
#define FAIL 1
#define SKIP 77

/* Milliseconds on CLOCK_MONOTONIC. */
long now_ms(void);
/* Sleep, resumed after signals. */
void sleep_ms(long ms);
/* malloc that exits with FAIL when memory runs out (never returns NULL). */
void *xmalloc(size_t n);
/* Open descriptors and threads of this process (/proc/self/fd, /proc/self/task). */
int fd_count(void);
int task_count(void);
/* Every open descriptor and its target, to stderr (for a failure message). */
void dump_fds(void);

#endif
