/*
 * emu.cpp - the CUDA emulator behind `make emu-test` (tests/emu/README.md): the runtime calls of
 * include/cuda_runtime.h, and kernel execution on fibers.
 *
 * Execution: a launch runs, in its stream's order on that stream's worker thread, its blocks one
 * after the other (launches are serialised by a mutex); each CUDA thread of the block is a fiber
 * (ucontext) with its own stack, run until it finishes or blocks:
 *   - __syncthreads() blocks until every thread of the block that has not exited arrives;
 *   - a warp shuffle blocks until every live lane of the warp arrives with the same mask; the
 *     mask must name exactly the live lanes (a lane that has exited or is elsewhere is a bug on
 *     the device too: undefined result) and the source lane must have taken part.
 * A block in which no fiber can run but some have not finished is a deadlock: the emulator
 * prints where every thread waits and aborts. So do misaligned vector loads and the misuse of
 * device memory by the runtime calls (copies from or to memory that is not where the copy
 * kind says, ranges past the end of an allocation, frees of unknown pointers).
 *
 * Device memory is host memory from posix_memalign (256-byte aligned, as cudaMalloc), filled
 * with 0xCB so that reads of memory never written show up, and tracked to answer
 * cudaPointerGetAttributes and to check the copies; under ASan (make emu-test) an access past
 * an allocation is reported as compute-sanitizer's memcheck would. Streams run asynchronously on
 * worker threads (see "streams" below).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <thread>
#include <mutex>
#include <vector>

#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

namespace {

[[noreturn]] void emu_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void emu_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tseal CUDA emulator: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

unsigned env_uint(const char *name, unsigned dflt, unsigned lo, unsigned hi) {
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v < lo || v > hi) emu_die("%s=%s: expected %u..%u", name, s, lo, hi);
    return (unsigned)v;
}

/* Emulated devices: TSEAL_EMU_DEVICES (default 1) of TSEAL_EMU_SMS SMs (default 4: small grids
 * keep launches fast; the grid-stride loops cover any grid). */
int n_devices() {
    return (int)env_uint("TSEAL_EMU_DEVICES", 1, 0, 16);
}
int n_sms() {
    return (int)env_uint("TSEAL_EMU_SMS", 4, 1, 1024);
}

thread_local cudaError_t t_last = cudaSuccess;
thread_local int t_device = 0;

cudaError_t set_err(cudaError_t e) {
    if (e != cudaSuccess) t_last = e;
    return e;
}

/* ---- fault injection -----------------------------------------------------------------------
 *
 * TSEAL_EMU_FAIL=KIND:N[+] makes the Nth runtime call of KIND fail (with '+': that call and every
 * later one), as a real device does when it runs out of memory or a launch fails:
 *   malloc (cudaMalloc, cudaMallocAsync) and hostalloc (cudaHostAlloc): cudaErrorMemoryAllocation;
 *   copy (cudaMemcpy*), memset (cudaMemset*), launch (kernel launches, as the last error),
 *   stream and event (creation): cudaErrorLaunchFailure / cudaErrorMemoryAllocation.
 * TSEAL_EMU_COUNT=FILE appends, at exit, "KIND COUNT" for every kind (tests/emu/fault.sh sweeps N
 * over these counts).
 */
enum FaultKind { F_MALLOC, F_HOSTALLOC, F_COPY, F_MEMSET, F_LAUNCH, F_STREAM, F_EVENT, F_KINDS };
const char *const fault_names[F_KINDS] = {"malloc", "hostalloc", "copy", "memset",
                                          "launch", "stream",    "event"};
std::atomic<unsigned long> g_fault_calls[F_KINDS];

struct FaultPlan {
    int kind = -1;
    unsigned long n = 0;
    bool persistent = false;
};

void write_counts() {
    const char *path = getenv("TSEAL_EMU_COUNT");
    if (!path || !*path) return;
    if (FILE *f = fopen(path, "a")) {
        for (int k = 0; k < F_KINDS; k++)
            fprintf(f, "%s %lu\n", fault_names[k], g_fault_calls[k].load());
        fclose(f);
    }
}

const FaultPlan &fault_plan() {
    static const FaultPlan plan = [] {
        FaultPlan p;
        const char *s = getenv("TSEAL_EMU_FAIL");
        if (getenv("TSEAL_EMU_COUNT")) atexit(write_counts);
        if (!s || !*s) return p;
        const char *colon = strchr(s, ':');
        if (!colon) emu_die("TSEAL_EMU_FAIL=%s: expected KIND:N[+]", s);
        for (int k = 0; k < F_KINDS; k++)
            if (strlen(fault_names[k]) == (size_t)(colon - s) &&
                !strncmp(s, fault_names[k], (size_t)(colon - s)))
                p.kind = k;
        char *end = NULL;
        p.n = strtoul(colon + 1, &end, 10);
        p.persistent = *end == '+';
        if (p.kind < 0 || p.n == 0 || (*end && strcmp(end, "+")))
            emu_die("TSEAL_EMU_FAIL=%s: expected KIND:N[+] with KIND one of malloc, hostalloc, "
                    "copy, memset, launch, stream, event and N >= 1",
                    s);
        return p;
    }();
    return plan;
}

