/*
 * test_container.c - the signed, encrypted container: round trips (single file, folder,
 * sharded), byte-identical unpack, and the attacks: every single-byte flip and every
 * truncation, wrong/no/too many recipients, swapped, duplicated, reordered and dropped chunks,
 * chunks from another tensor or container, re-signing by an untrusted key, header overflows,
 * key-commitment mismatch, and hostile manifests. Every failure must leave no output.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "internal.h"
#include "manifest.h"

/* ---- fixture ---------------------------------------------------------------------------- */

typedef struct {
    char dir[64];
    char path[16][160];
    tseal_seckey *vendor, *bank, *other_signer;
} fx;

enum {
    P_MODEL,
    P_OUT,
    P_VENDOR_KEY,
    P_VENDOR_PUB,
    P_BANK_KEY,
    P_BANK_PUB,
    P_AUDIT_KEY,
    P_AUDIT_PUB,
    P_OTHER_KEY,
    P_OTHER_PUB,
    P_RESTORE,
    P_TMP
};

static const char *fp(fx *f, int i) {
    return f->path[i];
}

static void write_file(const char *path, const void *buf, size_t len) {
    FILE *fh = fopen(path, "wb");
    cr_assert_not_null(fh, "%s", path);
    cr_assert_eq(fwrite(buf, 1, len, fh), len);
    fclose(fh);
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *fh = fopen(path, "rb");
    cr_assert_not_null(fh, "%s", path);
    fseek(fh, 0, SEEK_END);
    *len = (size_t)ftell(fh);
    rewind(fh);
    uint8_t *b = malloc(*len + 1);
    cr_assert_eq(fread(b, 1, *len, fh), *len);
    fclose(fh);
    return b;
}

static tseal_seckey *make_key(tseal_key_kind kind, const char *name, uint8_t seed,
                              const char *sk_path, const char *pk_path) {
    tseal_rng rng = {.counter = 0};
    memset(rng.seed, seed, sizeof rng.seed);
    tseal_seckey *k;
    cr_assert_eq(tseal_keygen(kind, name, &rng, &k), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_seckey_write(k, sk_path, NULL, 0, 1), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_pubkey_write(&k->pub, pk_path, 1), 0, "%s", tseal_errmsg());
    return k;
}

/* A small model folder: one safetensors file (BF16 matrix, F32 vector, BF16 vector) and a
 * config.json, so every segment kind and both tensor encodings appear. */
static void make_model(const char *dir, uint64_t rows) {
    char p[256];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    tseal_st_writer *w;
    cr_assert_eq(tseal_st_writer_open(p, &w), 0);
    uint64_t s1[2] = {rows, 64}, s2[1] = {10}, s3[1] = {3};
    cr_assert_eq(tseal_st_writer_add(w, "layer.weight", TSEAL_DT_BF16, 2, s1), 0);
    cr_assert_eq(tseal_st_writer_add(w, "layer.scale", TSEAL_DT_F32, 1, s2), 0);
    cr_assert_eq(tseal_st_writer_add(w, "layer.bias", TSEAL_DT_BF16, 1, s3), 0);
    uint64_t x = 12345;
    for (uint64_t i = 0; i < rows * 64; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0 - 0.5;
        uint16_t v = tseal_f32_to_bf16((float)(0.04 * u * (1 + (x >> 60))));
        cr_assert_eq(tseal_st_writer_write(w, &v, 2), 0);
    }
    float sc[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint16_t bias[3] = {0x3F80, 0x0000, 0xBF80};
    cr_assert_eq(tseal_st_writer_write(w, sc, sizeof sc), 0);
    cr_assert_eq(tseal_st_writer_write(w, bias, sizeof bias), 0);
    cr_assert_eq(tseal_st_writer_commit(w), 0, "%s", tseal_errmsg());
    snprintf(p, sizeof p, "%s/config.json", dir);
    const char *cfg = "{\"architectures\": [\"TinyModel\"], \"hidden_size\": 64}\n";
    write_file(p, cfg, strlen(cfg));
}

static tseal_pack_opts pack_opts(fx *f, const char **recips, unsigned n) {
    tseal_pack_opts o;
    memset(&o, 0, sizeof o);
    o.model_id = "acme/credit-7b";
    o.version = 12;
    o.chunk_size = 4096;
    o.sign_key = fp(f, P_VENDOR_KEY);
    o.recipients = recips;
    o.n_recipients = n;
    return o;
}

static void fx_setup(fx *f, uint64_t rows) {
    memset(f, 0, sizeof f->path);
    snprintf(f->dir, sizeof f->dir, "/tmp/tseal-ct-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    static const char *names[] = {
        "model",     "model.tseal", "vendor.sign.key", "vendor.sign.pub", "bank.key", "bank.pub",
        "audit.key", "audit.pub",   "other.sign.key",  "other.sign.pub",  "restored", "tmp"};
    char dir[64];
    memcpy(dir, f->dir, sizeof dir);
    for (int i = 0; i <= P_TMP; i++)
        snprintf(f->path[i], sizeof f->path[i], "%s/%s", dir, names[i]);
    f->vendor = make_key(TSEAL_KEY_SIGN, "vendor", 1, fp(f, P_VENDOR_KEY), fp(f, P_VENDOR_PUB));
    f->bank = make_key(TSEAL_KEY_RECIPIENT, "bank", 2, fp(f, P_BANK_KEY), fp(f, P_BANK_PUB));
    tseal_seckey_free(
        make_key(TSEAL_KEY_RECIPIENT, "audit", 3, fp(f, P_AUDIT_KEY), fp(f, P_AUDIT_PUB)));
    f->other_signer = make_key(TSEAL_KEY_SIGN, "other", 4, fp(f, P_OTHER_KEY), fp(f, P_OTHER_PUB));
    make_model(fp(f, P_MODEL), rows);
    const char *r[1] = {fp(f, P_BANK_PUB)};
    tseal_pack_opts o = pack_opts(f, r, 1);
    cr_assert_eq(tseal_pack(fp(f, P_MODEL), fp(f, P_OUT), &o, NULL), 0, "%s", tseal_errmsg());
}

static void rm_rf(const char *p) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    cr_assert_eq(system(cmd), 0);
}

