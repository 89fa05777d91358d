/*
 * test_crypto.c - crypto/: known-answer tests (SHA-256, HKDF, ChaCha20-Poly1305), secure
 * memory, deterministic randomness, key ids, signatures, X25519 key wrapping, public and
 * secret key files (one test per rejection) and passphrase files.
 */
#include "st_testutil.h"

#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <sodium.h>

#include "../crypto/crypto_internal.h"
#include "internal.h"
#include "tseal_crypto.h"

TestSuite(crypto_kat);
TestSuite(crypto_mem);
TestSuite(crypto_rng);
TestSuite(crypto_keys);
TestSuite(crypto_sig);
TestSuite(crypto_wrap);
TestSuite(crypto_pubfile, .init = tu_setup, .fini = tu_teardown);
TestSuite(crypto_secfile, .init = tu_setup, .fini = tu_teardown);
TestSuite(crypto_pass, .init = tu_setup, .fini = tu_teardown);

/* Key ids of gen(kind, ..., 1): pinned (see key_id_is_stable). */
#define KEY_ID_SIGN_1      "232693ee50959409c8f5cbed9d056667"
#define KEY_ID_RECIPIENT_1 "5310fecacff0992ab2d804e303c6624f"

/* ---- helpers --------------------------------------------------------------------------- */

static void unhex(const char *hex, uint8_t *out, size_t n) {
    size_t len = 0;
    cr_assert_eq(sodium_hex2bin(out, n, hex, strlen(hex), NULL, &len, NULL), 0, "bad hex %s", hex);
    cr_assert_eq(len, n, "hex %s is %zu bytes, expected %zu", hex, len, n);
}

static void assert_hex(const uint8_t *b, size_t n, const char *hex) {
    char *h = malloc(2 * n + 1);
    cr_assert_not_null(h);
    sodium_bin2hex(h, 2 * n + 1, b, n);
    cr_assert_str_eq(h, hex);
    free(h);
}

static tseal_rng rng_of(uint8_t b) {
    tseal_rng r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 32; i++) r.seed[i] = (uint8_t)(b + i);
    return r;
}

/* A deterministic key: same (kind, seed byte), same key. */
static tseal_seckey *gen(tseal_key_kind kind, const char *name, uint8_t seed) {
    tseal_rng r = rng_of(seed);
    tseal_seckey *k = NULL;
    cr_assert_eq(tseal_keygen(kind, name, &r, &k), 0, "%s", tseal_errmsg());
    cr_assert_not_null(k);
    return k;
}

static size_t sk_len(const tseal_seckey *k) {
    return k->pub.kind == TSEAL_KEY_SIGN ? TSEAL_SIGN_SK_BYTES : TSEAL_X25519_SK_BYTES;
}

static void assert_same_key(const tseal_seckey *a, const tseal_seckey *b) {
    cr_assert_eq(a->pub.kind, b->pub.kind);
    cr_assert_eq(a->pub.alg, b->pub.alg);
    cr_assert_arr_eq(a->pub.key_id, b->pub.key_id, TSEAL_KEY_ID_BYTES);
    cr_assert_arr_eq(a->pub.pk, b->pub.pk, TSEAL_PK_BYTES);
    cr_assert_arr_eq(a->pub.name, b->pub.name, TSEAL_KEY_NAME_MAX);
    cr_assert_arr_eq(a->sk, b->sk, sk_len(a));
}

/* Returns a malloc'd copy of s with the first `from` replaced by `to` (which must occur). */
static char *subst(const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    cr_assert_not_null(at, "\"%s\" not in \"%s\"", from, s);
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *r = malloc(n + 1);
    cr_assert_not_null(r);
    size_t k = (size_t)(at - s);
    memcpy(r, s, k);
    memcpy(r + k, to, strlen(to));
    strcpy(r + k + strlen(to), at + strlen(from));
    return r;
}

/* ---- SHA-256 (FIPS 180-2 examples) ----------------------------------------------------- */

