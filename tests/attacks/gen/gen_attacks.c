/*
 * gen_attacks.c - writes the attack corpus of tests/attacks (see tests/attacks/README.md):
 * the fixed test keys (keys/), every crafted file (files/) and the table of expected
 * rejections (expected.tsv) that tests/attacks/run.sh replays through the real `tseal` CLI.
 *
 * Usage (from the repository root; `make attacks-regen` builds and runs it):
 *   build/tests/attacks/gen_attacks [tests/attacks]
 *
 * Deterministic: keys come from fixed seeds, containers are packed with fixed randomness and a
 * fixed creation time, every later edit is re-signed with Ed25519 (deterministic), so running
 * it again rewrites the same bytes. Not run by `make test` (the files are committed).
 *
 * Containers are attacked at three depths, as in tests/test_container.c:
 *   - raw bytes, left unsigned (the signature or the hash layer must catch the change);
 *   - raw bytes, then every chunk hash list recomputed and the header re-signed (reseal():
 *     what a malicious or compromised signer can do), so the AEAD and parsing layers are
 *     tested on their own;
 *   - plaintext segments (decrypted with the bank key) modified and re-encrypted with the real
 *     content key, then re-signed (plain_build(): the coded-tensor attacks).
 * The coded-tensor blobs are also checked here against the library (the view must accept or
 * reject them as intended, and both decoders must refuse the ones it accepts: the fast one,
 * which verify and unpack use, with the intended message), so a change in the order of the
 * codec's checks is noticed when the corpus is regenerated.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "internal.h"
#include "tseal_crypto.h"
#include "tseal_policy.h"

/* ---- fixed parameters ------------------------------------------------------------------- */

#define MODEL_ID    "acme/credit-7b"
#define VERSION     12
#define CREATED     1700000000LL /* 2023-11-14T22:13:20Z: the base containers' creation time */
#define PAST        1704067200LL /* 2024-01-01T00:00:00Z: an expiry already past */
#define FUTURE      4102444800LL /* 2100-01-01T00:00:00Z: a creation time in the future */
#define AUDIT_TIME  1700003600LL
#define CHUNK       4096
#define POLICY_ID   "bank-prod"
#define HDR         TSEAL_SIG_TYPE_HEADER
#define MAX_CASES   512
#define MAX_SIGNERS 4

static char g_files[1024], g_keys[1024], g_tmp[64];

/* ---- errors, memory, files -------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gen_attacks: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

#define CK(call)                                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_) die("%s:%d: %s failed (%d): %s", __FILE__, __LINE__, #call, rc_, tseal_errmsg()); \
    } while (0)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) die("%s:%d: assertion failed: %s", __FILE__, __LINE__, #cond);                \
    } while (0)

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static void *xmemdup(const void *p, size_t n) {
    void *q = xmalloc(n);
    if (n) memcpy(q, p, n);
    return q;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) die("out of memory");
    va_end(ap);
    return s;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) die("%s: %s", path, strerror(errno));
    if (n && fwrite(p, 1, n, f) != n) die("%s: write failed", path);
    if (fclose(f) != 0) die("%s: close failed", path);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) die("%s: seek failed", path);
    long len = ftell(f);
    if (len < 0) die("%s: ftell failed", path);
    rewind(f);
    uint8_t *b = xmalloc((size_t)len + 1);
    if ((size_t)len && fread(b, 1, (size_t)len, f) != (size_t)len) die("%s: read failed", path);
    fclose(f);
    b[len] = 0;
    *n = (size_t)len;
    return b;
}

/* Path of a corpus file (static buffers, rotating: valid for a few calls). */
static const char *fpath(const char *name) {
    static char buf[4][1200];
    static unsigned k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", g_files, name);
    return p;
}

static void put_file(const char *name, const void *p, size_t n) {
    if (n > 64 * 1024) die("%s: %zu bytes: corpus files must stay small", name, n);
    write_bytes(fpath(name), p, n);
}

static void put_text(const char *name, const char *s) {
    put_file(name, s, strlen(s));
}

/* Remove the regular files of `dir` (stale files of renamed cases). */
static void clear_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) die("%s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *p = xprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && unlink(p) != 0)
            die("%s: %s", p, strerror(errno));
        free(p);
    }
    closedir(d);
}

static void mkdir_p(const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) die("%s: %s", dir, strerror(errno));
}

static char *b64(const void *p, size_t n) {
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *s = xmalloc(cap);
    sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

static uint8_t *unb64(const char *s, size_t *n) {
    size_t cap = strlen(s) + 1;
    uint8_t *b = xmalloc(cap);
    if (sodium_base642bin(b, cap, s, strlen(s), NULL, n, NULL, sodium_base64_VARIANT_ORIGINAL))
        die("bad base64");
    return b;
}

/* ---- the table of cases (expected.tsv) ------------------------------------------------------ */

typedef struct {
    int cls, code;
    char *file, *cmd, *msg, *desc;
} acase;

static acase g_cases[MAX_CASES];
static unsigned g_ncases;

static void check_field(const char *s) {
    if (!*s || strpbrk(s, "\t\n\r")) die("bad expected.tsv field '%s'", s);
}

/* One replayed case: `file` under files/, `cmd` one of the runner's commands, the exit code,
 * the class (0 = control), what is attacked, and a substring of the expected message. */
static void add_case(int cls, const char *file, const char *cmd, int code, const char *desc,
                     const char *msgfmt, ...) __attribute__((format(printf, 6, 7)));
static void add_case(int cls, const char *file, const char *cmd, int code, const char *desc,
                     const char *msgfmt, ...) {
    if (g_ncases == MAX_CASES) die("too many cases");
    va_list ap;
    va_start(ap, msgfmt);
    char *msg = NULL;
    if (vasprintf(&msg, msgfmt, ap) < 0) die("out of memory");
    va_end(ap);
    acase *c = &g_cases[g_ncases++];
    c->cls = cls;
    c->code = code;
    c->file = xprintf("%s", file);
    c->cmd = xprintf("%s", cmd);
    c->msg = msg;
    c->desc = xprintf("%s", desc);
    check_field(c->file);
    check_field(c->cmd);
    check_field(c->msg);
    check_field(c->desc);
}

static void write_expected(const char *root) {
    char *path = xprintf("%s/expected.tsv", root);
    FILE *f = fopen(path, "w");
    if (!f) die("%s: %s", path, strerror(errno));
    fputs("# tests/attacks/expected.tsv - written by tests/attacks/gen/gen_attacks.c "
          "(make attacks-regen); replayed by tests/attacks/run.sh.\n"
          "# file\tcommand\texit code\tmessage substring\tclass\tdescription\n",
          f);
    for (unsigned i = 0; i < g_ncases; i++) {
        const acase *c = &g_cases[i];
        fprintf(f, "%s\t%s\t%d\t%s\t%d\t%s\n", c->file, c->cmd, c->code, c->msg, c->cls, c->desc);
    }
    if (fclose(f) != 0) die("%s: close failed", path);
    free(path);
}

/* ---- keys ----------------------------------------------------------------------------------- */

typedef struct {
    tseal_seckey *sk;
    char sk_path[1200], pk_path[1200];
    char hex[2 * TSEAL_KEY_ID_BYTES + 1]; /* key id */
    char short_hex[20];                   /* first 16 hex digits, as policy reasons show them */
    char *b64;                            /* public key */
} tkey;

static tkey K_vendor, K_other, K_revoked, K_policy, K_auditor, K_bank, K_audit;

static void make_key(tkey *k, tseal_key_kind kind, const char *name, uint8_t seed) {
    tseal_rng rng = {.counter = 0};
    memset(rng.seed, seed, sizeof rng.seed);
    CK(tseal_keygen(kind, name, &rng, &k->sk));
    const char *ext = kind == TSEAL_KEY_SIGN ? ".sign" : "";
    snprintf(k->sk_path, sizeof k->sk_path, "%s/%s%s.key", g_keys, name, ext);
    snprintf(k->pk_path, sizeof k->pk_path, "%s/%s%s.pub", g_keys, name, ext);
    CK(tseal_seckey_write(k->sk, k->sk_path, NULL, 0, 1));
    CK(tseal_pubkey_write(&k->sk->pub, k->pk_path, 1));
    tseal_key_id_hex(k->sk->pub.key_id, k->hex);
    snprintf(k->short_hex, sizeof k->short_hex, "%.16s", k->hex);
    k->b64 = b64(k->sk->pub.pk, TSEAL_PK_BYTES);
}

static void free_key(tkey *k) {
    tseal_seckey_free(k->sk);
    free(k->b64);
}

/* ---- models and packing ------------------------------------------------------------------- */

static void write_matrix(tseal_st_writer *w, uint64_t rows, uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t i = 0; i < rows * 64; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0 - 0.5;
        uint16_t v = tseal_f32_to_bf16((float)(0.04 * u * (1 + (x >> 60))));
        CK(tseal_st_writer_write(w, &v, 2));
    }
}

/* A small model folder: model.safetensors (BF16 matrix `layer.weight` [rows, 64], with
 * `second` also `layer2.weight`, the same weights again, an F32 vector and a BF16 vector) and a
 * config.json, so every segment kind and both tensor encodings appear. */
