/*
 * test_memscan.c - plaintext BF16 weights never stay in host memory.
 *
 * A child process makes the model and packs it (so this process never held its weights);
 * this process then hashes every 64-byte window (at even offsets, skipping low-entropy ones
 * such as runs of one value) of the original BF16 tensors, reading the files through a small
 * buffer that is wiped, into a set of 64-bit hashes. The scanner reads every readable mapping
 * of the process (/proc/self/maps, /proc/self/mem) but read-only file mappings (libraries) with
 * a rolling hash and reports any window in the set: every copy of 65 or more original bytes is
 * found.
 *
 *   control:  a tensor decoded into an ordinary buffer is found; once wiped it is not;
 *   CPU path: every tensor read with tseal_artifact_read_tensor into locked buffers
 *             (tseal_secure_buffer), used, freed: nothing is found afterwards;
 *   GPU path: tseal_gpu_load (compressed plaintext only passes through pinned staging) and
 *             every tensor decoded on the device: nothing is found (skipped without a GPU).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "tseal_crypto.h"

#define WIN      64
#define HBASE    0x100000001B3ull
#define SET_BITS 23

#define BLOOM_BITS 25 /* one-probe filter in front of the table: most lookups stop there */

typedef struct {
    uint64_t *bloom;
    uint64_t *slot; /* open addressing; 0 = empty (a zero hash is remapped to 1) */
    uint64_t mask, n;
    uint64_t pow63; /* HBASE^(WIN-1) */
} hset;

static uint64_t fix0(uint64_t h) {
    return h ? h : 1;
}

static void hset_add(hset *s, uint64_t h) {
    h = fix0(h);
    s->bloom[(h >> 7) & ((1ull << BLOOM_BITS) / 64 - 1)] |= 1ull << (h & 63);
    for (uint64_t i = (h * 0x9E3779B97F4A7C15ull) >> (64 - SET_BITS);; i = (i + 1) & s->mask) {
        if (s->slot[i] == h) return;
        if (!s->slot[i]) {
            s->slot[i] = h;
            s->n++;
            return;
        }
    }
}

static int hset_has(const hset *s, uint64_t h) {
    h = fix0(h);
    if (!(s->bloom[(h >> 7) & ((1ull << BLOOM_BITS) / 64 - 1)] >> (h & 63) & 1)) return 0;
    for (uint64_t i = (h * 0x9E3779B97F4A7C15ull) >> (64 - SET_BITS);; i = (i + 1) & s->mask) {
        if (s->slot[i] == h) return 1;
        if (!s->slot[i]) return 0;
    }
}

static uint64_t window_hash(const uint8_t *p) {
    uint64_t h = 0;
    for (int i = 0; i < WIN; i++) h = h * HBASE + p[i];
    return h;
}

/* Windows made of few distinct values (padding, constants) could occur anywhere. */
static int distinctive(const uint8_t *p) {
    uint16_t v[WIN / 2];
    unsigned n = 0;
    for (int i = 0; i < WIN / 2; i++) {
        uint16_t x = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
        int seen = 0;
        for (unsigned k = 0; k < n && !seen; k++) seen = v[k] == x;
        if (!seen) v[n++] = x;
    }
    tseal_wipe(v, sizeof v); /* v is the window itself when all its values differ */
    return n >= 12;
}

/* Every distinctive window at an even offset of every BF16 tensor of the model. */
static void build_needles(const char *model, hset *s) {
    memset(s, 0, sizeof *s);
    s->mask = (1ull << SET_BITS) - 1;
    s->slot = calloc(1ull << SET_BITS, sizeof *s->slot);
    s->bloom = calloc((1ull << BLOOM_BITS) / 64, sizeof *s->bloom);
    cr_assert(s->slot && s->bloom);
    s->pow63 = 1;
    for (int i = 0; i < WIN - 1; i++) s->pow63 *= HBASE;
    tseal_model *m;
    cr_assert_eq(tseal_model_open(model, &m), 0);
    enum { PIECE = 1 << 16 };
    uint8_t *buf = tseal_secure_alloc(PIECE + WIN);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < tseal_model_tensor_count(m); i++) {
        const tseal_st_tensor *t = tseal_model_tensor(m, i, NULL);
        uint64_t len = t->end - t->begin;
        if (t->dtype != TSEAL_DT_BF16 || len < WIN) continue;
        for (uint64_t off = 0; off + WIN <= len; off += PIECE) {
            uint64_t n = len - off < PIECE + WIN ? len - off : PIECE + WIN;
            cr_assert_eq(tseal_model_read(m, i, off, buf, n), 0);
            for (uint64_t j = 0; j + WIN <= n && j < PIECE; j += 2)
                if (distinctive(buf + j)) hset_add(s, window_hash(buf + j));
        }
    }
    tseal_secure_free(buf); /* wipes */
    tseal_model_close(m);
    cr_assert_lt(s->n, (1ull << SET_BITS) / 2, "needle set too full");
}

