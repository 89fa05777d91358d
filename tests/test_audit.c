/*
 * test_audit.c - end to end: `tseal audit` and its signed report, `audit-verify`,
 * `sign --add` (k-of-n), and verify gated by a deployment policy (threshold, rollback state
 * updated only after full verification, required audit reports).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "internal.h"
#include "tseal_policy.h"
#include <sodium.h>
#include "key_testutil.h"

typedef struct {
    char dir[64];
    char model[128], out[128], vendor[128], vendor_pub[128], validator[128], validator_pub[128];
    char bank[128], bank_pub[128], auditor[128], auditor_pub[128], report[128], policy[128],
        state[128];
} afx;

static void pack(afx *f, uint64_t version, const char *out) {
    const char *r[1] = {f->bank_pub};
    tseal_pack_opts o;
    memset(&o, 0, sizeof o);
    o.model_id = "acme/credit-7b";
    o.version = version;
    o.sign_key = f->vendor;
    o.recipients = r;
    o.n_recipients = 1;
    cr_assert_eq(tseal_pack(f->model, out, &o, NULL), 0, "%s", tseal_errmsg());
}

static void setup(afx *f) {
    snprintf(f->dir, sizeof f->dir, "/tmp/tseal-audit-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    char d[64];
    memcpy(d, f->dir, sizeof d);
#define P(field, name) snprintf(f->field, sizeof f->field, "%s/%s", d, name)
    P(model, "model");
    P(out, "model.tseal");
    P(vendor, "vendor.sign.key");
    P(vendor_pub, "vendor.sign.pub");
    P(validator, "validator.sign.key");
    P(validator_pub, "validator.sign.pub");
    P(bank, "bank.key");
    P(bank_pub, "bank.pub");
    P(auditor, "auditor.sign.key");
    P(auditor_pub, "auditor.sign.pub");
    P(report, "report.json");
    P(policy, "site.json");
    P(state, "state.json");
#undef P
    tu_keypair(TSEAL_KEY_SIGN, "vendor", 1, f->vendor, f->vendor_pub);
    tu_keypair(TSEAL_KEY_SIGN, "validator", 5, f->validator, f->validator_pub);
    tu_keypair(TSEAL_KEY_RECIPIENT, "bank", 2, f->bank, f->bank_pub);
    tu_keypair(TSEAL_KEY_SIGN, "auditor", 6, f->auditor, f->auditor_pub);
    tseal_synth_opts so = {.preset = "tiny", .seed = 4, .shards = 1};
    cr_assert_eq(tseal_synth_model(f->model, &so), 0, "%s", tseal_errmsg());
    pack(f, 12, f->out);
}

static void teardown(afx *f) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    cr_assert_eq(system(cmd), 0);
}

static tseal_audit_opts audit_opts(afx *f, const char **trust) {
    tseal_audit_opts o;
    memset(&o, 0, sizeof o);
    trust[0] = f->vendor_pub;
    o.trust = trust;
    o.n_trust = 1;
    o.key = f->bank;
    o.report = f->report;
    o.audit_key = f->auditor;
    o.reference = f->model;
    o.device = "cpu";
    return o;
}

/* Flip one byte inside tensor `name` of a safetensors file. */
static void corrupt_tensor(const char *file, const char *name) {
    tseal_st *st;
    cr_assert_eq(tseal_st_open(file, &st), 0);
    size_t i;
    cr_assert_eq(tseal_st_find(st, name, &i), 0);
    uint64_t off = tseal_st_data_offset(st) + tseal_st_get(st, i)->begin + 7;
    tseal_st_close(st);
    FILE *fh = fopen(file, "r+b");
    cr_assert_not_null(fh);
    fseek(fh, (long)off, SEEK_SET);
    int ch = fgetc(fh);
    fseek(fh, (long)off, SEEK_SET);
    fputc(ch ^ 0x40, fh);
    fclose(fh);
}

Test(audit, passes_and_report_verifies) {
    afx f;
    setup(&f);
    const char *t[1];
    tseal_audit_opts o = audit_opts(&f, t);
    tseal_audit_result res;
    cr_assert_eq(tseal_audit(f.out, &o, &res), 0, "%s", tseal_errmsg());
    cr_assert(res.passed && res.tensors == 21 && res.tensors_ok == 21 && res.files == res.files_ok);
    cr_assert_str_eq(res.device, "cpu");
    const char *ta[1] = {f.auditor_pub};
    tseal_report_info in;
    cr_assert_eq(tseal_audit_verify(f.report, ta, 1, &in), 0, "%s", tseal_errmsg());
    cr_assert(in.passed);
    cr_assert_str_eq(in.model_id, "acme/credit-7b");
    cr_assert_eq(in.version, 12);
    tseal_container *c;
    cr_assert_eq(tseal_container_open(f.out, &c), 0);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", c->header_digest[i]);
    tseal_container_close(c);
    cr_assert_str_eq(in.artifact_digest, hex, "the report's subject is the artifact digest");
    cr_assert_eq(strlen(in.model_root), 64);
    /* the vendor's key is not the auditor's */
    const char *tv[1] = {f.vendor_pub};
    cr_assert_eq(tseal_audit_verify(f.report, tv, 1, NULL), TSEAL_E_VERIFY);
    teardown(&f);
}

