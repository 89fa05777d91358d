/*
 * test_fips_pack.c - the FIPS suite (container suite 2) end to end, with a PKI the test builds
 * itself (tests/pki_testutil.h): root -> intermediate -> signer leaf, plus an expired leaf, a
 * revoked leaf (with CRLs), a leaf of another CA, a leaf whose key usage forbids signing and a
 * second signer. Round trips in both suites; each X.509 rejection with its own error; the
 * policy's allowed suites refusing a downgrade; sign --add with a certificate; every byte of
 * the public header and signature block protected; suite/key mismatches refused clearly.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "internal.h"
#include "pki_testutil.h"
#include "tseal_fips.h"
#include "tseal_policy.h"

#define DAY (24 * 3600)

enum {
    F_MODEL,
    F_OUT,    /* FIPS container */
    F_OUT_V1, /* default-suite container of the same model */
    F_ROOT,   /* trusted root */
    F_CHAIN,  /* the intermediate */
    F_LEAF,
    F_LEAF_KEY,
    F_EXPIRED,
    F_EXPIRED_KEY,
    F_REVOKED,
    F_REVOKED_KEY,
    F_CRLS, /* the intermediate's CRL (revoking F_REVOKED) and the root's (empty) */
    F_OTHER_ROOT,
    F_OTHER,
    F_OTHER_KEY,
    F_NOSIGN,
    F_NOSIGN_KEY,
    F_SECOND,
    F_SECOND_KEY,
    F_BANK_KEY,
    F_BANK_PUB, /* P-256 recipient */
    F_V1_SIGN_KEY,
    F_V1_SIGN_PUB, /* Ed25519 signer */
    F_V1_BANK_KEY,
    F_V1_BANK_PUB, /* X25519 recipient */
    F_POLICY,
    F_RESTORE,
    F_TMP,
    F_COUNT
};