Test(crypto_kat, sha256_fips180_abc) {
    uint8_t h[32];
    cr_assert_eq(tseal_sha256("abc", 3, h), 0);
    assert_hex(h, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(crypto_kat, sha256_fips180_two_blocks) {
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    uint8_t h[32];
    cr_assert_eq(tseal_sha256(m, strlen(m), h), 0);
    assert_hex(h, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(crypto_kat, sha256_empty) {
    uint8_t h[32];
    cr_assert_eq(tseal_sha256(NULL, 0, h), 0);
    assert_hex(h, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(crypto_kat, sha256_streaming_million_a_and_reuse) {
    tseal_sha256_ctx *c;
    cr_assert_eq(tseal_sha256_new(&c), 0);
    char a[1000];
    memset(a, 'a', sizeof a);
    uint8_t h[32];
    for (int round = 0; round < 2; round++) { /* final resets the context */
        for (int i = 0; i < 1000; i++) cr_assert_eq(tseal_sha256_update(c, a, sizeof a), 0);
        cr_assert_eq(tseal_sha256_final(c, h), 0);
        assert_hex(h, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    tseal_sha256_free(c);
}

Test(crypto_kat, sha256_streaming_any_split) {
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    size_t n = strlen(m);
    tseal_sha256_ctx *c;
    cr_assert_eq(tseal_sha256_new(&c), 0);
    for (size_t cut = 0; cut <= n; cut++) {
        uint8_t h[32];
        cr_assert_eq(tseal_sha256_update(c, m, cut), 0);
        cr_assert_eq(tseal_sha256_update(c, m + cut, n - cut), 0);
        cr_assert_eq(tseal_sha256_final(c, h), 0);
        assert_hex(h, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }
    tseal_sha256_free(c);
    tseal_sha256_free(NULL);
}

/* ---- HKDF-SHA256 (RFC 5869 appendix A) -------------------------------------------------- */

Test(crypto_kat, hkdf_rfc5869_case1) {
    uint8_t ikm[22], salt[13], info[10], okm[42];
    memset(ikm, 0x0b, sizeof ikm);
    for (int i = 0; i < 13; i++) salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++) info[i] = (uint8_t)(0xf0 + i);
    cr_assert_eq(
        tseal_hkdf_sha256(ikm, sizeof ikm, salt, sizeof salt, info, sizeof info, okm, sizeof okm),
        0, "%s", tseal_errmsg());
    assert_hex(
        okm, 42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

Test(crypto_kat, hkdf_rfc5869_case3_no_salt_no_info) {
    uint8_t ikm[22], okm[42];
    memset(ikm, 0x0b, sizeof ikm);
    cr_assert_eq(tseal_hkdf_sha256(ikm, sizeof ikm, NULL, 0, NULL, 0, okm, sizeof okm), 0, "%s",
                 tseal_errmsg());
    assert_hex(
        okm, 42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

Test(crypto_kat, hkdf_output_length_limits) {
    uint8_t ikm[32] = {1}, out[1];
    static uint8_t big[255 * 32 + 1];
    tu_assert_err(tseal_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, out, 0), TSEAL_E_INVAL,
                  "output length 0");
    tu_assert_err(tseal_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, big, sizeof big), TSEAL_E_INVAL,
                  "output length 8161");
    cr_assert_eq(tseal_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, big, sizeof big - 1), 0, "%s",
                 tseal_errmsg());
}

/* ---- ChaCha20-Poly1305 (RFC 8439 section 2.8.2) ------------------------------------------ */

static const char rfc8439_pt[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
                                 "only one tip for the future, sunscreen would be it.";
static const char rfc8439_ct[] = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
                                 "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
                                 "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
                                 "3ff4def08e4b7a9de576d26586cec64b6116"
                                 "1ae10b594f09e26a7e902ecbd0600691"; /* ciphertext || tag */

static void rfc8439_inputs(uint8_t key[32], uint8_t nonce[12], uint8_t ad[12]) {
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(0x80 + i);
    unhex("070000004041424344454647", nonce, 12);
    unhex("50515253c0c1c2c3c4c5c6c7", ad, 12);
}

Test(crypto_kat, aead_rfc8439_2_8_2_encrypt) {
    uint8_t key[32], nonce[12], ad[12], ct[114 + 16];
    rfc8439_inputs(key, nonce, ad);
    cr_assert_eq(strlen(rfc8439_pt), 114);
    cr_assert_eq(tseal_aead_encrypt(ct, (const uint8_t *)rfc8439_pt, 114, ad, 12, nonce, key), 0,
                 "%s", tseal_errmsg());
    assert_hex(ct, sizeof ct, rfc8439_ct);
}

Test(crypto_kat, aead_rfc8439_2_8_2_decrypt) {
    uint8_t key[32], nonce[12], ad[12], ct[130], pt[114];
    rfc8439_inputs(key, nonce, ad);
    unhex(rfc8439_ct, ct, sizeof ct);
    cr_assert_eq(tseal_aead_decrypt(pt, ct, sizeof ct, ad, 12, nonce, key), 0, "%s",
                 tseal_errmsg());
    cr_assert_arr_eq(pt, rfc8439_pt, 114);
}

Test(crypto_kat, aead_any_modification_fails_and_wipes) {
    uint8_t key[32], nonce[12], ad[12], ct[130], pt[114];
    rfc8439_inputs(key, nonce, ad);
    unhex(rfc8439_ct, ct, sizeof ct);
    static const uint8_t zero[114];
    for (size_t i = 0; i < sizeof ct; i++) {
        ct[i] ^= 0x01;
        memset(pt, 0xAA, sizeof pt);
        tu_assert_err(tseal_aead_decrypt(pt, ct, sizeof ct, ad, 12, nonce, key), TSEAL_E_VERIFY,
                      "authentication failed");
        cr_assert_arr_eq(pt, zero, sizeof pt, "output not wiped after a failure at byte %zu", i);
        ct[i] ^= 0x01;
    }
    for (size_t i = 0; i < 12; i++) {
        ad[i] ^= 0x80;
        tu_assert_err(tseal_aead_decrypt(pt, ct, sizeof ct, ad, 12, nonce, key), TSEAL_E_VERIFY,
                      "authentication failed");
        ad[i] ^= 0x80;
        nonce[i] ^= 0x80;
        tu_assert_err(tseal_aead_decrypt(pt, ct, sizeof ct, ad, 12, nonce, key), TSEAL_E_VERIFY,
                      "authentication failed");
        nonce[i] ^= 0x80;
    }
    tu_assert_err(tseal_aead_decrypt(pt, ct, sizeof ct, ad, 11, nonce, key), TSEAL_E_VERIFY,
                  "authentication failed");
    key[31] ^= 1;
    tu_assert_err(tseal_aead_decrypt(pt, ct, sizeof ct, ad, 12, nonce, key), TSEAL_E_VERIFY,
                  "authentication failed");
    tu_assert_err(tseal_aead_decrypt(pt, ct, sizeof ct - 1, ad, 12, nonce, key), TSEAL_E_VERIFY,
                  "authentication failed");
}

Test(crypto_kat, aead_empty_message_and_short_ciphertext) {
    uint8_t key[32] = {7}, nonce[12] = {0}, ct[16], pt[1];
    cr_assert_eq(tseal_aead_encrypt(ct, NULL, 0, NULL, 0, nonce, key), 0);
    cr_assert_eq(tseal_aead_decrypt(pt, ct, 16, NULL, 0, nonce, key), 0);
    tu_assert_err(tseal_aead_decrypt(pt, ct, 15, NULL, 0, nonce, key), TSEAL_E_CORRUPT,
                  "shorter than its tag");
}

Test(crypto_kat, aead_overlapping_buffers_refused) {
    uint8_t key[32] = {7}, nonce[12] = {0}, buf[64] = {0};
    tu_assert_err(tseal_aead_encrypt(buf, buf, 32, NULL, 0, nonce, key), TSEAL_E_INVAL, "overlap");
    tu_assert_err(tseal_aead_encrypt(buf + 8, buf, 32, NULL, 0, nonce, key), TSEAL_E_INVAL,
                  "overlap");
    tu_assert_err(tseal_aead_decrypt(buf, buf + 4, 48, NULL, 0, nonce, key), TSEAL_E_INVAL,
                  "overlap");
}

/* ---- secure memory --------------------------------------------------------------------- */

/* Drops CAP_IPC_LOCK from the effective set (root ignores RLIMIT_MEMLOCK otherwise). */
static void drop_ipc_lock(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) return;
    d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    (void)syscall(SYS_capset, &h, d);
}

/* The VmFlags line of the mapping holding p (from /proc/self/smaps), or "" if not found. */
static void vmflags_of(const void *p, char *out, size_t cap) {
    FILE *f = fopen("/proc/self/smaps", "r");
    out[0] = 0;
    if (!f) return;
    char line[512];
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

/*
 * The lead's plaintext buffers are far larger than RLIMIT_MEMLOCK: sodium_malloc must still
 * succeed when mlock fails (it ignores mlock's result), keeping the guard pages and
 * MADV_DONTDUMP. Forked test worker: the lowered limit and dropped capability end with it.
 */
Test(crypto_mem, secure_alloc_64mib_beyond_memlock_limit) {
    struct rlimit rl = {1u << 20, 1u << 20};
    cr_assert_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
    drop_ipc_lock();
    static uint8_t probe[4u << 20];
    bool mlock_fails = mlock(probe, sizeof probe) != 0;
    if (!mlock_fails) munlock(probe, sizeof probe);
    cr_log_info("mlock beyond the limit %s", mlock_fails
                                                 ? "fails, as intended"
                                                 : "succeeds (CAP_IPC_LOCK could not be dropped)");

    size_t n = 64u << 20;
    uint8_t *p = tseal_secure_alloc(n);
    cr_assert_not_null(p, "%s", tseal_errmsg());
    cr_assert_eq((uintptr_t)p % 16, 0);
    for (size_t i = 0; i < n; i += 4096) p[i] = (uint8_t)(i >> 12);
    p[n - 1] = 0x5A;
    for (size_t i = 0; i < n; i += 4096) cr_assert_eq(p[i], (uint8_t)(i >> 12));
    cr_assert_eq(p[n - 1], 0x5A);
    char flags[512];
    vmflags_of(p, flags, sizeof flags);
    cr_assert_not_null(strstr(flags, " dd"), "not MADV_DONTDUMP: VmFlags:%s", flags);
    if (mlock_fails) cr_assert_null(strstr(flags, " lo"), "locked beyond the limit: %s", flags);
    tseal_secure_free(p);
}

Test(crypto_mem, secure_alloc_is_aligned_and_usable) {
    for (size_t n = 0; n <= 80; n++) {
        uint8_t *p = tseal_secure_alloc(n);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 16, 0, "size %zu", n);
        memset(p, 0x11, n);
        tseal_secure_free(p);
    }
    tseal_secure_free(NULL);
}

Test(crypto_mem, wipe_zeroes_and_equal) {
    uint8_t a[100], b[100];
    memset(a, 0xC3, sizeof a);
    tseal_wipe(a, sizeof a);
    static const uint8_t zero[100];
    cr_assert_arr_eq(a, zero, sizeof a);
    tseal_wipe(NULL, 0);
    memset(b, 0, sizeof b);
    cr_assert_eq(tseal_equal(a, b, sizeof a), 1);
    b[99] = 1;
    cr_assert_eq(tseal_equal(a, b, sizeof a), 0);
    b[99] = 0;
    b[0] = 0x80;
    cr_assert_eq(tseal_equal(a, b, sizeof a), 0);
    cr_assert_eq(tseal_equal(a, b, 0), 1);
}

/* ---- randomness ------------------------------------------------------------------------ */

Test(crypto_rng, deterministic_is_reproducible) {
    tseal_rng r1 = rng_of(3), r2 = rng_of(3);
    uint8_t a[3][77], b[3][77];
    for (int i = 0; i < 3; i++) {
        tseal_random(&r1, a[i], sizeof a[i]);
        tseal_random(&r2, b[i], sizeof b[i]);
    }
    cr_assert_arr_eq(a, b, sizeof a);
    cr_assert_eq(r1.counter, 3);
    /* each call is a fresh stream: no repeats across calls, and the seed matters */
    cr_assert(memcmp(a[0], a[1], 77) != 0 && memcmp(a[1], a[2], 77) != 0);
    tseal_rng r3 = rng_of(4);
    tseal_random(&r3, b[0], sizeof b[0]);
    cr_assert(memcmp(a[0], b[0], 77) != 0);
    /* a call's output depends on the counter, not on the history of lengths */
    tseal_rng r4 = rng_of(3);
    r4.counter = 2;
    tseal_random(&r4, b[2], sizeof b[2]);
    cr_assert_arr_eq(a[2], b[2], 77);
}

Test(crypto_rng, deterministic_output_is_pinned) {
    /* seed' = BLAKE2b-256("tseal rng" || seed || counter LE) expanded by
     * randombytes_buf_deterministic: pinned so published vectors stay reproducible */
    tseal_rng r = rng_of(0);
    uint8_t out[16], seed2[32], ctr[8] = {0}, want[16];
    tseal_random(&r, out, sizeof out);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"tseal rng", 9);
    tseal_rng r0 = rng_of(0);
    crypto_generichash_update(&st, r0.seed, 32);
    crypto_generichash_update(&st, ctr, 8);
    crypto_generichash_final(&st, seed2, 32);
    randombytes_buf_deterministic(want, sizeof want, seed2);
    cr_assert_arr_eq(out, want, sizeof out);
}

Test(crypto_rng, system_rng_differs) {
    uint8_t a[32], b[32];
    tseal_random(NULL, a, sizeof a);
    tseal_random(NULL, b, sizeof b);
    cr_assert(memcmp(a, b, 32) != 0);
    tseal_random(NULL, a, 0);
}

/* ---- keys and key ids ------------------------------------------------------------------ */

Test(crypto_keys, key_id_is_stable) {
    /* pinned: key ids appear in containers and policies, they must never change */
    tseal_seckey *s = gen(TSEAL_KEY_SIGN, "release", 1), *r = gen(TSEAL_KEY_RECIPIENT, "bank", 1);
    char hex[33];
    tseal_key_id_hex(s->pub.key_id, hex);
    cr_assert_str_eq(hex, KEY_ID_SIGN_1);
    tseal_key_id_hex(r->pub.key_id, hex);
    cr_assert_str_eq(hex, KEY_ID_RECIPIENT_1);
    /* and it is SHA-256("tseal key id v1" || alg || pk)[0..16) */
    uint8_t msg[15 + 1 + 32], h[32], id[16];
    memcpy(msg, "tseal key id v1", 15);
    msg[15] = TSEAL_ALG_ED25519;
    memcpy(msg + 16, s->pub.pk, 32);
    cr_assert_eq(tseal_sha256(msg, sizeof msg, h), 0);
    cr_assert_arr_eq(h, s->pub.key_id, 16);
    tseal_key_id(TSEAL_ALG_X25519, r->pub.pk, id);
    cr_assert_arr_eq(id, r->pub.key_id, 16);
    /* the algorithm byte is part of it */
    tseal_key_id(TSEAL_ALG_ED25519, r->pub.pk, id);
    cr_assert(memcmp(id, r->pub.key_id, 16) != 0);
    tseal_seckey_free(s);
    tseal_seckey_free(r);
}

Test(crypto_keys, keygen_is_deterministic_with_a_seeded_rng) {
    tseal_seckey *a = gen(TSEAL_KEY_SIGN, "a", 9), *b = gen(TSEAL_KEY_SIGN, "a", 9);
    tseal_seckey *c = gen(TSEAL_KEY_SIGN, "a", 10);
    assert_same_key(a, b);
    cr_assert(memcmp(a->pub.pk, c->pub.pk, 32) != 0);
    tseal_seckey *x = gen(TSEAL_KEY_RECIPIENT, "x", 9), *y = gen(TSEAL_KEY_RECIPIENT, "x", 9);
    assert_same_key(x, y);
    tseal_seckey_free(a);
    tseal_seckey_free(b);
    tseal_seckey_free(c);
    tseal_seckey_free(x);
    tseal_seckey_free(y);
}

Test(crypto_keys, keygen_makes_consistent_pairs) {
    tseal_seckey *s, *r;
    cr_assert_eq(tseal_keygen(TSEAL_KEY_SIGN, "s", NULL, &s), 0);
    cr_assert_eq(tseal_keygen(TSEAL_KEY_RECIPIENT, "r", NULL, &r), 0);
    cr_assert_eq(s->pub.alg, TSEAL_ALG_ED25519);
    cr_assert_eq(r->pub.alg, TSEAL_ALG_X25519);
    cr_assert_arr_eq(s->sk + 32, s->pub.pk, 32); /* libsodium sk = seed || pk */
    uint8_t pk[32];
    cr_assert_eq(crypto_scalarmult_base(pk, r->sk), 0);
    cr_assert_arr_eq(pk, r->pub.pk, 32);
    cr_assert_eq(r->sk[0] & 7, 0); /* stored clamped */
    cr_assert_eq(r->sk[31] & 0xC0, 0x40);
    cr_assert_str_eq(s->pub.name, "s");
    tseal_seckey_free(s);
    tseal_seckey_free(r);
}

static void name_refused(const char *name, const char *why) {
    tseal_seckey *k = (tseal_seckey *)1;
    tu_assert_err(tseal_keygen(TSEAL_KEY_SIGN, name, NULL, &k), TSEAL_E_INVAL, why);
    cr_assert_null(k);
}

Test(crypto_keys, keygen_refuses_bad_names) {
    name_refused("", "key name is empty");
    name_refused("a\nb", "control character");
    name_refused("tab\there", "control character");
    name_refused("del\x7f", "control character");
    name_refused("c1\xc2\x85", "control character");
    name_refused("bad\xff", "not valid UTF-8");
    name_refused("overlong\xc0\xaf", "not valid UTF-8");
    char n64[65];
    memset(n64, 'n', 64);
    n64[64] = 0;
    name_refused(n64, "longer than 63 bytes");
    n64[63] = 0;
    tseal_seckey *k;
    cr_assert_eq(tseal_keygen(TSEAL_KEY_SIGN, n64, NULL, &k), 0);
    tseal_seckey_free(k);
    cr_assert_eq(tseal_keygen(TSEAL_KEY_RECIPIENT, "clé ☃ bank", NULL, &k), 0);
    tseal_seckey_free(k);
    tu_assert_err(tseal_keygen(TSEAL_KEY_SIGN, NULL, NULL, &k), TSEAL_E_INVAL, "needs a name");
    tu_assert_err(tseal_keygen((tseal_key_kind)3, "x", NULL, &k), TSEAL_E_INVAL,
                  "unknown key kind");
}

/* ---- signatures ------------------------------------------------------------------------ */

#define PT "tseal/container-header"

Test(crypto_sig, sign_and_verify) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "signer", 5);
    uint8_t d[32], sig[64];
    cr_assert_eq(tseal_sha256("payload", 7, d), 0);
    cr_assert_eq(tseal_sign(k, PT, d, sig), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_sign_verify(k->pub.pk, PT, d, sig), 0, "%s", tseal_errmsg());
    /* the signed message is exactly "TSEAL-SIG-V1" 0 type 0 digest */
    uint8_t msg[12 + 1 + sizeof PT - 1 + 1 + 32];
    memcpy(msg, "TSEAL-SIG-V1", 13);
    memcpy(msg + 13, PT, sizeof PT);
    memcpy(msg + 13 + sizeof PT, d, 32);
    cr_assert_eq(crypto_sign_verify_detached(sig, msg, sizeof msg, k->pub.pk), 0);
    tseal_seckey_free(k);
}

Test(crypto_sig, wrong_payload_type_fails) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "signer", 5);
    uint8_t d[32] = {1}, sig[64];
    cr_assert_eq(tseal_sign(k, PT, d, sig), 0);
    tu_assert_err(tseal_sign_verify(k->pub.pk, "tseal/audit-report", d, sig), TSEAL_E_VERIFY,
                  "bad signature");
    tu_assert_err(tseal_sign_verify(k->pub.pk, PT "x", d, sig), TSEAL_E_VERIFY, "bad signature");
    tseal_seckey_free(k);
}

Test(crypto_sig, flipped_digest_bit_fails) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "signer", 5);
    uint8_t d[32] = {1}, sig[64];
    cr_assert_eq(tseal_sign(k, PT, d, sig), 0);
    for (int bit = 0; bit < 256; bit++) {
        d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tu_assert_err(tseal_sign_verify(k->pub.pk, PT, d, sig), TSEAL_E_VERIFY, "bad signature");
        d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    tseal_seckey_free(k);
}

Test(crypto_sig, flipped_signature_bit_fails) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "signer", 5);
    uint8_t d[32] = {1}, sig[64];
    cr_assert_eq(tseal_sign(k, PT, d, sig), 0);
    for (int bit = 0; bit < 512; bit++) {
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tu_assert_err(tseal_sign_verify(k->pub.pk, PT, d, sig), TSEAL_E_VERIFY, "bad signature");
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    tseal_seckey_free(k);
}

Test(crypto_sig, wrong_key_fails) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "signer", 5), *o = gen(TSEAL_KEY_SIGN, "other", 6);
    uint8_t d[32] = {1}, sig[64], zero_pk[32] = {0};
    cr_assert_eq(tseal_sign(k, PT, d, sig), 0);
    tu_assert_err(tseal_sign_verify(o->pub.pk, PT, d, sig), TSEAL_E_VERIFY, "bad signature");
    tu_assert_err(tseal_sign_verify(zero_pk, PT, d, sig), TSEAL_E_VERIFY, "bad signature");
    tseal_seckey_free(k);
    tseal_seckey_free(o);
}