/* Count a call of `kind`; true when it is to fail. */
bool inject(FaultKind kind) {
    const FaultPlan &p = fault_plan();
    const unsigned long i = ++g_fault_calls[kind];
    return p.kind == (int)kind && (i == p.n || (p.persistent && i > p.n));
}

/* ---- memory ---------------------------------------------------------------------------------- */

enum Kind { DEV, PINNED };
struct Alloc {
    size_t bytes;
    Kind kind;
    int device;
};
std::mutex g_mem_mu;
std::map<uintptr_t, Alloc> g_mem; /* base -> allocation */

/* The allocation that p points into, or NULL; dies when [p, p + n) runs past its end. */
const Alloc *find_alloc(const void *p, size_t n, uintptr_t *base) {
    std::lock_guard<std::mutex> lk(g_mem_mu);
    const uintptr_t a = (uintptr_t)p;
    auto it = g_mem.upper_bound(a);
    if (it == g_mem.begin()) return NULL;
    --it;
    const uintptr_t off = a - it->first;
    if (off != 0 && off >= it->second.bytes) return NULL;
    if (n > it->second.bytes - off)
        emu_die("range %p + %zu runs past the end of the %s allocation %p + %zu", p, n,
                it->second.kind == DEV ? "device" : "pinned", (void *)it->first, it->second.bytes);
    if (base) *base = it->first;
    return &it->second;
}

/* At exit: device or pinned memory still allocated is a leak (TSEAL_EMU_LEAKS=0 turns it off). */
void sync_device();
void leak_check() {
    sync_device(); /* queued frees first */
    std::lock_guard<std::mutex> lk(g_mem_mu);
    if (g_mem.empty() || !env_uint("TSEAL_EMU_LEAKS", 1, 0, 1)) return;
    size_t bytes = 0;
    for (auto &m : g_mem) bytes += m.second.bytes;
    fprintf(stderr,
            "tseal CUDA emulator: %zu allocation(s), %zu bytes of device or pinned memory "
            "never freed:\n",
            g_mem.size(), bytes);
    unsigned shown = 0;
    for (auto &m : g_mem)
        if (shown++ < 8)
            fprintf(stderr, "  %s %p + %zu\n", m.second.kind == DEV ? "device" : "pinned",
                    (void *)m.first, m.second.bytes);
    _exit(99);
}

cudaError_t alloc(void **p, size_t bytes, Kind kind) {
    static std::once_flag once;
    std::call_once(once, [] { atexit(leak_check); });
    if (!p) return set_err(cudaErrorInvalidValue);
    *p = NULL;
    void *m = NULL;
    if (posix_memalign(&m, kind == DEV ? 256 : 4096, bytes ? bytes : 1) != 0)
        return set_err(cudaErrorMemoryAllocation);
    if (kind == DEV) memset(m, 0xCB, bytes); /* device memory starts as garbage */
    std::lock_guard<std::mutex> lk(g_mem_mu);
    g_mem[(uintptr_t)m] = Alloc{bytes, kind, t_device};
    *p = m;
    return cudaSuccess;
}

cudaError_t release(void *p, Kind kind, const char *call) {
    if (!p) return cudaSuccess;
    {
        std::lock_guard<std::mutex> lk(g_mem_mu);
        auto it = g_mem.find((uintptr_t)p);
        if (it == g_mem.end() || it->second.kind != kind)
            emu_die("%s(%p): not the start of a %s allocation", call, p,
                    kind == DEV ? "device" : "pinned host");
        /* Device memory is not host memory: what the device held must not be found by the
         * host-memory scan (tests/test_memscan.c) once freed. */
        if (kind == DEV) memset(p, 0xCB, it->second.bytes);
        g_mem.erase(it);
    }
    free(p);
    return cudaSuccess;
}

/* A copy's side: device memory inside one allocation, or host memory (not device memory). */
void check_side(const void *p, size_t n, bool device, const char *call, const char *side) {
    if (!n) return;
    uintptr_t b;
    const Alloc *a = find_alloc(p, n, &b);
    const bool dev = a && a->kind == DEV;
    if (device && !dev)
        emu_die("%s: %s %p + %zu is not inside a device allocation", call, side, p, n);
    if (!device && dev)
        emu_die("%s: %s %p is device memory, the copy kind says host", call, side, p);
}

cudaError_t check_copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                       const char *call) {
    if (n && (!dst || !src)) return set_err(cudaErrorInvalidValue);
    switch (kind) {
    case cudaMemcpyHostToDevice:
        check_side(dst, n, true, call, "destination");
        check_side(src, n, false, call, "source");
        break;
    case cudaMemcpyDeviceToHost:
        check_side(dst, n, false, call, "destination");
        check_side(src, n, true, call, "source");
        break;
    case cudaMemcpyDeviceToDevice:
        check_side(dst, n, true, call, "destination");
        check_side(src, n, true, call, "source");
        break;
    default:
        /* tseal always names the direction */
        emu_die("%s: copy kind %d is not emulated", call, (int)kind);
    }
    if (n && (const char *)dst < (const char *)src + n && (const char *)src < (const char *)dst + n)
        emu_die("%s: overlapping ranges %p and %p (+ %zu)", call, dst, src, n);
    return cudaSuccess;
}