/* Windows of the set found in readable memory (big reservations such as sanitizer shadow
 * memory are skipped: they hold no heap data). */
static uint64_t scan_memory(const hset *s, uintptr_t *first_hit) {
    FILE *maps = fopen("/proc/self/maps", "r");
    int mem = open("/proc/self/mem", O_RDONLY);
    cr_assert_not_null(maps);
    cr_assert_geq(mem, 0);
    enum { PIECE = 1 << 20 };
    uint8_t *buf = tseal_secure_alloc(PIECE + WIN);
    cr_assert_not_null(buf);
    uint64_t hits = 0;
    char line[512];
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8] = {0};
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3 ||
            perms[0] != 'r')
            continue;
        /* Read-only file mappings (shared libraries such as cuBLAS: hundreds of MB) mirror
         * files on disk and cannot hold a copy made at run time: skip them. */
        const char *path = path_at ? line + path_at : "";
        if (perms[1] != 'w' && path[0] == '/') continue;
        if (hi - lo > (1ul << 30) || strstr(line, "[vvar") || strstr(line, "[vsyscall]")) continue;
        uint64_t h = 0, have = 0; /* rolling over the region, across pieces */
        uint8_t ring[WIN];
        for (unsigned long a = lo; a < hi; a += PIECE) {
            size_t n = hi - a < PIECE ? hi - a : PIECE;
            ssize_t got = pread(mem, buf, n, (off_t)a);
            if (got <= 0) break; /* unreadable (guard pages): the rest of the region too */
            for (ssize_t i = 0; i < got; i++) {
                uint8_t in = buf[i];
                if (have >= WIN) h -= ring[have % WIN] * s->pow63;
                h = h * HBASE + in;
                ring[have % WIN] = in;
                have++;
                if (have >= WIN && hset_has(s, h)) {
                    if (!hits && first_hit) *first_hit = a + (uintptr_t)i + 1 - WIN;
                    hits++;
                }
            }
        }
        tseal_wipe(ring, sizeof ring);
    }
    tseal_secure_free(buf);
    close(mem);
    fclose(maps);
    return hits;
}

typedef struct {
    char dir[64], model[128], out[128], sign[128], sign_pub[128], bank[128], bank_pub[128];
} mfx;

/* Keys, model and container, made in a child process. */
static void make_fixture(mfx *f) {
    snprintf(f->dir, sizeof f->dir, "/tmp/tseal-memscan-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    char d[64];
    memcpy(d, f->dir, sizeof d);
    snprintf(f->model, sizeof f->model, "%s/model", d);
    snprintf(f->out, sizeof f->out, "%s/m.tseal", d);
    snprintf(f->sign, sizeof f->sign, "%s/v.sign.key", d);
    snprintf(f->sign_pub, sizeof f->sign_pub, "%s/v.sign.pub", d);
    snprintf(f->bank, sizeof f->bank, "%s/bank.key", d);
    snprintf(f->bank_pub, sizeof f->bank_pub, "%s/bank.pub", d);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        tseal_rng rng = {.counter = 0};
        memset(rng.seed, 9, sizeof rng.seed);
        tseal_seckey *k;
        int r = tseal_keygen(TSEAL_KEY_SIGN, "vendor", &rng, &k);
        if (!r) r = tseal_seckey_write(k, f->sign, NULL, 0, 1);
        if (!r) r = tseal_pubkey_write(&k->pub, f->sign_pub, 1);
        tseal_seckey_free(k);
        if (!r) r = tseal_keygen(TSEAL_KEY_RECIPIENT, "bank", &rng, &k);
        if (!r) r = tseal_seckey_write(k, f->bank, NULL, 0, 1);
        if (!r) r = tseal_pubkey_write(&k->pub, f->bank_pub, 1);
        tseal_seckey_free(k);
        tseal_synth_opts so = {.preset = "tiny", .seed = 21, .shards = 1};
        if (!r) r = tseal_synth_model(f->model, &so);
        const char *rc[1] = {f->bank_pub};
        tseal_pack_opts o;
        memset(&o, 0, sizeof o);
        o.model_id = "acme/memscan";
        o.version = 1;
        o.sign_key = f->sign;
        o.recipients = rc;
        o.n_recipients = 1;
        if (!r) r = tseal_pack(f->model, f->out, &o, NULL);
        if (r) fprintf(stderr, "fixture: %s\n", tseal_errmsg());
        _exit(r ? 1 : 0);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fixture child failed");
}

static tseal_artifact *open_fixture(mfx *f) {
    const char *trust[1] = {f->sign_pub};
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.trust = trust;
    o.n_trust = 1;
    o.key = f->bank;
    tseal_artifact *a = NULL;
    cr_assert_eq(tseal_open(f->out, &o, &a), 0, "%s", tseal_errmsg());
    return a;
}

static void drop_fixture(mfx *f) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    cr_assert_eq(system(cmd), 0);
}