Test(audit, names_the_tensor_that_differs_from_the_reference) {
    afx f;
    setup(&f);
    char ref[160];
    snprintf(ref, sizeof ref, "%s/model/model.safetensors", f.dir);
    corrupt_tensor(ref, "model.layers.1.mlp.up_proj.weight");
    const char *t[1];
    tseal_audit_opts o = audit_opts(&f, t);
    tseal_audit_result res;
    cr_assert_eq(tseal_audit(f.out, &o, &res), TSEAL_E_VERIFY);
    cr_assert(strstr(tseal_errmsg(), "model.layers.1.mlp.up_proj.weight"), "%s", tseal_errmsg());
    cr_assert(!res.passed && res.reference_mismatches >= 1);
    cr_assert(access(f.report, F_OK) == 0, "a failed audit still writes its signed report");
    const char *ta[1] = {f.auditor_pub};
    tseal_report_info in;
    cr_assert_eq(tseal_audit_verify(f.report, ta, 1, &in), TSEAL_E_VERIFY);
    cr_assert(strstr(tseal_errmsg(), "FAILED"), "%s", tseal_errmsg());
    cr_assert(strstr(in.first_failure, "up_proj"), "%s", in.first_failure);
    teardown(&f);
}

Test(audit, any_edit_of_the_report_fails) {
    afx f;
    setup(&f);
    const char *t[1];
    tseal_audit_opts o = audit_opts(&f, t);
    cr_assert_eq(tseal_audit(f.out, &o, NULL), 0, "%s", tseal_errmsg());
    FILE *fh = fopen(f.report, "rb");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, fh);
    fclose(fh);
    const char *ta[1] = {f.auditor_pub};
    char *payload = strstr(buf, "\"payload\":");
    cr_assert_not_null(payload);
    size_t start = (size_t)(payload - buf) + 20, bad = 0;
    for (size_t i = start; i < start + 400 && i < n; i += 7) { /* flip payload characters */
        char saved = buf[i];
        buf[i] = buf[i] == 'A' ? 'B' : 'A';
        fh = fopen(f.report, "wb");
        fwrite(buf, 1, n, fh);
        fclose(fh);
        bad += tseal_audit_verify(f.report, ta, 1, NULL) != 0;
        buf[i] = saved;
    }
    cr_assert(bad > 50, "every edited report must fail (%zu did)", bad);
    fh = fopen(f.report, "wb");
    fwrite(buf, 1, n, fh);
    fclose(fh);
    cr_assert_eq(tseal_audit_verify(f.report, ta, 1, NULL), 0, "%s", tseal_errmsg());
    teardown(&f);
}

Test(audit, gpu_device_is_refused_cleanly) {
    if (tseal_gpu_device_count() > 0) cr_skip_test("a GPU is present: tests/gpu/test_gpu_audit.c");
    afx f;
    setup(&f);
    const char *t[1];
    tseal_audit_opts o = audit_opts(&f, t);
    o.device = "gpu";
    int r = tseal_audit(f.out, &o, NULL);
    cr_assert(r == TSEAL_E_NO_GPU || r == TSEAL_E_UNSUPPORTED, "%d %s", r, tseal_errmsg());
    cr_assert(access(f.report, F_OK) != 0);
    teardown(&f);
}

/* ---- sign --add and policies ------------------------------------------------------------ */

static tseal_verify_opts policy_opts(afx *f, int with_state) {
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    o.policy = f->policy;
    o.key = f->bank;
    if (with_state) o.state = f->state;
    return o;
}

static void write_policy(afx *f, unsigned threshold, uint64_t min_version) {
    tseal_pubkey keys[2];
    cr_assert_eq(tseal_pubkey_read(f->vendor_pub, &keys[0]), 0);
    cr_assert_eq(tseal_pubkey_read(f->validator_pub, &keys[1]), 0);
    tseal_policy_init_opts po = {.policy_id = "bank-prod",
                                 .trusted = keys,
                                 .n_trusted = 2,
                                 .model_id = "acme/credit-7b",
                                 .min_version = min_version,
                                 .threshold = threshold};
    cr_assert_eq(tseal_policy_init(&po, f->policy, 1), 0, "%s", tseal_errmsg());
}

