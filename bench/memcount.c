/*
 * memcount — LD_PRELOAD shim for bench/copies.sh: counts the bytes a process copies through
 * libc's memcpy and memmove (and their _chk forms), by call size, and prints the totals at exit.
 *
 *   gcc -O2 -shared -fPIC -fno-builtin -o memcount.so bench/memcount.c -ldl
 *   MEMCOUNT_OUT=FILE LD_PRELOAD=./memcount.so PROGRAM ...
 *
 * One line is appended to MEMCOUNT_OUT (default: stderr) when the process exits:
 *
 *   memcpy_calls=N memcpy_bytes=B memcpy_big_bytes=B2 memmove_calls=M memmove_bytes=C memmove_big_bytes=C2
 *
 * With MEMCOUNT_CALLERS set, the callers of big copies are listed too (object file and offset
 * of the return address, for addr2line -f -C -e OBJECT OFFSET), most bytes first.
 *
 * "big" counts calls of at least 256 bytes: the bulk copies of payload (packets are up to 32 KiB
 * of data), as opposed to headers, keys and small protocol fields. Only copies that go through
 * the dynamic symbol are seen: Rust and C code compiled into the program call memcpy/memmove for
 * every copy of a size not known at compile time, so bulk copies are seen; fixed-size small copies
 * that the compiler inlines are not. Copies inside the kernel (read/write on sockets and pipes)
 * are not counted either.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*copy_fn)(void *, const void *, size_t);

static copy_fn real_memcpy, real_memmove;
static unsigned long long cpy_calls, cpy_bytes, cpy_big, mov_calls, mov_bytes, mov_big;
static __thread int resolving;

/* Callers of big copies (MEMCOUNT_CALLERS): a small open-addressing table. */
#define NCALLERS 64
static struct { void *ret; unsigned long long bytes, calls; int kind; } callers[NCALLERS];
static int want_callers = -1;

static void note_caller(void *ret, size_t n, int kind) {
    if (want_callers < 0) want_callers = getenv("MEMCOUNT_CALLERS") != NULL;
    if (!want_callers) return;
    unsigned h = (unsigned)(((unsigned long)ret >> 4) % NCALLERS);
    for (int i = 0; i < NCALLERS; i++) {
        unsigned j = (h + i) % NCALLERS;
        void *cur = __atomic_load_n(&callers[j].ret, __ATOMIC_RELAXED);
        if (cur == NULL) {
            void *expected = NULL;
            if (!__atomic_compare_exchange_n(&callers[j].ret, &expected, ret, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                cur = expected;
            else
                cur = ret;
        }
        if (cur == ret) {
            callers[j].kind = kind;
            __atomic_fetch_add(&callers[j].bytes, n, __ATOMIC_RELAXED);
            __atomic_fetch_add(&callers[j].calls, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

#define BIG 256

/* Used only while dlsym itself copies something before the real functions are known. */
static void *slow_move(void *d, const void *s, size_t n) {
    volatile unsigned char *dp = d;
    const volatile unsigned char *sp = s;
    if (dp < sp) {
        for (size_t i = 0; i < n; i++) dp[i] = sp[i];
    } else {
        for (size_t i = n; i > 0; i--) dp[i - 1] = sp[i - 1];
    }
    return d;
}

static copy_fn resolve(copy_fn *slot, const char *name) {
    if (!*slot && !resolving) {
        resolving = 1;
        *slot = (copy_fn)dlsym(RTLD_NEXT, name);
        resolving = 0;
    }
    return *slot ? *slot : slow_move;
}

static void count_cpy(size_t n, void *ret) {
    __atomic_fetch_add(&cpy_calls, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&cpy_bytes, n, __ATOMIC_RELAXED);
    if (n >= BIG) {
        __atomic_fetch_add(&cpy_big, n, __ATOMIC_RELAXED);
        note_caller(ret, n, 0);
    }
}

static void count_mov(size_t n, void *ret) {
    __atomic_fetch_add(&mov_calls, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&mov_bytes, n, __ATOMIC_RELAXED);
    if (n >= BIG) {
        __atomic_fetch_add(&mov_big, n, __ATOMIC_RELAXED);
        note_caller(ret, n, 1);
    }
}

void *memcpy(void *d, const void *s, size_t n) {
    count_cpy(n, __builtin_return_address(0));
    return resolve(&real_memcpy, "memcpy")(d, s, n);
}

void *__memcpy_chk(void *d, const void *s, size_t n, size_t dlen) {
    (void)dlen;
    count_cpy(n, __builtin_return_address(0));
    return resolve(&real_memcpy, "memcpy")(d, s, n);
}

void *memmove(void *d, const void *s, size_t n) {
    count_mov(n, __builtin_return_address(0));
    return resolve(&real_memmove, "memmove")(d, s, n);
}

void *__memmove_chk(void *d, const void *s, size_t n, size_t dlen) {
    (void)dlen;
    count_mov(n, __builtin_return_address(0));
    return resolve(&real_memmove, "memmove")(d, s, n);
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("MEMCOUNT_OUT");
    FILE *f = path ? fopen(path, "a") : stderr;
    if (!f) return;
    fprintf(f, "memcpy_calls=%llu memcpy_bytes=%llu memcpy_big_bytes=%llu memmove_calls=%llu memmove_bytes=%llu memmove_big_bytes=%llu\n",
            cpy_calls, cpy_bytes, cpy_big, mov_calls, mov_bytes, mov_big);
    for (int pass = 0; want_callers > 0 && pass < NCALLERS; pass++) {
        int best = -1;
        for (int i = 0; i < NCALLERS; i++)
            if (callers[i].ret && callers[i].calls && (best < 0 || callers[i].bytes > callers[best].bytes)) best = i;
        if (best < 0) break;
        Dl_info info;
        const char *obj = "?";
        unsigned long off = (unsigned long)callers[best].ret;
        if (dladdr(callers[best].ret, &info) && info.dli_fname) {
            obj = info.dli_fname;
            off -= (unsigned long)info.dli_fbase;
        }
        fprintf(f, "  caller %s bytes=%llu calls=%llu obj=%s off=0x%lx\n", callers[best].kind ? "memmove" : "memcpy",
                callers[best].bytes, callers[best].calls, obj, off);
        callers[best].calls = 0;
    }
    if (f != stderr) fclose(f);
}