Test(crypto_sig, payload_type_rules) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "signer", 5);
    uint8_t d[32] = {1}, sig[64] = {0};
    char t64[66];
    memset(t64, 't', 65);
    t64[65] = 0;
    const char *bad[] = {"", t64, "a\tb", "del\x7f", "hi\x80", "\x1f"};
    const char *why[] = {"is empty", "longer than 64", "0x09", "0x7f", "0x80", "0x1f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_assert_err(tseal_sign(k, bad[i], d, sig), TSEAL_E_INVAL, why[i]);
        tu_assert_err(tseal_sign_verify(k->pub.pk, bad[i], d, sig), TSEAL_E_INVAL, why[i]);
    }
    tu_assert_err(tseal_sign(k, NULL, d, sig), TSEAL_E_INVAL, "is empty");
    t64[64] = 0; /* exactly 64 printable bytes, spaces allowed */
    t64[3] = ' ';
    cr_assert_eq(tseal_sign(k, t64, d, sig), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_sign_verify(k->pub.pk, t64, d, sig), 0);
    tseal_seckey_free(k);
}

Test(crypto_sig, recipient_key_cannot_sign) {
    tseal_seckey *r = gen(TSEAL_KEY_RECIPIENT, "r", 5);
    uint8_t d[32] = {1}, sig[64];
    tu_assert_err(tseal_sign(r, PT, d, sig), TSEAL_E_INVAL, "Ed25519 signing key");
    tseal_seckey_free(r);
}

/* ---- X25519 wrapping ------------------------------------------------------------------- */