/* ---- fibers ---------------------------------------------------------------------------------- */

constexpr size_t STACK = 256 << 10;
constexpr size_t ENTRY_FRAMES = 16 << 10;

enum State { RUN, BAR, SHFL, DONE };
const char *state_name(State s) {
    switch (s) {
    case RUN:
        return "runnable";
    case BAR:
        return "waiting at __syncthreads";
    case SHFL:
        return "waiting at a warp shuffle";
    default:
        return "exited";
    }
}

struct Fiber {
    ucontext_t ctx;
    char *stack = NULL;
    uint3 tid;
    unsigned lane = 0, warp = 0;
    State st = DONE;
    unsigned round = 0; /* shuffles done */
    void *fake = NULL;  /* ASan fake stack while switched out */
};

struct Warp {
    unsigned arrived = 0, live = 0; /* lanes waiting at the current shuffle; lanes not exited */
    unsigned live_mask = 0;
    unsigned mask[2] = {0, 0}, present[2] = {0, 0};
    uint64_t val[2][32];
};

struct Launch {
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    unsigned live = 0, bar_arrived = 0;
    uint3 block_idx;
    uint64_t block_linear = 0;
    bool reverse = false; /* scheduling order of this block */
    unsigned hint = 0;    /* scheduler's scan starts here */
    dim3 grid, block;
    const char *kernel = "";
    const std::function<void()> *body = NULL;
    ucontext_t main;
    Fiber *cur = NULL;
    void *main_fake = NULL;
    const void *main_bottom = NULL;
    size_t main_size = 0;
};

std::mutex g_launch_mu;
Launch *g_run = NULL;         /* the launch executing on this process (one at a time) */
std::vector<char *> g_stacks; /* reused between launches */

Launch &run_state() {
    if (!g_run) emu_die("a device function was called outside a kernel");
    return *g_run;
}

/* glibc's swapcontext, not ASan's interceptor: the interceptor clears the shadow of the whole
 * target stack on every switch, which the fiber annotations below make unnecessary (and which
 * made it the emulator's main cost). */
typedef int (*swap_fn)(ucontext_t *, const ucontext_t *);
swap_fn real_swap() {
    static swap_fn fn = [] {
        swap_fn f = NULL;
#if EMU_ASAN
        if (void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD))
            f = (swap_fn)dlsym(libc, "swapcontext");
#endif
        return f ? f : &swapcontext;
    }();
    return fn;
}

void switch_in(Launch &L, Fiber &f) {
    L.cur = &f;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(&L.main_fake, f.stack, STACK);
#endif
    if (real_swap()(&L.main, &f.ctx) != 0) emu_die("swapcontext: %s", strerror(errno));
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(L.main_fake, NULL, NULL);
#endif
    L.cur = NULL;
}

/* From a fiber back to the scheduler (the fiber is resumed where it left off). */
void yield_fiber(Launch &L) {
    Fiber &f = *L.cur;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(&f.fake, L.main_bottom, L.main_size);
#endif
    if (real_swap()(&f.ctx, &L.main) != 0) emu_die("swapcontext: %s", strerror(errno));
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(f.fake, &L.main_bottom, &L.main_size);
#endif
}

/* Fibers [lo, hi) became runnable: the scheduler's scan must start at or before them. */
void runnable_from(Launch &L, unsigned lo, unsigned hi) {
    const unsigned n = (unsigned)L.fibers.size();
    const unsigned pos = L.reverse ? n - hi : lo;
    if (pos < L.hint) L.hint = pos;
}

void try_release_barrier(Launch &L) {
    if (L.bar_arrived == 0 || L.bar_arrived < L.live) return;
    for (Fiber &f : L.fibers)
        if (f.st == BAR) f.st = RUN;
    L.bar_arrived = 0;
    runnable_from(L, 0, (unsigned)L.fibers.size());
}

void try_release_warp(Launch &L, unsigned w) {
    Warp &W = L.warps[w];
    if (W.arrived == 0 || W.arrived < W.live) return;
    /* Every live lane is at a shuffle of the same round. */
    const unsigned lo = 32 * w, hi = std::min<unsigned>(lo + 32, (unsigned)L.fibers.size());
    unsigned round = ~0u;
    for (unsigned i = lo; i < hi; i++) {
        const Fiber &f = L.fibers[i];
        if (f.st != SHFL) continue;
        if (round == ~0u) round = f.round;
        if (f.round != round)
            emu_die("%s: block (%u,%u,%u) warp %u: lanes at different shuffles (rounds %u and %u)",
                    L.kernel, L.block_idx.x, L.block_idx.y, L.block_idx.z, w, round, f.round);
    }
    const unsigned par = round & 1;
    if (W.mask[par] != W.live_mask)
        emu_die("%s: block (%u,%u,%u) warp %u: shuffle mask 0x%08x but the live lanes are 0x%08x "
                "(a lane named in the mask has exited or a live lane is not named)",
                L.kernel, L.block_idx.x, L.block_idx.y, L.block_idx.z, w, W.mask[par], W.live_mask);
    for (unsigned i = lo; i < hi; i++)
        if (L.fibers[i].st == SHFL) L.fibers[i].st = RUN;
    runnable_from(L, lo, hi);
    W.arrived = 0;
    W.present[par ^ 1] = 0; /* the next round's buffers: every lane has read them */
    W.mask[par ^ 1] = 0;
}