static void fx_teardown(fx *f) {
    tseal_seckey_free(f->vendor);
    tseal_seckey_free(f->bank);
    tseal_seckey_free(f->other_signer);
    rm_rf(f->dir);
}

static tseal_verify_opts vopts(fx *f, int with_key) {
    static const char *trust[1];
    trust[0] = fp(f, P_VENDOR_PUB);
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.trust = trust;
    o.n_trust = 1;
    if (with_key) o.key = fp(f, P_BANK_KEY);
    return o;
}

static int verify_path(fx *f, const char *path, int with_key) {
    tseal_verify_opts o = vopts(f, with_key);
    return tseal_verify(path, &o, NULL);
}

static int unpack_path(fx *f, const char *path, const char *outdir) {
    tseal_verify_opts o = vopts(f, 1);
    return tseal_unpack(path, outdir, &o, NULL);
}

/* True if `dir` holds nothing whose name starts with `prefix` (no output, no temp folder). */
static int nothing_named(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    int none = 1;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) none = 0;
    closedir(d);
    return none;
}

static int files_equal(const char *a, const char *b) {
    size_t la, lb;
    uint8_t *x = read_file(a, &la), *y = read_file(b, &lb);
    int eq = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return eq;
}

/* ---- re-sealing: rebuild hash lists and the signature after an edit --------------------- */

typedef struct {
    uint32_t hlen, m, nrec;
    uint64_t payload;
} layout;

static layout get_layout(const uint8_t *b) {
    layout l;
    l.hlen = tseal_load_le32(b + 8);
    l.m = (uint32_t)(b[12 + 54] | b[12 + 55] << 8);
    l.nrec = (uint32_t)(b[12 + 52] | b[12 + 53] << 8);
    l.payload = 16 + (uint64_t)l.hlen + tseal_load_le32(b + 12 + l.hlen);
    return l;
}

static uint8_t *seg_entry(uint8_t *b, const layout *l, uint32_t i) {
    return b + 12 + TSEAL_HDR_FIXED + l->m + TSEAL_STANZA_BYTES * l->nrec + TSEAL_SEGENT_BYTES * i;
}

/* Recompute every chunk hash list and list hash from the payload, then re-sign the header
 * with `signer` (which becomes the signature entry's key). Simulates an attacker who can
 * get past the hash layer, so the AEAD and parsing layers are tested on their own. */
static void resign(uint8_t *b, const tseal_seckey *signer) {
    layout l = get_layout(b);
    memcpy(b + 12 + 60, signer->pub.key_id, TSEAL_KEY_ID_BYTES);
    uint8_t d[32], *sig = b + 16 + l.hlen + 4;
    cr_assert_eq(tseal_sha256(b + 12, l.hlen, d), 0);
    memcpy(sig + 4, signer->pub.key_id, TSEAL_KEY_ID_BYTES);
    memcpy(sig + 20, signer->pub.pk, TSEAL_PK_BYTES);
    cr_assert_eq(tseal_sign(signer, TSEAL_SIG_TYPE_HEADER, d, sig + 52), 0);
}