static const uint8_t wrap_ck[32] = {0xc0, 0x01, 0xd0, 0x0d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const uint8_t wrap_ad[] = "container header digest";

Test(crypto_wrap, round_trip) {
    tseal_seckey *r = gen(TSEAL_KEY_RECIPIENT, "r", 7);
    uint8_t eph[32], w[48];
    cr_assert_eq(tseal_x25519_wrap(r->pub.pk, wrap_ad, sizeof wrap_ad, wrap_ck, NULL, eph, w), 0,
                 "%s", tseal_errmsg());
    uint8_t *ck = tseal_secure_alloc(32);
    cr_assert_eq(tseal_x25519_unwrap(r, eph, wrap_ad, sizeof wrap_ad, w, ck), 0, "%s",
                 tseal_errmsg());
    cr_assert_arr_eq(ck, wrap_ck, 32);
    /* a fresh ephemeral key every time */
    uint8_t eph2[32], w2[48];
    cr_assert_eq(tseal_x25519_wrap(r->pub.pk, wrap_ad, sizeof wrap_ad, wrap_ck, NULL, eph2, w2), 0);
    cr_assert(memcmp(eph, eph2, 32) != 0 && memcmp(w, w2, 48) != 0);
    tseal_secure_free(ck);
    tseal_seckey_free(r);
}

Test(crypto_wrap, matches_the_documented_construction) {
    tseal_seckey *r = gen(TSEAL_KEY_RECIPIENT, "r", 7);
    tseal_rng rng = rng_of(42), rng2 = rng_of(42);
    uint8_t eph[32], w[48], esk[32], shared[32], salt[64], wk[32], w2[48];
    static const uint8_t zn[12];
    cr_assert_eq(tseal_x25519_wrap(r->pub.pk, wrap_ad, sizeof wrap_ad, wrap_ck, &rng, eph, w), 0);
    tseal_random(&rng2, esk, 32); /* the ephemeral secret is the rng's next 32 bytes */
    uint8_t eph2[32];
    cr_assert_eq(crypto_scalarmult_base(eph2, esk), 0);
    cr_assert_arr_eq(eph, eph2, 32);
    cr_assert_eq(crypto_scalarmult(shared, esk, r->pub.pk), 0);
    memcpy(salt, eph, 32);
    memcpy(salt + 32, r->pub.pk, 32);
    cr_assert_eq(tseal_hkdf_sha256(shared, 32, salt, 64, (const uint8_t *)"tseal v1 x25519 wrap",
                                   20, wk, 32),
                 0);
    cr_assert_eq(tseal_aead_encrypt(w2, wrap_ck, 32, wrap_ad, sizeof wrap_ad, zn, wk), 0);
    cr_assert_arr_eq(w, w2, 48);
    tseal_seckey_free(r);
}

static void unwrap_fails(const tseal_seckey *r, const uint8_t *eph, const uint8_t *ad,
                         size_t ad_len, const uint8_t *w, int code, const char *why) {
    uint8_t *ck = tseal_secure_alloc(32);
    memset(ck, 0x77, 32);
    tu_assert_err(tseal_x25519_unwrap(r, eph, ad, ad_len, w, ck), code, why);
    static const uint8_t zero[32];
    cr_assert_arr_eq(ck, zero, 32, "content key not wiped");
    tseal_secure_free(ck);
}

Test(crypto_wrap, wrong_recipient) {
    tseal_seckey *r = gen(TSEAL_KEY_RECIPIENT, "r", 7), *o = gen(TSEAL_KEY_RECIPIENT, "o", 8);
    uint8_t eph[32], w[48];
    cr_assert_eq(tseal_x25519_wrap(r->pub.pk, wrap_ad, sizeof wrap_ad, wrap_ck, NULL, eph, w), 0);
    unwrap_fails(o, eph, wrap_ad, sizeof wrap_ad, w, TSEAL_E_VERIFY,
                 "key stanza is not for this recipient");
    tseal_seckey_free(r);
    tseal_seckey_free(o);
}

Test(crypto_wrap, modified_ad) {
    tseal_seckey *r = gen(TSEAL_KEY_RECIPIENT, "r", 7);
    uint8_t eph[32], w[48], ad[sizeof wrap_ad];
    memcpy(ad, wrap_ad, sizeof ad);
    cr_assert_eq(tseal_x25519_wrap(r->pub.pk, ad, sizeof ad, wrap_ck, NULL, eph, w), 0);
    for (size_t i = 0; i < sizeof ad; i++) {
        ad[i] ^= 0x20;
        unwrap_fails(r, eph, ad, sizeof ad, w, TSEAL_E_VERIFY, "not for this recipient");
        ad[i] ^= 0x20;
    }
    unwrap_fails(r, eph, ad, sizeof ad - 1, w, TSEAL_E_VERIFY, "not for this recipient");
    unwrap_fails(r, eph, NULL, 0, w, TSEAL_E_VERIFY, "not for this recipient");
    tseal_seckey_free(r);
}

Test(crypto_wrap, modified_ephemeral_key) {
    /* every bit, including bit 255 which X25519 itself ignores: eph_pk is in the HKDF salt */
    tseal_seckey *r = gen(TSEAL_KEY_RECIPIENT, "r", 7);
    uint8_t eph[32], w[48];
    cr_assert_eq(tseal_x25519_wrap(r->pub.pk, wrap_ad, sizeof wrap_ad, wrap_ck, NULL, eph, w), 0);
    for (int bit = 0; bit < 256; bit++) {
        eph[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint8_t *ck = tseal_secure_alloc(32);
        int rc = tseal_x25519_unwrap(r, eph, wrap_ad, sizeof wrap_ad, w, ck);
        cr_assert(rc == TSEAL_E_VERIFY || rc == TSEAL_E_CORRUPT, "bit %d: rc %d", bit, rc);
        tseal_secure_free(ck);
        eph[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    tseal_seckey_free(r);
}

Test(crypto_wrap, modified_wrapped_key) {
    tseal_seckey *r = gen(TSEAL_KEY_RECIPIENT, "r", 7);
    uint8_t eph[32], w[48];
    cr_assert_eq(tseal_x25519_wrap(r->pub.pk, wrap_ad, sizeof wrap_ad, wrap_ck, NULL, eph, w), 0);
    for (int i = 0; i < 48; i++) {
        w[i] ^= 0x01;
        unwrap_fails(r, eph, wrap_ad, sizeof wrap_ad, w, TSEAL_E_VERIFY, "not for this recipient");
        w[i] ^= 0x01;
    }
    tseal_seckey_free(r);
}

/* Points of order 1, 2, 4 and 8 (and their non-canonical encodings), as in libsodium's tests. */
static const char *const low_order[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

Test(crypto_wrap, low_order_ephemeral_key_refused) {
    tseal_seckey *r = gen(TSEAL_KEY_RECIPIENT, "r", 7);
    uint8_t eph[32], w[48] = {0};
    for (size_t i = 0; i < sizeof low_order / sizeof low_order[0]; i++) {
        unhex(low_order[i], eph, 32);
        unwrap_fails(r, eph, wrap_ad, sizeof wrap_ad, w, TSEAL_E_CORRUPT, "all-zero shared secret");
    }
    tseal_seckey_free(r);
}

Test(crypto_wrap, low_order_recipient_refused) {
    uint8_t pk[32], eph[32], w[48];
    for (size_t i = 0; i < sizeof low_order / sizeof low_order[0]; i++) {
        unhex(low_order[i], pk, 32);
        tu_assert_err(tseal_x25519_wrap(pk, wrap_ad, sizeof wrap_ad, wrap_ck, NULL, eph, w),
                      TSEAL_E_CORRUPT, "all-zero shared secret");
        tu_assert_err(tseal_pk_check(TSEAL_ALG_X25519, pk), TSEAL_E_CORRUPT, "low-order");
    }
}

Test(crypto_wrap, signing_key_cannot_unwrap) {
    tseal_seckey *s = gen(TSEAL_KEY_SIGN, "s", 7);
    uint8_t eph[32] = {9}, w[48] = {0};
    unwrap_fails(s, eph, NULL, 0, w, TSEAL_E_INVAL, "X25519 recipient key");
    tseal_seckey_free(s);
}

/* ---- public key files ------------------------------------------------------------------ */

/* The public key file text of a fixed key (malloc'd). */
static char *pub_json(tseal_key_kind kind) {
    tseal_seckey *k = gen(kind, kind == TSEAL_KEY_SIGN ? "release \"signer\"" : "bank", 1);
    char *j;
    size_t n;
    cr_assert_eq(tseal_pubkey_encode(&k->pub, &j, &n), 0, "%s", tseal_errmsg());
    cr_assert_eq(strlen(j), n);
    tseal_seckey_free(k);
    return j;
}

static void pub_rejected(const char *text, size_t len, int code, const char *why) {
    tseal_pubkey pk;
    memset(&pk, 0x55, sizeof pk);
    tu_assert_err(tseal_pubkey_parse(text, len, "bank.pub", &pk), code, why);
    cr_assert_not_null(strstr(tseal_errmsg(), "bank.pub: "), "%s", tseal_errmsg());
    static const tseal_pubkey zero;
    cr_assert_arr_eq(&pk, &zero, sizeof pk, "output not cleared");
}

/* Replaces `from` with `to` in the recipient key's JSON and expects a rejection. */
static void pub_edit_rejected(const char *from, const char *to, int code, const char *why) {
    char *j = pub_json(TSEAL_KEY_RECIPIENT), *e = subst(j, from, to);
    pub_rejected(e, strlen(e), code, why);
    free(j);
    free(e);
}

Test(crypto_pubfile, write_read_round_trip) {
    for (int kind = TSEAL_KEY_SIGN; kind <= TSEAL_KEY_RECIPIENT; kind++) {
        tseal_seckey *k = gen((tseal_key_kind)kind, "clé \\ \"q\" ☃", 2);
        const char *path = tu_path(kind == TSEAL_KEY_SIGN ? "s.pub" : "r.pub");
        cr_assert_eq(tseal_pubkey_write(&k->pub, path, 0), 0, "%s", tseal_errmsg());
        tseal_pubkey p;
        cr_assert_eq(tseal_pubkey_read(path, &p), 0, "%s", tseal_errmsg());
        cr_assert_arr_eq(&p, &k->pub, sizeof p);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0644, "mode %o", st.st_mode & 0777);
        tseal_seckey_free(k);
    }
    cr_assert_eq(tu_count_entries(), 2, "temporary files left behind");
}

Test(crypto_pubfile, file_text_is_pinned) {
    char *j = pub_json(TSEAL_KEY_SIGN);
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "x", 1);
    char idhex[33], b64[45], want[512];
    tseal_key_id_hex(k->pub.key_id, idhex);
    sodium_bin2base64(b64, sizeof b64, k->pub.pk, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf(
        want, sizeof want,
        "{\n  \"tseal\": \"public-key\",\n  \"version\": 1,\n  \"kind\": \"sign\",\n"
        "  \"alg\": \"ed25519\",\n  \"key_id\": \"%s\",\n  \"name\": \"release \\\"signer\\\"\",\n"
        "  \"key\": \"%s\"\n}\n",
        idhex, b64);
    cr_assert_str_eq(j, want);
    cr_assert_str_eq(idhex, KEY_ID_SIGN_1);
    free(j);
    tseal_seckey_free(k);
}

Test(crypto_pubfile, overwrite_needs_force) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "s", 2), *o = gen(TSEAL_KEY_SIGN, "o", 3);
    const char *path = tu_path("s.pub");
    cr_assert_eq(tseal_pubkey_write(&k->pub, path, 0), 0);
    tu_assert_err(tseal_pubkey_write(&o->pub, path, 0), TSEAL_E_INVAL, "exists (use --force)");
    tseal_pubkey p;
    cr_assert_eq(tseal_pubkey_read(path, &p), 0);
    cr_assert_arr_eq(p.pk, k->pub.pk, 32);
    cr_assert_eq(tseal_pubkey_write(&o->pub, path, 1), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_pubkey_read(path, &p), 0);
    cr_assert_arr_eq(p.pk, o->pub.pk, 32);
    tseal_seckey_free(k);
    tseal_seckey_free(o);
}

Test(crypto_pubfile, writer_refuses_inconsistent_key) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "s", 2);
    tseal_pubkey p = k->pub;
    p.key_id[0] ^= 1;
    tu_assert_err(tseal_pubkey_write(&p, tu_path("x.pub"), 0), TSEAL_E_INVAL,
                  "key_id does not match the key");
    p = k->pub;
    p.alg = TSEAL_ALG_X25519;
    tu_assert_err(tseal_pubkey_write(&p, tu_path("x.pub"), 0), TSEAL_E_INVAL, "needs alg");
    cr_assert_eq(tu_count_entries(), 0);
    tseal_seckey_free(k);
}