static void make_model(const char *dir, uint64_t rows, int second) {
    mkdir_p(dir);
    char *p = xprintf("%s/model.safetensors", dir);
    tseal_st_writer *w;
    CK(tseal_st_writer_open(p, &w));
    uint64_t s1[2] = {rows, 64}, s2[1] = {10}, s3[1] = {3};
    CK(tseal_st_writer_add(w, "layer.weight", TSEAL_DT_BF16, 2, s1));
    if (second) CK(tseal_st_writer_add(w, "layer2.weight", TSEAL_DT_BF16, 2, s1));
    CK(tseal_st_writer_add(w, "layer.scale", TSEAL_DT_F32, 1, s2));
    CK(tseal_st_writer_add(w, "layer.bias", TSEAL_DT_BF16, 1, s3));
    write_matrix(w, rows, 12345);
    if (second) write_matrix(w, rows, 12345); /* the same weights: only the keys tell them apart */
    float sc[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint16_t bias[3] = {0x3F80, 0x0000, 0xBF80};
    CK(tseal_st_writer_write(w, sc, sizeof sc));
    CK(tseal_st_writer_write(w, bias, sizeof bias));
    CK(tseal_st_writer_commit(w));
    free(p);
    p = xprintf("%s/config.json", dir);
    const char *cfg = "{\"architectures\": [\"TinyModel\"], \"hidden_size\": 64}\n";
    write_bytes(p, cfg, strlen(cfg));
    free(p);
}

/* Pack `model` into `path` for the bank, signed by `signer`, with the randomness of `seed`
 * and the fixed creation time. */
static void pack(const char *model, const char *path, uint8_t seed, int64_t expires,
                 const tkey *signer) {
    const char *r[1] = {K_bank.pk_path};
    uint8_t s[32];
    memset(s, seed, sizeof s);
    tseal_pack_opts o;
    memset(&o, 0, sizeof o);
    o.model_id = MODEL_ID;
    o.version = VERSION;
    o.expires = expires;
    o.chunk_size = CHUNK;
    o.sign_key = signer->sk_path;
    o.recipients = r;
    o.n_recipients = 1;
    o.threads = 1;
    o.test_seed = s;
    o.test_created = CREATED;
    CK(tseal_pack(model, path, &o, NULL));
}

/* ---- container images: raw bytes with the layout of docs/FORMAT.md section 5 ---------------- */

typedef struct {
    uint8_t *b;
    size_t n;
} img;

static img img_read(const char *path) {
    img m;
    m.b = read_bytes(path, &m.n);
    return m;
}

static img img_dup(const img *m) {
    img c = {xmemdup(m->b, m->n), m->n};
    return c;
}

static void img_put(const img *m, const char *name) {
    put_file(name, m->b, m->n);
}

static void img_free(img *m) {
    free(m->b);
    m->b = NULL;
    m->n = 0;
}

static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}
static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint8_t *H(const img *m) {
    return m->b + 12;
}
static uint32_t hlen(const img *m) {
    return tseal_load_le32(m->b + 8);
}
static uint32_t n_rec(const img *m) {
    return get16(H(m) + 52);
}
static uint32_t mid_len(const img *m) {
    return get16(H(m) + 54);
}
static uint32_t n_seg(const img *m) {
    return tseal_load_le32(H(m) + 56);
}
static uint32_t chunk_size(const img *m) {
    return tseal_load_le32(H(m) + 48);
}
static uint64_t pay_start(const img *m) {
    return 16 + (uint64_t)hlen(m) + tseal_load_le32(m->b + 12 + hlen(m));
}
static uint8_t *stanza(const img *m, uint32_t i) {
    return H(m) + TSEAL_HDR_FIXED + mid_len(m) + TSEAL_STANZA_BYTES * i;
}
static uint8_t *segent(const img *m, uint32_t i) {
    return H(m) + TSEAL_HDR_FIXED + mid_len(m) + TSEAL_STANZA_BYTES * n_rec(m) +
           TSEAL_SEGENT_BYTES * i;
}
static uint32_t seg_chunks(const img *m, uint32_t i) {
    return tseal_load_le32(segent(m, i) + 4);
}
static uint64_t seg_pt(const img *m, uint32_t i) {
    return tseal_load_le64(segent(m, i) + 16);
}
static uint64_t seg_at(const img *m, uint32_t i) {
    return pay_start(m) + tseal_load_le64(segent(m, i) + 8);
}
/* File offset and size (ciphertext + tag) of chunk j of segment i. */
static uint64_t chunk_at(const img *m, uint32_t i, uint32_t j) {
    return seg_at(m, i) + (uint64_t)j * (chunk_size(m) + TSEAL_AEAD_TAG_BYTES);
}
static uint64_t chunk_len(const img *m, uint32_t i, uint32_t j) {
    uint64_t cs = chunk_size(m), first = (uint64_t)j * cs, pt = seg_pt(m, i);
    return (pt - first < cs ? pt - first : cs) + TSEAL_AEAD_TAG_BYTES;
}
/* File offset of segment i's chunk hash list. */
static uint64_t list_at(const img *m, uint32_t i) {
    return seg_at(m, i) + seg_pt(m, i) + (uint64_t)seg_chunks(m, i) * TSEAL_AEAD_TAG_BYTES;
}

/* Replace `del` bytes at `off` by `n` bytes of `ins` (NULL: zeros). */
static void img_splice(img *m, size_t off, size_t del, const void *ins, size_t n) {
    ASSERT(off + del <= m->n);
    size_t nn = m->n - del + n;
    uint8_t *b = xmalloc(nn);
    memcpy(b, m->b, off);
    if (ins)
        memcpy(b + off, ins, n);
    else
        memset(b + off, 0, n);
    memcpy(b + off + n, m->b + off + del, m->n - off - del);
    free(m->b);
    m->b = b;
    m->n = nn;
}

/* Replace the signature block by signatures of `signers` with payload type `type` over the
 * SHA-256 of the header; the first signer becomes the header's signer_key_id. */
static void img_sign(img *m, const tkey *const *signers, unsigned n, const char *type) {
    ASSERT(n >= 1 && n <= MAX_SIGNERS);
    memcpy(H(m) + 60, signers[0]->sk->pub.key_id, TSEAL_KEY_ID_BYTES);
    uint8_t d[TSEAL_HASH_BYTES];
    CK(tseal_sha256(H(m), hlen(m), d));
    size_t blen = 4 + (size_t)n * TSEAL_SIGENT_BYTES;
    uint8_t blk[4 + 4 + MAX_SIGNERS * TSEAL_SIGENT_BYTES];
    memset(blk, 0, sizeof blk);
    tseal_store_le32(blk, (uint32_t)blen);
    put16(blk + 4, (uint16_t)n);
    for (unsigned k = 0; k < n; k++) {
        uint8_t *e = blk + 8 + k * TSEAL_SIGENT_BYTES;
        e[0] = TSEAL_ALG_ED25519;
        memcpy(e + 4, signers[k]->sk->pub.key_id, TSEAL_KEY_ID_BYTES);
        memcpy(e + 20, signers[k]->sk->pub.pk, TSEAL_PK_BYTES);
        CK(tseal_sign(signers[k]->sk, type, d, e + 52));
    }
    size_t at = 12 + (size_t)hlen(m), old = 4 + tseal_load_le32(m->b + at);
    img_splice(m, at, old, blk, 4 + blen);
}

static void resign(img *m, const tkey *signer) {
    const tkey *s[1] = {signer};
    img_sign(m, s, 1, HDR);
}

/* Recompute every chunk hash list and list hash from the ciphertext as it now is. */
static void img_rehash(img *m) {
    for (uint32_t i = 0; i < n_seg(m); i++) {
        uint32_t nc = seg_chunks(m, i);
        ASSERT(list_at(m, i) + 32ull * nc <= m->n);
        uint8_t *list = m->b + list_at(m, i);
        for (uint32_t j = 0; j < nc; j++)
            CK(tseal_sha256(m->b + chunk_at(m, i, j), chunk_len(m, i, j), list + 32 * j));
        CK(tseal_sha256(list, 32ull * nc, segent(m, i) + 24));
    }
}

/* What a malicious or compromised signer can do after an edit: hash lists and signature. */
static void reseal(img *m, const tkey *signer) {
    img_rehash(m);
    resign(m, signer);
}

/* Segment i's on-disk size changed by `delta` bytes: later offsets and payload_bytes follow. */
static void shift_after(img *m, uint32_t i, int64_t delta) {
    for (uint32_t k = i + 1; k < n_seg(m); k++)
        tseal_store_le64(segent(m, k) + 8, tseal_load_le64(segent(m, k) + 8) + (uint64_t)delta);
    tseal_store_le64(H(m) + 108, tseal_load_le64(H(m) + 108) + (uint64_t)delta);
}

/* The two segments with the most chunks (the BF16 matrices), lower index first. */
static void big_segments(const img *m, uint32_t *a, uint32_t *b) {
    uint32_t best = 0, second = 1;
    if (seg_chunks(m, second) > seg_chunks(m, best)) best = 1, second = 0;
    for (uint32_t i = 2; i < n_seg(m); i++) {
        if (seg_chunks(m, i) > seg_chunks(m, best)) {
            second = best;
            best = i;
        } else if (seg_chunks(m, i) > seg_chunks(m, second)) {
            second = i;
        }
    }
    *a = best < second ? best : second;
    *b = best < second ? second : best;
}

/* ---- plaintext containers: decrypted with the bank key, re-encrypted with the real key ------ */

typedef struct {
    tseal_header h; /* stanzas and segments owned */
    uint8_t ck[TSEAL_SYM_KEY_BYTES];
    uint8_t **pt;
    uint64_t *len;
} plain;

static void plain_load(plain *p, const char *path) {
    tseal_container *c;
    CK(tseal_container_open(path, &c));
    CK(tseal_container_unwrap(c, K_bank.sk, p->ck));
    p->h = c->h;
    p->h.stanzas = xmemdup(c->h.stanzas, c->h.n_recipients * sizeof *c->h.stanzas);
    p->h.segments = xmemdup(c->h.segments, c->h.n_segments * sizeof *c->h.segments);
    p->pt = calloc(c->h.n_segments, sizeof *p->pt);
    p->len = calloc(c->h.n_segments, sizeof *p->len);
    ASSERT(p->pt && p->len);
    for (uint32_t i = 0; i < c->h.n_segments; i++) {
        p->len[i] = c->h.segments[i].pt_len;
        p->pt[i] = xmalloc(p->len[i]);
        CK(tseal_segment_decrypt_all(c, i, p->ck, p->pt[i], 1));
    }
    tseal_container_close(c);
}

static void plain_free(plain *p) {
    for (uint32_t i = 0; i < p->h.n_segments; i++) free(p->pt[i]);
    free(p->pt);
    free(p->len);
    tseal_header_free(&p->h);
}

/* Encrypt every segment with the real content key and key schedule, write the header and
 * sign it: a container as valid as pack makes it, holding whatever the plaintexts now say. */