void fiber_entry() {
    Launch &L = *g_run;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(NULL, &L.main_bottom, &L.main_size);
#endif
    (*L.body)();
    Fiber &g = *L.cur; /* this fiber */
    g.st = DONE;
    L.live--;
    Warp &W = L.warps[g.warp];
    W.live--;
    W.live_mask &= ~(1u << g.lane);
    try_release_barrier(L);
    try_release_warp(L, g.warp);
#if EMU_ASAN
    __sanitizer_start_switch_fiber(NULL, L.main_bottom, L.main_size);
#endif
    setcontext(&L.main);
    emu_die("setcontext returned");
}

void deadlock(Launch &L) {
    fprintf(stderr, "tseal CUDA emulator: %s: deadlock in block (%u,%u,%u):\n", L.kernel,
            L.block_idx.x, L.block_idx.y, L.block_idx.z);
    for (Fiber &f : L.fibers)
        fprintf(stderr, "  thread (%u,%u,%u) warp %u lane %u: %s (shuffle round %u)\n", f.tid.x,
                f.tid.y, f.tid.z, f.warp, f.lane, state_name(f.st), f.round);
    abort();
}

/* Apart from run_block: getcontext returns twice, which would pin run_block's loop variables. */
__attribute__((noinline)) void make_fiber(Fiber &f) {
    if (getcontext(&f.ctx) != 0) emu_die("getcontext: %s", strerror(errno));
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = STACK;
    f.ctx.uc_link = NULL;
    makecontext(&f.ctx, fiber_entry, 0);
}

void run_block(Launch &L) {
    const unsigned n = (unsigned)L.fibers.size();
    for (Warp &W : L.warps) W = Warp();
    for (unsigned i = 0; i < n; i++) {
        Fiber &f = L.fibers[i];
#if EMU_ASAN
        /* A finished fiber left the redzones of fiber_entry's frame (the only frame that never
         * returns, at the top of its stack) poisoned. */
        __asan_unpoison_memory_region(f.stack + STACK - ENTRY_FRAMES, ENTRY_FRAMES);
#endif
        make_fiber(f);
        f.tid = uint3{i % L.block.x, (i / L.block.x) % L.block.y, i / (L.block.x * L.block.y)};
        f.lane = i % 32;
        f.warp = i / 32;
        f.st = RUN;
        f.round = 0;
        f.fake = NULL;
        Warp &W = L.warps[f.warp];
        W.live++;
        W.live_mask |= 1u << f.lane;
    }
    L.live = n;
    L.bar_arrived = 0;
    /* Always resume the first runnable thread in the block's order: a warp runs as far as it can
     * (until it exits or waits at __syncthreads) before the next one starts, so a missing
     * barrier shows as reads of shared memory that other warps have not written yet. Odd
     * blocks run the warps, and the lanes within them, in reverse order. */
    L.reverse = L.block_linear & 1;
    L.hint = 0; /* positions before it hold no runnable fiber */
    while (L.live) {
        Fiber *next = NULL;
        for (unsigned p = L.hint; p < n && !next; p++) {
            Fiber &f = L.fibers[L.reverse ? n - 1 - p : p];
            if (f.st == RUN) {
                next = &f;
                L.hint = p;
            }
        }
        if (!next) deadlock(L);
        switch_in(L, *next);
    }
}

char *stack_at(size_t i) {
    while (g_stacks.size() <= i) {
        void *p = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                       -1, 0);
        if (p == MAP_FAILED) emu_die("mmap of a fiber stack: %s", strerror(errno));
        g_stacks.push_back((char *)p);
    }
    return g_stacks[i];
}

} /* namespace */

/* ---- device side ------------------------------------------------------------------------------
 */

const uint3 &tseal_emu_thread_idx() {
    Launch &L = run_state();
    return L.cur->tid;
}
const uint3 &tseal_emu_block_idx() {
    return run_state().block_idx;
}
const dim3 &tseal_emu_block_dim() {
    return run_state().block;
}
const dim3 &tseal_emu_grid_dim() {
    return run_state().grid;
}

void tseal_emu_syncthreads() {
    Launch &L = run_state();
    L.cur->st = BAR;
    L.bar_arrived++;
    try_release_barrier(L);
    yield_fiber(L);
}

