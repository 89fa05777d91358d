/*
 * test_load_pipeline.c - the GPU load pipeline (loader/load.c) run without a GPU: load.c is
 * compiled into this file with its CUDA helpers (kernels/gpu_internal.h) and the device-tensor
 * calls renamed to an emulation in host memory: pinned buffers are calloc'd, an asynchronous
 * copy is a memcpy, "device" blobs are host buffers, and a device tensor decodes with the C
 * reference decoder. Everything else (the artifact, the segment reader, the kept-region
 * validation) is the real library. So CI checks the pipeline's own logic: pieces of whole
 * chunks across both staging buffers, the head and index regions captured across piece
 * boundaries, raw tensors' digests, subsets, row slices, tampering, that the "device"
 * blob is byte for byte the coded tensor, and decryption "on the device" (the ChaCha20
 * kernel's C reference applied to the copied ciphertext). Timing, DMA and the real kernels need a
 * GPU (tests/gpu/test_gpu_load.c).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* load.c's public functions, renamed so they do not clash with the library's */
#define tseal_gpu_load              emul_gpu_load
#define tseal_gpu_free              emul_gpu_free
#define tseal_gpu_model_count       emul_gpu_model_count
#define tseal_gpu_model_tensor      emul_gpu_model_tensor
#define tseal_gpu_model_find        emul_gpu_model_find
#define tseal_gpu_model_check       emul_gpu_model_check
#define tseal_gpu_decode_bf16       emul_gpu_decode_bf16
#define tseal_gpu_decode_bf16_async emul_gpu_decode_bf16_async
#define tseal_gpu_load_slice        emul_gpu_load_slice
#define tseal_gpu_load_rows         emul_gpu_load_rows
/* the device side, emulated below */
#define tseal_gpu_device_count         emul_device_count
#define tseal_gpu_current_device       emul_current_device
#define tseal_gpu_restore_device       emul_restore_device
#define tseal_gpu_pinned_alloc         emul_pinned_alloc
#define tseal_gpu_pinned_free          emul_pinned_free
#define tseal_gpu_stream_new           emul_stream_new
#define tseal_gpu_stream_free          emul_stream_free
#define tseal_gpu_stream_sync          emul_stream_sync
#define tseal_gpu_event_new            emul_event_new
#define tseal_gpu_event_free           emul_event_free
#define tseal_gpu_event_record         emul_event_record
#define tseal_gpu_event_wait           emul_event_wait
#define tseal_gpu_copy_h2d_async       emul_copy_h2d_async
#define tseal_gpu_blob_alloc           emul_blob_alloc
#define tseal_gpu_tensor_adopt         emul_tensor_adopt
#define tseal_gpu_tensor_upload        emul_tensor_upload
#define tseal_gpu_tensor_free          emul_tensor_free
#define tseal_gpu_tensor_device_bytes  emul_tensor_device_bytes
#define tseal_gpu_tensor_name          emul_tensor_name
#define tseal_gpu_tensor_bytes         emul_tensor_bytes
#define tseal_gpu_tensor_shape         emul_tensor_shape
#define tseal_gpu_tensor_decode        emul_tensor_decode
#define tseal_gpu_tensor_decode_launch emul_tensor_decode_launch
#define tseal_gpu_malloc               emul_malloc
#define tseal_gpu_mem_free             emul_mem_free
#define tseal_gpu_memcpy_d2h           emul_memcpy_d2h
#define tseal_gpu_memset               emul_memset
#define tseal_gpu_chacha_xor_async     emul_chacha_xor_async

#include "../loader/load.c"
#include "key_testutil.h"

/* ---- the emulated device ------------------------------------------------------------------ */

struct tseal_gpu_tensor {
    tseal_ct_view v; /* over `blob` (host memory standing for device memory) */
    uint8_t *blob;
    uint64_t blob_len;
    char *name;
    uint64_t bytes;
};

static int pending_events, copies, live_blobs;