static img plain_build(const plain *p, const tkey *signer) {
    tseal_header h = p->h;
    h.segments = xmemdup(p->h.segments, h.n_segments * sizeof *h.segments);
    uint64_t total = 0;
    for (uint32_t i = 0; i < h.n_segments; i++)
        total += tseal_seg_ct_len(p->len[i], tseal_seg_chunk_count(p->len[i], h.chunk_size));
    uint8_t *pay = xmalloc(total);
    uint64_t pos = 0;
    for (uint32_t i = 0; i < h.n_segments; i++) {
        tseal_segment *s = &h.segments[i];
        uint8_t key[TSEAL_SYM_KEY_BYTES];
        CK(tseal_segment_key(p->ck, h.container_id, i, key));
        s->chunk_count = tseal_seg_chunk_count(p->len[i], h.chunk_size);
        s->offset = pos;
        s->pt_len = p->len[i];
        CK(tseal_segment_encrypt_all(h.suite, key, h.container_id, i, s->kind, h.chunk_size,
                                     p->pt[i], p->len[i], pay + pos, s->list_hash, 1));
        pos += tseal_seg_ct_len(p->len[i], s->chunk_count);
    }
    h.payload_bytes = total;
    uint64_t hs = tseal_header_size(&h);
    img m;
    m.n = 16 + hs + total; /* img_sign splices the signature block in */
    m.b = xmalloc(m.n);
    memcpy(m.b, TSEAL_MAGIC, TSEAL_MAGIC_BYTES);
    tseal_store_le32(m.b + 8, (uint32_t)hs);
    CK(tseal_header_write(&h, m.b + 12, hs));
    tseal_store_le32(m.b + 12 + hs, 0);
    memcpy(m.b + 16 + hs, pay, total);
    free(pay);
    free(h.segments);
    resign(&m, signer);
    return m;
}

/* The first segment holding a HUFF-coded tensor. */
static uint32_t huff_segment(const plain *p) {
    for (uint32_t i = 0; i < p->h.n_segments; i++)
        if (p->h.segments[i].kind == TSEAL_SEG_TENSOR && p->len[i] >= TSEAL_CT_HEADER_BYTES &&
            memcmp(p->pt[i], TSEAL_CT_MAGIC, 4) == 0 && p->pt[i][4] == TSEAL_CT_MODE_HUFF)
            return i;
    die("no HUFF-coded tensor in the base container");
}

/* ---- safetensors files (classes 1-6) -----------------------------------------------------------
 */

/* u64 header length (`len_override` if nonzero, else the header's), header bytes, then
 * `data` bytes of data (a fixed pattern). */
static void st_file(const char *name, const char *header, size_t hdr_n, uint64_t len_override,
                    size_t data) {
    size_t n = 8 + hdr_n + data;
    uint8_t *b = xmalloc(n);
    tseal_store_le64(b, len_override ? len_override : hdr_n);
    memcpy(b + 8, header, hdr_n);
    for (size_t i = 0; i < data; i++) b[8 + hdr_n + i] = (uint8_t)(0x3F + i % 3);
    put_file(name, b, n);
    free(b);
}

static void st_text(const char *name, const char *header, size_t data) {
    st_file(name, header, strlen(header), 0, data);
}

/* A safetensors case: replayed by `check` and by `pack` (which must leave no output). */
static void st_case(int cls, const char *name, int code, const char *desc, const char *msg) {
    add_case(cls, name, "check", code, desc, "%s", msg);
    add_case(cls, name, "pack", code, desc, "%s", msg);
}

#define W_OK_ENTRY "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}"
#define W_OK_HDR   "{" W_OK_ENTRY "}"