uint64_t tseal_emu_shfl(tseal_emu_shfl_kind kind, unsigned mask, uint64_t bits, int arg,
                        int width) {
    Launch &L = run_state();
    Fiber &f = *L.cur;
    if (width != 32) emu_die("%s: shuffle width %d (only 32 is emulated)", L.kernel, width);
    if (!(mask >> f.lane & 1u))
        emu_die("%s: lane %u calls a shuffle whose mask 0x%08x does not name it", L.kernel, f.lane,
                mask);
    Warp &W = L.warps[f.warp];
    const unsigned par = f.round & 1;
    if (W.present[par] && W.mask[par] != mask)
        emu_die("%s: block (%u,%u,%u) warp %u: lanes of one shuffle disagree on the mask "
                "(0x%08x, 0x%08x)",
                L.kernel, L.block_idx.x, L.block_idx.y, L.block_idx.z, f.warp, W.mask[par], mask);
    W.mask[par] = mask;
    W.present[par] |= 1u << f.lane;
    W.val[par][f.lane] = bits;
    W.arrived++;
    f.st = SHFL;
    try_release_warp(L, f.warp);
    yield_fiber(L);
    /* Released: every live lane deposited its value of this round. */
    Fiber &g = *L.cur;
    unsigned src = g.lane;
    switch (kind) {
    case TSEAL_EMU_SHFL_IDX:
        src = (unsigned)arg & 31u;
        break;
    case TSEAL_EMU_SHFL_UP:
        src = g.lane >= (unsigned)arg ? g.lane - (unsigned)arg : g.lane;
        break;
    case TSEAL_EMU_SHFL_DOWN:
        src = g.lane + (unsigned)arg < 32 ? g.lane + (unsigned)arg : g.lane;
        break;
    case TSEAL_EMU_SHFL_XOR:
        src = (g.lane ^ (unsigned)arg) & 31u;
        break;
    }
    if (!(W.present[par] >> src & 1u))
        emu_die("%s: lane %u reads lane %u, which did not take part in the shuffle", L.kernel,
                g.lane, src);
    const uint64_t r = W.val[par][src];
    g.round++;
    return r;
}

void tseal_emu_misaligned(const void *p, size_t align, const char *what) {
    const char *k = g_run ? g_run->kernel : "?";
    emu_die("%s: %s of %p, which is not %zu-byte aligned (misaligned address on the device)", k,
            what, p, align);
}

int tseal_emu_blocks_per_sm(int threads) {
    int b = 2048 / threads;
    return b < 1 ? 1 : b > 32 ? 32 : b;
}

namespace {
void run_grid(const tseal_emu_cfg &cfg, const char *kernel, const std::function<void()> &body) {
    const uint64_t threads = (uint64_t)cfg.block.x * cfg.block.y * cfg.block.z;
    std::lock_guard<std::mutex> lk(g_launch_mu);
    Launch L;
    L.kernel = kernel;
    L.body = &body;
    L.grid = cfg.grid;
    L.block = cfg.block;
    L.fibers.resize(threads);
    L.warps.resize((threads + 31) / 32);
    for (size_t i = 0; i < threads; i++) L.fibers[i].stack = stack_at(i);
    g_run = &L;
    for (unsigned z = 0; z < cfg.grid.z; z++)
        for (unsigned y = 0; y < cfg.grid.y; y++)
            for (unsigned x = 0; x < cfg.grid.x; x++) {
                L.block_idx = uint3{x, y, z};
                run_block(L);
                L.block_linear++;
            }
    g_run = NULL;
}
uint64_t enqueue(cudaStream_t s, std::function<void()> op);
} /* namespace */

void tseal_emu_run(const tseal_emu_cfg &cfg, const char *kernel,
                   const std::function<void()> &body) {
    const uint64_t threads = (uint64_t)cfg.block.x * cfg.block.y * cfg.block.z;
    if (cfg.grid.x == 0 || cfg.grid.y == 0 || cfg.grid.z == 0 || threads == 0 || threads > 1024 ||
        cfg.grid.y > 65535 || cfg.grid.z > 65535 || cfg.block.z > 64) {
        set_err(cudaErrorInvalidConfiguration);
        return;
    }
    if (t_device >= n_devices()) {
        set_err(cudaErrorInvalidDevice);
        return;
    }
    if (inject(F_LAUNCH)) {
        set_err(cudaErrorLaunchFailure);
        return;
    }
    /* The body holds its own copy of the arguments (taken at the launch, as CUDA does). */
    enqueue(cfg.stream, [cfg, kernel, body]() { run_grid(cfg, kernel, body); });
}

/* ---- runtime API ------------------------------------------------------------------------------
 */

/* ---- streams --------------------------------------------------------------------------------
 *
 * Every stream has a worker thread running its operations in order; the host continues at once
 * (after a random delay of up to TSEAL_EMU_DELAY_US microseconds before each operation, default
 * 50, so that host code reading results or reusing buffers without waiting gets the wrong data
 * or an ASan report). The legacy default stream (NULL) waits for the other blocking streams and
 * they for it; streams created with cudaStreamNonBlocking do not. The synchronous calls
 * (cudaMemcpy, cudaMemset) run on the legacy stream and wait; copies to pageable host memory
 * wait; copies from pageable host memory snapshot the source, as the driver's staging does.
 * cudaFree and cudaFreeHost wait for the whole device.
 */