int emul_device_count(void) {
    return 1;
}
int emul_current_device(int *d) {
    *d = 0;
    return 0;
}
void emul_restore_device(int d) {
    (void)d;
}
int emul_pinned_alloc(size_t n, void **out) {
    *out = calloc(1, n ? n : 1);
    return *out ? 0 : TSEAL_E_NOMEM;
}
void emul_pinned_free(void *p) {
    free(p);
}
int emul_stream_new(int d, void **out) {
    (void)d;
    *out = (void *)1;
    return 0;
}
void emul_stream_free(void *s) {
    (void)s;
}
int emul_stream_sync(void *s) {
    (void)s;
    pending_events = 0;
    return 0;
}
int emul_event_new(void **out) {
    *out = calloc(1, sizeof(int));
    return *out ? 0 : TSEAL_E_NOMEM;
}
void emul_event_free(void *e) {
    free(e);
}
int emul_event_record(void *e, void *s) {
    (void)s;
    cr_assert_eq(*(int *)e, 0, "an event recorded twice without a wait");
    *(int *)e = 1;
    pending_events++;
    return 0;
}
int emul_event_wait(void *e) {
    if (*(int *)e) pending_events--;
    *(int *)e = 0;
    return 0;
}
int emul_copy_h2d_async(void *dst, const void *src, size_t n, void *s) {
    (void)s;
    memcpy(dst, src, n);
    copies++;
    return 0;
}
int emul_blob_alloc(int d, uint64_t len, void **out) {
    (void)d;
    *out = calloc(1, len + TSEAL_GPU_BLOB_PAD);
    live_blobs += *out != NULL;
    return *out ? 0 : TSEAL_E_NOMEM;
}
void emul_mem_free(void *p) {
    if (p) live_blobs--;
    free(p);
}

int emul_tensor_adopt(const tseal_ct_view *v, int d, void *blob, const char *name, uint64_t bytes,
                      tseal_gpu_tensor **out) {
    (void)d;
    tseal_gpu_tensor *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    t->blob = blob;
    t->blob_len = v->blob_bytes;
    t->name = strdup(name);
    t->bytes = bytes;
    if (v->mode == TSEAL_CT_MODE_RAW && v->rows == v->n_elems && v->cols == 1 &&
        memcmp(blob, TSEAL_CT_MAGIC, 4) != 0) { /* a raw (non-coded) tensor after a 64-byte gap */
        t->v = *v;
        t->v.raw = t->blob + TSEAL_CT_HEADER_BYTES;
    } else { /* the "device" copy must be a valid coded blob with the view's geometry */
        cr_assert_eq(tseal_codec_view(blob, v->blob_bytes, &t->v), 0, "%s: %s", name,
                     tseal_errmsg());
        cr_assert_eq(t->v.n_elems, v->n_elems);
        cr_assert_eq(t->v.n_segs, v->n_segs);
        cr_assert_eq(t->v.exp_bits, v->exp_bits);
    }
    *out = t;
    return 0;
}

int emul_tensor_upload(const tseal_ct_view *v, int d, tseal_gpu_tensor **out) {
    uint8_t *b = malloc(v->blob_bytes);
    cr_assert_not_null(b);
    /* the view points into its blob: the blob starts at the header, before the plane/raw */
    const uint8_t *start =
        (v->mode == TSEAL_CT_MODE_RAW ? v->raw : v->plane) -
        (v->mode == TSEAL_CT_MODE_HUFF ? TSEAL_CT_HEAD_BYTES : TSEAL_CT_HEADER_BYTES);
    memcpy(b, start, v->blob_bytes);
    live_blobs++;
    return emul_tensor_adopt(v, d, b, "slice", v->n_elems * 2, out);
}

void emul_tensor_free(tseal_gpu_tensor *t) {
    if (!t) return;
    emul_mem_free(t->blob);
    free(t->name);
    free(t);
}
uint64_t emul_tensor_device_bytes(const tseal_gpu_tensor *t) {
    return t ? t->blob_len : 0;
}
const char *emul_tensor_name(const tseal_gpu_tensor *t) {
    return t ? t->name : "";
}
uint64_t emul_tensor_bytes(const tseal_gpu_tensor *t) {
    return t ? t->bytes : 0;
}
void emul_tensor_shape(const tseal_gpu_tensor *t, uint64_t *rows, uint64_t *cols) {
    *rows = t->v.rows;
    *cols = t->v.cols;
}
int emul_tensor_decode(const tseal_gpu_tensor *t, void *dst, void *s) {
    (void)s;
    return tseal_codec_decode_ref(&t->v, dst);
}
int emul_tensor_decode_launch(const tseal_gpu_tensor *t, void *dst, void *s) {
    return emul_tensor_decode(t, dst, s);
}
int emul_malloc(int d, size_t n, void **out) {
    (void)d;
    *out = malloc(n);
    live_blobs += *out != NULL;
    return *out ? 0 : TSEAL_E_NOMEM;
}
int emul_memcpy_d2h(void *dst, const void *src, size_t n) {
    memcpy(dst, src, n);
    return 0;
}
static int gpu_decrypted;
/* the kernel's C reference, on the "device" copy */
int emul_chacha_xor_async(void *dev, uint64_t bytes, const uint8_t key[32], uint64_t chunk0,
                          uint32_t chunk_size, uint64_t last_chunk, void *s) {
    (void)s;
    tseal_chacha_xor_ref(dev, bytes, key, chunk0, chunk_size, last_chunk);
    gpu_decrypted++;
    return 0;
}
int emul_memset(void *p, int v, size_t n) {
    memset(p, v, n);
    return 0;
}