Test(crypto_pubfile, missing_file) {
    tseal_pubkey p;
    tu_assert_err(tseal_pubkey_read(tu_path("none.pub"), &p), TSEAL_E_NOTFOUND, "none.pub");
}

Test(crypto_pubfile, oversized_file) {
    size_t n = TSEAL_PUBKEY_FILE_MAX + 1;
    char *j = pub_json(TSEAL_KEY_SIGN), *big = malloc(n);
    memset(big, ' ', n);
    memcpy(big, j, strlen(j)); /* a valid key followed by whitespace */
    pub_rejected(big, n, TSEAL_E_LIMIT, "over the 65536-byte limit");
    tu_write(tu_path("big.pub"), big, n);
    tseal_pubkey p;
    tu_assert_err(tseal_pubkey_read(tu_path("big.pub"), &p), TSEAL_E_LIMIT, "65536-byte limit");
    /* exactly at the limit is fine */
    cr_assert_eq(tseal_pubkey_parse(big, n - 1, "ok.pub", &p), 0, "%s", tseal_errmsg());
    free(j);
    free(big);
}

Test(crypto_pubfile, empty_file) {
    pub_rejected("", 0, TSEAL_E_CORRUPT, "empty file");
}

Test(crypto_pubfile, not_json) {
    pub_rejected("{\"tseal\": ", 10, TSEAL_E_CORRUPT, "not valid JSON");
}

Test(crypto_pubfile, not_an_object) {
    pub_rejected("[1, 2]", 6, TSEAL_E_CORRUPT, "not a JSON object");
    pub_rejected("\"x\"", 3, TSEAL_E_CORRUPT, "not a JSON object");
}

Test(crypto_pubfile, byte_order_mark) {
    char *j = pub_json(TSEAL_KEY_SIGN), *e = subst(j, "{", "\xef\xbb\xbf{");
    pub_rejected(e, strlen(e), TSEAL_E_CORRUPT, "not a JSON object");
    free(j);
    free(e);
}

Test(crypto_pubfile, trailing_data) {
    char *j = pub_json(TSEAL_KEY_SIGN), *e = subst(j, "}\n", "}\n{}");
    pub_rejected(e, strlen(e), TSEAL_E_CORRUPT, "data after the JSON object");
    free(j);
    free(e);
}

Test(crypto_pubfile, invalid_utf8) {
    pub_edit_rejected("\"bank\"", "\"b\xffnk\"", TSEAL_E_CORRUPT, "not valid UTF-8");
}

Test(crypto_pubfile, nul_byte) {
    char *j = pub_json(TSEAL_KEY_RECIPIENT);
    size_t n = strlen(j);
    j[n - 1] = 0; /* the final newline */
    pub_rejected(j, n, TSEAL_E_CORRUPT, "NUL");
    free(j);
}

Test(crypto_pubfile, duplicate_member) {
    pub_edit_rejected("\"name\": \"bank\"", "\"name\": \"bank\", \"name\": \"bank\"",
                      TSEAL_E_CORRUPT, "duplicate member \"name\"");
}

Test(crypto_pubfile, unknown_member) {
    pub_edit_rejected("\"name\": \"bank\"", "\"name\": \"bank\", \"comment\": \"x\"",
                      TSEAL_E_CORRUPT, "unknown member \"comment\"");
}

Test(crypto_pubfile, messages_do_not_echo_control_characters) {
    pub_edit_rejected("\"name\": \"bank\"", "\"name\": \"bank\", \"\\u001b[2J\\n\": 1",
                      TSEAL_E_CORRUPT, "unknown member \"?[2J?\"");
    pub_edit_rejected("\"recipient\"",
                      "\"\\u001b]0;pwned\\u0007aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
                      TSEAL_E_CORRUPT, "unknown kind \"?]0;pwned?aaaaaaaaaaaaaaaaaaaaaa...\"");
}

Test(crypto_pubfile, missing_member) {
    pub_edit_rejected("  \"name\": \"bank\",\n", "", TSEAL_E_CORRUPT, "missing member \"name\"");
}

Test(crypto_pubfile, not_a_tseal_key) {
    pub_edit_rejected("\"public-key\"", "\"secret-key\"", TSEAL_E_CORRUPT,
                      "not a tseal public key");
}

Test(crypto_pubfile, version_wrong_type) {
    pub_edit_rejected("\"version\": 1", "\"version\": \"1\"", TSEAL_E_CORRUPT,
                      "\"version\" is a string, not a number");
}

Test(crypto_pubfile, version_unsupported) {
    pub_edit_rejected("\"version\": 1", "\"version\": 2", TSEAL_E_UNSUPPORTED,
                      "version 2 is not supported");
}

Test(crypto_pubfile, version_not_a_plain_integer) {
    pub_edit_rejected("\"version\": 1", "\"version\": 1.0", TSEAL_E_CORRUPT, "not a plain integer");
    pub_edit_rejected("\"version\": 1", "\"version\": 1e0", TSEAL_E_CORRUPT, "not a plain integer");
    pub_edit_rejected("\"version\": 1", "\"version\": 01", TSEAL_E_CORRUPT, "malformed number");
}

Test(crypto_pubfile, kind_unknown) {
    pub_edit_rejected("\"recipient\"", "\"encrypt\"", TSEAL_E_CORRUPT, "unknown kind \"encrypt\"");
}

Test(crypto_pubfile, kind_wrong_type) {
    pub_edit_rejected("\"recipient\"", "2", TSEAL_E_CORRUPT, "\"kind\" is a number, not a string");
}

Test(crypto_pubfile, alg_unknown) {
    pub_edit_rejected("\"x25519\"", "\"x448\"", TSEAL_E_CORRUPT, "unknown alg \"x448\"");
}

Test(crypto_pubfile, kind_alg_mismatch) {
    pub_edit_rejected("\"x25519\"", "\"ed25519\"", TSEAL_E_CORRUPT,
                      "kind \"recipient\" needs alg \"x25519\", not \"ed25519\"");
}

Test(crypto_pubfile, key_id_mismatch) {
    char *j = pub_json(TSEAL_KEY_RECIPIENT), *e = subst(j, KEY_ID_RECIPIENT_1, KEY_ID_SIGN_1);
    pub_rejected(e, strlen(e), TSEAL_E_CORRUPT, "key_id does not match the key");
    free(j);
    free(e);
}

Test(crypto_pubfile, key_id_not_lower_hex) {
    char up[33];
    snprintf(up, sizeof up, "%s", KEY_ID_RECIPIENT_1);
    for (char *c = up; *c; c++)
        if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 32);
    cr_assert_str_neq(up, KEY_ID_RECIPIENT_1);
    pub_edit_rejected(KEY_ID_RECIPIENT_1, up, TSEAL_E_CORRUPT, "not 32 lower-case hex digits");
    up[31] = 0;
    pub_edit_rejected(KEY_ID_RECIPIENT_1, up, TSEAL_E_CORRUPT, "not 32 lower-case hex digits");
}

Test(crypto_pubfile, key_bad_base64) {
    char *j = pub_json(TSEAL_KEY_RECIPIENT);
    char *k = strstr(j, "\"key\": \"") + 8;
    k[3] = '!';
    pub_rejected(j, strlen(j), TSEAL_E_CORRUPT, "not the base64 of a 32-byte key");
    free(j);
}

Test(crypto_pubfile, key_non_canonical_base64) {
    char *j = pub_json(TSEAL_KEY_RECIPIENT);
    char *k = strstr(j, "\"key\": \"") + 8;
    cr_assert_eq(k[43], '=');
    /* the last symbol carries 4 bits of the key and 2 padding bits that must be zero */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t v = (size_t)(strchr(b64, k[42]) - b64);
    k[42] = b64[v ^ 1];
    pub_rejected(j, strlen(j), TSEAL_E_CORRUPT, "base64");
    free(j);
}

Test(crypto_pubfile, key_wrong_length) {
    uint8_t raw[33] = {9};
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, raw, 33, sodium_base64_VARIANT_ORIGINAL);
    char *j = pub_json(TSEAL_KEY_RECIPIENT);
    char *k = strstr(j, "\"key\": \"") + 8;
    char old[45];
    memcpy(old, k, 44);
    old[44] = 0;
    char *e = subst(j, old, b64);
    pub_rejected(e, strlen(e), TSEAL_E_CORRUPT, "not the base64 of a 32-byte key");
    free(e);
    sodium_bin2base64(b64, sizeof b64, raw, 31, sodium_base64_VARIANT_ORIGINAL);
    e = subst(j, old, b64);
    pub_rejected(e, strlen(e), TSEAL_E_CORRUPT, "not the base64 of a 32-byte key");
    free(e);
    free(j);
}