struct CUstream_st {
    unsigned flags = 0;
    bool legacy = false, dead = false;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> q;
    uint64_t enq = 0, done = 0; /* operations enqueued / completed */
    std::thread worker;
};
struct CUevent_st {
    unsigned flags = 0;
    CUstream_st *s = NULL; /* stream of the last record (streams are never freed) */
    uint64_t seq = 0;      /* ... and the operation count that completes it */
    std::shared_ptr<std::atomic<long long>> ns;
};

namespace {

std::mutex g_streams_mu;
/* Never destroyed: worker threads outlive static destructors (and LSan must see them). */
std::vector<CUstream_st *> &g_streams = *new std::vector<CUstream_st *>; /* live streams */
std::vector<CUstream_st *> &g_retired = *new std::vector<CUstream_st *>; /* kept for events */
CUstream_st *g_legacy = NULL;

void op_delay() {
    static const unsigned max_us = env_uint("TSEAL_EMU_DELAY_US", 50, 0, 1000000);
    thread_local uint64_t x = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&x;
    if (!max_us) return;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const unsigned us = (unsigned)(x % (max_us + 1));
    if (us) usleep(us);
}

void worker_loop(CUstream_st *s) {
    for (;;) {
        std::function<void()> op;
        {
            std::unique_lock<std::mutex> lk(s->mu);
            s->cv.wait(lk, [s] { return s->dead || !s->q.empty(); });
            if (s->q.empty()) return; /* destroyed and drained */
            op = std::move(s->q.front());
            s->q.pop_front();
        }
        op_delay();
        op();
        {
            std::lock_guard<std::mutex> lk(s->mu);
            s->done++;
        }
        s->cv.notify_all();
    }
}

CUstream_st *new_stream(unsigned flags, bool legacy) {
    CUstream_st *s = new CUstream_st;
    s->flags = flags;
    s->legacy = legacy;
    s->worker = std::thread(worker_loop, s);
    g_streams.push_back(s);
    return s;
}

/* A forked child has none of the parent's worker threads: start afresh. */
void forget_streams_after_fork() {
    new (&g_streams_mu) std::mutex();
    g_streams.clear();
    g_legacy = NULL;
}

CUstream_st *resolve(cudaStream_t s) {
    if (s) return s;
    std::lock_guard<std::mutex> lk(g_streams_mu);
    if (!g_legacy) {
        static std::once_flag once;
        std::call_once(once, [] { pthread_atfork(NULL, NULL, forget_streams_after_fork); });
        g_legacy = new_stream(0, true);
    }
    return g_legacy;
}

void wait_until(CUstream_st *s, uint64_t seq) {
    std::unique_lock<std::mutex> lk(s->mu);
    s->cv.wait(lk, [s, seq] { return s->done >= seq; });
}

uint64_t push(CUstream_st *s, std::function<void()> op) {
    std::lock_guard<std::mutex> lk(s->mu);
    if (s->dead) emu_die("an operation was enqueued on a destroyed stream");
    s->q.push_back(std::move(op));
    s->cv.notify_all();
    return ++s->enq;
}

uint64_t snapshot(CUstream_st *s) {
    std::lock_guard<std::mutex> lk(s->mu);
    return s->enq;
}

/* Enqueue `op` on stream s (NULL: the legacy stream), after the implicit waits of the legacy
 * stream's semantics. Returns the operation count that completes it. */
uint64_t enqueue(cudaStream_t stream, std::function<void()> op) {
    CUstream_st *s = resolve(stream);
    if (!(s->flags & cudaStreamNonBlocking)) {
        std::vector<std::pair<CUstream_st *, uint64_t>> waits;
        {
            std::lock_guard<std::mutex> lk(g_streams_mu);
            for (CUstream_st *o : g_streams)
                if (o != s && !(o->flags & cudaStreamNonBlocking) && (s->legacy || o->legacy))
                    waits.emplace_back(o, snapshot(o));
        }
        for (auto &w : waits) {
            CUstream_st *o = w.first;
            const uint64_t q = w.second;
            push(s, [o, q] { wait_until(o, q); });
        }
    }
    return push(s, std::move(op));
}

void sync_stream(cudaStream_t stream) {
    CUstream_st *s = resolve(stream);
    wait_until(s, snapshot(s));
}

void sync_device() {
    std::vector<std::pair<CUstream_st *, uint64_t>> waits;
    {
        std::lock_guard<std::mutex> lk(g_streams_mu);
        for (CUstream_st *o : g_streams) waits.emplace_back(o, snapshot(o));
    }
    for (auto &w : waits) wait_until(w.first, w.second);
}

bool is_pinned(const void *p, size_t n) {
    uintptr_t b;
    const Alloc *a = find_alloc(p, n, &b);
    return a && a->kind == PINNED;
}

/* Copies: checked when issued, done in stream order; see the comment above for when they wait. */
cudaError_t copy_on(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s,
                    bool sync, const char *call) {
    if (inject(F_COPY)) return set_err(cudaErrorLaunchFailure);
    cudaError_t e = check_copy(dst, src, n, kind, call);
    if (e != cudaSuccess || n == 0) return e;
    if (kind == cudaMemcpyHostToDevice && !is_pinned(src, n)) {
        auto copy = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                                 (const unsigned char *)src + n);
        enqueue(s, [dst, copy] { memcpy(dst, copy->data(), copy->size()); });
    } else {
        enqueue(s, [dst, src, n] { memcpy(dst, src, n); });
    }
    const bool pageable_dst =
        kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToDevice && !is_pinned(dst, n);
    if (sync || pageable_dst) sync_stream(s);
    return cudaSuccess;
}

