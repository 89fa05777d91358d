/*
 * test_gpu_load.c - tseal_gpu_load: every tensor loaded compressed onto the GPU decodes there
 * (tseal_gpu_decode_bf16) to exactly the original bytes, with staging buffers much smaller
 * than the largest tensor (so tensors cross several pieces and both buffers cycle), with only
 * some tensors, and tseal_gpu_model_check agrees; a tampered chunk fails the load with no
 * model returned. Skips without a CUDA device.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tseal.h"
#include "tseal_crypto.h"
#include "../key_testutil.h"

static char dir[64], p[6][160];

/* model, container, signer key/pub, recipient key/pub */
static void fixture(const char *preset, unsigned seg_log2) {
    snprintf(dir, sizeof dir, "/tmp/tseal-gpu-load-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *names[6] = {"model", "m.tseal", "v.key", "v.pub", "r.key", "r.pub"};
    for (int i = 0; i < 6; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    tseal_synth_opts so = {.preset = preset, .seed = 5, .shards = 2};
    cr_assert_eq(tseal_synth_model(p[0], &so), 0, "%s", tseal_errmsg());
    tu_keypair(TSEAL_KEY_SIGN, "test", 1, p[2], p[3]);
    tu_keypair(TSEAL_KEY_RECIPIENT, "test", 2, p[4], p[5]);
    const char *rec[1] = {p[5]};
    tseal_pack_opts po = {.model_id = "gpu/load",
                          .version = 1,
                          .sign_key = p[2],
                          .recipients = rec,
                          .n_recipients = 1,
                          .chunk_size = 65536,
                          .codec = {.max_code_bits = 12, .seg_log2 = (uint8_t)seg_log2}};
    cr_assert_eq(tseal_pack(p[0], p[1], &po, NULL), 0, "%s", tseal_errmsg());
}

static void cleanup(void) {
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static tseal_artifact *open_it(void) {
    const char *trust[1] = {p[3]};
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.trust = trust;
    o.n_trust = 1;
    o.key = p[4];
    tseal_artifact *a = NULL;
    cr_assert_eq(tseal_open(p[1], &o, &a), 0, "%s", tseal_errmsg());
    return a;
}

static void check_all(tseal_artifact *a, tseal_gpu_model *m) {
    tseal_model *orig;
    cr_assert_eq(tseal_model_open(p[0], &orig), 0);
    for (size_t i = 0; i < tseal_artifact_tensor_count(a); i++) {
        tseal_tensor_info info;
        cr_assert_eq(tseal_artifact_tensor_info(a, i, &info), 0);
        const tseal_gpu_tensor *t = tseal_gpu_model_tensor(m, i);
        if (!t) continue;
        cr_assert_str_eq(tseal_gpu_tensor_name(t), info.name);
        cr_assert_eq(tseal_gpu_tensor_bytes(t), info.bytes);
        size_t oi = 0;
        for (; oi < tseal_model_tensor_count(orig); oi++)
            if (!strcmp(tseal_model_tensor(orig, oi, NULL)->name, info.name)) break;
        uint8_t *want = malloc(info.bytes + 1), *got = malloc(info.bytes + 1);
        void *d = NULL;
        cr_assert_eq(tseal_model_read(orig, oi, 0, want, info.bytes), 0);
        cr_assert_eq(tseal_gpu_malloc(0, info.bytes + 2, &d), 0);
        cr_assert_eq(tseal_gpu_decode_bf16(t, d, NULL), 0, "%s: %s", info.name, tseal_errmsg());
        cr_assert_eq(tseal_gpu_memcpy_d2h(got, d, info.bytes), 0);
        cr_assert_eq(memcmp(want, got, info.bytes), 0, "%s decodes differently", info.name);
        tseal_gpu_mem_free(d);
        free(want);
        free(got);
    }
    tseal_model_close(orig);
}

Test(gpu_load, every_tensor_decodes_to_the_original, .timeout = 300) {
    if (tseal_gpu_device_count() == 0) cr_skip_test("no CUDA device: %s", tseal_errmsg());
    fixture("small", 9);
    tseal_artifact *a = open_it();
    tseal_gpu_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.staging_bytes = 256 << 10; /* far below the largest tensor */
    tseal_gpu_model *m = NULL;
    tseal_gpu_load_report rep;
    cr_assert_eq(tseal_gpu_load(a, &lo, &m, &rep), 0, "%s", tseal_errmsg());
    cr_assert_eq(rep.tensors, tseal_artifact_tensor_count(a));
    cr_assert_eq(rep.staging_bytes, 2 * (256 << 10));
    cr_assert_lt(rep.compressed_bytes, rep.original_bytes);
    check_all(a, m);
    uint32_t n = 0;
    cr_assert_eq(tseal_gpu_model_check(a, m, &n), 0, "%s", tseal_errmsg());
    cr_assert_eq(n, rep.tensors);
    tseal_gpu_free(m);
    tseal_close(a);
    cleanup();
}

Test(gpu_load, only_some_tensors_and_by_name, .timeout = 300) {
    if (tseal_gpu_device_count() == 0) cr_skip_test("no CUDA device: %s", tseal_errmsg());
    fixture("tiny", 11);
    tseal_artifact *a = open_it();
    tseal_tensor_info info;
    cr_assert_eq(tseal_artifact_tensor_info(a, 1, &info), 0);
    const char *only[1] = {info.name};
    tseal_gpu_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.only = only;
    lo.n_only = 1;
    tseal_gpu_model *m = NULL;
    cr_assert_eq(tseal_gpu_load(a, &lo, &m, NULL), 0, "%s", tseal_errmsg());
    cr_assert_not_null(tseal_gpu_model_find(m, info.name));
    cr_assert_null(tseal_gpu_model_tensor(m, 0));
    check_all(a, m);
    tseal_gpu_free(m);
    const char *bad[1] = {"no.such.tensor"};
    lo.only = bad;
    cr_assert_eq(tseal_gpu_load(a, &lo, &m, NULL), TSEAL_E_NOTFOUND);
    cr_assert_null(m);
    tseal_close(a);
    cleanup();
}

Test(gpu_load, tampered_chunk_fails_the_load, .timeout = 300) {
    if (tseal_gpu_device_count() == 0) cr_skip_test("no CUDA device: %s", tseal_errmsg());
    fixture("tiny", 11);
    tseal_artifact *a = open_it();
    /* flip a byte in the middle of the file: inside some tensor's ciphertext */
    int fd = open(p[1], O_RDWR);
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, size / 2), 1);
    b ^= 0x10;
    cr_assert_eq(pwrite(fd, &b, 1, size / 2), 1);
    close(fd);
    tseal_gpu_model *m = NULL;
    int r = tseal_gpu_load(a, NULL, &m, NULL);
    cr_assert_eq(r, TSEAL_E_VERIFY, "%d %s", r, tseal_errmsg());
    cr_assert_null(m);
    tseal_close(a);
    cleanup();
}

Test(gpu_load, row_slices_load_compressed_and_decode_to_the_rows, .timeout = 300) {
    if (tseal_gpu_device_count() == 0) cr_skip_test("no CUDA device: %s", tseal_errmsg());
    fixture("tiny", 8);
    tseal_artifact *a = open_it();
    for (size_t i = 0; i < tseal_artifact_tensor_count(a); i++) {
        tseal_tensor_info info;
        cr_assert_eq(tseal_artifact_tensor_info(a, i, &info), 0);
        if (!info.coded || info.rows < 2) continue;
        uint64_t r0 = info.rows / 3, r1 = info.rows - 1, n = (r1 - r0) * info.cols * 2;
        uint8_t *want = malloc(n), *got = malloc(n);
        cr_assert_eq(tseal_artifact_read_rows(a, i, r0, r1, want, n, 1), 0);
        tseal_gpu_tensor *t = NULL;
        cr_assert_eq(tseal_gpu_load_rows(a, i, r0, r1, 0, &t), 0, "%s", tseal_errmsg());
        uint64_t rows, cols;
        tseal_gpu_tensor_shape(t, &rows, &cols);
        cr_assert_eq(rows, r1 - r0);
        void *d = NULL;
        cr_assert_eq(tseal_gpu_malloc(0, n, &d), 0);
        cr_assert_eq(tseal_gpu_decode_bf16(t, d, NULL), 0, "%s", tseal_errmsg());
        cr_assert_eq(tseal_gpu_memcpy_d2h(got, d, n), 0);
        cr_assert_eq(memcmp(want, got, n), 0, "%s rows differ", info.name);
        tseal_gpu_mem_free(d);
        tseal_gpu_tensor_free(t);
        free(want);
        free(got);
    }
    tseal_close(a);
    cleanup();
}

Test(gpu_load, decrypting_on_the_gpu_gives_the_same_tensors, .timeout = 300) {
    if (tseal_gpu_device_count() == 0) cr_skip_test("no CUDA device: %s", tseal_errmsg());
    fixture("small", 8);
    tseal_artifact *a = open_it();
    tseal_gpu_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.staging_bytes = 256 << 10;
    lo.decrypt_on_gpu = 1;
    tseal_gpu_model *m = NULL;
    cr_assert_eq(tseal_gpu_load(a, &lo, &m, NULL), 0, "%s", tseal_errmsg());
    check_all(a, m);
    uint32_t n = 0;
    cr_assert_eq(tseal_gpu_model_check(a, m, &n), 0, "%s", tseal_errmsg());
    tseal_gpu_free(m);
    tseal_close(a);
    cleanup();
}