static void reseal(uint8_t *b, const tseal_seckey *signer) {
    layout l = get_layout(b);
    uint32_t nseg = tseal_load_le32(b + 12 + 56), cs = tseal_load_le32(b + 12 + 48);
    for (uint32_t i = 0; i < nseg; i++) {
        uint8_t *e = seg_entry(b, &l, i);
        uint32_t nc = tseal_load_le32(e + 4);
        uint64_t off = l.payload + tseal_load_le64(e + 8), pt = tseal_load_le64(e + 16);
        uint8_t *list = b + off + pt + (uint64_t)nc * TSEAL_AEAD_TAG_BYTES;
        for (uint32_t j = 0; j < nc; j++) {
            uint64_t n = pt - (uint64_t)j * cs < cs ? pt - (uint64_t)j * cs : cs;
            cr_assert_eq(tseal_sha256(b + off + (uint64_t)j * (cs + TSEAL_AEAD_TAG_BYTES),
                                      n + TSEAL_AEAD_TAG_BYTES, list + 32 * j),
                         0);
        }
        cr_assert_eq(tseal_sha256(list, 32 * nc, e + 24), 0);
    }
    resign(b, signer);
}

/* Byte offset of chunk j of segment i. */
static uint64_t chunk_off(const uint8_t *b, uint32_t i, uint32_t j) {
    layout l = get_layout(b);
    const uint8_t *e = seg_entry((uint8_t *)b, &l, i);
    uint32_t cs = tseal_load_le32(b + 12 + 48);
    return l.payload + tseal_load_le64(e + 8) + (uint64_t)j * (cs + TSEAL_AEAD_TAG_BYTES);
}

static uint32_t seg_chunks(const uint8_t *b, uint32_t i) {
    layout l = get_layout(b);
    return tseal_load_le32(seg_entry((uint8_t *)b, &l, i) + 4);
}

/* The segment index of the BF16 matrix (the segment with the most chunks). */
static uint32_t big_segment(const uint8_t *b) {
    uint32_t nseg = tseal_load_le32(b + 12 + 56), best = 0;
    for (uint32_t i = 0; i < nseg; i++)
        if (seg_chunks(b, i) > seg_chunks(b, best)) best = i;
    return best;
}

/* Write the edited image, expect verify --key and unpack to fail with `code` (0 = any). */
static void expect_rejected(fx *f, const uint8_t *b, size_t len, int code, const char *needle) {
    write_file(fp(f, P_TMP), b, len);
    int r = verify_path(f, fp(f, P_TMP), 1);
    cr_assert(r < 0, "verify accepted an attacked container (%s)", needle);
    if (code) cr_assert_eq(r, code, "verify: %d (%s), wanted %d", r, tseal_errmsg(), code);
    if (needle)
        cr_assert(strstr(tseal_errmsg(), needle), "message '%s' lacks '%s'", tseal_errmsg(),
                  needle);
    r = unpack_path(f, fp(f, P_TMP), fp(f, P_RESTORE));
    cr_assert(r < 0, "unpack accepted an attacked container (%s)", needle);
    cr_assert(nothing_named(f->dir, "restored"), "unpack left output behind");
}

/* ---- round trips ------------------------------------------------------------------------ */