cudaError_t memset_on(void *p, int v, size_t n, cudaStream_t s, bool sync, const char *call) {
    if (inject(F_MEMSET)) return set_err(cudaErrorLaunchFailure);
    check_side(p, n, true, call, "destination");
    if (n) enqueue(s, [p, v, n] { memset(p, v, n); });
    if (sync) sync_stream(s);
    return cudaSuccess;
}

} /* namespace */

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess:
        return "cudaSuccess";
    case cudaErrorInvalidValue:
        return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
        return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
        return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
        return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection:
        return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice:
        return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
        return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle:
        return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure:
        return "cudaErrorLaunchFailure";
    case cudaErrorNotReady:
        return "cudaErrorNotReady";
    }
    return "cudaErrorUnknown";
}
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorInvalidValue:
        return "invalid argument";
    case cudaErrorMemoryAllocation:
        return "out of memory";
    case cudaErrorInvalidConfiguration:
        return "invalid configuration argument";
    case cudaErrorNoDevice:
        return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
        return "invalid device ordinal";
    default:
        return cudaGetErrorName(e);
    }
}
cudaError_t cudaGetLastError() {
    cudaError_t e = t_last;
    t_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError() {
    return t_last;
}

cudaError_t cudaGetDeviceCount(int *n) {
    if (!n) return set_err(cudaErrorInvalidValue);
    *n = n_devices();
    return *n ? cudaSuccess : set_err(cudaErrorNoDevice);
}
cudaError_t cudaGetDevice(int *d) {
    if (!d) return set_err(cudaErrorInvalidValue);
    *d = t_device;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= n_devices()) return set_err(cudaErrorInvalidDevice);
    t_device = d;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr attr, int device) {
    if (!v) return set_err(cudaErrorInvalidValue);
    if (device < 0 || device >= n_devices()) return set_err(cudaErrorInvalidDevice);
    switch (attr) {
    case cudaDevAttrMultiProcessorCount:
        *v = n_sms();
        return cudaSuccess;
    case cudaDevAttrL2CacheSize:
        *v = 1 << 20;
        return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock:
        *v = 1024;
        return cudaSuccess;
    }
    return set_err(cudaErrorInvalidValue);
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device) {
    if (!p) return set_err(cudaErrorInvalidValue);
    if (device < 0 || device >= n_devices()) return set_err(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "tseal CUDA emulator (CPU, %d SMs)", n_sms());
    p->totalGlobalMem = (size_t)8 << 30;
    p->multiProcessorCount = n_sms();
    p->l2CacheSize = 1 << 20;
    p->maxThreadsPerBlock = 1024;
    p->major = 9;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
    sync_device();
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (inject(F_MALLOC)) return set_err(cudaErrorMemoryAllocation);
    return alloc(p, bytes, DEV);
}
cudaError_t cudaFree(void *p) {
    if (p) sync_device();
    return release(p, DEV, "cudaFree");
}
cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t) {
    if (inject(F_MALLOC)) return set_err(cudaErrorMemoryAllocation);
    return alloc(p, bytes, DEV); /* usable by work enqueued after this call on any stream */
}
cudaError_t cudaFreeAsync(void *p, cudaStream_t s) {
    if (p) {
        uintptr_t b;
        if (!find_alloc(p, 0, &b) || b != (uintptr_t)p)
            emu_die("cudaFreeAsync(%p): not the start of a device allocation", p);
        enqueue(s, [p] { release(p, DEV, "cudaFreeAsync"); });
    }
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned) {
    if (inject(F_HOSTALLOC)) return set_err(cudaErrorMemoryAllocation);
    return alloc(p, bytes, PINNED);
}
cudaError_t cudaMallocHost(void **p, size_t bytes) {
    if (inject(F_HOSTALLOC)) return set_err(cudaErrorMemoryAllocation);
    return alloc(p, bytes, PINNED);
}
cudaError_t cudaFreeHost(void *p) {
    if (p) sync_device();
    return release(p, PINNED, "cudaFreeHost");
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    if (!a) return set_err(cudaErrorInvalidValue);
    memset(a, 0, sizeof *a);
    uintptr_t b;
    const Alloc *al = find_alloc(p, 0, &b);
    if (!al) return cudaSuccess; /* unregistered host memory */
    a->type = al->kind == DEV ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
    a->device = al->device;
    a->devicePointer = al->kind == DEV ? (void *)p : NULL;
    a->hostPointer = al->kind == DEV ? NULL : (void *)p;
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    return copy_on(dst, src, n, kind, NULL, true, "cudaMemcpy");
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s) {
    return copy_on(dst, src, n, kind, s, false, "cudaMemcpyAsync");
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    return memset_on(p, v, n, NULL, true, "cudaMemset");
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    return memset_on(p, v, n, s, false, "cudaMemsetAsync");
}