static size_t largest_coded(tseal_artifact *a, tseal_tensor_info *info) {
    size_t best = 0;
    uint64_t best_bytes = 0;
    for (size_t i = 0; i < tseal_artifact_tensor_count(a); i++) {
        cr_assert_eq(tseal_artifact_tensor_info(a, i, info), 0);
        if (info->coded && info->bytes > best_bytes) best = i, best_bytes = info->bytes;
    }
    cr_assert_eq(tseal_artifact_tensor_info(a, best, info), 0);
    return best;
}

Test(memscan, cpu_path_leaves_no_bf16_plaintext, .timeout = 120) {
    mfx f;
    make_fixture(&f);
    hset s;
    build_needles(f.model, &s);
    cr_assert_gt(s.n, 100000, "too few distinctive windows: %llu", (unsigned long long)s.n);
    uintptr_t at = 0;
    uint64_t before = scan_memory(&s, &at);
    cr_assert_eq(before, 0, "plaintext before loading: %llu windows, first at %#lx",
                 (unsigned long long)before, (unsigned long)at);

    tseal_artifact *a = open_fixture(&f);
    /* control: the scanner sees a tensor decoded into ordinary memory, and its wiping */
    tseal_tensor_info info;
    size_t big = largest_coded(a, &info);
    uint8_t *plain = malloc(info.bytes);
    cr_assert_eq(tseal_artifact_read_tensor(a, big, plain, info.bytes, 1), 0);
    uint64_t seen = scan_memory(&s, NULL);
    cr_assert_gt(seen, info.bytes / 4, "the scanner missed a decoded tensor (%llu windows)",
                 (unsigned long long)seen);
    tseal_wipe(plain, info.bytes);
    free(plain);
    cr_assert_eq(scan_memory(&s, NULL), 0, "wiped control still found");

    /* the CPU path: locked buffers, used, freed (sodium_free wipes) */
    double checksum = 0;
    for (size_t i = 0; i < tseal_artifact_tensor_count(a); i++) {
        cr_assert_eq(tseal_artifact_tensor_info(a, i, &info), 0);
        uint8_t *w = tseal_secure_buffer(info.bytes);
        cr_assert_not_null(w);
        cr_assert_eq(tseal_artifact_read_tensor(a, i, w, info.bytes, 2), 0, "%s", tseal_errmsg());
        for (uint64_t k = 0; k < info.bytes; k += 4096) checksum += w[k];
        if (info.coded && info.rows > 1) { /* and a row slice */
            uint64_t n = info.cols * 2;
            cr_assert_eq(tseal_artifact_read_rows(a, i, 1, 2, w, n, 1), 0);
        }
        tseal_secure_buffer_free(w);
    }
    cr_assert_gt(checksum, 0);
    uint64_t after = scan_memory(&s, &at);
    cr_assert_eq(after, 0, "BF16 plaintext left in host memory: %llu windows, first at %#lx",
                 (unsigned long long)after, (unsigned long)at);
    tseal_close(a);
    free(s.slot);
    free(s.bloom);
    drop_fixture(&f);
}

Test(memscan, gpu_load_leaves_no_bf16_plaintext, .timeout = 120) {
    if (tseal_gpu_device_count() == 0) cr_skip_test("no CUDA device: %s", tseal_errmsg());
    mfx f;
    make_fixture(&f);
    hset s;
    build_needles(f.model, &s);
    tseal_artifact *a = open_fixture(&f);
    tseal_gpu_model *m = NULL;
    tseal_gpu_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.staging_bytes = 1 << 20; /* many pieces: both staging buffers cycle */
    lo.decrypt_on_gpu = 1;      /* and once more below with host decryption */
    cr_assert_eq(tseal_gpu_load(a, &lo, &m, NULL), 0, "%s", tseal_errmsg());
    tseal_gpu_free(m);
    lo.decrypt_on_gpu = 0;
    cr_assert_eq(tseal_gpu_load(a, &lo, &m, NULL), 0, "%s", tseal_errmsg());
    for (size_t i = 0; i < tseal_gpu_model_count(m); i++) {
        const tseal_gpu_tensor *t = tseal_gpu_model_tensor(m, i);
        void *d = NULL;
        uint64_t n = tseal_gpu_tensor_bytes(t);
        cr_assert_eq(tseal_gpu_malloc(0, n ? n : 2, &d), 0);
        cr_assert_eq(tseal_gpu_decode_bf16(t, d, NULL), 0, "%s", tseal_errmsg());
        tseal_gpu_mem_free(d);
    }
    uintptr_t at = 0;
    uint64_t hits = scan_memory(&s, &at);
    cr_assert_eq(hits, 0, "BF16 plaintext in host memory after a GPU load: %llu windows at %#lx",
                 (unsigned long long)hits, (unsigned long)at);
    tseal_gpu_free(m);
    tseal_close(a);
    free(s.slot);
    free(s.bloom);
    drop_fixture(&f);
}