Test(policy_e2e, two_person_rule_with_sign_add) {
    afx f;
    setup(&f);
    write_policy(&f, 2, 1);
    tseal_verify_opts o = policy_opts(&f, 0);
    cr_assert_eq(tseal_verify(f.out, &o, NULL), TSEAL_E_DENIED);
    cr_assert(strstr(tseal_errmsg(), "threshold not met: 1 of 2"), "%s", tseal_errmsg());
    cr_assert_eq(tseal_sign_add(f.out, f.validator, NULL, NULL), 0, "%s", tseal_errmsg());
    tseal_verify_report rep;
    cr_assert_eq(tseal_verify(f.out, &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert(rep.policy_allowed);
    cr_assert_eq(tseal_sign_add(f.out, f.validator, NULL, NULL),
                 TSEAL_E_INVAL); /* same key twice */
    tseal_container_info info;
    cr_assert_eq(tseal_inspect(f.out, &info), 0);
    cr_assert_eq(info.signature_count, 2);
    /* the other signer also works with plain --trust */
    const char *tv[1] = {f.validator_pub};
    tseal_verify_opts to = {.trust = tv, .n_trust = 1};
    cr_assert_eq(tseal_verify(f.out, &to, NULL), 0, "%s", tseal_errmsg());
    teardown(&f);
}

Test(policy_e2e, rollback_state_moves_only_after_full_verification) {
    afx f;
    setup(&f);
    write_policy(&f, 1, 1);
    tseal_verify_opts o = policy_opts(&f, 1);
    tseal_verify_report rep;
    /* a tampered v12 must not move the counter */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad.tseal", f.dir);
    FILE *in = fopen(f.out, "rb"), *out = fopen(bad, "wb");
    static uint8_t buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf, in);
    buf[n - 100] ^= 1;
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    cr_assert(tseal_verify(bad, &o, &rep) < 0);
    cr_assert(access(f.state, F_OK) != 0, "a failed verification wrote the state");
    cr_assert_eq(tseal_verify(f.out, &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert(rep.state_updated);
    /* now an older version (v11) is a rollback */
    char old[160];
    snprintf(old, sizeof old, "%s/v11.tseal", f.dir);
    pack(&f, 11, old);
    cr_assert_eq(tseal_verify(old, &o, NULL), TSEAL_E_DENIED);
    cr_assert(strstr(tseal_errmsg(), "rollback"), "%s", tseal_errmsg());
    /* the same version again is fine, a newer one too */
    cr_assert_eq(tseal_verify(f.out, &o, NULL), 0, "%s", tseal_errmsg());
    teardown(&f);
}

Test(policy_e2e, required_audit_report) {
    afx f;
    setup(&f);
    tseal_pubkey v, a;
    cr_assert_eq(tseal_pubkey_read(f.vendor_pub, &v), 0);
    cr_assert_eq(tseal_pubkey_read(f.auditor_pub, &a), 0);
    char vid[33], aid[33], vb64[64], text[4096];
    tseal_key_id_hex(v.key_id, vid);
    tseal_key_id_hex(a.key_id, aid);
    sodium_bin2base64(vb64, sizeof vb64, v.pk, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf(
        text, sizeof text,
        "{\"tseal_policy\": 1, \"policy_id\": \"bank-prod\",\n"
        " \"trusted_signers\": [{\"name\": \"vendor\", \"key_id\": \"%s\", \"algorithm\": "
        "\"ed25519\",\n"
        "                      \"public_key\": \"%s\", \"not_after\": null}],\n"
        " \"models\": [{\"model_id\": \"acme/credit-7b\", \"min_version\": 1}],\n"
        " \"required_attestations\": [{\"type\": \"audit-report\", \"auditor_key_id\": \"%s\"}]}\n",
        vid, vb64, aid);
    FILE *fh = fopen(f.policy, "w");
    fputs(text, fh);
    fclose(fh);
    tseal_verify_opts o = policy_opts(&f, 0);
    cr_assert_eq(tseal_verify(f.out, &o, NULL), TSEAL_E_DENIED);
    cr_assert(strstr(tseal_errmsg(), "audit report"), "%s", tseal_errmsg());
    const char *t[1];
    tseal_audit_opts ao = audit_opts(&f, t);
    cr_assert_eq(tseal_audit(f.out, &ao, NULL), 0, "%s", tseal_errmsg());
    const char *att[1] = {f.report};
    o.attestations = att;
    o.n_attestations = 1;
    tseal_verify_report rep;
    cr_assert_eq(tseal_verify(f.out, &o, &rep), 0, "%s", tseal_errmsg());
    cr_assert(rep.policy_allowed);
    /* a report about another artifact does not count */
    char other[160];
    snprintf(other, sizeof other, "%s/v13.tseal", f.dir);
    pack(&f, 13, other);
    cr_assert_eq(tseal_verify(other, &o, NULL), TSEAL_E_DENIED);
    teardown(&f);
}