cudaError_t cudaStreamCreate(cudaStream_t *s) {
    return cudaStreamCreateWithFlags(s, 0);
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    if (!s) return set_err(cudaErrorInvalidValue);
    if (inject(F_STREAM)) return set_err(cudaErrorMemoryAllocation);
    resolve(NULL); /* the legacy stream exists before any other */
    std::lock_guard<std::mutex> lk(g_streams_mu);
    *s = new_stream(flags, false);
    return cudaSuccess;
}
/* Waits for the stream's work, then retires it (the object stays: events may name it). */
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s || s->legacy || s->dead) return set_err(cudaErrorInvalidResourceHandle);
    sync_stream(s);
    {
        std::lock_guard<std::mutex> lk(g_streams_mu);
        g_streams.erase(std::find(g_streams.begin(), g_streams.end(), s));
        g_retired.push_back(s);
    }
    {
        std::lock_guard<std::mutex> lk(s->mu);
        s->dead = true;
    }
    s->cv.notify_all();
    s->worker.join();
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (s && s->dead) return set_err(cudaErrorInvalidResourceHandle);
    sync_stream(s);
    return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
    if (!e) return set_err(cudaErrorInvalidResourceHandle);
    if (CUstream_st *o = e->s) {
        const uint64_t q = e->seq;
        enqueue(s, [o, q] { wait_until(o, q); });
    }
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) {
    return cudaEventCreateWithFlags(e, 0);
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    if (!e) return set_err(cudaErrorInvalidValue);
    if (inject(F_EVENT)) return set_err(cudaErrorMemoryAllocation);
    *e = new CUevent_st;
    (*e)->flags = flags;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (!e) return set_err(cudaErrorInvalidResourceHandle);
    delete e; /* a pending record only holds the shared timestamp */
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
    if (!e) return set_err(cudaErrorInvalidResourceHandle);
    auto ns = std::make_shared<std::atomic<long long>>(-1);
    e->ns = ns;
    e->s = resolve(stream);
    e->seq = enqueue(stream, [ns] {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        ns->store((long long)t.tv_sec * 1000000000ll + t.tv_nsec);
    });
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (!e) return set_err(cudaErrorInvalidResourceHandle);
    if (e->s) wait_until(e->s, e->seq);
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
    if (!e) return set_err(cudaErrorInvalidResourceHandle);
    if (!e->s) return cudaSuccess;
    std::lock_guard<std::mutex> lk(e->s->mu);
    return e->s->done >= e->seq ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!ms || !a || !b) return set_err(cudaErrorInvalidValue);
    if ((a->flags | b->flags) & cudaEventDisableTiming)
        return set_err(cudaErrorInvalidResourceHandle);
    if (!a->ns || !b->ns || a->ns->load() < 0 || b->ns->load() < 0)
        return set_err(cudaErrorNotReady);
    *ms = (float)((double)(b->ns->load() - a->ns->load()) * 1e-6);
    return cudaSuccess;
}

/* ---- cuBLAS (include/cublas_v2.h) -------------------------------------------------------------
 */

#include "cublas_v2.h"

struct tseal_emu_cublas {
    cudaStream_t stream;
};

namespace {
float bf16_f32(uint16_t h) {
    return __uint_as_float((unsigned)h << 16);
}
uint16_t f32_bf16(float f) {
    const unsigned u = __float_as_uint(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0u;
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
} /* namespace */

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    *h = new tseal_emu_cublas{NULL};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType ta_type,
                            int lda, const void *B, cudaDataType tb_type, int ldb, const void *beta,
                            void *C, cudaDataType tc_type, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (tb != CUBLAS_OP_N || ta_type != CUDA_R_16BF || tb_type != CUDA_R_16BF ||
        tc_type != CUDA_R_16BF || compute != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0 || ldb < k || ldc < m || lda < (ta == CUBLAS_OP_T ? k : m))
        return CUBLAS_STATUS_INVALID_VALUE;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const uint16_t *a = (const uint16_t *)A, *b = (const uint16_t *)B;
    uint16_t *c = (uint16_t *)C;
    check_side(a, ((size_t)lda * (ta == CUBLAS_OP_T ? m : k)) * 2, true, "cublasGemmEx", "A");
    check_side(b, (size_t)ldb * n * 2, true, "cublasGemmEx", "B");
    check_side(c, (size_t)ldc * n * 2, true, "cublasGemmEx", "C");
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) {
                const uint16_t av =
                    ta == CUBLAS_OP_T ? a[(size_t)i * lda + p] : a[(size_t)p * lda + i];
                s = fmaf(bf16_f32(av), bf16_f32(b[(size_t)j * ldb + p]), s);
            }
            const float old = be != 0.0f ? bf16_f32(c[(size_t)j * ldc + i]) : 0.0f;
            c[(size_t)j * ldc + i] = f32_bf16(al * s + be * old);
        }
    return CUBLAS_STATUS_SUCCESS;
}