/* A public key JSON text for arbitrary key bytes, with a matching key_id. */
static char *json_for(uint8_t alg, const uint8_t pk[32]) {
    uint8_t id[16];
    char idhex[33], b64[45], *j = malloc(512);
    tseal_key_id(alg, pk, id);
    tseal_key_id_hex(id, idhex);
    sodium_bin2base64(b64, sizeof b64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf(j, 512,
             "{\"tseal\":\"public-key\",\"version\":1,\"kind\":\"%s\",\"alg\":\"%s\","
             "\"key_id\":\"%s\",\"name\":\"n\",\"key\":\"%s\"}",
             alg == TSEAL_ALG_X25519 ? "recipient" : "sign",
             alg == TSEAL_ALG_X25519 ? "x25519" : "ed25519", idhex, b64);
    return j;
}

Test(crypto_pubfile, low_order_x25519_key) {
    uint8_t pk[32];
    unhex(low_order[2], pk, 32);
    char *j = json_for(TSEAL_ALG_X25519, pk);
    pub_rejected(j, strlen(j), TSEAL_E_CORRUPT, "key is a low-order X25519 point");
    free(j);
}

Test(crypto_pubfile, invalid_ed25519_key) {
    uint8_t pk[32];
    unhex(low_order[1], pk, 32); /* the identity: small order */
    char *j = json_for(TSEAL_ALG_ED25519, pk);
    pub_rejected(j, strlen(j), TSEAL_E_CORRUPT, "not a valid Ed25519 public key");
    free(j);
    memset(pk, 0xff, 32); /* not canonical */
    j = json_for(TSEAL_ALG_ED25519, pk);
    pub_rejected(j, strlen(j), TSEAL_E_CORRUPT, "not a valid Ed25519 public key");
    free(j);
}

Test(crypto_pubfile, name_empty) {
    pub_edit_rejected("\"bank\"", "\"\"", TSEAL_E_CORRUPT, "name is empty");
}

Test(crypto_pubfile, name_control_character) {
    pub_edit_rejected("\"bank\"", "\"ba\\nk\"", TSEAL_E_CORRUPT, "name has a control character");
    pub_edit_rejected("\"bank\"", "\"ba\\u0085k\"", TSEAL_E_CORRUPT,
                      "name has a control character");
}

Test(crypto_pubfile, name_raw_control_character) {
    pub_edit_rejected("\"bank\"", "\"ba\tk\"", TSEAL_E_CORRUPT, "control character 0x09");
}

Test(crypto_pubfile, name_with_nul_escape) {
    /* cJSON would cut the string at \u0000 and read "ba" */
    pub_edit_rejected("\"bank\"", "\"ba\\u0000nk\"", TSEAL_E_CORRUPT, "bad \\u escape");
}

Test(crypto_pubfile, name_too_long) {
    char n[80];
    n[0] = '"';
    memset(n + 1, 'x', 64);
    n[65] = '"';
    n[66] = 0;
    pub_edit_rejected("\"bank\"", n, TSEAL_E_CORRUPT, "name is longer than 63 bytes");
}

Test(crypto_pubfile, name_wrong_type) {
    pub_edit_rejected("\"bank\"", "[\"bank\"]", TSEAL_E_CORRUPT, "\"name\" is an array");
}

Test(crypto_pubfile, escapes_and_whitespace_are_fine) {
    /* any JSON spelling of the same document parses the same */
    char *j = pub_json(TSEAL_KEY_RECIPIENT);
    char *e = subst(j, "\"bank\"", "\"b\\u0061nk\"");
    tseal_pubkey a, b;
    cr_assert_eq(tseal_pubkey_parse(j, strlen(j), "a", &a), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_pubkey_parse(e, strlen(e), "b", &b), 0, "%s", tseal_errmsg());
    cr_assert_arr_eq(&a, &b, sizeof a);
    free(e);
    free(j);
}

/* ---- secret key files ------------------------------------------------------------------ */

static void interactive(void) {
    cr_assert_eq(setenv("TSEAL_PWHASH_INTERACTIVE", "1", 1), 0);
}

/* An encoded secret key file (secure memory) with the cheapest Argon2id cost when protected. */
static uint8_t *sk_file(const tseal_seckey *k, const char *pass, size_t *len) {
    uint8_t *b;
    cr_assert_eq(tseal_seckey_encode(k, pass, pass ? strlen(pass) : 0, pass ? 1 : 0,
                                     pass ? 8192 : 0, &b, len),
                 0, "%s", tseal_errmsg());
    return b;
}

static void sk_rejected(const uint8_t *b, size_t len, const char *pass, int code, const char *why) {
    tseal_seckey *k = (tseal_seckey *)1;
    tu_assert_err(tseal_seckey_parse(b, len, "bank.key", pass, pass ? strlen(pass) : 0, &k), code,
                  why);
    cr_assert_null(k);
    cr_assert_not_null(strstr(tseal_errmsg(), "bank.key: "), "%s", tseal_errmsg());
}

/* Edits byte `off` of a fresh unprotected recipient (or sign) key file and expects a rejection. */
static void sk_edit_rejected(tseal_key_kind kind, size_t off, uint8_t value, int code,
                             const char *why) {
    tseal_seckey *k = gen(kind, "bank", 1);
    size_t len;
    uint8_t *b = sk_file(k, NULL, &len);
    b[off] = value;
    sk_rejected(b, len, NULL, code, why);
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, round_trip_unprotected) {
    for (int kind = TSEAL_KEY_SIGN; kind <= TSEAL_KEY_RECIPIENT; kind++) {
        tseal_seckey *k = gen((tseal_key_kind)kind, "clé ☃", 2), *r;
        const char *path = tu_path("k.key");
        cr_assert_eq(tseal_seckey_write(k, path, NULL, 0, 1), 0, "%s", tseal_errmsg());
        size_t len;
        uint8_t *raw = tu_read(path, &len);
        cr_assert_eq(len, kind == TSEAL_KEY_SIGN ? 244u : 212u);
        cr_assert_arr_eq(raw, "TSEALSK1", 8);
        cr_assert_eq(raw[8], kind);
        cr_assert_eq(raw[10], 0);
        free(raw);
        cr_assert_eq(tseal_seckey_read(path, NULL, 0, &r), 0, "%s", tseal_errmsg());
        assert_same_key(k, r);
        tseal_seckey_free(r);
        /* a passphrase given for an unprotected key is not needed, and harmless */
        cr_assert_eq(tseal_seckey_read(path, "pw", 2, &r), 0, "%s", tseal_errmsg());
        assert_same_key(k, r);
        tseal_seckey_free(r);
        tseal_seckey_free(k);
    }
}

Test(crypto_secfile, round_trip_protected) {
    interactive();
    for (int kind = TSEAL_KEY_SIGN; kind <= TSEAL_KEY_RECIPIENT; kind++) {
        tseal_seckey *k = gen((tseal_key_kind)kind, "bank", 2), *r;
        const char *path = tu_path("k.key");
        cr_assert_eq(tseal_seckey_write(k, path, "correct horse", 13, 1), 0, "%s", tseal_errmsg());
        size_t len;
        uint8_t *raw = tu_read(path, &len);
        cr_assert_eq(len, kind == TSEAL_KEY_SIGN ? 260u : 228u);
        cr_assert_eq(raw[10], 1);
        cr_assert_eq(tseal_load_le64(raw + 124), crypto_pwhash_OPSLIMIT_INTERACTIVE);
        cr_assert_eq(tseal_load_le64(raw + 132), crypto_pwhash_MEMLIMIT_INTERACTIVE);
        /* the secret is not in the file */
        cr_assert_null(memmem(raw, len, k->sk, 16));
        free(raw);
        cr_assert_eq(tseal_seckey_read(path, "correct horse", 13, &r), 0, "%s", tseal_errmsg());
        assert_same_key(k, r);
        tseal_seckey_free(r);
        tseal_seckey_free(k);
    }
}

Test(crypto_secfile, default_cost_is_moderate) {
    unsetenv("TSEAL_PWHASH_INTERACTIVE");
    tseal_seckey *k = gen(TSEAL_KEY_RECIPIENT, "bank", 2);
    uint8_t *b;
    size_t len;
    cr_assert_eq(tseal_seckey_encode(k, "pw", 2, 0, 0, &b, &len), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_load_le64(b + TSEAL_SK_OFF_OPSLIMIT), crypto_pwhash_OPSLIMIT_MODERATE);
    cr_assert_eq(tseal_load_le64(b + TSEAL_SK_OFF_MEMLIMIT), crypto_pwhash_MEMLIMIT_MODERATE);
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, encode_refuses_bad_costs_and_passphrases) {
    tseal_seckey *k = gen(TSEAL_KEY_RECIPIENT, "bank", 2);
    uint8_t *b;
    size_t len;
    tu_assert_err(tseal_seckey_encode(k, "pw", 2, 17, 8192, &b, &len), TSEAL_E_INVAL, "opslimit");
    tu_assert_err(tseal_seckey_encode(k, "pw", 2, 1, 4096, &b, &len), TSEAL_E_INVAL, "memlimit");
    tu_assert_err(tseal_seckey_encode(k, "pw", 2, 1, (4ull << 30) + 1, &b, &len), TSEAL_E_INVAL,
                  "memlimit");
    tu_assert_err(tseal_seckey_encode(k, "", 0, 1, 8192, &b, &len), TSEAL_E_INVAL,
                  "passphrase is empty");
    cr_assert_null(b);
    k->sk[5] ^= 1;
    tu_assert_err(tseal_seckey_encode(k, NULL, 0, 0, 0, &b, &len), TSEAL_E_INVAL,
                  "public key does not match the secret key");
    tseal_seckey_free(k);
}

Test(crypto_secfile, wrong_passphrase) {
    interactive();
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "bank", 2), *r = (tseal_seckey *)1;
    const char *path = tu_path("bank.key");
    cr_assert_eq(tseal_seckey_write(k, path, "correct horse", 13, 0), 0, "%s", tseal_errmsg());
    tu_assert_err(tseal_seckey_read(path, "correct hors", 12, &r), TSEAL_E_VERIFY,
                  "wrong passphrase");
    cr_assert_null(r);
    cr_assert_not_null(strstr(tseal_errmsg(), path));
    tu_assert_err(tseal_seckey_read(path, "correct horsE", 13, &r), TSEAL_E_VERIFY,
                  "wrong passphrase");
    tseal_seckey_free(k);
}