static char dir[64];
static char paths[F_COUNT][160];
static const char *fp(int i) {
    return paths[i];
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

static void make_model(const char *d) {
    char p[256];
    mkdir(d, 0755);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    tseal_st_writer *w;
    cr_assert_eq(tseal_st_writer_open(p, &w), 0);
    uint64_t s1[2] = {96, 64}, s2[1] = {10};
    cr_assert_eq(tseal_st_writer_add(w, "layer.weight", TSEAL_DT_BF16, 2, s1), 0);
    cr_assert_eq(tseal_st_writer_add(w, "layer.scale", TSEAL_DT_F32, 1, s2), 0);
    uint64_t x = 777;
    for (uint64_t i = 0; i < 96 * 64; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0 - 0.5;
        uint16_t v = tseal_f32_to_bf16((float)(0.05 * u));
        cr_assert_eq(tseal_st_writer_write(w, &v, 2), 0);
    }
    float sc[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    cr_assert_eq(tseal_st_writer_write(w, sc, sizeof sc), 0);
    cr_assert_eq(tseal_st_writer_commit(w), 0, "%s", tseal_errmsg());
    snprintf(p, sizeof p, "%s/config.json", d);
    write_file(p, "{\"hidden_size\": 64}\n", 20);
}

static void leaf_files(pki_cert *c, int cert_path, int key_path) {
    pki_write_cert(fp(cert_path), c->cert);
    pki_write_key(fp(key_path), c->key);
}

/* The PKI and keys; every certificate relative to the current time. */
static void make_pki(void) {
    time_t now = time(NULL);
    pki_cert *root = make_root("Bank Root CA", now - 30 * DAY, now + 365 * DAY);
    pki_cert *ica =
        make_intermediate(root, "Bank Code Signing CA", now - 30 * DAY, now + 365 * DAY);
    const char *sans[] = {"email:release@acme.example", "URI:https://acme.example/release", NULL};
    const char *ku = "critical,digitalSignature", *eku = "codeSigning";
    pki_cert *leaf = make_leaf(ica, "acme-release", sans, ku, eku, now - DAY, now + 30 * DAY);
    pki_cert *expired =
        make_leaf(ica, "acme-release-2025", sans, ku, eku, now - 20 * DAY, now - 2 * DAY);
    pki_cert *revoked =
        make_leaf(ica, "acme-release-lost", sans, ku, eku, now - DAY, now + 30 * DAY);
    const char *sans2[] = {"email:validation@bank.example", NULL};
    pki_cert *second = make_leaf(ica, "bank-validation", sans2, ku, eku, now - DAY, now + 30 * DAY);
    pki_cert *nosign = make_leaf(ica, "acme-tls", sans, "critical,keyEncipherment", NULL, now - DAY,
                                 now + 30 * DAY);
    pki_cert *other_root = make_root("Elsewhere Root CA", now - DAY, now + 365 * DAY);
    pki_cert *other =
        make_leaf(other_root, "acme-release", sans, ku, eku, now - DAY, now + 30 * DAY);
    pki_write_cert(fp(F_ROOT), root->cert);
    pki_write_cert(fp(F_CHAIN), ica->cert);
    pki_write_cert(fp(F_OTHER_ROOT), other_root->cert);
    leaf_files(leaf, F_LEAF, F_LEAF_KEY);
    leaf_files(expired, F_EXPIRED, F_EXPIRED_KEY);
    leaf_files(revoked, F_REVOKED, F_REVOKED_KEY);
    leaf_files(second, F_SECOND, F_SECOND_KEY);
    leaf_files(nosign, F_NOSIGN, F_NOSIGN_KEY);
    leaf_files(other, F_OTHER, F_OTHER_KEY);
    X509_CRL *crls[2] = {make_crl(ica, &revoked->serial, 1, now - DAY, now + 7 * DAY),
                         make_crl(root, NULL, 0, now - DAY, now + 7 * DAY)};
    pki_write_crls(fp(F_CRLS), crls, 2);
    X509_CRL_free(crls[0]);
    X509_CRL_free(crls[1]);
    pki_cert *all[] = {root, ica, leaf, expired, revoked, second, nosign, other_root, other};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pki_free(all[i]);

    tseal_seckey *k;
    cr_assert_eq(tseal_p256_keygen(TSEAL_KEY_RECIPIENT, "bank", &k), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_p256_seckey_write_pem(k, fp(F_BANK_KEY), NULL, 0, 1), 0);
    cr_assert_eq(tseal_p256_pubkey_write_pem(&k->pub, fp(F_BANK_PUB), 1), 0);
    tseal_seckey_free(k);
    cr_assert_eq(tseal_keygen(TSEAL_KEY_SIGN, "vendor", NULL, &k), 0);
    cr_assert_eq(tseal_seckey_write(k, fp(F_V1_SIGN_KEY), NULL, 0, 1), 0);
    cr_assert_eq(tseal_pubkey_write(&k->pub, fp(F_V1_SIGN_PUB), 1), 0);
    tseal_seckey_free(k);
    cr_assert_eq(tseal_keygen(TSEAL_KEY_RECIPIENT, "bank", NULL, &k), 0);
    cr_assert_eq(tseal_seckey_write(k, fp(F_V1_BANK_KEY), NULL, 0, 1), 0);
    cr_assert_eq(tseal_pubkey_write(&k->pub, fp(F_V1_BANK_PUB), 1), 0);
    tseal_seckey_free(k);
}

static tseal_pack_opts fips_opts(int cert, int key, const char **recips) {
    tseal_pack_opts o;
    memset(&o, 0, sizeof o);
    o.model_id = "acme/credit-7b";
    o.version = 12;
    o.chunk_size = 4096;
    o.suite = TSEAL_SUITE_FIPS;
    o.sign_key = fp(key);
    o.sign_cert = fp(cert);
    o.sign_chain = fp(F_CHAIN);
    o.recipients = recips;
    o.n_recipients = 1;
    return o;
}

static int pack_fips(int cert, int key, const char *out) {
    const char *r[1] = {fp(F_BANK_PUB)};
    tseal_pack_opts o = fips_opts(cert, key, r);
    return tseal_pack(fp(F_MODEL), out, &o, NULL);
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/tseal-fips-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    static const char *names[F_COUNT] = {
        "model",          "m.tseal",     "m1.tseal",    "root.pem",    "chain.pem",   "leaf.pem",
        "leaf.key.pem",   "expired.pem", "expired.key", "revoked.pem", "revoked.key", "crls.pem",
        "other-root.pem", "other.pem",   "other.key",   "nosign.pem",  "nosign.key",  "second.pem",
        "second.key",     "bank.key",    "bank.pub",    "v1.sign.key", "v1.sign.pub", "v1bank.key",
        "v1bank.pub",     "policy.json", "restored",    "tmp.tseal"};
    for (int i = 0; i < F_COUNT; i++) snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
    make_model(fp(F_MODEL));
    make_pki();
    cr_assert_eq(pack_fips(F_LEAF, F_LEAF_KEY, fp(F_OUT)), 0, "%s", tseal_errmsg());
}

static void teardown(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(fips, .init = setup, .fini = teardown);

static tseal_verify_opts ca_opts(const char *const *cas, unsigned n) {
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.trust_cas = cas;
    o.n_trust_cas = n;
    return o;
}

static void assert_same_file(const char *a, const char *b) {
    size_t la, lb;
    uint8_t *x = read_file(a, &la), *y = read_file(b, &lb);
    cr_assert_eq(la, lb, "%s vs %s", a, b);
    cr_assert(memcmp(x, y, la) == 0, "%s differs from %s", b, a);
    free(x);
    free(y);
}

/* Verify must fail with TSEAL_E_VERIFY and an error containing `what`. */
static void assert_refused(const tseal_verify_opts *o, const char *file, const char *what) {
    int r = tseal_verify(file, o, NULL);
    cr_assert_eq(r, TSEAL_E_VERIFY, "expected a verification failure (%s), got %d: %s", what, r,
                 tseal_errmsg());
    cr_assert(strstr(tseal_errmsg(), what), "error \"%s\" should say \"%s\"", tseal_errmsg(), what);
}

/* ---- round trips -------------------------------------------------------------------------- */

Test(fips, round_trip_restores_every_byte) {
    tseal_container_info info;
    cr_assert_eq(tseal_inspect(fp(F_OUT), &info), 0, "%s", tseal_errmsg());
    cr_assert_eq(info.suite, TSEAL_SUITE_FIPS);
    cr_assert_str_eq(info.suite_name, TSEAL_SUITE_NAME_FIPS);
    cr_assert(strstr(info.signer_subjects[0], "CN=acme-release"), "%s", info.signer_subjects[0]);
    cr_assert(strstr(info.signer_issuers[0], "CN=Bank Code Signing CA"), "%s",
              info.signer_issuers[0]);
    cr_assert_gt(info.signer_not_after[0], (int64_t)time(NULL));
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    o.key = fp(F_BANK_KEY);
    tseal_verify_report rep;
    cr_assert_eq(tseal_verify(fp(F_OUT), &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert_eq(rep.trusted_signatures, 1);
    cr_assert_eq(tseal_unpack(fp(F_OUT), fp(F_RESTORE), &o, &rep), 0, "%s", tseal_errmsg());
    char a[256], b[256];
    const char *files[] = {"model.safetensors", "config.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", fp(F_MODEL), files[i]);
        snprintf(b, sizeof b, "%s/%s", fp(F_RESTORE), files[i]);
        assert_same_file(a, b);
    }
}

Test(fips, default_suite_round_trip_of_the_same_model) {
    const char *r[1] = {fp(F_V1_BANK_PUB)};
    tseal_pack_opts p;
    memset(&p, 0, sizeof p);
    p.model_id = "acme/credit-7b";
    p.version = 12;
    p.chunk_size = 4096;
    p.sign_key = fp(F_V1_SIGN_KEY);
    p.recipients = r;
    p.n_recipients = 1;
    cr_assert_eq(tseal_pack(fp(F_MODEL), fp(F_OUT_V1), &p, NULL), 0, "%s", tseal_errmsg());
    const char *trust[1] = {fp(F_V1_SIGN_PUB)};
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.trust = trust;
    o.n_trust = 1;
    o.key = fp(F_V1_BANK_KEY);
    cr_assert_eq(tseal_unpack(fp(F_OUT_V1), fp(F_RESTORE), &o, NULL), 0, "%s", tseal_errmsg());
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/model.safetensors", fp(F_MODEL));
    snprintf(b, sizeof b, "%s/model.safetensors", fp(F_RESTORE));
    assert_same_file(a, b);
    /* the FIPS container's AES-GCM payload is the same size as the ChaCha20 one */
    tseal_container_info i1, i2;
    cr_assert_eq(tseal_inspect(fp(F_OUT_V1), &i1), 0);
    cr_assert_eq(tseal_inspect(fp(F_OUT), &i2), 0);
    cr_assert_eq(i1.suite, TSEAL_SUITE_V1);
    cr_assert_eq(i1.payload_bytes, i2.payload_bytes);
}

Test(fips, pinned_p256_key_is_trusted_without_a_ca) {
    /* --trust with the signer's PEM public key pins it, as for Ed25519 */
    char pub[200];
    snprintf(pub, sizeof pub, "%s/leaf.pub.pem", dir);
    tseal_seckey *sk;
    cr_assert_eq(tseal_p256_seckey_read_pem(fp(F_LEAF_KEY), NULL, 0, TSEAL_KEY_SIGN, &sk), 0);
    cr_assert_eq(tseal_p256_pubkey_write_pem(&sk->pub, pub, 1), 0);
    tseal_seckey_free(sk);
    const char *trust[1] = {pub};
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.trust = trust;
    o.n_trust = 1;
    tseal_verify_report rep;
    cr_assert_eq(tseal_verify(fp(F_OUT), &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert_eq(rep.trusted_signatures, 1);
}

Test(fips, identity_constraints_select_signers) {
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    const char *ok[] = {"email:nobody@x", "email:release@acme.example"};
    o.identities = ok;
    o.n_identities = 2;
    cr_assert_eq(tseal_verify(fp(F_OUT), &o, NULL), 0, "%s", tseal_errmsg());
    const char *ok2[] = {"uri:https://acme.example/*"};
    o.identities = ok2;
    o.n_identities = 1;
    cr_assert_eq(tseal_verify(fp(F_OUT), &o, NULL), 0, "%s", tseal_errmsg());
    const char *ok3[] = {"subject:acme-release"};
    o.identities = ok3;
    cr_assert_eq(tseal_verify(fp(F_OUT), &o, NULL), 0, "%s", tseal_errmsg());
    const char *bad[] = {"email:release@evil.example"};
    o.identities = bad;
    assert_refused(&o, fp(F_OUT), "matches no trusted identity");
}

/* ---- X.509 rejections, each with its own error ----------------------------------------------- */

Test(fips, expired_signer_certificate_is_refused) {
    cr_assert_eq(pack_fips(F_EXPIRED, F_EXPIRED_KEY, fp(F_TMP)), 0, "%s", tseal_errmsg());
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    assert_refused(&o, fp(F_TMP), "certificate has expired");
    /* at a time inside its validity it was fine: the time is what is refused */
    o.now = (int64_t)time(NULL) - 10 * DAY;
    cr_assert_eq(tseal_verify(fp(F_TMP), &o, NULL), 0, "%s", tseal_errmsg());
}

Test(fips, revoked_signer_certificate_is_refused) {
    cr_assert_eq(pack_fips(F_REVOKED, F_REVOKED_KEY, fp(F_TMP)), 0, "%s", tseal_errmsg());
    const char *cas[1] = {fp(F_ROOT)}, *crls[1] = {fp(F_CRLS)};
    tseal_verify_opts o = ca_opts(cas, 1);
    cr_assert_eq(tseal_verify(fp(F_TMP), &o, NULL), 0, "without the CRL it verifies: %s",
                 tseal_errmsg());
    o.crls = crls;
    o.n_crls = 1;
    assert_refused(&o, fp(F_TMP), "certificate is revoked");
    /* the good leaf passes the same CRL check */
    cr_assert_eq(tseal_verify(fp(F_OUT), &o, NULL), 0, "%s", tseal_errmsg());
}

Test(fips, leaf_of_another_ca_is_refused) {
    const char *r[1] = {fp(F_BANK_PUB)};
    tseal_pack_opts p = fips_opts(F_OTHER, F_OTHER_KEY, r);
    p.sign_chain = NULL;
    cr_assert_eq(tseal_pack(fp(F_MODEL), fp(F_TMP), &p, NULL), 0, "%s", tseal_errmsg());
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    assert_refused(&o, fp(F_TMP), "not issued by a trusted CA");
    const char *cas2[1] = {fp(F_OTHER_ROOT)};
    o = ca_opts(cas2, 1);
    cr_assert_eq(tseal_verify(fp(F_TMP), &o, NULL), 0, "%s", tseal_errmsg());
    /* and the bank's container is not trusted under the other root */
    assert_refused(&o, fp(F_OUT), "not issued by a trusted CA");
}

Test(fips, certificate_without_signing_key_usage_is_refused) {
    cr_assert_eq(pack_fips(F_NOSIGN, F_NOSIGN_KEY, fp(F_TMP)), 0, "%s", tseal_errmsg());
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    assert_refused(&o, fp(F_TMP), "key usage does not allow signing");
}

Test(fips, missing_intermediate_is_refused) {
    const char *r[1] = {fp(F_BANK_PUB)};
    tseal_pack_opts p = fips_opts(F_LEAF, F_LEAF_KEY, r);
    p.sign_chain = NULL; /* leaf only: the verifier cannot reach the root */
    cr_assert_eq(tseal_pack(fp(F_MODEL), fp(F_TMP), &p, NULL), 0, "%s", tseal_errmsg());
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    assert_refused(&o, fp(F_TMP), "not issued by a trusted CA");
}

/* ---- policy: X.509 trust and the allowed suites ------------------------------------------- */

static void write_policy(int fips_only, const char *identity) {
    tseal_policy_init_opts po;
    memset(&po, 0, sizeof po);
    po.policy_id = "bank-fips";
    po.model_id = "acme/credit-7b";
    po.min_version = 1;
    po.ca_pem_path = fp(F_ROOT);
    po.identities = &identity;
    po.n_identities = 1;
    po.fips_only = fips_only;
    cr_assert_eq(tseal_policy_init(&po, fp(F_POLICY), 1), 0, "%s", tseal_errmsg());
}

Test(fips, policy_trusts_the_ca_and_refuses_a_downgrade) {
    write_policy(1, "email:release@acme.example");
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.policy = fp(F_POLICY);
    tseal_verify_report rep;
    cr_assert_eq(tseal_verify(fp(F_OUT), &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert(rep.policy_allowed);
    cr_assert_eq(rep.trusted_signatures, 1);
    /* the same model, default suite, properly signed: refused by a FIPS-only policy */
    const char *r[1] = {fp(F_V1_BANK_PUB)};
    tseal_pack_opts p;
    memset(&p, 0, sizeof p);
    p.model_id = "acme/credit-7b";
    p.version = 13;
    p.sign_key = fp(F_V1_SIGN_KEY);
    p.recipients = r;
    p.n_recipients = 1;
    cr_assert_eq(tseal_pack(fp(F_MODEL), fp(F_OUT_V1), &p, NULL), 0, "%s", tseal_errmsg());
    int rc = tseal_verify(fp(F_OUT_V1), &o, &rep);
    cr_assert_eq(rc, TSEAL_E_DENIED, "%d: %s", rc, tseal_errmsg());
    cr_assert(strstr(tseal_errmsg(), "suite ed25519-x25519-chacha20poly1305-sha256 is not allowed"),
              "%s", tseal_errmsg());
}

Test(fips, policy_identity_and_expiry_deny_with_reasons) {
    write_policy(1, "email:someone-else@acme.example");
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.policy = fp(F_POLICY);
    int rc = tseal_verify(fp(F_OUT), &o, NULL);
    cr_assert_eq(rc, TSEAL_E_DENIED, "%d: %s", rc, tseal_errmsg());
    cr_assert(strstr(tseal_errmsg(), "not an allowed identity"), "%s", tseal_errmsg());
    write_policy(1, "email:release@acme.example");
    cr_assert_eq(pack_fips(F_EXPIRED, F_EXPIRED_KEY, fp(F_TMP)), 0, "%s", tseal_errmsg());
    rc = tseal_verify(fp(F_TMP), &o, NULL);
    cr_assert_eq(rc, TSEAL_E_DENIED, "%d: %s", rc, tseal_errmsg());
    cr_assert(strstr(tseal_errmsg(), "expired"), "%s", tseal_errmsg());
}

/* ---- sign --add with a certificate ---------------------------------------------------------- */

Test(fips, second_signature_by_certificate) {
    cr_assert_eq(tseal_sign_add_cert(fp(F_OUT), fp(F_SECOND_KEY), fp(F_SECOND), fp(F_CHAIN), NULL,
                                     fp(F_TMP)),
                 0, "%s", tseal_errmsg());
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    tseal_verify_report rep;
    cr_assert_eq(tseal_verify(fp(F_TMP), &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert_eq(rep.trusted_signatures, 2);
    /* only the second signer's identity trusted: still one trusted signature */
    const char *ids[1] = {"email:validation@bank.example"};
    o.identities = ids;
    o.n_identities = 1;
    cr_assert_eq(tseal_verify(fp(F_TMP), &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert_eq(rep.trusted_signatures, 1);
    /* no certificate, or an Ed25519 key: refused with a clear error */
    cr_assert_eq(tseal_sign_add(fp(F_OUT), fp(F_SECOND_KEY), NULL, fp(F_TMP)), TSEAL_E_INVAL);
    cr_assert(strstr(tseal_errmsg(), "--sign-cert"), "%s", tseal_errmsg());
    cr_assert_neq(
        tseal_sign_add_cert(fp(F_OUT), fp(F_V1_SIGN_KEY), fp(F_SECOND), NULL, NULL, fp(F_TMP)), 0);
    /* the same signer twice */
    cr_assert_eq(tseal_sign_add_cert(fp(F_OUT), fp(F_LEAF_KEY), fp(F_LEAF), NULL, NULL, fp(F_TMP)),
                 TSEAL_E_INVAL);
}

/* ---- mismatches are clear errors, never partial output ----------------------------------------
 */

Test(fips, suite_and_key_mismatches_are_refused) {
    const char *r1[1] = {fp(F_V1_BANK_PUB)};
    tseal_pack_opts p = fips_opts(F_LEAF, F_LEAF_KEY, r1); /* X25519 recipient in the FIPS suite */
    cr_assert_neq(tseal_pack(fp(F_MODEL), fp(F_TMP), &p, NULL), 0);
    cr_assert(strstr(tseal_errmsg(), "X25519"), "%s", tseal_errmsg());
    const char *r[1] = {fp(F_BANK_PUB)};
    p = fips_opts(F_LEAF, F_LEAF_KEY, r);
    p.sign_cert = NULL;
    p.sign_chain = NULL;
    cr_assert_eq(tseal_pack(fp(F_MODEL), fp(F_TMP), &p, NULL), TSEAL_E_INVAL);
    cr_assert(strstr(tseal_errmsg(), "--sign-cert"), "%s", tseal_errmsg());
    p = fips_opts(F_SECOND, F_LEAF_KEY, r); /* certificate of another key */
    cr_assert_eq(tseal_pack(fp(F_MODEL), fp(F_TMP), &p, NULL), TSEAL_E_INVAL);
    cr_assert(strstr(tseal_errmsg(), "not for the key"), "%s", tseal_errmsg());
    p = fips_opts(F_LEAF, F_LEAF_KEY, r);
    p.suite = TSEAL_SUITE_V1; /* certificates belong to the FIPS suite */
    cr_assert_eq(tseal_pack(fp(F_MODEL), fp(F_TMP), &p, NULL), TSEAL_E_INVAL);
    struct stat st;
    cr_assert_neq(stat(fp(F_TMP), &st), 0, "a failed pack left output");
    /* an X25519 key cannot open a FIPS container */
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    o.key = fp(F_V1_BANK_KEY);
    cr_assert_neq(tseal_unpack(fp(F_OUT), fp(F_RESTORE), &o, NULL), 0);
    cr_assert_neq(stat(fp(F_RESTORE), &st), 0, "a failed unpack left output");
}

Test(fips, recipient_not_listed_is_refused) {
    tseal_seckey *k;
    char kp[200];
    snprintf(kp, sizeof kp, "%s/stranger.key", dir);
    cr_assert_eq(tseal_p256_keygen(TSEAL_KEY_RECIPIENT, "stranger", &k), 0);
    cr_assert_eq(tseal_p256_seckey_write_pem(k, kp, NULL, 0, 1), 0);
    tseal_seckey_free(k);
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    o.key = kp;
    cr_assert_eq(tseal_verify(fp(F_OUT), &o, NULL), TSEAL_E_VERIFY);
    cr_assert(strstr(tseal_errmsg(), "not encrypted for recipient"), "%s", tseal_errmsg());
}

/* ---- tampering ------------------------------------------------------------------------------ */

/* Every byte of the public header and the signature block (certificates included), and a
 * sample of payload bytes: flipping any one must fail verification. */
Test(fips, every_header_and_signature_byte_is_protected, .timeout = 240) {
    size_t len;
    uint8_t *orig = read_file(fp(F_OUT), &len);
    uint32_t hl = tseal_load_le32(orig + 8), sl = tseal_load_le32(orig + 12 + hl);
    size_t meta = 16 + (size_t)hl + sl;
    cr_assert_lt(meta, len);
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    o.key = fp(F_BANK_KEY);
    size_t n_checked = 0;
    for (size_t i = 0; i < len; i += i < meta ? 1 : 97) {
        orig[i] ^= 0x01;
        write_file(fp(F_TMP), orig, len);
        orig[i] ^= 0x01;
        int r = tseal_verify(fp(F_TMP), &o, NULL);
        cr_assert_neq(r, 0, "flipping byte %zu (of %zu; header+signatures end at %zu) verified", i,
                      len, meta);
        n_checked++;
    }
    cr_assert_gt(n_checked, meta);
    free(orig);
}

/* A chunk swapped between two positions of a segment fails AES-GCM authentication or its
 * signed hash; so does a truncated file. */
Test(fips, swapped_chunks_and_truncation_fail) {
    size_t len;
    uint8_t *b = read_file(fp(F_OUT), &len);
    uint32_t hl = tseal_load_le32(b + 8), sl = tseal_load_le32(b + 12 + hl);
    size_t p = 16 + (size_t)hl + sl, c = 4096 + 16;
    cr_assert_gt(len, p + 2 * c);
    uint8_t *tmp = malloc(c);
    memcpy(tmp, b + p, c);
    memmove(b + p, b + p + c, c);
    memcpy(b + p + c, tmp, c);
    write_file(fp(F_TMP), b, len);
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    o.key = fp(F_BANK_KEY);
    cr_assert_eq(tseal_verify(fp(F_TMP), &o, NULL), TSEAL_E_VERIFY, "%s", tseal_errmsg());
    free(b);
    b = read_file(fp(F_OUT), &len);
    write_file(fp(F_TMP), b, len - 1);
    cr_assert_neq(tseal_verify(fp(F_TMP), &o, NULL), 0);
    free(tmp);
    free(b);
}

/* The suite field is signed: relabelling a FIPS container as suite 1 (or back) breaks it. */
Test(fips, suite_relabel_fails) {
    size_t len;
    uint8_t *b = read_file(fp(F_OUT), &len);
    cr_assert_eq(b[14] | b[15] << 8, TSEAL_SUITE_FIPS);
    b[12 + 2] = TSEAL_SUITE_V1;
    write_file(fp(F_TMP), b, len);
    const char *cas[1] = {fp(F_ROOT)};
    tseal_verify_opts o = ca_opts(cas, 1);
    cr_assert_neq(tseal_verify(fp(F_TMP), &o, NULL), 0);
    free(b);
}

/* ---- audit with a trusted CA ----------------------------------------------------------------- */

Test(fips, audit_with_a_trusted_ca) {
    tseal_seckey *k;
    char ak[200], rp[200];
    snprintf(ak, sizeof ak, "%s/auditor.sign.key", dir);
    snprintf(rp, sizeof rp, "%s/report.json", dir);
    cr_assert_eq(tseal_keygen(TSEAL_KEY_SIGN, "auditor", NULL, &k), 0);
    cr_assert_eq(tseal_seckey_write(k, ak, NULL, 0, 1), 0);
    tseal_seckey_free(k);
    const char *cas[1] = {fp(F_ROOT)};
    tseal_audit_opts a;
    memset(&a, 0, sizeof a);
    a.key = fp(F_BANK_KEY);
    a.trust_cas = cas;
    a.n_trust_cas = 1;
    a.reference = fp(F_MODEL);
    a.device = "cpu";
    a.report = rp;
    a.audit_key = ak;
    tseal_audit_result res;
    cr_assert_eq(tseal_audit(fp(F_OUT), &a, &res), 0, "%s", tseal_errmsg());
    cr_assert(res.passed);
    cr_assert_eq(res.reference_mismatches, 0);
}