static void gen_safetensors(void) {
    /* controls */
    st_text("c00-st-valid.safetensors", W_OK_HDR, 12);
    add_case(0, "c00-st-valid.safetensors", "check", 0, "control: a valid file is accepted",
             "valid: 1 tensors, 12 bytes");
    st_text("c00-st-zero-dim-valid.safetensors",
            "{\"e\":{\"dtype\":\"BF16\",\"shape\":[0,9007199254740992],\"data_offsets\":[0,0]}}",
            0);
    add_case(0, "c00-st-zero-dim-valid.safetensors", "check", 0,
             "control: a zero dimension with a huge other one is a valid empty tensor (the "
             "product is 0, nothing overflows)",
             "valid: 1 tensors, 0 bytes");

    /* (1) header length */
    st_file("c01-st-header-len-over-cap.safetensors", W_OK_HDR, strlen(W_OK_HDR), 100000001ull, 12);
    st_case(1, "c01-st-header-len-over-cap.safetensors", 3,
            "header length 100000001: over the 100 MB cap (refused before any allocation)",
            "header length 100000001 exceeds the limit of 100000000 bytes");
    st_file("c01-st-header-len-past-eof.safetensors", W_OK_HDR, strlen(W_OK_HDR), 4096, 12);
    st_case(1, "c01-st-header-len-past-eof.safetensors", 3,
            "header length 4096 in a file of 78 bytes (past the end of the file)",
            "header length 4096 exceeds the 70 bytes after the length prefix");
    st_file("c01-st-header-len-overflow.safetensors", W_OK_HDR, strlen(W_OK_HDR), UINT64_MAX, 12);
    st_case(1, "c01-st-header-len-overflow.safetensors", 3,
            "header length 0xFFFFFFFFFFFFFFFF (8 + length wraps around)",
            "header length 18446744073709551615 exceeds the limit");

    /* (2) header text */
    st_text("c02-st-header-invalid-utf8.safetensors",
            "{\"w\xff\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12);
    st_case(2, "c02-st-header-invalid-utf8.safetensors", 3,
            "byte 0xFF in a tensor name (not UTF-8)",
            "header is not valid UTF-8 (at header offset 3)");
    st_text("c02-st-header-overlong-utf8.safetensors",
            "{\"w\xc0\xaf\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12);
    st_case(2, "c02-st-header-overlong-utf8.safetensors", 3,
            "overlong UTF-8 encoding of '/' (C0 AF) in a tensor name",
            "header is not valid UTF-8 (at header offset 3)");
    st_text("c02-st-header-not-json.safetensors", "{" W_OK_ENTRY, 12);
    st_case(2, "c02-st-header-not-json.safetensors", 3, "header JSON with its last '}' missing",
            "header is not valid JSON");
    st_text("c02-st-header-tab-padding.safetensors", W_OK_HDR "\t   ", 12);
    st_case(2, "c02-st-header-tab-padding.safetensors", 3,
            "a tab after the JSON object (only spaces may pad the header)",
            "byte 0x09 at header offset 58 after the JSON value (only spaces may pad the header)");
    st_text("c02-st-header-bom.safetensors", "\xef\xbb\xbf" W_OK_HDR, 12);
    st_case(2, "c02-st-header-bom.safetensors", 3,
            "a UTF-8 byte order mark before the JSON (cJSON would skip it)",
            "header must start with '{', found byte 0xef");
    static const char nul_hdr[] = W_OK_HDR "\0  ";
    st_file("c02-st-header-nul.safetensors", nul_hdr, sizeof nul_hdr - 1, 0, 12);
    st_case(2, "c02-st-header-nul.safetensors", 3, "a NUL byte in the header padding",
            "NUL byte at header offset 58");

    /* (3) duplicates */
    st_text("c03-st-duplicate-tensor-name.safetensors",
            "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
            "\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[6,12]}}",
            12);
    st_case(3, "c03-st-duplicate-tensor-name.safetensors", 3,
            "two tensors named 'w' (readers would disagree on which one is meant)",
            "duplicate tensor name 'w'");
    st_text(
        "c03-st-duplicate-key-in-entry.safetensors",
        "{\"w\":{\"dtype\":\"BF16\",\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}",
        12);
    st_case(3, "c03-st-duplicate-key-in-entry.safetensors", 3,
            "'dtype' twice inside one tensor entry (BF16 and F32)",
            "tensor 'w': duplicate key 'dtype'");
    st_text("c03-st-duplicate-metadata.safetensors",
            "{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"a\":\"2\"}," W_OK_ENTRY "}", 12);
    st_case(3, "c03-st-duplicate-metadata.safetensors", 3, "two __metadata__ objects",
            "duplicate key '__metadata__'");

    /* (4) offsets */
    st_text("c04-st-offsets-reversed.safetensors",
            "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[12,0]}}", 12);
    st_case(4, "c04-st-offsets-reversed.safetensors", 3, "data_offsets [12, 0]: begin > end",
            "tensor 'w': data_offsets [12, 0]: begin > end");
    st_text("c04-st-offsets-out-of-bounds.safetensors", W_OK_HDR, 6);
    st_case(4, "c04-st-offsets-out-of-bounds.safetensors", 3,
            "data_offsets [0, 12] with a 6-byte data buffer",
            "data_offsets [0, 12]: end is past the 6-byte data buffer");
    st_text("c04-st-offsets-overlap.safetensors",
            "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
            "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[6,18]}}",
            18);
    st_case(4, "c04-st-offsets-overlap.safetensors", 3,
            "tensors a [0, 12) and b [6, 18) share 6 bytes",
            "overlap: tensor 'b' [6, 18) overlaps tensor 'a' [0, 12)");
    st_text("c04-st-offsets-gap.safetensors",
            "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
            "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[16,28]}}",
            28);
    st_case(4, "c04-st-offsets-gap.safetensors", 3,
            "4 unowned bytes between tensors a and b (a place to hide data)",
            "hole: data bytes [12, 16) between tensors 'a' and 'b' are not covered");
    st_text("c04-st-offsets-first-not-zero.safetensors",
            "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[4,16]}}", 16);
    st_case(4, "c04-st-offsets-first-not-zero.safetensors", 3,
            "the first tensor starts at data offset 4 (unowned leading bytes)",
            "first tensor 'a' begins at data offset 4, not 0 (hole)");

    /* (5) shapes */
    st_text("c05-st-shape-overflow.safetensors",
            "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3000000000,3000000000,3000000000],"
            "\"data_offsets\":[0,0]}}",
            0);
    st_case(5, "c05-st-shape-overflow.safetensors", 3,
            "shape [3e9, 3e9, 3e9]: the element count overflows 64 bits",
            "shape product overflows 64 bits at dimension 2");
    st_text("c05-st-shape-wrap-zero.safetensors",
            "{\"w\":{\"dtype\":\"BF16\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}",
            0);
    st_case(5, "c05-st-shape-wrap-zero.safetensors", 3,
            "shape [2^32, 2^32] wraps to 0 elements, matching its 0-byte data_offsets",
            "shape product overflows 64 bits at dimension 1");
    st_text("c05-st-bytes-wrap-zero.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}",
            0);
    st_case(5, "c05-st-bytes-wrap-zero.safetensors", 3,
            "F32 [2^31, 2^31]: 2^62 elements x 4 bytes wraps to 0 bytes, matching [0, 0]",
            "byte size of 4611686018427387904 F32 elements overflows 64 bits");
    st_text("c05-st-shape-negative.safetensors",
            "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,-3],\"data_offsets\":[0,12]}}", 12);
    st_case(5, "c05-st-shape-negative.safetensors", 3, "a negative dimension",
            "tensor 'w': shape[1] is negative (-3)");
    st_text("c05-st-shape-too-many-dims.safetensors",
            "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,4]}}", 4);
    st_case(5, "c05-st-shape-too-many-dims.safetensors", 3, "9 dimensions (the limit is 8)",
            "shape has 9 dimensions, over the limit of 8");

    /* (6) dtype / shape / span */
    st_text("c06-st-span-shape-mismatch.safetensors",
            "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,10]}}", 10);
    st_case(6, "c06-st-span-shape-mismatch.safetensors", 3,
            "BF16 [3] needs 6 bytes, data_offsets span 10",
            "data_offsets [0, 10] span 10 bytes, but 3 x BF16 needs 6");
    st_text("c06-st-span-dtype-mismatch.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12);
    st_case(6, "c06-st-span-dtype-mismatch.safetensors", 3,
            "F32 [2, 3] needs 24 bytes, data_offsets span 12 (dtype changed from BF16)",
            "data_offsets [0, 12] span 12 bytes, but 6 x F32 needs 24");
    st_text("c06-st-unknown-dtype.safetensors",
            "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12);
    st_case(6, "c06-st-unknown-dtype.safetensors", 3,
            "dtype \"Q4_K\" (unknown: TSEAL_E_UNSUPPORTED, exit 3)", "unknown dtype \"Q4_K\"");
    st_text("c06-st-trailing-bytes.safetensors", W_OK_HDR, 16);
    st_case(6, "c06-st-trailing-bytes.safetensors", 3,
            "4 bytes after the last tensor's data (a place to hide data)",
            "4 trailing data bytes after the last tensor 'w'");
    st_text("c06-st-no-tensors-with-data.safetensors", "{}", 8);
    st_case(6, "c06-st-no-tensors-with-data.safetensors", 3,
            "an empty header followed by 8 data bytes",
            "no tensors, but the data buffer holds 8 bytes");
}

/* ---- containers: header, signatures, stanzas (classes 7-12) ------------------------------------
 */

/* A container case replayed by verify (with the bank key) and unpack (no output left). */
static void ct_case(int cls, const char *name, int code, const char *desc, const char *msg) {
    add_case(cls, name, "verify", code, desc, "%s", msg);
    add_case(cls, name, "unpack", code, desc, "%s", msg);
}

/* ... and also by verify without a key (the header and hash layers catch it already). */
static void ct_case3(int cls, const char *name, int code, const char *desc, const char *msg) {
    add_case(cls, name, "verify-nokey", code, desc, "%s", msg);
    ct_case(cls, name, code, desc, msg);
}

/* A point of order 8 on Curve25519: X25519 of it with any clamped scalar is all zero. */
static const uint8_t order8[32] = {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
                                   0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
                                   0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00};

static void gen_header_attacks(const img *base) {
    img m;
    char *msg;

    /* (7) format version, suite, critical flags, suite downgrade */
    m = img_dup(base);
    put16(H(&m), 2);
    resign(&m, &K_vendor);
    img_put(&m, "c07-container-format-version-2.tseal");
    ct_case3(7, "c07-container-format-version-2.tseal", 3,
             "format_version 2, re-signed by the vendor (TSEAL_E_UNSUPPORTED, exit 3)",
             "unknown format version 2 (this tseal reads 1)");
    img_free(&m);
    m = img_dup(base);
    put16(H(&m) + 2, 0x37);
    resign(&m, &K_vendor);
    img_put(&m, "c07-container-unknown-suite.tseal");
    ct_case3(7, "c07-container-unknown-suite.tseal", 3,
             "suite 55 (undefined), re-signed by the vendor (exit 3)",
             "unknown or unsupported cipher suite 55");
    img_free(&m);
    m = img_dup(base);
    tseal_store_le32(H(&m) + 4, 1);
    resign(&m, &K_vendor);
    img_put(&m, "c07-container-critical-flag.tseal");
    ct_case3(7, "c07-container-critical-flag.tseal", 3,
             "critical flag bit 0 set (no extension is defined), re-signed by the vendor (exit 3)",
             "unknown critical flags 0x00000001");
    img_free(&m);
    m = img_dup(base);
    put16(H(&m) + 2, 2);
    resign(&m, &K_other);
    img_put(&m, "c07-container-suite-downgrade.tseal");
    msg = xprintf("header is %u bytes, its counts say %u", hlen(&m), hlen(&m) + 33u);
    ct_case3(7, "c07-container-suite-downgrade.tseal", 3,
             "suite switched to 2 (FIPS) on a default-suite container and re-signed by an "
             "untrusted key: the stanzas no longer fit the suite, refused before any signature "
             "or key is used (exit 3)",
             msg);
    free(msg);
    img_free(&m);

    /* (8) bad signature, wrong payload type */
    msg = xprintf("signature by key %s is invalid (header modified or forged)", K_vendor.hex);
    m = img_dup(base);
    m.b[12 + hlen(&m) + 4 + 4 + 52 + 63] ^= 0x01; /* last byte of the signature */
    img_put(&m, "c08-container-signature-bit-flip.tseal");
    ct_case3(8, "c08-container-signature-bit-flip.tseal", 3,
             "one bit of the vendor's signature flipped", msg);
    img_free(&m);
    m = img_dup(base);
    H(&m)[40] ^= 0x01; /* model version 12 -> 13, not re-signed */
    img_put(&m, "c08-container-header-bit-flip.tseal");
    ct_case3(8, "c08-container-header-bit-flip.tseal", 3,
             "one bit of the signed header flipped (model version 12 -> 13), not re-signed", msg);
    img_free(&m);
    m = img_dup(base);
    const tkey *v[1] = {&K_vendor};
    img_sign(&m, v, 1, "tseal/audit-report");
    img_put(&m, "c08-container-wrong-payload-type.tseal");
    ct_case3(8, "c08-container-wrong-payload-type.tseal", 3,
             "the vendor's real signature over the same header digest, but with payload type "
             "tseal/audit-report (a signature made for another purpose)",
             msg);
    free(msg);
    img_free(&m);

    /* (9) untrusted signer (re-signed by another key), revoked signers (policy cases below) */
    m = img_dup(base);
    H(&m)[40] = 99; /* model version 99 */
    reseal(&m, &K_other);
    img_put(&m, "c09-container-untrusted-signer.tseal");
    msg = xprintf("signed by key %s, which is not trusted", K_other.hex);
    ct_case3(9, "c09-container-untrusted-signer.tseal", 3,
             "model version changed to 99 and the header re-signed by an attacker's own key", msg);
    free(msg);
    img_free(&m);
    m = img_dup(base);
    resign(&m, &K_revoked);
    img_put(&m, "c09-container-signed-by-revoked.tseal");
    img_free(&m);
    m = img_dup(base);
    const tkey *vr[2] = {&K_vendor, &K_revoked};
    img_sign(&m, vr, 2, HDR);
    img_put(&m, "c09-container-cosigned-by-revoked.tseal");
    img_free(&m);

    /* (10) creation time in the future (policy case below) */
    m = img_dup(base);
    tseal_store_le64(H(&m) + 24, (uint64_t)FUTURE);
    resign(&m, &K_vendor);
    img_put(&m, "c10-container-created-in-future.tseal");
    img_free(&m);

    /* (11) stanzas */
    m = img_dup(base);
    {
        uint8_t extra[64 * TSEAL_STANZA_BYTES];
        tseal_rng rng = {.counter = 0};
        memset(rng.seed, 0x65, sizeof rng.seed);
        for (unsigned i = 0; i < 64; i++) {
            uint8_t *s = extra + i * TSEAL_STANZA_BYTES, esk[32];
            memset(s, 0, TSEAL_STANZA_BYTES);
            s[0] = 1;
            tseal_random(&rng, s + 4, TSEAL_KEY_ID_BYTES);
            tseal_random(&rng, esk, sizeof esk);
            ASSERT(crypto_scalarmult_base(s + 20, esk) == 0);
            tseal_random(&rng, s + 52, TSEAL_WRAPPED_KEY_BYTES);
        }
        size_t at = 12 + (size_t)(stanza(&m, 1) - H(&m));
        img_splice(&m, at, 0, extra, sizeof extra);
        put16(H(&m) + 52, 65);
        tseal_store_le32(m.b + 8, hlen(&m) + (uint32_t)sizeof extra);
        resign(&m, &K_vendor);
    }
    img_put(&m, "c11-container-65-stanzas.tseal");
    ct_case3(11, "c11-container-65-stanzas.tseal", 3,
             "65 well-formed recipient stanzas (the limit is 64), header re-signed",
             "65 recipient stanzas (allowed 1..64)");
    img_free(&m);
    m = img_dup(base);
    put16(H(&m) + 52, 2); /* two stanzas counted, room for one */
    resign(&m, &K_vendor);
    img_put(&m, "c11-container-stanza-area-short.tseal");
    msg = xprintf("header is %u bytes, its counts say %u", hlen(base), hlen(base) + 100);
    ct_case3(11, "c11-container-stanza-area-short.tseal", 3,
             "recipient count 2 with room for one stanza (header length does not match the "
             "counts), re-signed",
             msg);
    free(msg);
    img_free(&m);
    m = img_dup(base);
    stanza(&m, 0)[2] = 0x01;
    resign(&m, &K_vendor);
    img_put(&m, "c11-container-stanza-reserved-byte.tseal");
    ct_case3(11, "c11-container-stanza-reserved-byte.tseal", 3,
             "nonzero reserved byte in the stanza (non-canonical encoding), re-signed",
             "nonzero reserved bytes in a stanza");
    img_free(&m);
    m = img_dup(base);
    {
        size_t at = 12 + (size_t)(stanza(&m, 0) - H(&m));
        uint8_t copy[TSEAL_STANZA_BYTES];
        memcpy(copy, stanza(&m, 0), sizeof copy);
        img_splice(&m, at + TSEAL_STANZA_BYTES, 0, copy, sizeof copy);
        put16(H(&m) + 52, 2);
        tseal_store_le32(m.b + 8, hlen(&m) + TSEAL_STANZA_BYTES);
        resign(&m, &K_vendor);
    }
    img_put(&m, "c11-container-duplicate-stanza.tseal");
    ct_case3(11, "c11-container-duplicate-stanza.tseal", 3,
             "the bank's stanza twice (which one would a reader use?), re-signed",
             "two stanzas for the same recipient");
    img_free(&m);
    m = img_dup(base);
    memset(stanza(&m, 0) + 20, 0, 32);
    resign(&m, &K_vendor);
    img_put(&m, "c11-container-zero-ephemeral.tseal");
    ct_case3(11, "c11-container-zero-ephemeral.tseal", 3,
             "all-zero ephemeral public key, re-signed", "all-zero ephemeral key");
    img_free(&m);
    m = img_dup(base);
    memcpy(stanza(&m, 0) + 20, order8, 32);
    resign(&m, &K_vendor);
    img_put(&m, "c11-container-low-order-ephemeral.tseal");
    ct_case(11, "c11-container-low-order-ephemeral.tseal", 3,
            "ephemeral key of order 8: X25519 gives an all-zero shared secret (a wrap key known "
            "to everyone), re-signed",
            "ephemeral key is a low-order point (all-zero shared secret)");
    img_free(&m);
    m = img_dup(base);
    stanza(&m, 0)[4] ^= 0x01;
    resign(&m, &K_vendor);
    img_put(&m, "c11-container-no-matching-recipient.tseal");
    msg = xprintf("not encrypted for recipient key %s (1 stanzas)", K_bank.hex);
    ct_case(11, "c11-container-no-matching-recipient.tseal", 3,
            "the only stanza names another key id, re-signed", msg);
    free(msg);
    img_free(&m);
    m = img_dup(base);
    stanza(&m, 0)[60] ^= 0x80;
    resign(&m, &K_vendor);
    img_put(&m, "c11-container-wrapped-key-flip.tseal");
    ct_case(11, "c11-container-wrapped-key-flip.tseal", 3,
            "one bit of the wrapped content key flipped, re-signed",
            "recipient stanza 0: key stanza is not for this recipient");
    img_free(&m);

    /* (12) a stanza that correctly wraps another content key for the bank */
    m = img_dup(base);
    {
        uint8_t *st = stanza(&m, 0), fake[32], ad[32];
        tseal_rng rng = {.counter = 0};
        memset(rng.seed, 0x12, sizeof rng.seed);
        tseal_random(&rng, fake, sizeof fake);
        memcpy(ad, H(&m) + 8, 16);
        memcpy(ad + 16, st + 4, 16);
        CK(tseal_x25519_wrap(K_bank.sk->pub.pk, ad, sizeof ad, fake, &rng, st + 20, st + 52));
        resign(&m, &K_vendor);
    }
    img_put(&m, "c12-container-key-commitment.tseal");
    ct_case(12, "c12-container-key-commitment.tseal", 3,
            "the bank's stanza replaced by a valid wrap of a different content key (recipients "
            "would decrypt different bytes), re-signed",
            "recipient stanza 0: content key does not match the signed key commitment");
    img_free(&m);
}

/* ---- chunks (classes 13 and 14), on the big base: two BF16 matrices of >= 3 chunks ----------- */

static void gen_chunk_attacks(const img *base, const img *other_ctr) {
    uint32_t s, t;
    big_segments(base, &s, &t);
    uint32_t nc = seg_chunks(base, s), cs = chunk_size(base), full = cs + TSEAL_AEAD_TAG_BYTES;
    ASSERT(cs == CHUNK && nc >= 3 && seg_chunks(base, t) >= 3);
    ASSERT(chunk_len(base, s, 1) == full && chunk_len(base, t, 1) == full);
    img m;
    char *msg;

    /* (13) AEAD, hash layer, final chunk, appended data, chunk count */
    m = img_dup(base);
    m.b[chunk_at(&m, s, 1) + 100] ^= 0x01;
    img_put(&m, "c13-container-ciphertext-flip-unsealed.tseal");
    msg = xprintf("segment %u: chunk 1 does not match its signed hash", s);
    ct_case3(13, "c13-container-ciphertext-flip-unsealed.tseal", 3,
             "one ciphertext bit flipped, hash lists untouched (the signed hash layer catches it, "
             "no key needed)",
             msg);
    free(msg);
    reseal(&m, &K_vendor);
    img_put(&m, "c13-container-ciphertext-flip.tseal");
    msg = xprintf("segment %u: chunk 1: authentication failed", s);
    ct_case(13, "c13-container-ciphertext-flip.tseal", 3,
            "one ciphertext bit flipped, hash lists recomputed and the header re-signed (AEAD "
            "must catch it)",
            msg);
    free(msg);
    img_free(&m);
    m = img_dup(base);
    m.b[list_at(&m, s) + 5] ^= 0x01;
    img_put(&m, "c13-container-hash-list-flip.tseal");
    msg = xprintf("segment %u: chunk hash list does not match the signed header", s);
    ct_case3(13, "c13-container-hash-list-flip.tseal", 3,
             "one bit of a chunk hash list flipped (not re-signed)", msg);
    free(msg);
    img_free(&m);

    m = img_dup(base);
    { /* drop the final chunk: the segment becomes nc - 1 full chunks */
        uint64_t last = chunk_at(&m, s, nc - 1), last_len = chunk_len(&m, s, nc - 1);
        img_splice(&m, list_at(&m, s) + 32ull * (nc - 1), 32, NULL, 0); /* its hash */
        img_splice(&m, last, last_len, NULL, 0);
        tseal_store_le32(segent(&m, s) + 4, nc - 1);
        tseal_store_le64(segent(&m, s) + 16, (uint64_t)(nc - 1) * cs);
        shift_after(&m, s, -(int64_t)(last_len + 32));
        reseal(&m, &K_vendor);
    }
    img_put(&m, "c13-container-missing-final-chunk.tseal");
    msg = xprintf("segment %u: chunk %u: authentication failed", s, nc - 2);
    ct_case(13, "c13-container-missing-final-chunk.tseal", 3,
            "the final chunk (and its hash) removed, lengths adjusted, re-signed: the new last "
            "chunk was not sealed as the last one",
            msg);
    free(msg);
    img_free(&m);

    m = img_dup(base);
    { /* a whole chunk (a copy of chunk 0) appended after the final chunk */
        uint8_t copy[CHUNK + TSEAL_AEAD_TAG_BYTES];
        memcpy(copy, m.b + chunk_at(&m, s, 0), full);
        uint64_t end = chunk_at(&m, s, nc - 1) + chunk_len(&m, s, nc - 1);
        img_splice(&m, end, 0, copy, full);
        img_splice(&m, end + full + 32ull * nc, 0, NULL, 32); /* room for its hash */
        tseal_store_le32(segent(&m, s) + 4, nc + 1);
        tseal_store_le64(segent(&m, s) + 16, seg_pt(&m, s) + cs);
        ASSERT(tseal_seg_chunk_count(seg_pt(&m, s), cs) == nc + 1);
        shift_after(&m, s, full + 32);
        reseal(&m, &K_vendor);
    }
    img_put(&m, "c13-container-chunk-after-final.tseal");
    msg = xprintf("segment %u: chunk %u: authentication failed", s, nc - 1);
    ct_case(13, "c13-container-chunk-after-final.tseal", 3,
            "a chunk appended after the final one (segment length, hash list and offsets "
            "adjusted, re-signed): the old final chunk is no longer last",
            msg);
    free(msg);
    img_free(&m);

    m = img_dup(base);
    img_splice(&m, m.n, 0, NULL, 1);
    img_put(&m, "c13-container-appended-byte.tseal");
    ct_case3(13, "c13-container-appended-byte.tseal", 3, "one byte appended to the file",
             "1 bytes of data after the payload");
    img_free(&m);
    m = img_dup(base);
    img_splice(&m, m.n - 1, 1, NULL, 0);
    img_put(&m, "c13-container-truncated.tseal");
    ct_case3(13, "c13-container-truncated.tseal", 3, "the file's last byte cut off",
             "truncated: payload needs");
    img_free(&m);

    m = img_dup(base);
    tseal_store_le32(segent(&m, s) + 4, nc + 1);
    resign(&m, &K_vendor);
    img_put(&m, "c13-container-chunk-count.tseal");
    msg = xprintf("segment %u: chunk count %u does not match its length", s, nc + 1);
    ct_case3(13, "c13-container-chunk-count.tseal", 3,
             "a segment's signed chunk count one more than its length implies, re-signed", msg);
    free(msg);
    img_free(&m);

    /* (14) chunk moves, all with hash lists recomputed and the header re-signed */
    uint8_t tmp[CHUNK + TSEAL_AEAD_TAG_BYTES];
    m = img_dup(base);
    memcpy(tmp, m.b + chunk_at(&m, s, 0), full);
    memcpy(m.b + chunk_at(&m, s, 0), m.b + chunk_at(&m, s, 1), full);
    memcpy(m.b + chunk_at(&m, s, 1), tmp, full);
    reseal(&m, &K_vendor);
    img_put(&m, "c14-chunks-swapped.tseal");
    msg = xprintf("segment %u: chunk 0: authentication failed", s);
    ct_case(14, "c14-chunks-swapped.tseal", 3, "chunks 0 and 1 of a tensor swapped, re-sealed",
            msg);
    free(msg);
    img_free(&m);
    msg = xprintf("segment %u: chunk 1: authentication failed", s);
    m = img_dup(base);
    memcpy(m.b + chunk_at(&m, s, 1), m.b + chunk_at(&m, s, 0), full);
    reseal(&m, &K_vendor);
    img_put(&m, "c14-chunk-duplicated.tseal");
    ct_case(14, "c14-chunk-duplicated.tseal", 3,
            "chunk 0 of a tensor written over its chunk 1, re-sealed", msg);
    img_free(&m);
    m = img_dup(base);
    memcpy(m.b + chunk_at(&m, s, 1), m.b + chunk_at(&m, t, 1), full);
    reseal(&m, &K_vendor);
    img_put(&m, "c14-chunk-from-other-tensor.tseal");
    ct_case(14, "c14-chunk-from-other-tensor.tseal", 3,
            "chunk 1 of layer2.weight moved into layer.weight at the same position, re-sealed",
            msg);
    img_free(&m);
    ASSERT(other_ctr->n == base->n);
    m = img_dup(base);
    memcpy(m.b + chunk_at(&m, s, 1), other_ctr->b + chunk_at(other_ctr, s, 1), full);
    reseal(&m, &K_vendor);
    img_put(&m, "c14-chunk-from-other-container.tseal");
    ct_case(14, "c14-chunk-from-other-container.tseal", 3,
            "chunk 1 of the same tensor taken from another container of the same model (other "
            "container id and content key), re-sealed",
            msg);
    free(msg);
    img_free(&m);
    m = img_dup(base);
    { /* two whole tensor segments of equal size exchanged (chunks and hash lists) */
        ASSERT(seg_pt(&m, s) == seg_pt(&m, t));
        uint64_t len = list_at(&m, s) + 32ull * nc - seg_at(&m, s);
        uint8_t *a = xmemdup(m.b + seg_at(&m, s), len);
        memcpy(m.b + seg_at(&m, s), m.b + seg_at(&m, t), len);
        memcpy(m.b + seg_at(&m, t), a, len);
        free(a);
        reseal(&m, &K_vendor);
    }
    img_put(&m, "c14-segments-swapped.tseal");
    msg = xprintf("segment %u: chunk 0: authentication failed", s);
    ct_case(14, "c14-segments-swapped.tseal", 3,
            "the whole encrypted segments of layer.weight and layer2.weight exchanged, re-sealed",
            msg);
    free(msg);
    img_free(&m);
}

/* ---- coded tensors (class 15) ------------------------------------------------------------------
 */

static void set_code_len(uint8_t *blob, unsigned s, unsigned len) {
    uint8_t *p = blob + TSEAL_CT_HEADER_BYTES + s / 2;
    *p = (s & 1) ? (uint8_t)((*p & 0x0F) | len << 4) : (uint8_t)((*p & 0xF0) | len);
}

/* Segment-length field j (w bits, LSB-first). */
static uint32_t get_field(const uint8_t *p, uint64_t j, unsigned w) {
    uint32_t v = 0;
    for (unsigned b = 0; b < w; b++) {
        uint64_t bit = j * w + b;
        v |= (uint32_t)((p[bit / 8] >> (bit % 8)) & 1) << b;
    }
    return v;
}

static void set_field(uint8_t *p, uint64_t j, unsigned w, uint32_t v) {
    for (unsigned b = 0; b < w; b++) {
        uint64_t bit = j * w + b;
        unsigned sh = (unsigned)(bit % 8);
        p[bit / 8] = (uint8_t)((p[bit / 8] & ~(1u << sh)) | ((v >> b) & 1u) << sh);
    }
}

/* The blob must pass the view, and the fast decoder (what verify and unpack use) must fail
 * with `want` in its message, the reference decoder with `want_ref`. */
static void expect_decode_fails(const uint8_t *blob, size_t len, const char *want,
                                const char *want_ref) {
    tseal_ct_view v;
    CK(tseal_codec_view(blob, len, &v));
    uint16_t *out = xmalloc(v.n_elems * 2);
    ASSERT(tseal_codec_decode_fast(&v, out, 1) != 0);
    if (!strstr(tseal_errmsg(), want)) die("fast decoder: '%s' lacks '%s'", tseal_errmsg(), want);
    ASSERT(tseal_codec_decode_ref(&v, out) != 0);
    if (!strstr(tseal_errmsg(), want_ref))
        die("reference decoder: '%s' lacks '%s'", tseal_errmsg(), want_ref);
    free(out);
}

static void expect_view_fails(const uint8_t *blob, size_t len, const char *want) {
    tseal_ct_view v;
    ASSERT(tseal_codec_view(blob, len, &v) != 0);
    if (!strstr(tseal_errmsg(), want)) die("view: '%s' lacks '%s'", tseal_errmsg(), want);
}

/* Replace segment `seg`'s plaintext by `blob`, re-encrypt, re-sign, write files/`name`. */
static void codec_container(const char *base_path, uint32_t seg, const uint8_t *blob, size_t len,
                            const char *name) {
    plain p;
    plain_load(&p, base_path);
    free(p.pt[seg]);
    p.pt[seg] = xmemdup(blob, len);
    p.len[seg] = len;
    img m = plain_build(&p, &K_vendor);
    img_put(&m, name);
    img_free(&m);
    plain_free(&p);
}

static void codec_case(const char *name, const char *desc, const char *msg,
                       const char *unpack_msg) {
    add_case(15, name, "codec", 3, desc, "%s", msg);
    add_case(15, name, "unpack", 3, desc, "%s", unpack_msg ? unpack_msg : msg);
}

static void gen_codec_attacks(const char *base_path, const img *base) {
    plain p;
    plain_load(&p, base_path);
    { /* sanity: re-encrypting the unchanged plaintexts reproduces the packed container */
        img same = plain_build(&p, &K_vendor);
        ASSERT(same.n == base->n && memcmp(same.b, base->b, base->n) == 0);
        img_free(&same);
    }
    uint32_t seg = huff_segment(&p);
    size_t len = p.len[seg];
    const uint8_t *orig = p.pt[seg];
    tseal_ct_view v;
    CK(tseal_codec_view(orig, len, &v));
    unsigned present[256], np = 0;
    for (unsigned s = 0; s < 256; s++)
        if (v.code_len[s]) present[np++] = s;
    ASSERT(np >= 3);
    uint8_t *b;
    char *msg;

    /* Kraft sum off: the shortest code made one bit longer (some bit strings decode to
     * nothing) */
    unsigned ks = present[0];
    for (unsigned i = 0; i < np; i++)
        if (v.code_len[present[i]] < v.code_len[ks]) ks = present[i];
    ASSERT(v.code_len[ks] < TSEAL_HUFF_MAX_BITS);
    b = xmemdup(orig, len);
    set_code_len(b, ks, v.code_len[ks] + 1u);
    expect_view_fails(b, len, "Kraft sum");
    codec_container(base_path, seg, b, len, "c15-codec-kraft-incomplete.tseal");
    codec_case("c15-codec-kraft-incomplete.tseal",
               "the shortest code made one bit longer (Kraft sum < 1: some bit strings decode to "
               "nothing), re-encrypted with the real content key, re-signed",
               "tensor 'layer.weight': coded tensor: Huffman code lengths are not complete: Kraft "
               "sum",
               NULL);
    free(b);

    /* a code length of 13 (the decoders' tables hold 12 bits) */
    b = xmemdup(orig, len);
    set_code_len(b, present[np - 1], 13);
    expect_view_fails(b, len, "code length 13");
    codec_container(base_path, seg, b, len, "c15-codec-code-length-13.tseal");
    msg = xprintf("tensor 'layer.weight': coded tensor: code length 13 of symbol %u exceeds the "
                  "limit 12",
                  present[np - 1]);
    codec_case("c15-codec-code-length-13.tseal",
               "a code length of 13 bits (over the 12-bit limit of the decode tables), "
               "re-encrypted, re-signed",
               msg, NULL);
    free(msg);
    free(b);

    /* segment lengths: one bit moved between two segments of the same group (group bases and
     * exp_bits unchanged, so the view accepts it; the decoders must not) */
    ASSERT(v.len_width > 0 && v.n_segs >= 2);
    uint64_t lens_off = (uint64_t)(v.seg_lens - orig);
    unsigned w = v.len_width;
    uint32_t maxf = (1u << w) - 1u;
    uint64_t j = UINT64_MAX;
    for (uint64_t k = 0; k + 1 < v.n_segs && j == UINT64_MAX; k++) {
        if ((k + 1) % TSEAL_SEGS_PER_GROUP == 0) continue;
        uint32_t fa = get_field(orig + lens_off, k, w), fb = get_field(orig + lens_off, k + 1, w);
        if (fa >= 1 && fa < maxf && fb >= 1 && fb < maxf) j = k;
    }
    ASSERT(j != UINT64_MAX);
    uint32_t fa = get_field(orig + lens_off, j, w), fb = get_field(orig + lens_off, j + 1, w);

    b = xmemdup(orig, len);
    set_field(b + lens_off, j, w, fa - 1);
    set_field(b + lens_off, j + 1, w, fb + 1);
    msg = xprintf("coded tensor: segment %llu overruns its length", (unsigned long long)j);
    char *ref = xprintf("coded tensor: segment %llu overruns its", (unsigned long long)j);
    expect_decode_fails(b, len, msg, ref);
    free(ref);
    codec_container(base_path, seg, b, len, "c15-codec-segment-overrun.tseal");
    free(msg);
    msg = xprintf("tensor 'layer.weight': coded tensor: segment %llu overruns its length",
                  (unsigned long long)j);
    codec_case("c15-codec-segment-overrun.tseal",
               "one bit of length moved from a segment to the next (group bases still agree): "
               "the first segment's codes overrun its length, re-encrypted, re-signed",
               msg, NULL);
    free(msg);
    free(b);

    b = xmemdup(orig, len);
    set_field(b + lens_off, j, w, fa + 1);
    set_field(b + lens_off, j + 1, w, fb - 1);
    msg = xprintf("coded tensor: segment %llu ends 1 bits early", (unsigned long long)j);
    expect_decode_fails(b, len, msg, msg);
    codec_container(base_path, seg, b, len, "c15-codec-segment-ends-early.tseal");
    free(msg);
    msg = xprintf("tensor 'layer.weight': coded tensor: segment %llu ends 1 bits early",
                  (unsigned long long)j);
    codec_case("c15-codec-segment-ends-early.tseal",
               "one bit of length moved from the next segment to this one: its weights decode "
               "before its declared end, re-encrypted, re-signed",
               msg, NULL);
    free(msg);
    free(b);

    /* a different valid coded blob: the tensor with one weight's sign flipped, re-encoded */
    {
        uint16_t *w16 = xmalloc(v.n_elems * 2);
        CK(tseal_codec_decode_ref(&v, w16));
        w16[5] ^= 0x8000;
        tseal_codec_params cp = {v.max_code_bits, v.seg_log2};
        tseal_buf nb = {0};
        CK(tseal_codec_encode(w16, v.rows, v.cols, &cp, &nb, NULL));
        tseal_ct_view nv;
        CK(tseal_codec_view(nb.data, nb.size, &nv));
        ASSERT(nv.n_elems == v.n_elems && !(nb.size == len && !memcmp(nb.data, orig, len)));
        codec_container(base_path, seg, nb.data, nb.size, "c15-codec-digest-mismatch.tseal");
        tseal_buf_free(&nb);
        free(w16);
    }
    codec_case("c15-codec-digest-mismatch.tseal",
               "the tensor's plaintext swapped for another valid coded blob (one weight's sign "
               "flipped, re-encoded), re-encrypted, re-signed: it decodes, to the wrong bytes",
               "tensor 'layer.weight': decoded bytes do not match the signed digest",
               "file 'model.safetensors': rebuilt bytes do not match the signed SHA-256");
    plain_free(&p);
}

/* ---- policies (classes 7-10), rollback state ----------------------------------------------------
 */

/* A trusted_signers entry; not_after is a JSON value ("null" or a quoted date). */
static char *signer_json(const tkey *k, const char *name, const char *not_after) {
    return xprintf("    {\"name\": \"%s\", \"key_id\": \"%s\", \"algorithm\": \"ed25519\",\n"
                   "     \"public_key\": \"%s\", \"not_after\": %s}",
                   name, k->hex, k->b64, not_after);
}

typedef struct {
    const char *expires;  /* JSON value, NULL = member absent */
    const char *signers;  /* array body */
    const char *revoked;  /* array body, NULL = absent */
    unsigned threshold;   /* 0 = absent */
    const char *suites;   /* array body, NULL = absent */
    const char *model_id; /* NULL = MODEL_ID */
    unsigned min_version;
    int require_state;
} policy_spec;

static char *policy_json(const policy_spec *s) {
    char *exp = s->expires ? xprintf("  \"expires\": %s,\n", s->expires) : xprintf("%s", "");
    char *rev =
        s->revoked ? xprintf("  \"revoked_key_ids\": [%s],\n", s->revoked) : xprintf("%s", "");
    char *thr = s->threshold ? xprintf("  \"signature_threshold\": %u,\n", s->threshold)
                             : xprintf("%s", "");
    char *sui = s->suites ? xprintf("  \"allowed_suites\": [%s],\n", s->suites) : xprintf("%s", "");
    char *st = s->require_state ? xprintf("%s", ",\n  \"require_rollback_state\": true")
                                : xprintf("%s", "");
    char *j = xprintf("{\n  \"tseal_policy\": 1,\n  \"policy_id\": \"%s\",\n%s"
                      "  \"trusted_signers\": [\n%s\n  ],\n%s%s%s"
                      "  \"models\": [{\"model_id\": \"%s\", \"min_version\": %u}]%s\n}\n",
                      POLICY_ID, exp, s->signers, rev, thr, sui,
                      s->model_id ? s->model_id : MODEL_ID, s->min_version, st);
    free(exp);
    free(rev);
    free(thr);
    free(sui);
    free(st);
    return j;
}

/* A signed policy envelope over `payload`: one signature by `k` with payload type `type`,
 * optionally with one bit of the signature flipped. */
static char *envelope_json(const char *payload, const tkey *k, const char *type, int flip) {
    uint8_t d[TSEAL_HASH_BYTES], sig[TSEAL_SIG_BYTES];
    CK(tseal_sha256(payload, strlen(payload), d));
    CK(tseal_sign(k->sk, type, d, sig));
    if (flip) sig[17] ^= 0x10;
    char *p64 = b64(payload, strlen(payload)), *s64 = b64(sig, sizeof sig);
    char *j = xprintf("{\n  \"payloadType\": \"%s\",\n  \"payload\": \"%s\",\n  \"signatures\": [\n"
                      "    {\"key_id\": \"%s\", \"public_key\": \"%s\", \"sig\": \"%s\"}\n  ]\n}\n",
                      TSEAL_POLICY_SIG_TYPE, p64, k->hex, k->b64, s64);
    free(p64);
    free(s64);
    return j;
}

static char *state_json(unsigned version) {
    return xprintf("{\n  \"tseal_state\": 1,\n  \"accepted\": [\n    {\"model_id\": \"%s\", "
                   "\"signer_key_id\": \"%s\", \"version\": %u}\n  ]\n}\n",
                   MODEL_ID, K_vendor.hex, version);
}

static void put_policy(const char *name, const policy_spec *s) {
    char *j = policy_json(s);
    put_text(name, j);
    free(j);
}

static void gen_policies(void) {
    char *vendor = signer_json(&K_vendor, "vendor", "null");
    char *other = signer_json(&K_other, "validator", "null");
    char *revoked = signer_json(&K_revoked, "old-vendor-key", "null");
    char *vendor_exp = signer_json(&K_vendor, "vendor", "\"2024-01-01\"");
    char *two = xprintf("%s,\n%s", vendor, other);
    char *with_rev = xprintf("%s,\n%s", vendor, revoked);
    char *rev_id = xprintf("\"%s\"", K_revoked.hex);
    char *j, *env, *msg;

    policy_spec base = {.signers = vendor, .min_version = 1};
    j = policy_json(&base);
    put_text("c00-policy.json", j);
    env = envelope_json(j, &K_policy, TSEAL_POLICY_SIG_TYPE, 0);
    put_text("c00-policy-signed.json", env);
    free(env);
    env = envelope_json(j, &K_policy, TSEAL_POLICY_SIG_TYPE, 1);
    put_text("c08-policy-signature-bit-flip.json", env);
    free(env);
    env = envelope_json(j, &K_policy, HDR, 0);
    put_text("c08-policy-wrong-payload-type.json", env);
    free(env);
    env = envelope_json(j, &K_other, TSEAL_POLICY_SIG_TYPE, 0);
    put_text("c09-policy-signed-by-untrusted-key.json", env);
    free(env);
    free(j);
    j = state_json(12);
    put_text("c00-state-version-12.json", j);
    free(j);
    j = state_json(13);
    put_text("c10-state-version-13.json", j);
    free(j);

    add_case(0, "c00-base.tseal", "verify-policy:c00-policy.json", 0,
             "control: the base container is allowed by the base policy",
             "policy bank-prod allows this artifact");
    add_case(0, "c00-base.tseal", "verify-policy-state:c00-policy.json:c00-state-version-12.json",
             0, "control: the same version again is allowed (rollback state at 12)",
             "policy bank-prod allows this artifact; rollback state raised");
    add_case(0, "c00-policy-signed.json", "policy-show:policy.sign.pub", 0,
             "control: the signed policy loads with its policy key", "signed: yes, by 1 key");

    /* (7) the policy refuses the suite */
    policy_spec fips = base;
    fips.suites = "\"ecdsa-p256-ecdh-p256-aes256gcm-sha256\"";
    put_policy("c07-policy-other-suite-only.json", &fips);
    add_case(7, "c00-base.tseal", "verify-policy:c07-policy-other-suite-only.json", 3,
             "a policy that allows only another suite: the container's suite is refused",
             "suite " TSEAL_SUITE_NAME_V1 " is not allowed");

    /* (8) threshold; policy envelope signatures */
    policy_spec thr = base;
    thr.signers = two;
    thr.threshold = 2;
    put_policy("c08-policy-threshold-2.json", &thr);
    add_case(8, "c00-base.tseal", "verify-policy:c08-policy-threshold-2.json", 3,
             "2-of-2 policy (vendor and validator), container signed by the vendor only",
             "threshold not met: 1 of 2 required signatures");
    msg = xprintf("signatures[0]: signature by key %s is not valid", K_policy.hex);
    add_case(8, "c08-policy-signature-bit-flip.json", "policy-show:-", 3,
             "signed policy with one bit of its signature flipped", "%s", msg);
    add_case(8, "c08-policy-wrong-payload-type.json", "policy-show:-", 3,
             "policy signature made by the policy key over the payload digest with payload type "
             "tseal/container-header (a signature made for another purpose)",
             "%s", msg);
    free(msg);

    /* (9) untrusted, expired, revoked signers; untrusted policy signer */
    add_case(9, "c09-container-untrusted-signer.tseal", "verify-policy:c00-policy.json", 3,
             "container re-signed by an attacker's key, under the base policy",
             "signer key %s... is not trusted; threshold not met: 0 of 1 required signatures",
             K_other.short_hex);
    policy_spec exp = base;
    exp.signers = vendor_exp;
    put_policy("c09-policy-signer-expired.json", &exp);
    add_case(9, "c00-base.tseal", "verify-policy:c09-policy-signer-expired.json", 3,
             "the vendor key's not_after (2024-01-01) is past",
             "signer key %s... expired 2024-01-01T23:59:59Z", K_vendor.short_hex);
    policy_spec rev = base;
    rev.signers = with_rev;
    rev.revoked = rev_id;
    put_policy("c09-policy-revoked-signer.json", &rev);
    add_case(9, "c09-container-signed-by-revoked.tseal",
             "verify-policy:c09-policy-revoked-signer.json", 3,
             "container signed by a key the policy lists as trusted and as revoked",
             "signer key %s... is revoked", K_revoked.short_hex);
    add_case(9, "c09-container-cosigned-by-revoked.tseal",
             "verify-policy:c09-policy-revoked-signer.json", 3,
             "container signed by the vendor and co-signed by a revoked key: the threshold is met, "
             "the revoked signature still denies",
             "signer key %s... is revoked", K_revoked.short_hex);
    add_case(9, "c09-policy-signed-by-untrusted-key.json", "policy-show:policy.sign.pub", 3,
             "policy validly signed, but by a key that is not the site's policy key",
             "policy is not signed by a trusted policy key");
    add_case(9, "c00-policy.json", "policy-show:policy.sign.pub", 3,
             "an unsigned policy where a signed one is required",
             "policy is unsigned but a signed policy is required");

    /* (10) model, versions, rollback, expiry */
    policy_spec om = base;
    om.model_id = "acme/other-model";
    put_policy("c10-policy-other-model.json", &om);
    add_case(10, "c00-base.tseal", "verify-policy:c10-policy-other-model.json", 3,
             "policy allows acme/other-model only",
             "model " MODEL_ID " is not allowed by policy " POLICY_ID);
    policy_spec mv = base;
    mv.min_version = 13;
    put_policy("c10-policy-min-version-13.json", &mv);
    add_case(10, "c00-base.tseal", "verify-policy:c10-policy-min-version-13.json", 3,
             "policy requires version 13 or later, the container is version 12",
             "version 12 < minimum 13 for model " MODEL_ID);
    add_case(10, "c00-base.tseal", "verify-policy-state:c00-policy.json:c10-state-version-13.json",
             3,
             "rollback: the state already accepted version 13 from this signer (the state file "
             "must stay unchanged)",
             "rollback: version 12 < 13 already accepted for model " MODEL_ID " by signer %s...",
             K_vendor.short_hex);
    policy_spec rs = base;
    rs.require_state = 1;
    put_policy("c10-policy-requires-state.json", &rs);
    add_case(10, "c00-base.tseal", "verify-policy:c10-policy-requires-state.json", 3,
             "policy requires rollback protection, no --state given",
             "policy requires a rollback state file (--state)");
    add_case(10, "c10-container-expired.tseal", "verify", 3,
             "container packed with --expires 2024-01-01 (past)",
             "artifact expired 2024-01-01 00:00:00 UTC");
    add_case(10, "c10-container-expired.tseal", "unpack", 3,
             "container packed with --expires 2024-01-01 (past)",
             "artifact expired 2024-01-01 00:00:00 UTC");
    add_case(10, "c10-container-expired.tseal", "verify-policy:c00-policy.json", 3,
             "container packed with --expires 2024-01-01 (past), under the base policy",
             "artifact expired 2024-01-01T00:00:00Z");
    add_case(10, "c10-container-created-in-future.tseal", "verify-policy:c00-policy.json", 3,
             "creation time moved to 2100-01-01, re-signed by the vendor",
             "artifact created in the future (2100-01-01T00:00:00Z)");
    policy_spec pe = base;
    pe.expires = "\"2024-06-30\"";
    put_policy("c10-policy-expired.json", &pe);
    add_case(10, "c00-base.tseal", "verify-policy:c10-policy-expired.json", 3,
             "policy expired 2024-06-30", "policy " POLICY_ID " expired 2024-06-30T23:59:59Z");

    free(vendor);
    free(other);
    free(revoked);
    free(vendor_exp);
    free(two);
    free(with_rev);
    free(rev_id);
}

/* ---- audit reports (classes 8 and 9) ------------------------------------------------------------
 */

/* Write the envelope `env` with `sig0` fields replaced (NULL: kept). */
static void put_report(const char *name, const cJSON *env, const char *payload, const char *keyid,
                       const char *pk, const char *sig) {
    cJSON *m = cJSON_Duplicate(env, 1);
    ASSERT(m);
    if (payload) cJSON_ReplaceItemInObjectCaseSensitive(m, "payload", cJSON_CreateString(payload));
    cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "signatures"), 0);
    ASSERT(s0);
    if (keyid) cJSON_ReplaceItemInObjectCaseSensitive(s0, "keyid", cJSON_CreateString(keyid));
    if (pk) cJSON_ReplaceItemInObjectCaseSensitive(s0, "public_key", cJSON_CreateString(pk));
    if (sig) cJSON_ReplaceItemInObjectCaseSensitive(s0, "sig", cJSON_CreateString(sig));
    char *out = cJSON_Print(m);
    ASSERT(out);
    char *text = xprintf("%s\n", out);
    put_text(name, text);
    free(text);
    free(out);
    cJSON_Delete(m);
}

static void gen_reports(const char *base_path) {
    const char *trust[1] = {K_vendor.pk_path};
    uint8_t nonce[16];
    memset(nonce, 0x4e, sizeof nonce);
    tseal_audit_opts o;
    memset(&o, 0, sizeof o);
    o.key = K_bank.sk_path;
    o.trust = trust;
    o.n_trust = 1;
    o.device = "cpu";
    char *report = xprintf("%s/c00-audit-report.json", g_files);
    o.report = report;
    o.audit_key = K_auditor.sk_path;
    o.threads = 1;
    o.test_nonce = nonce;
    o.test_time = AUDIT_TIME;
    tseal_audit_result res;
    CK(tseal_audit(base_path, &o, &res));
    ASSERT(res.passed);
    free(report);
    add_case(0, "c00-audit-report.json", "audit-verify", 0,
             "control: the auditor's report of the base container is authentic and passed",
             "authentic, signed by auditor key %s", K_auditor.hex);

    size_t n;
    uint8_t *text = read_bytes(fpath("c00-audit-report.json"), &n);
    cJSON *env = cJSON_ParseWithLength((const char *)text, n);
    ASSERT(env);
    free(text);
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(env, "payload");
    ASSERT(cJSON_IsString(pl));
    size_t plen;
    uint8_t *payload = unb64(pl->valuestring, &plen);
    uint8_t d[TSEAL_HASH_BYTES], sig[TSEAL_SIG_BYTES];
    CK(tseal_sha256(payload, plen, d));

    /* the statement edited (model version 12 -> 13), the signature kept */
    char *stmt = xmalloc(plen + 1);
    memcpy(stmt, payload, plen);
    stmt[plen] = 0;
    cJSON *st = cJSON_Parse(stmt);
    ASSERT(st);
    cJSON *pred = cJSON_GetObjectItemCaseSensitive(st, "predicate");
    ASSERT(cJSON_GetObjectItemCaseSensitive(pred, "version"));
    cJSON_ReplaceItemInObjectCaseSensitive(pred, "version", cJSON_CreateNumber(13));
    char *edited = cJSON_Print(st);
    char *e64 = b64(edited, strlen(edited));
    put_report("c08-report-modified.json", env, e64, NULL, NULL, NULL);
    free(e64);
    free(edited);
    cJSON_Delete(st);
    free(stmt);
    add_case(8, "c08-report-modified.json", "audit-verify", 3,
             "the signed statement edited (model version 12 -> 13), signature kept",
             "signature by %s... is invalid (the report was modified)", K_auditor.short_hex);

    /* the auditor's signature over the same statement digest, with a header's payload type */
    CK(tseal_sign(K_auditor.sk, HDR, d, sig));
    char *s64 = b64(sig, sizeof sig);
    put_report("c08-report-wrong-payload-type.json", env, NULL, NULL, NULL, s64);
    free(s64);
    add_case(8, "c08-report-wrong-payload-type.json", "audit-verify", 3,
             "the auditor's signature over the same statement digest with payload type "
             "tseal/container-header",
             "signature by %s... is invalid (the report was modified)", K_auditor.short_hex);

    /* validly signed, by a key that is not the trusted auditor's */
    CK(tseal_sign(K_other.sk, "tseal/audit-report", d, sig));
    s64 = b64(sig, sizeof sig);
    put_report("c09-report-untrusted-auditor.json", env, NULL, K_other.hex, K_other.b64, s64);
    free(s64);
    add_case(9, "c09-report-untrusted-auditor.json", "audit-verify", 3,
             "a report validly signed by a key that is not the trusted auditor's",
             "not signed by a trusted auditor key");
    free(payload);
    cJSON_Delete(env);
}

/* ---- main ------------------------------------------------------------------------------------ */

/* The temporary folder goes on every exit, die() included. */
static void remove_tmp(void) {
    if (!g_tmp[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    g_tmp[0] = 0;
    if (system(cmd) != 0) fprintf(stderr, "gen_attacks: failed: %s\n", cmd);
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "tests/attacks";
    if (argc > 2) die("usage: gen_attacks [tests/attacks]");
    CK(tseal_crypto_init());
    snprintf(g_files, sizeof g_files, "%s/files", root);
    snprintf(g_keys, sizeof g_keys, "%s/keys", root);
    mkdir_p(root);
    mkdir_p(g_files);
    mkdir_p(g_keys);
    clear_dir(g_files);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tseal-gen-attacks-XXXXXX");
    if (!mkdtemp(g_tmp)) die("mkdtemp: %s", strerror(errno));
    atexit(remove_tmp);

    make_key(&K_vendor, TSEAL_KEY_SIGN, "vendor", 0xA1);
    make_key(&K_other, TSEAL_KEY_SIGN, "other", 0xA2);
    make_key(&K_revoked, TSEAL_KEY_SIGN, "revoked", 0xA3);
    make_key(&K_policy, TSEAL_KEY_SIGN, "policy", 0xA4);
    make_key(&K_auditor, TSEAL_KEY_SIGN, "auditor", 0xA5);
    make_key(&K_bank, TSEAL_KEY_RECIPIENT, "bank", 0xB1);
    make_key(&K_audit, TSEAL_KEY_RECIPIENT, "audit", 0xB2);

    gen_safetensors();

    char *small = xprintf("%s/small", g_tmp), *big = xprintf("%s/big", g_tmp);
    char *other = xprintf("%s/other.tseal", g_tmp);
    make_model(small, 8, 0);
    make_model(big, 100, 1);
    pack(small, fpath("c00-base.tseal"), 0x51, 0, &K_vendor);
    pack(big, fpath("c00-base-big.tseal"), 0x52, 0, &K_vendor);
    pack(small, fpath("c10-container-expired.tseal"), 0x53, PAST, &K_vendor);
    pack(big, other, 0x54, 0, &K_vendor); /* same model: another container id and content key */
    add_case(0, "c00-base.tseal", "verify", 0, "control: the base container verifies",
             "tseal verify: OK");
    add_case(0, "c00-base.tseal", "unpack", 0, "control: the base container unpacks",
             "tseal unpack: restored 2 files");
    add_case(0, "c00-base-big.tseal", "verify", 0, "control: the big base container verifies",
             "tseal verify: OK");

    char *base_path = xprintf("%s/c00-base.tseal", g_files);
    img base = img_read(base_path), base_big = img_read(fpath("c00-base-big.tseal"));
    img other_ctr = img_read(other);
    gen_header_attacks(&base);
    gen_chunk_attacks(&base_big, &other_ctr);
    gen_codec_attacks(base_path, &base);
    gen_policies();
    gen_reports(base_path);
    write_expected(root);

    img_free(&base);
    img_free(&base_big);
    img_free(&other_ctr);
    remove_tmp();
    free(small);
    free(big);
    free(other);
    free(base_path);
    free_key(&K_vendor);
    free_key(&K_other);
    free_key(&K_revoked);
    free_key(&K_policy);
    free_key(&K_auditor);
    free_key(&K_bank);
    free_key(&K_audit);
    for (unsigned i = 0; i < g_ncases; i++) {
        free(g_cases[i].file);
        free(g_cases[i].cmd);
        free(g_cases[i].msg);
        free(g_cases[i].desc);
    }
    printf("gen_attacks: wrote %u cases to %s/expected.tsv\n", g_ncases, root);
    return 0;
}