Test(crypto_secfile, missing_passphrase) {
    interactive();
    tseal_seckey *k = gen(TSEAL_KEY_RECIPIENT, "bank", 2), *r = (tseal_seckey *)1;
    const char *path = tu_path("bank.key");
    cr_assert_eq(tseal_seckey_write(k, path, "pw", 2, 0), 0, "%s", tseal_errmsg());
    tu_assert_err(tseal_seckey_read(path, NULL, 0, &r), TSEAL_E_INVAL,
                  "key is protected by a passphrase (use --passphrase-file)");
    cr_assert_null(r);
    char want[600];
    snprintf(want, sizeof want, "%s: key is protected", path);
    cr_assert_not_null(strstr(tseal_errmsg(), want), "%s", tseal_errmsg());
    tu_assert_err(tseal_seckey_read(path, "", 0, &r), TSEAL_E_INVAL, "passphrase is empty");
    tseal_seckey_free(k);
}

Test(crypto_secfile, overwrite_needs_force) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "a", 2), *o = gen(TSEAL_KEY_SIGN, "b", 3), *r;
    const char *path = tu_path("bank.key");
    cr_assert_eq(tseal_seckey_write(k, path, NULL, 0, 0), 0, "%s", tseal_errmsg());
    tu_assert_err(tseal_seckey_write(o, path, NULL, 0, 0), TSEAL_E_INVAL, "exists (use --force)");
    cr_assert_not_null(strstr(tseal_errmsg(), path));
    cr_assert_eq(tseal_seckey_read(path, NULL, 0, &r), 0);
    assert_same_key(k, r);
    tseal_seckey_free(r);
    cr_assert_eq(tu_count_entries(), 1, "temporary file left behind");
    cr_assert_eq(tseal_seckey_write(o, path, NULL, 0, 1), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_seckey_read(path, NULL, 0, &r), 0);
    assert_same_key(o, r);
    tseal_seckey_free(r);
    /* a dangling symlink counts as existing: never write through it */
    const char *link_path = tu_path("link.key");
    cr_assert_eq(symlink(tu_path("elsewhere.key"), link_path), 0);
    tu_assert_err(tseal_seckey_write(o, link_path, NULL, 0, 0), TSEAL_E_INVAL, "exists");
    cr_assert(!tu_exists(tu_path("elsewhere.key")));
    tseal_seckey_free(k);
    tseal_seckey_free(o);
}

Test(crypto_secfile, mode_is_0600) {
    interactive();
    umask(0);
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "a", 2);
    const char *p1 = tu_path("a.key"), *p2 = tu_path("b.key");
    cr_assert_eq(tseal_seckey_write(k, p1, NULL, 0, 0), 0);
    cr_assert_eq(tseal_seckey_write(k, p2, "pw", 2, 0), 0);
    cr_assert_eq(tseal_seckey_write(k, p1, NULL, 0, 1), 0);
    struct stat st;
    cr_assert_eq(stat(p1, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    cr_assert_eq(stat(p2, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    tseal_seckey_free(k);
}

Test(crypto_secfile, missing_file_and_directory) {
    tseal_seckey *r;
    tu_assert_err(tseal_seckey_read(tu_path("none.key"), NULL, 0, &r), TSEAL_E_NOTFOUND,
                  "none.key");
    tu_assert_err(tseal_seckey_read(tu_dir, NULL, 0, &r), TSEAL_E_INVAL, "is a directory");
}

Test(crypto_secfile, bad_magic) {
    sk_edit_rejected(TSEAL_KEY_SIGN, 7, '2', TSEAL_E_CORRUPT, "not a tseal secret key (bad magic)");
    sk_rejected((const uint8_t *)"TSEAL", 5, NULL, TSEAL_E_CORRUPT, "bad magic");
}

Test(crypto_secfile, truncated) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "bank", 1);
    size_t len;
    uint8_t *b = sk_file(k, NULL, &len);
    sk_rejected(b, 100, NULL, TSEAL_E_CORRUPT, "truncated secret key file (100 bytes)");
    sk_rejected(b, len - 1, NULL, TSEAL_E_CORRUPT,
                "file is 243 bytes, an unprotected ed25519 sign key is 244");
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, extra_bytes) {
    tseal_seckey *k = gen(TSEAL_KEY_RECIPIENT, "bank", 1);
    size_t len;
    uint8_t *b = sk_file(k, NULL, &len), big[400] = {0};
    memcpy(big, b, len);
    sk_rejected(big, len + 1, NULL, TSEAL_E_CORRUPT, "file is 213 bytes");
    tu_write(tu_path("big.key"), big, sizeof big);
    chmod(tu_path("big.key"), 0600);
    tseal_seckey *r;
    tu_assert_err(tseal_seckey_read(tu_path("big.key"), NULL, 0, &r), TSEAL_E_CORRUPT,
                  "more than 260 bytes");
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, unknown_kind) {
    sk_edit_rejected(TSEAL_KEY_SIGN, TSEAL_SK_OFF_KIND, 3, TSEAL_E_CORRUPT, "unknown key kind 3");
}

Test(crypto_secfile, kind_alg_mismatch) {
    sk_edit_rejected(TSEAL_KEY_SIGN, TSEAL_SK_OFF_ALG, TSEAL_ALG_X25519, TSEAL_E_CORRUPT,
                     "kind \"sign\" needs alg 1 (ed25519), not 2");
}

Test(crypto_secfile, unknown_protection) {
    sk_edit_rejected(TSEAL_KEY_SIGN, TSEAL_SK_OFF_PROTECTION, 2, TSEAL_E_CORRUPT,
                     "unknown protection 2");
}

Test(crypto_secfile, protection_flag_without_mac) {
    sk_edit_rejected(TSEAL_KEY_SIGN, TSEAL_SK_OFF_PROTECTION, 1, TSEAL_E_CORRUPT,
                     "a protected ed25519 sign key is 260");
}

Test(crypto_secfile, reserved_not_zero) {
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_RESERVED, 0x80, TSEAL_E_CORRUPT,
                     "reserved byte is 0x80");
}

Test(crypto_secfile, name_not_terminated) {
    tseal_seckey *k = gen(TSEAL_KEY_RECIPIENT, "bank", 1);
    size_t len;
    uint8_t *b = sk_file(k, NULL, &len);
    memset(b + TSEAL_SK_OFF_NAME, 'n', 64);
    sk_rejected(b, len, NULL, TSEAL_E_CORRUPT, "name is longer than 63 bytes");
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, name_padding_not_zero) {
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_NAME + 10, 'x', TSEAL_E_CORRUPT,
                     "name padding is not zero");
}

Test(crypto_secfile, name_empty) {
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_NAME, 0, TSEAL_E_CORRUPT, "name is empty");
}

Test(crypto_secfile, name_invalid) {
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_NAME + 1, 0xff, TSEAL_E_CORRUPT,
                     "name is not valid UTF-8");
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_NAME + 1, 0x1b, TSEAL_E_CORRUPT,
                     "name has a control character");
}

Test(crypto_secfile, unprotected_with_cost_salt_or_nonce) {
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_OPSLIMIT, 1, TSEAL_E_CORRUPT,
                     "unprotected key has non-zero opslimit, memlimit, salt or nonce");
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_MEMLIMIT + 7, 1, TSEAL_E_CORRUPT,
                     "non-zero");
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_SALT + 3, 1, TSEAL_E_CORRUPT, "non-zero");
    sk_edit_rejected(TSEAL_KEY_RECIPIENT, TSEAL_SK_OFF_NONCE + 23, 1, TSEAL_E_CORRUPT, "non-zero");
}

/* Sets opslimit/memlimit of a protected file and expects a cheap rejection (no Argon2 run). */
static void sk_cost_rejected(uint64_t ops, uint64_t mem, const char *why) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "bank", 1);
    size_t len;
    uint8_t *b = sk_file(k, "pw", &len);
    tseal_store_le64(b + TSEAL_SK_OFF_OPSLIMIT, ops);
    tseal_store_le64(b + TSEAL_SK_OFF_MEMLIMIT, mem);
    double t0 = tseal_now();
    sk_rejected(b, len, "pw", TSEAL_E_CORRUPT, why);
    cr_assert_lt(tseal_now() - t0, 0.5, "rejection ran the key derivation");
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, opslimit_out_of_range) {
    sk_cost_rejected(0, 8192, "opslimit out of range");
    sk_cost_rejected(17, 8192, "opslimit out of range");
    sk_cost_rejected(UINT64_MAX, 8192, "opslimit out of range");
}

Test(crypto_secfile, memlimit_out_of_range) {
    sk_cost_rejected(1, 8191, "memlimit out of range");
    sk_cost_rejected(1, (4ull << 30) + 1, "memlimit out of range");
    sk_cost_rejected(1, UINT64_MAX, "memlimit out of range");
}

Test(crypto_secfile, key_id_mismatch) {
    sk_edit_rejected(TSEAL_KEY_SIGN, TSEAL_SK_OFF_KEY_ID + 15, 0, TSEAL_E_CORRUPT,
                     "key_id does not match the public key");
}