Test(container, folder_round_trip_byte_identical) {
    fx f;
    fx_setup(&f, 64);
    tseal_verify_report rep;
    tseal_verify_opts o = vopts(&f, 0);
    cr_assert_eq(tseal_verify(fp(&f, P_OUT), &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert(rep.signature_ok && rep.trusted_signatures == 1 && !rep.decrypted);
    o = vopts(&f, 1);
    cr_assert_eq(tseal_verify(fp(&f, P_OUT), &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert(rep.decrypted && rep.tensors_checked == 3 && rep.files_checked == 2);
    cr_assert_eq(tseal_unpack(fp(&f, P_OUT), fp(&f, P_RESTORE), &o, &rep), 0, "%s", tseal_errmsg());
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/model.safetensors", fp(&f, P_MODEL));
    snprintf(b, sizeof b, "%s/model.safetensors", fp(&f, P_RESTORE));
    cr_assert(files_equal(a, b), "model.safetensors differs");
    snprintf(a, sizeof a, "%s/config.json", fp(&f, P_MODEL));
    snprintf(b, sizeof b, "%s/config.json", fp(&f, P_RESTORE));
    cr_assert(files_equal(a, b), "config.json differs");
    tseal_container_info info;
    cr_assert_eq(tseal_inspect(fp(&f, P_OUT), &info), 0);
    cr_assert_str_eq(info.model_id, "acme/credit-7b");
    cr_assert_eq(info.version, 12);
    cr_assert_eq(info.recipient_count, 1);
    fx_teardown(&f);
}

Test(container, single_file_and_sharded_synthetic_models) {
    fx f;
    fx_setup(&f, 8);
    char model[256], out[256], rest[256], a[600], b[600];
    snprintf(model, sizeof model, "%s/synth", f.dir);
    tseal_synth_opts so = {.preset = "tiny", .seed = 9, .shards = 3};
    cr_assert_eq(tseal_synth_model(model, &so), 0, "%s", tseal_errmsg());
    const char *r[2] = {fp(&f, P_BANK_PUB), fp(&f, P_AUDIT_PUB)};
    tseal_pack_opts po = pack_opts(&f, r, 2);
    po.chunk_size = 0; /* default 64 KiB */
    snprintf(out, sizeof out, "%s/synth.tseal", f.dir);
    cr_assert_eq(tseal_pack(model, out, &po, NULL), 0, "%s", tseal_errmsg());
    snprintf(rest, sizeof rest, "%s/synth-restored", f.dir);
    tseal_verify_opts o = vopts(&f, 0);
    o.key = fp(&f, P_AUDIT_KEY); /* the second recipient */
    cr_assert_eq(tseal_unpack(out, rest, &o, NULL), 0, "%s", tseal_errmsg());
    DIR *d = opendir(model);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(a, sizeof a, "%s/%s", model, e->d_name);
        snprintf(b, sizeof b, "%s/%s", rest, e->d_name);
        cr_assert(files_equal(a, b), "%s differs", e->d_name);
        n++;
    }
    closedir(d);
    cr_assert_eq(n, 6, "3 shards, index, config, generation config: %d files", n);
    /* a single .safetensors file as input */
    snprintf(a, sizeof a, "%s/model-00002-of-00003.safetensors", model);
    cr_assert_eq(tseal_pack(a, out, &po, NULL), 0, "%s", tseal_errmsg());
    snprintf(rest, sizeof rest, "%s/single-restored", f.dir);
    cr_assert_eq(tseal_unpack(out, rest, &o, NULL), 0, "%s", tseal_errmsg());
    snprintf(b, sizeof b, "%s/model-00002-of-00003.safetensors", rest);
    cr_assert(files_equal(a, b));
    fx_teardown(&f);
}

Test(container, wrong_missing_and_too_many_recipients) {
    fx f;
    fx_setup(&f, 8);
    tseal_verify_opts o = vopts(&f, 0);
    o.key = fp(&f, P_AUDIT_KEY); /* not a recipient of this container */
    cr_assert_eq(tseal_verify(fp(&f, P_OUT), &o, NULL), TSEAL_E_VERIFY);
    cr_assert(strstr(tseal_errmsg(), "not encrypted for recipient"), "%s", tseal_errmsg());
    cr_assert_eq(tseal_unpack(fp(&f, P_OUT), fp(&f, P_RESTORE), &o, NULL), TSEAL_E_VERIFY);
    cr_assert(nothing_named(f.dir, "restored"));
    o.key = fp(&f, P_VENDOR_KEY);
    cr_assert_eq(tseal_verify(fp(&f, P_OUT), &o, NULL), TSEAL_E_INVAL);
    tseal_pack_opts po = pack_opts(&f, NULL, 0);
    cr_assert_eq(tseal_pack(fp(&f, P_MODEL), fp(&f, P_TMP), &po, NULL), TSEAL_E_INVAL);
    const char *many[65];
    for (int i = 0; i < 65; i++) many[i] = fp(&f, P_BANK_PUB);
    po = pack_opts(&f, many, 65);
    cr_assert_eq(tseal_pack(fp(&f, P_MODEL), fp(&f, P_TMP), &po, NULL), TSEAL_E_LIMIT);
    po = pack_opts(&f, many, 2);
    cr_assert_eq(tseal_pack(fp(&f, P_MODEL), fp(&f, P_TMP), &po, NULL),
                 TSEAL_E_INVAL); /* duplicate */
    cr_assert(nothing_named(f.dir, "tmp"), "failed packs left output");
    fx_teardown(&f);
}

Test(container, untrusted_signer_and_resigned_header) {
    fx f;
    fx_setup(&f, 8);
    tseal_verify_opts o = vopts(&f, 0);
    const char *t[1] = {fp(&f, P_OTHER_PUB)};
    o.trust = t;
    cr_assert_eq(tseal_verify(fp(&f, P_OUT), &o, NULL), TSEAL_E_VERIFY);
    cr_assert(strstr(tseal_errmsg(), "not trusted"), "%s", tseal_errmsg());
    /* An attacker changes the model version and re-signs with their own key. */
    size_t len;
    uint8_t *b = read_file(fp(&f, P_OUT), &len);
    b[12 + 40] = 99;
    reseal(b, f.other_signer);
    expect_rejected(&f, b, len, TSEAL_E_VERIFY, "not trusted");
    /* The same edit without re-signing breaks the signature. */
    free(b);
    b = read_file(fp(&f, P_OUT), &len);
    b[12 + 40] = 99;
    expect_rejected(&f, b, len, TSEAL_E_VERIFY, "signature");
    free(b);
    fx_teardown(&f);
}

/* ---- every byte, every length ------------------------------------------------------------ */

Test(container, every_single_byte_flip_fails, .timeout = 600) {
    fx f;
    fx_setup(&f, 8);
    size_t len;
    uint8_t *orig = read_file(fp(&f, P_OUT), &len), *b = malloc(len);
    cr_assert(len < 16384, "fixture container is %zu bytes", len);
    for (size_t i = 0; i < len; i++) {
        memcpy(b, orig, len);
        b[i] ^= (uint8_t)(1u << (i % 8));
        write_file(fp(&f, P_TMP), b, len);
        cr_assert(verify_path(&f, fp(&f, P_TMP), 0) < 0,
                  "verify (no key) accepted a flip at byte %zu", i);
        cr_assert(verify_path(&f, fp(&f, P_TMP), 1) < 0, "verify (key) accepted a flip at byte %zu",
                  i);
        cr_assert(unpack_path(&f, fp(&f, P_TMP), fp(&f, P_RESTORE)) < 0,
                  "unpack accepted a flip at byte %zu", i);
    }
    cr_assert(nothing_named(f.dir, "restored"), "unpack left output behind");
    free(orig);
    free(b);
    fx_teardown(&f);
}

Test(container, truncation_at_every_offset_fails, .timeout = 600) {
    fx f;
    fx_setup(&f, 8);
    size_t len;
    uint8_t *orig = read_file(fp(&f, P_OUT), &len);
    for (size_t n = 0; n < len; n++) {
        write_file(fp(&f, P_TMP), orig, n);
        cr_assert(verify_path(&f, fp(&f, P_TMP), 0) < 0, "verify accepted truncation at %zu", n);
        cr_assert(unpack_path(&f, fp(&f, P_TMP), fp(&f, P_RESTORE)) < 0,
                  "unpack accepted truncation at %zu", n);
    }
    /* and appended data */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, orig, len);
    longer[len] = 0;
    write_file(fp(&f, P_TMP), longer, len + 1);
    cr_assert_eq(verify_path(&f, fp(&f, P_TMP), 0), TSEAL_E_CORRUPT);
    cr_assert(strstr(tseal_errmsg(), "after the payload"), "%s", tseal_errmsg());
    cr_assert(nothing_named(f.dir, "restored"));
    free(orig);
    free(longer);
    fx_teardown(&f);
}

/* ---- chunk attacks past the hash layer (AEAD must catch them) ---------------------------- */

static void chunk_attack(int kind) {
    fx f;
    fx_setup(&f, 200); /* the BF16 matrix spans several 4 KiB chunks */
    size_t len;
    uint8_t *b = read_file(fp(&f, P_OUT), &len);
    uint32_t s = big_segment(b), nc = seg_chunks(b, s);
    cr_assert(nc >= 3, "need >= 3 chunks, have %u", nc);
    uint32_t cs = tseal_load_le32(b + 12 + 48), full = cs + TSEAL_AEAD_TAG_BYTES;
    uint8_t *tmp = malloc(full);
    uint64_t c0 = chunk_off(b, s, 0), c1 = chunk_off(b, s, 1);
    if (kind == 0) { /* swap chunks 0 and 1 */
        memcpy(tmp, b + c0, full);
        memcpy(b + c0, b + c1, full);
        memcpy(b + c1, tmp, full);
    } else if (kind == 1) { /* duplicate chunk 0 over chunk 1 */
        memcpy(b + c1, b + c0, full);
    } else if (kind == 2) { /* rotate chunks 0, 1, 2 */
        uint64_t c2 = chunk_off(b, s, 2);
        memcpy(tmp, b + c0, full);
        memcpy(b + c0, b + c1, full);
        memcpy(b + c1, b + c2, full);
        memcpy(b + c2, tmp, full);
    } else if (kind == 3) { /* chunk 0 of the matrix replaced by chunk 0 of another segment */
        uint32_t other = s == 0 ? 1 : 0;
        uint64_t o0 = chunk_off(b, other, 0);
        layout l = get_layout(b);
        uint64_t olen = tseal_load_le64(seg_entry(b, &l, other) + 16) + TSEAL_AEAD_TAG_BYTES;
        if (olen > full) olen = full;
        memcpy(b + c0, b + o0, olen); /* the rest of the chunk keeps its old bytes */
    }
    free(tmp);
    reseal(b, f.vendor);
    expect_rejected(&f, b, len, TSEAL_E_VERIFY, "authentication failed");
    free(b);
    fx_teardown(&f);
}

Test(container_attack, swapped_chunks) {
    chunk_attack(0);
}
Test(container_attack, duplicated_chunk) {
    chunk_attack(1);
}
Test(container_attack, reordered_chunks) {
    chunk_attack(2);
}
Test(container_attack, chunk_from_another_tensor) {
    chunk_attack(3);
}

Test(container_attack, dropped_final_chunk) {
    fx f;
    fx_setup(&f, 200);
    size_t len;
    uint8_t *b = read_file(fp(&f, P_OUT), &len);
    uint32_t s = big_segment(b), nc = seg_chunks(b, s), cs = tseal_load_le32(b + 12 + 48);
    /* Cut the last chunk: the segment becomes exactly (nc - 1) full chunks, and the payload
     * shrinks by the removed chunk and its hash; everything re-signed. Chunk nc-2 was not
     * sealed as the last one, so decryption must fail. */
    layout l = get_layout(b);
    uint8_t *e = seg_entry(b, &l, s);
    uint64_t pt = tseal_load_le64(e + 16), last_len = pt - (uint64_t)(nc - 1) * cs;
    uint64_t cut_at = chunk_off(b, s, nc - 1), cut = last_len + TSEAL_AEAD_TAG_BYTES;
    uint64_t list_old = cut_at + cut;
    /* new layout of this segment: chunks 0..nc-2, then the list without the last hash */
    uint8_t *nb = malloc(len);
    memcpy(nb, b, cut_at);
    memcpy(nb + cut_at, b + list_old, 32 * (nc - 1));
    uint64_t after = list_old + 32 * nc;
    memcpy(nb + cut_at + 32 * (nc - 1), b + after, len - after);
    size_t nlen = len - cut - 32;
    e = seg_entry(nb, &l, s);
    tseal_store_le32(e + 4, nc - 1);
    tseal_store_le64(e + 16, (uint64_t)(nc - 1) * cs);
    uint32_t nseg = tseal_load_le32(nb + 12 + 56);
    for (uint32_t i = s + 1; i < nseg; i++) {
        uint8_t *ei = seg_entry(nb, &l, i);
        tseal_store_le64(ei + 8, tseal_load_le64(ei + 8) - cut - 32);
    }
    tseal_store_le64(nb + 12 + 108, tseal_load_le64(nb + 12 + 108) - cut - 32);
    reseal(nb, f.vendor);
    expect_rejected(&f, nb, nlen, 0, NULL);
    free(b);
    free(nb);
    fx_teardown(&f);
}

Test(container_attack, chunk_from_another_container) {
    fx f;
    fx_setup(&f, 200);
    size_t la, lb;
    uint8_t *a = read_file(fp(&f, P_OUT), &la);
    const char *r[1] = {fp(&f, P_BANK_PUB)};
    tseal_pack_opts o = pack_opts(&f, r, 1);
    cr_assert_eq(tseal_pack(fp(&f, P_MODEL), fp(&f, P_TMP), &o, NULL),
                 0); /* same model, new keys */
    uint8_t *b = read_file(fp(&f, P_TMP), &lb);
    cr_assert_eq(la, lb);
    uint32_t s = big_segment(a), cs = tseal_load_le32(a + 12 + 48);
    uint64_t c = chunk_off(a, s, 1);
    memcpy(a + c, b + c, cs + TSEAL_AEAD_TAG_BYTES);
    reseal(a, f.vendor);
    expect_rejected(&f, a, la, TSEAL_E_VERIFY, "authentication failed");
    free(a);
    free(b);
    fx_teardown(&f);
}

/* ---- header attacks -------------------------------------------------------------------- */

Test(container_attack, header_lengths_and_offsets) {
    fx f;
    fx_setup(&f, 8);
    size_t len;
    uint8_t *orig = read_file(fp(&f, P_OUT), &len), *b = malloc(len);
    layout l = get_layout(orig);
#define EDIT(stmt, code, needle)                                                                   \
    do {                                                                                           \
        memcpy(b, orig, len);                                                                      \
        stmt;                                                                                      \
        expect_rejected(&f, b, len, code, needle);                                                 \
    } while (0)
    EDIT(tseal_store_le32(b + 8, 0xFFFFFFFFu), TSEAL_E_CORRUPT, "header length");
    EDIT(tseal_store_le32(b + 8, 100), TSEAL_E_CORRUPT, "header length");
    EDIT(tseal_store_le32(b + 12 + l.hlen, 0xFFFFFFF0u), TSEAL_E_CORRUPT, "signature block length");
    EDIT((tseal_store_le64(seg_entry(b, &l, 1) + 8, UINT64_MAX - 10), resign(b, f.vendor)),
         TSEAL_E_CORRUPT, "offset");
    EDIT((tseal_store_le64(seg_entry(b, &l, 0) + 16, UINT64_MAX / 2), resign(b, f.vendor)),
         TSEAL_E_CORRUPT, "segment");
    EDIT((tseal_store_le64(b + 12 + 108, UINT64_MAX), resign(b, f.vendor)), TSEAL_E_CORRUPT,
         "payload");
    EDIT((tseal_store_le32(b + 12 + 48, 3000), resign(b, f.vendor)), TSEAL_E_CORRUPT, "chunk size");
    EDIT((b[12 + 52] = 0, resign(b, f.vendor)), TSEAL_E_CORRUPT, "recipient");
    EDIT((b[12 + 52] = 65, resign(b, f.vendor)), TSEAL_E_CORRUPT, "recipient");
    EDIT((b[12] = 2, resign(b, f.vendor)), TSEAL_E_UNSUPPORTED, "format version");
    EDIT((b[12 + 2] = 3, resign(b, f.vendor)), TSEAL_E_UNSUPPORTED, "suite");
    EDIT((b[12 + 4] = 1, resign(b, f.vendor)), TSEAL_E_UNSUPPORTED, "critical");
    EDIT((seg_entry(b, &l, 0)[0] = 9, resign(b, f.vendor)), TSEAL_E_CORRUPT, "kind");
    EDIT((b[12 + TSEAL_HDR_FIXED] = 0x01, resign(b, f.vendor)), TSEAL_E_CORRUPT, "model id");
    EDIT(memcpy(b, "TSEAL\0\r\r", 8), TSEAL_E_CORRUPT, "magic");
#undef EDIT
    free(orig);
    free(b);
    fx_teardown(&f);
}

Test(container_attack, key_commitment_mismatch_and_bad_stanzas) {
    fx f;
    fx_setup(&f, 8);
    size_t len;
    uint8_t *b = read_file(fp(&f, P_OUT), &len);
    layout l = get_layout(b);
    uint8_t *st = b + 12 + TSEAL_HDR_FIXED + l.m; /* the only stanza */
    /* A stanza that correctly wraps a *different* content key for the bank: it unwraps, but
     * the signed key commitment exposes it. */
    uint8_t fake[32] = {7}, ad[32];
    memcpy(ad, b + 12 + 8, 16);
    memcpy(ad + 16, st + 4, 16);
    cr_assert_eq(tseal_x25519_wrap(f.bank->pub.pk, ad, sizeof ad, fake, NULL, st + 20, st + 52), 0);
    reseal(b, f.vendor);
    expect_rejected(&f, b, len, TSEAL_E_VERIFY, "key commitment");
    free(b);
    /* A low-order ephemeral key makes an all-zero shared secret. */
    b = read_file(fp(&f, P_OUT), &len);
    st = b + 12 + TSEAL_HDR_FIXED + l.m;
    static const uint8_t order8[32] = {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae,
                                       0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
                                       0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd,
                                       0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00};
    memcpy(st + 20, order8, 32);
    reseal(b, f.vendor);
    expect_rejected(&f, b, len, TSEAL_E_CORRUPT, "all-zero");
    free(b);
    /* A stanza for someone else only: no matching recipient. */
    b = read_file(fp(&f, P_OUT), &len);
    st = b + 12 + TSEAL_HDR_FIXED + l.m;
    st[4] ^= 1;
    reseal(b, f.vendor);
    expect_rejected(&f, b, len, TSEAL_E_VERIFY, "not encrypted for recipient");
    free(b);
    fx_teardown(&f);
}

/* ---- hostile manifests ------------------------------------------------------------------- */

/* Replace the manifest (last segment) with `json`, encrypted with the real content key, and
 * re-sign: what a malicious or compromised signer could produce. */
static uint8_t *with_manifest(fx *f, const char *json, size_t *out_len) {
    tseal_container *c;
    cr_assert_eq(tseal_container_open(fp(f, P_OUT), &c), 0);
    uint8_t ck[32];
    cr_assert_eq(tseal_container_unwrap(c, f->bank, ck), 0, "%s", tseal_errmsg());
    uint32_t idx = c->h.n_segments - 1, cs = c->h.chunk_size;
    uint64_t old_off = c->payload_start + c->h.segments[idx].offset;
    size_t len;
    uint8_t *b = read_file(fp(f, P_OUT), &len);
    size_t pt = strlen(json);
    uint32_t nc = tseal_seg_chunk_count(pt, cs);
    uint64_t ct_len = tseal_seg_ct_len(pt, nc);
    size_t nlen = old_off + ct_len;
    b = realloc(b, nlen);
    uint8_t key[32];
    cr_assert_eq(tseal_segment_key(ck, c->h.container_id, idx, key), 0);
    for (uint32_t j = 0; j < nc; j++) {
        uint64_t n = pt - (uint64_t)j * cs < cs ? pt - (uint64_t)j * cs : cs;
        uint8_t nonce[12], ad[TSEAL_CHUNK_AD_BYTES];
        tseal_chunk_nonce(j, j + 1 == nc, nonce);
        tseal_chunk_ad(c->h.container_id, idx, TSEAL_SEG_MANIFEST, ad);
        cr_assert_eq(tseal_aead_encrypt(b + old_off + (uint64_t)j * (cs + 16),
                                        (const uint8_t *)json + (uint64_t)j * cs, n, ad, sizeof ad,
                                        nonce, key),
                     0);
    }
    layout l = get_layout(b);
    uint8_t *e = seg_entry(b, &l, idx);
    tseal_store_le32(e + 4, nc);
    tseal_store_le64(e + 16, pt);
    tseal_store_le64(b + 12 + 108, c->h.segments[idx].offset + ct_len);
    reseal(b, f->vendor);
    tseal_container_close(c);
    *out_len = nlen;
    return b;
}

/* The real manifest, decrypted. */
static char *real_manifest(fx *f) {
    tseal_container *c;
    cr_assert_eq(tseal_container_open(fp(f, P_OUT), &c), 0);
    uint8_t ck[32];
    cr_assert_eq(tseal_container_unwrap(c, f->bank, ck), 0);
    tseal_segreader r;
    cr_assert_eq(tseal_segreader_open(&r, c, c->h.n_segments - 1, ck), 0);
    char *out = calloc(1, c->h.segments[c->h.n_segments - 1].pt_len + 1);
    uint8_t *chunk = malloc(c->h.chunk_size);
    uint64_t pos = 0, n;
    while (tseal_segreader_next(&r, chunk, &n) == 1) {
        memcpy(out + pos, chunk, n);
        pos += n;
    }
    tseal_segreader_close(&r);
    free(chunk);
    tseal_container_close(c);
    return out;
}

static char *replace(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    cr_assert_not_null(p, "'%s' not in the manifest", from);
    size_t a = (size_t)(p - s), n = strlen(s) - strlen(from) + strlen(to);
    char *r = malloc(n + 1);
    memcpy(r, s, a);
    strcpy(r + a, to);
    strcat(r, p + strlen(from));
    return r;
}

static void manifest_attack(const char *from, const char *to, const char *needle) {
    fx f;
    fx_setup(&f, 8);
    char *m = real_manifest(&f), *bad = replace(m, from, to);
    size_t len;
    uint8_t *b = with_manifest(&f, m, &len); /* sanity: the unmodified manifest still verifies */
    write_file(fp(&f, P_TMP), b, len);
    cr_assert_eq(verify_path(&f, fp(&f, P_TMP), 1), 0, "%s", tseal_errmsg());
    free(b);
    b = with_manifest(&f, bad, &len);
    expect_rejected(&f, b, len, 0, needle);
    char esc[300];
    snprintf(esc, sizeof esc, "%s/../evil", f.dir);
    cr_assert(access(esc, F_OK) != 0, "path traversal wrote outside the output");
    free(b);
    free(m);
    free(bad);
    fx_teardown(&f);
}

Test(container_attack, manifest_path_traversal) {
    manifest_attack("\"path\":\"config.json\"", "\"path\":\"../evil\"", "unsafe");
}
Test(container_attack, manifest_absolute_path) {
    manifest_attack("\"path\":\"config.json\"", "\"path\":\"/tmp/evil\"", "unsafe");
}
Test(container_attack, manifest_duplicate_path) {
    manifest_attack("\"path\":\"config.json\"", "\"path\":\"model.safetensors\"", "duplicate path");
}
Test(container_attack, manifest_segment_reused) {
    manifest_attack("\"segment\":0", "\"segment\":1", "segment");
}
Test(container_attack, manifest_wrong_digest) {
    manifest_attack("\"sha256\":\"", "\"sha256\":\"0", "digest");
}
Test(container_attack, manifest_model_id_differs) {
    manifest_attack("\"model_id\":\"acme/credit-7b\"", "\"model_id\":\"acme/other\"", "model id");
}
Test(container_attack, manifest_unknown_member) {
    manifest_attack("\"tseal_manifest\":1", "\"tseal_manifest\":1,\"x\":2", "unknown member");
}
Test(container_attack, manifest_not_json) {
    manifest_attack("{", "[", "manifest");
}

Test(container, model_id_with_control_characters_refused) {
    fx f;
    fx_setup(&f, 8);
    const char *r[1] = {fp(&f, P_BANK_PUB)};
    tseal_pack_opts o = pack_opts(&f, r, 1);
    o.model_id = "acme/\xc2\x9b"
                 "31mred"; /* C1 CSI: a terminal escape */
    cr_assert_eq(tseal_pack(fp(&f, P_MODEL), fp(&f, P_TMP), &o, NULL), TSEAL_E_INVAL);
    cr_assert(strstr(tseal_errmsg(), "control characters"), "%s", tseal_errmsg());
    o.model_id = "acme/\x1b[31m";
    cr_assert_eq(tseal_pack(fp(&f, P_MODEL), fp(&f, P_TMP), &o, NULL), TSEAL_E_INVAL);
    fx_teardown(&f);
}