/* ---- fixture --------------------------------------------------------------------------- */

static char dir[64], p[6][160];

static tseal_artifact *fixture(unsigned seg_log2) {
    snprintf(dir, sizeof dir, "/tmp/tseal-pipe-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *names[6] = {"model", "m.tseal", "v.key", "v.pub", "r.key", "r.pub"};
    for (int i = 0; i < 6; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    tseal_synth_opts so = {.preset = "tiny", .seed = 8, .shards = 2};
    cr_assert_eq(tseal_synth_model(p[0], &so), 0, "%s", tseal_errmsg());
    tu_keypair(TSEAL_KEY_SIGN, "test", 1, p[2], p[3]);
    tu_keypair(TSEAL_KEY_RECIPIENT, "test", 2, p[4], p[5]);
    const char *rec[1] = {p[5]}, *trust[1] = {p[3]};
    tseal_pack_opts po = {.model_id = "pipe/test",
                          .version = 1,
                          .sign_key = p[2],
                          .recipients = rec,
                          .n_recipients = 1,
                          .chunk_size = 4096,
                          .codec = {.max_code_bits = 12, .seg_log2 = (uint8_t)seg_log2}};
    cr_assert_eq(tseal_pack(p[0], p[1], &po, NULL), 0, "%s", tseal_errmsg());
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.trust = trust;
    o.n_trust = 1;
    o.key = p[4];
    tseal_artifact *a = NULL;
    cr_assert_eq(tseal_open(p[1], &o, &a), 0, "%s", tseal_errmsg());
    return a;
}

static void cleanup(tseal_artifact *a) {
    tseal_close(a);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Every loaded tensor decodes ("on the device") to what the CPU path reads. */
static void check_all(tseal_artifact *a, tseal_gpu_model *m) {
    for (size_t i = 0; i < tseal_artifact_tensor_count(a); i++) {
        const tseal_gpu_tensor *t = emul_gpu_model_tensor(m, i);
        if (!t) continue;
        tseal_tensor_info info;
        cr_assert_eq(tseal_artifact_tensor_info(a, i, &info), 0);
        cr_assert_str_eq(t->name, info.name);
        uint8_t *want = malloc(info.bytes + 1), *got = malloc(info.bytes + 1);
        cr_assert_eq(tseal_artifact_read_tensor(a, i, want, info.bytes, 1), 0);
        cr_assert_eq(emul_gpu_decode_bf16(t, got, NULL), 0, "%s", tseal_errmsg());
        cr_assert_eq(memcmp(want, got, info.bytes), 0, "%s", info.name);
        free(want);
        free(got);
    }
}

Test(load_pipeline, every_staging_size_loads_every_tensor_exactly, .timeout = 120) {
    tseal_artifact *a = fixture(8);
    const uint64_t stagings[] = {4096, 8192, 3 * 4096, 65536, 0};
    for (size_t k = 0; k < 2 * sizeof stagings / sizeof stagings[0]; k++) {
        tseal_gpu_load_opts lo;
        memset(&lo, 0, sizeof lo);
        lo.staging_bytes = stagings[k % 5];
        lo.decrypt_on_gpu = k >= 5; /* the second round decrypts "on the device" */
        gpu_decrypted = 0;
        tseal_gpu_model *m = NULL;
        tseal_gpu_load_report rep;
        copies = 0;
        cr_assert_eq(emul_gpu_load(a, &lo, &m, &rep), 0, "staging %llu, gpu decrypt %d: %s",
                     (unsigned long long)stagings[k % 5], lo.decrypt_on_gpu, tseal_errmsg());
        cr_assert_eq(gpu_decrypted > 0, lo.decrypt_on_gpu);
        cr_assert_eq(pending_events, 0, "copies left in flight");
        cr_assert_eq(rep.tensors, tseal_artifact_tensor_count(a));
        cr_assert_gt(copies, (int)rep.tensors - 1);
        if (stagings[k % 5]) cr_assert_eq(rep.staging_bytes, 2 * stagings[k % 5]);
        uint32_t n = 0;
        cr_assert_eq(emul_gpu_model_check(a, m, &n), 0, "%s", tseal_errmsg());
        cr_assert_eq(n, rep.tensors);
        check_all(a, m);
        emul_gpu_free(m);
        cr_assert_eq(live_blobs, 0, "device memory leaked");
    }
    cleanup(a);
}

Test(load_pipeline, subsets_and_unknown_names) {
    tseal_artifact *a = fixture(9);
    tseal_tensor_info info;
    cr_assert_eq(tseal_artifact_tensor_info(a, 2, &info), 0);
    const char *only[1] = {info.name};
    tseal_gpu_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.only = only;
    lo.n_only = 1;
    lo.staging_bytes = 4096;
    tseal_gpu_model *m = NULL;
    cr_assert_eq(emul_gpu_load(a, &lo, &m, NULL), 0, "%s", tseal_errmsg());
    cr_assert_not_null(emul_gpu_model_find(m, info.name));
    cr_assert_null(emul_gpu_model_tensor(m, 0));
    check_all(a, m);
    emul_gpu_free(m);
    const char *bad[1] = {"nope"};
    lo.only = bad;
    cr_assert_eq(emul_gpu_load(a, &lo, &m, NULL), TSEAL_E_NOTFOUND);
    cr_assert_null(m);
    cr_assert_eq(live_blobs, 0);
    cleanup(a);
}

Test(load_pipeline, tampered_chunk_fails_and_frees_everything) {
    tseal_artifact *a = fixture(8);
    int fd = open(p[1], O_RDWR);
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, size / 2), 1);
    b ^= 4;
    cr_assert_eq(pwrite(fd, &b, 1, size / 2), 1);
    close(fd);
    for (int gpu_dec = 0; gpu_dec < 2; gpu_dec++) {
        tseal_gpu_load_opts lo;
        memset(&lo, 0, sizeof lo);
        lo.staging_bytes = 8192;
        lo.decrypt_on_gpu = gpu_dec;
        tseal_gpu_model *m = NULL;
        int r = emul_gpu_load(a, &lo, &m, NULL);
        cr_assert_eq(r, TSEAL_E_VERIFY, "%d %s", r, tseal_errmsg());
        cr_assert_null(m);
        cr_assert_eq(live_blobs, 0, "device memory leaked on failure");
    }
    cleanup(a);
}

Test(load_pipeline, row_and_column_slices) {
    tseal_artifact *a = fixture(6); /* 64-weight segments: column cuts at multiples of 64 */
    for (size_t i = 0; i < tseal_artifact_tensor_count(a); i++) {
        tseal_tensor_info info;
        cr_assert_eq(tseal_artifact_tensor_info(a, i, &info), 0);
        if (!info.coded || info.rows < 2 || info.cols < 128) continue;
        uint8_t *full = malloc(info.bytes);
        cr_assert_eq(tseal_artifact_read_tensor(a, i, full, info.bytes, 1), 0);
        uint64_t r0 = 1, r1 = info.rows, c0 = 64, c1 = info.cols;
        tseal_gpu_tensor *t = NULL;
        cr_assert_eq(emul_gpu_load_slice(a, i, r0, r1, c0, c1, 0, &t), 0, "%s", tseal_errmsg());
        uint16_t *got = malloc((r1 - r0) * (c1 - c0) * 2);
        cr_assert_eq(emul_gpu_decode_bf16(t, got, NULL), 0);
        for (uint64_t r = r0; r < r1; r++)
            cr_assert_eq(
                memcmp(got + (r - r0) * (c1 - c0), full + (r * info.cols + c0) * 2, (c1 - c0) * 2),
                0, "%s row %llu", info.name, (unsigned long long)r);
        emul_tensor_free(t);
        cr_assert_eq(emul_gpu_load_slice(a, i, 0, 1, 1, c1, 0, &t), TSEAL_E_INVAL);
        cr_assert_eq(emul_gpu_load_rows(a, i, 0, info.rows, 0, &t), 0);
        emul_tensor_free(t);
        free(got);
        free(full);
    }
    cr_assert_eq(live_blobs, 0);
    cleanup(a);
}