/* Puts another key's (valid) public key and key id in the file. */
static void sk_swap_public(tseal_key_kind kind, const char *pass, int code, const char *why) {
    tseal_seckey *k = gen(kind, "bank", 1), *o = gen(kind, "bank", 2);
    size_t len;
    uint8_t *b = sk_file(k, pass, &len);
    memcpy(b + TSEAL_SK_OFF_PK, o->pub.pk, 32);
    memcpy(b + TSEAL_SK_OFF_KEY_ID, o->pub.key_id, 16);
    sk_rejected(b, len, pass, code, why);
    tseal_secure_free(b);
    tseal_seckey_free(k);
    tseal_seckey_free(o);
}

Test(crypto_secfile, public_key_does_not_match_secret) {
    sk_swap_public(TSEAL_KEY_SIGN, NULL, TSEAL_E_CORRUPT, "public key does not match the secret");
    sk_swap_public(TSEAL_KEY_RECIPIENT, NULL, TSEAL_E_CORRUPT, "public key does not match");
    /* protected: the header is authenticated, so the same edit reads as a wrong passphrase */
    sk_swap_public(TSEAL_KEY_SIGN, "pw", TSEAL_E_VERIFY, "wrong passphrase");
}

Test(crypto_secfile, ed25519_secret_public_half_mismatch) {
    sk_edit_rejected(TSEAL_KEY_SIGN, TSEAL_SK_OFF_SECRET + 40, 0, TSEAL_E_CORRUPT,
                     "public key does not match the secret key");
}

Test(crypto_secfile, x25519_secret_not_clamped) {
    tseal_seckey *k = gen(TSEAL_KEY_RECIPIENT, "bank", 1);
    size_t len;
    uint8_t *b = sk_file(k, NULL, &len);
    b[TSEAL_SK_OFF_SECRET] |= 1; /* same public key, but not the stored form */
    sk_rejected(b, len, NULL, TSEAL_E_CORRUPT, "X25519 secret key is not clamped");
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, invalid_public_key) {
    tseal_seckey *k = gen(TSEAL_KEY_RECIPIENT, "bank", 1);
    size_t len;
    uint8_t *b = sk_file(k, NULL, &len);
    uint8_t pk[32];
    unhex(low_order[3], pk, 32);
    memcpy(b + TSEAL_SK_OFF_PK, pk, 32);
    tseal_key_id(TSEAL_ALG_X25519, pk, b + TSEAL_SK_OFF_KEY_ID);
    sk_rejected(b, len, NULL, TSEAL_E_CORRUPT, "public key is a low-order X25519 point");
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

/*
 * Unprotected: any flipped bit outside the name is rejected (magic, kind, alg, protection,
 * reserved, key_id, public key, zero cost fields, secret); a flip inside the name is rejected
 * or yields a different name, never the same key silently.
 */
static void all_flips_unprotected(tseal_key_kind kind) {
    tseal_seckey *k = gen(kind, "bank", 1);
    size_t len;
    uint8_t *b = sk_file(k, NULL, &len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            tseal_seckey *r = NULL;
            int rc = tseal_seckey_parse(b, len, "k", NULL, 0, &r);
            bool in_name = i >= TSEAL_SK_OFF_NAME && i < TSEAL_SK_OFF_NAME + TSEAL_KEY_NAME_MAX;
            if (!in_name || rc == 0)
                cr_assert(rc != 0 || strcmp(r->pub.name, "bank") != 0,
                          "flip of byte %zu bit %d accepted", i, bit);
            if (rc != 0) cr_assert_null(r);
            tseal_seckey_free(r);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, every_bit_flip_rejected_unprotected_sign) {
    all_flips_unprotected(TSEAL_KEY_SIGN);
}

Test(crypto_secfile, every_bit_flip_rejected_unprotected_recipient) {
    all_flips_unprotected(TSEAL_KEY_RECIPIENT);
}

/*
 * Protected: the header is authenticated, so every single-bit flip anywhere is rejected.
 * Costs are the cheapest (ops 1, 8 KiB); flips of memlimit bits 27..31 are skipped only
 * because they would run Argon2id with 128 MiB..2 GiB (they are authenticated like the rest).
 */
static void all_flips_protected(tseal_key_kind kind) {
    tseal_seckey *k = gen(kind, "bank", 1), *r = NULL;
    size_t len;
    uint8_t *b = sk_file(k, "pw", &len);
    cr_assert_eq(tseal_seckey_parse(b, len, "k", "pw", 2, &r), 0, "%s", tseal_errmsg());
    assert_same_key(k, r);
    tseal_seckey_free(r);
    unsigned tried = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            size_t membit = (i - TSEAL_SK_OFF_MEMLIMIT) * 8 + (size_t)bit;
            if (i >= TSEAL_SK_OFF_MEMLIMIT && i < TSEAL_SK_OFF_MEMLIMIT + 8 && membit >= 27 &&
                membit <= 31)
                continue;
            b[i] ^= (uint8_t)(1u << bit);
            r = NULL;
            int rc = tseal_seckey_parse(b, len, "k", "pw", 2, &r);
            cr_assert(rc == TSEAL_E_CORRUPT || rc == TSEAL_E_VERIFY,
                      "flip of byte %zu bit %d: rc %d (%s)", i, bit, rc, tseal_errmsg());
            cr_assert_null(r);
            b[i] ^= (uint8_t)(1u << bit);
            tried++;
        }
    }
    cr_assert_eq(tried, len * 8 - 5);
    tseal_secure_free(b);
    tseal_seckey_free(k);
}

Test(crypto_secfile, every_bit_flip_rejected_protected_sign) {
    all_flips_protected(TSEAL_KEY_SIGN);
}

Test(crypto_secfile, every_bit_flip_rejected_protected_recipient) {
    all_flips_protected(TSEAL_KEY_RECIPIENT);
}

/* ---- passphrase files ------------------------------------------------------------------ */

static void pass_is(const char *text, size_t n, const char *want) {
    const char *path = tu_path("pass");
    tu_write(path, text, n);
    char *p = NULL;
    size_t len = 0;
    cr_assert_eq(tseal_passphrase_read(path, &p, &len), 0, "%s", tseal_errmsg());
    cr_assert_eq(len, strlen(want));
    cr_assert_str_eq(p, want);
    tseal_secure_free(p);
}

static void pass_rejected(const char *text, size_t n, int code, const char *why) {
    const char *path = tu_path("pass");
    tu_write(path, text, n);
    char *p = (char *)1;
    size_t len = 7;
    tu_assert_err(tseal_passphrase_read(path, &p, &len), code, why);
    cr_assert_null(p);
    cr_assert_eq(len, 0);
    cr_assert_not_null(strstr(tseal_errmsg(), path));
}

Test(crypto_pass, first_line_without_its_end) {
    pass_is("hunter2", 7, "hunter2");
    pass_is("hunter2\n", 8, "hunter2");
    pass_is("hunter2\r\n", 9, "hunter2");
    pass_is("two words \n", 11, "two words ");
    pass_is("first\nsecond\n", 13, "first");
    pass_is("cr\r\r\n", 5, "cr\r"); /* one line end only */
    pass_is("lone cr\r", 8, "lone cr\r");
}

Test(crypto_pass, empty_refused) {
    pass_rejected("", 0, TSEAL_E_INVAL, "passphrase is empty");
    pass_rejected("\n", 1, TSEAL_E_INVAL, "passphrase is empty");
    pass_rejected("\r\nx", 3, TSEAL_E_INVAL, "passphrase is empty");
}

Test(crypto_pass, nul_refused) {
    pass_rejected("a\0b\n", 4, TSEAL_E_INVAL, "NUL");
}

Test(crypto_pass, size_limit) {
    static char big[TSEAL_PASSPHRASE_FILE_MAX + 1];
    memset(big, 'p', sizeof big);
    pass_rejected(big, sizeof big, TSEAL_E_LIMIT, "larger than 4096 bytes");
    big[TSEAL_PASSPHRASE_FILE_MAX - 1] = 0;
    const char *path = tu_path("pass");
    tu_write(path, big, TSEAL_PASSPHRASE_FILE_MAX - 1);
    char *p;
    size_t len;
    cr_assert_eq(tseal_passphrase_read(path, &p, &len), 0, "%s", tseal_errmsg());
    cr_assert_eq(len, TSEAL_PASSPHRASE_FILE_MAX - 1);
    tseal_secure_free(p);
}

Test(crypto_pass, missing_file) {
    char *p;
    size_t len;
    tu_assert_err(tseal_passphrase_read(tu_path("nope"), &p, &len), TSEAL_E_NOTFOUND, "nope");
}

Test(crypto_pass, used_for_a_protected_key) {
    interactive();
    tseal_seckey *k = gen(TSEAL_KEY_RECIPIENT, "bank", 2), *r;
    pass_is("s3cret phrase\n", 14, "s3cret phrase");
    char *p;
    size_t len;
    cr_assert_eq(tseal_passphrase_read(tu_path("pass"), &p, &len), 0);
    cr_assert_eq(tseal_seckey_write(k, tu_path("bank.key"), p, len, 0), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_seckey_read(tu_path("bank.key"), "s3cret phrase", 13, &r), 0, "%s",
                 tseal_errmsg());
    assert_same_key(k, r);
    tseal_secure_free(p);
    tseal_seckey_free(r);
    tseal_seckey_free(k);
}

Test(crypto_secfile, group_or_world_accessible_key_refused) {
    tseal_seckey *k = gen(TSEAL_KEY_SIGN, "vendor", 1);
    cr_assert_eq(tseal_seckey_write(k, tu_path("open.key"), NULL, 0, 1), 0);
    chmod(tu_path("open.key"), 0644);
    tseal_seckey *r = NULL;
    tu_assert_err(tseal_seckey_read(tu_path("open.key"), NULL, 0, &r), TSEAL_E_INVAL, "chmod 600");
    chmod(tu_path("open.key"), 0600);
    cr_assert_eq(tseal_seckey_read(tu_path("open.key"), NULL, 0, &r), 0);
    tseal_seckey_free(r);
    tseal_seckey_free(k);
}
