/*
 * test_policy.c - policy/: the strict policy reader (one test per rejection), the signed
 * envelope, the gate (one test per denial reason, plus the combinations that matter), the
 * rollback state file, and policy init / sign / explain.
 */
#include "st_testutil.h"

#include "pki_testutil.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>

#include <sodium.h>

#include "../policy/policy_internal.h"
#include "tseal_crypto.h"
#include "tseal_policy.h"

/* 2026-01-01T00:00:00Z: "now" of every gate test. */
#define NOW   1767225600ll
#define MODEL "acme/credit-7b"

enum { VENDOR, COSIGN, OTHER, AUDITOR, POLKEY, NKEYS };
static tseal_seckey *K[NKEYS];
static const char *const KNAME[NKEYS] = {"vendor", "cosigner", "other", "auditor", "site"};

/* Strings built by a test, freed by its fini (so that LSan sees no leak). */
static char **owned;
static unsigned n_owned, cap_owned;

static char *own(char *s) {
    cr_assert_not_null(s);
    if (n_owned == cap_owned) {
        cap_owned = cap_owned ? 2 * cap_owned : 256;
        owned = realloc(owned, cap_owned * sizeof *owned);
        cr_assert_not_null(owned);
    }
    owned[n_owned++] = s;
    return s;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    cr_assert_geq(vasprintf(&s, f, ap), 0);
    va_end(ap);
    return own(s);
}

static void keys_init(void) {
    for (int i = 0; i < NKEYS; i++) {
        tseal_rng r;
        memset(&r, 0, sizeof r);
        for (int j = 0; j < 32; j++) r.seed[j] = (uint8_t)(0x40 + 7 * i + j);
        cr_assert_eq(tseal_keygen(TSEAL_KEY_SIGN, KNAME[i], &r, &K[i]), 0, "%s", tseal_errmsg());
    }
}

static void setup(void) {
    tu_setup();
    keys_init();
}

static void teardown(void) {
    for (int i = 0; i < NKEYS; i++) tseal_seckey_free(K[i]);
    for (unsigned i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    owned = NULL;
    n_owned = cap_owned = 0;
    tu_teardown();
}

TestSuite(policy_parse, .init = setup, .fini = teardown);
TestSuite(policy_env, .init = setup, .fini = teardown);
TestSuite(policy_gate, .init = setup, .fini = teardown);
TestSuite(policy_state, .init = setup, .fini = teardown);
TestSuite(policy_tools, .init = setup, .fini = teardown);

/* ---- key text ---------------------------------------------------------------------------- */

static const char *kid(int k) {
    char hex[33];
    tseal_key_id_hex(K[k]->pub.key_id, hex);
    return fmt("%s", hex);
}

static const char *kid16(int k) {
    return fmt("%.16s", kid(k));
}

static const char *kpk(int k) {
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, K[k]->pub.pk, 32, sodium_base64_VARIANT_ORIGINAL);
    return fmt("%s", b64);
}

/* A trusted_signers entry; `more` is appended inside the object (", \"not_after\": ..."). */
static const char *signer(int k, const char *more) {
    return fmt("{\"name\": \"%s\", \"key_id\": \"%s\", \"algorithm\": \"ed25519\", "
               "\"public_key\": \"%s\"%s}",
               KNAME[k], kid(k), kpk(k), more ? more : "");
}

#define DEFAULT_MODELS "[{\"model_id\": \"" MODEL "\", \"min_version\": 12}]"

/* A policy: signers array content (NULL: the vendor), models array (NULL: MODEL >= 12) and
 * extra members (each with its leading ", "). */
static const char *pol3(const char *signers, const char *models, const char *extra) {
    return fmt("{\"tseal_policy\": 1, \"policy_id\": \"bank-prod\", \"trusted_signers\": [%s], "
               "\"models\": %s%s}\n",
               signers ? signers : signer(VENDOR, NULL), models ? models : DEFAULT_MODELS,
               extra ? extra : "");
}

static const char *pol(const char *extra) {
    return pol3(NULL, NULL, extra);
}

static tseal_policy *parse_ok(const char *json) {
    tseal_policy *p = NULL;
    int rc = tseal_policy_parse((const uint8_t *)json, strlen(json), "policy.json", NULL, 0, 0, &p);
    cr_assert_eq(rc, 0, "rc %d: %s\n%s", rc, tseal_errmsg(), json);
    cr_assert_not_null(p);
    return p;
}

static void parse_fails_n(const void *buf, size_t len, int code, const char *substr) {
    tseal_policy *p = (tseal_policy *)1;
    int rc = tseal_policy_parse(buf, len, "policy.json", NULL, 0, 0, &p);
    tu_assert_err(rc, code, substr);
    cr_assert_null(p);
}

static void parse_fails(const char *json, int code, const char *substr) {
    parse_fails_n(json, strlen(json), code, substr);
}

/* ---- parsing: what is accepted ----------------------------------------------------------- */

Test(policy_parse, minimal_policy_and_defaults) {
    const char *j = pol(NULL);
    tseal_policy *p = parse_ok(j);
    cr_assert_str_eq(tseal_policy_id(p), "bank-prod");
    cr_assert_eq(tseal_policy_is_signed(p), 0);
    cr_assert_eq(tseal_policy_requires_state(p), 0);
    cr_assert_eq(p->threshold, 1);
    cr_assert_eq(p->n_suites, 1);
    cr_assert_str_eq(p->suites[0], TSEAL_SUITE_NAME_V1);
    cr_assert_eq(p->has_expires, 0);
    uint8_t d[32], want[32];
    tseal_policy_digest(p, d);
    tseal_sha256(j, strlen(j), want);
    cr_assert_arr_eq(d, want, 32);
    tseal_policy_free(p);
}

Test(policy_parse, full_policy) {
    const char *j = pol3(
        fmt("%s, %s", signer(VENDOR, ", \"not_after\": \"2027-01-01T12:00:00Z\""),
            signer(COSIGN, ", \"not_after\": null")),
        fmt("[{\"model_id\": \"%s\", \"min_version\": 9007199254740992, \"artifact_digests\": "
            "[\"%064d\"]}, {\"model_id\": \"b\", \"min_version\": 0}]",
            MODEL, 0),
        fmt(", \"expires\": \"2027-06-30\", \"revoked_key_ids\": [\"%s\"], "
            "\"signature_threshold\": 2, \"allowed_suites\": [\"%s\", \"x-suite\"], "
            "\"limits\": {\"max_header_bytes\": 1, \"max_tensors\": 2, \"max_recipients\": 3, "
            "\"max_tensor_bytes\": 4}, \"required_attestations\": [{\"type\": \"audit-report\", "
            "\"auditor_key_id\": \"%s\"}], \"require_rollback_state\": true",
            kid(OTHER), TSEAL_SUITE_NAME_V1, kid(AUDITOR)));
    tseal_policy *p = parse_ok(j);
    cr_assert_eq(p->n_signers, 2);
    cr_assert_eq(p->signers[0].has_not_after, 1);
    cr_assert_eq(p->signers[0].not_after, 1798804800ll); /* 2027-01-01T12:00:00Z */
    cr_assert_eq(p->signers[1].has_not_after, 0);
    cr_assert_eq(p->has_expires, 1);
    cr_assert_eq(p->expires, 1814399999ll); /* 2027-06-30T23:59:59Z: the end of that day */
    cr_assert_eq(p->threshold, 2);
    cr_assert_eq(p->n_revoked, 1);
    cr_assert_eq(p->n_suites, 2);
    cr_assert_eq(p->n_models, 2);
    cr_assert_eq(p->models[0].min_version, 1ull << 53);
    cr_assert_eq(p->models[0].n_pins, 1);
    cr_assert_eq(p->max_header_bytes, 1);
    cr_assert_eq(p->max_tensor_bytes, 4);
    cr_assert_eq(p->n_attest, 1);
    cr_assert_eq(tseal_policy_requires_state(p), 1);
    tseal_policy_free(p);
}

Test(policy_parse, whitespace_around_is_fine) {
    const char *j = fmt(" \r\n\t%s \n\n", pol(NULL));
    tseal_policy_free(parse_ok(j));
}

Test(policy_parse, load_from_file_and_missing_file) {
    const char *j = pol(NULL);
    tu_write_str(tu_path("p.json"), j);
    tseal_policy *p = NULL;
    cr_assert_eq(tseal_policy_load(tu_path("p.json"), NULL, 0, 0, &p), 0, "%s", tseal_errmsg());
    tseal_policy_free(p);
    tu_assert_err(tseal_policy_load(tu_path("none.json"), NULL, 0, 0, &p), TSEAL_E_NOTFOUND,
                  "no such file");
    cr_assert_null(p);
}

/* ---- parsing: one test per rejection ------------------------------------------------------ */

Test(policy_parse, wrong_types) {
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": 7, \"trusted_signers\": [%s], "
                    "\"models\": " DEFAULT_MODELS "}",
                    signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "policy.json: policy_id: is a number, not a string");
    parse_fails(fmt("{\"tseal_policy\": \"1\", \"policy_id\": \"x\", \"trusted_signers\": [%s], "
                    "\"models\": " DEFAULT_MODELS "}",
                    signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "tseal_policy: is a string, not an integer");
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": \"x\", \"trusted_signers\": %s, "
                    "\"models\": " DEFAULT_MODELS "}",
                    signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "trusted_signers: is an object, not an array");
    parse_fails(pol3(NULL, "[{\"model_id\": \"m\", \"min_version\": \"12\"}]", NULL),
                TSEAL_E_CORRUPT, "models[0].min_version: is a string, not an integer");
    parse_fails(pol3(NULL, "[\"m\"]", NULL), TSEAL_E_CORRUPT,
                "models[0]: is a string, not an object");
    parse_fails(pol(", \"require_rollback_state\": \"yes\""), TSEAL_E_CORRUPT,
                "require_rollback_state: is a string, not a boolean");
    parse_fails(pol(", \"expires\": 5"), TSEAL_E_CORRUPT, "expires: is a number, not a string");
    parse_fails(pol(", \"limits\": {\"max_tensors\": \"3\"}"), TSEAL_E_CORRUPT,
                "limits.max_tensors: is a string, not an integer");
    parse_fails(pol(", \"limits\": []"), TSEAL_E_CORRUPT, "limits: is an array, not an object");
    parse_fails(pol(", \"allowed_suites\": [1]"), TSEAL_E_CORRUPT,
                "allowed_suites[0]: is a number, not a string");
    parse_fails(pol(", \"signature_threshold\": true"), TSEAL_E_CORRUPT,
                "signature_threshold: is a boolean, not an integer");
    parse_fails(pol(", \"revoked_key_ids\": [null]"), TSEAL_E_CORRUPT,
                "revoked_key_ids[0]: is null, not a string");
    parse_fails(pol3(signer(VENDOR, ", \"not_after\": []"), NULL, NULL), TSEAL_E_CORRUPT,
                "trusted_signers[0].not_after: is an array, not a string");
    parse_fails("[1, 2]", TSEAL_E_CORRUPT, "does not begin with a JSON object");
}

Test(policy_parse, unknown_members) {
    parse_fails(pol(", \"allow_everything\": true"), TSEAL_E_CORRUPT,
                "policy.json: unknown member \"allow_everything\"");
    parse_fails(pol3(signer(VENDOR, ", \"role\": \"x\""), NULL, NULL), TSEAL_E_CORRUPT,
                "trusted_signers[0]: unknown member \"role\"");
    parse_fails(pol(", \"limits\": {\"max_layers\": 3}"), TSEAL_E_CORRUPT,
                "limits: unknown member \"max_layers\"");
    parse_fails(pol3(NULL, "[{\"model_id\": \"m\", \"min_version\": 1, \"max_version\": 2}]", NULL),
                TSEAL_E_CORRUPT, "models[0]: unknown member \"max_version\"");
    parse_fails(pol(fmt(", \"required_attestations\": [{\"type\": \"audit-report\", "
                        "\"auditor_key_id\": \"%s\", \"optional\": true}]",
                        kid(AUDITOR))),
                TSEAL_E_CORRUPT, "required_attestations[0]: unknown member \"optional\"");
}

Test(policy_parse, duplicate_members) {
    parse_fails(pol(", \"policy_id\": \"again\""), TSEAL_E_CORRUPT,
                "duplicate member \"policy_id\"");
    parse_fails(pol3(NULL, "[{\"model_id\": \"m\", \"min_version\": 1, \"min_version\": 0}]", NULL),
                TSEAL_E_CORRUPT, "models[0]: duplicate member \"min_version\"");
    parse_fails(pol(", \"limits\": {\"max_tensors\": 1, \"max_tensors\": 9}"), TSEAL_E_CORRUPT,
                "limits: duplicate member \"max_tensors\"");
}

Test(policy_parse, missing_members) {
    parse_fails("{\"policy_id\": \"x\"}", TSEAL_E_CORRUPT, "missing member \"tseal_policy\"");
    parse_fails(fmt("{\"tseal_policy\": 1, \"trusted_signers\": [%s], \"models\": " DEFAULT_MODELS
                    "}",
                    signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "missing member \"policy_id\"");
    parse_fails("{\"tseal_policy\": 1, \"policy_id\": \"x\", \"models\": " DEFAULT_MODELS "}",
                TSEAL_E_CORRUPT, "missing member \"trusted_signers\"");
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": \"x\", \"trusted_signers\": [%s]}",
                    signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "missing member \"models\"");
    parse_fails(pol3(NULL, "[{\"model_id\": \"m\"}]", NULL), TSEAL_E_CORRUPT,
                "models[0]: missing member \"min_version\"");
    parse_fails(pol3(fmt("{\"name\": \"v\", \"key_id\": \"%s\", \"public_key\": \"%s\"}",
                         kid(VENDOR), kpk(VENDOR)),
                     NULL, NULL),
                TSEAL_E_CORRUPT, "trusted_signers[0]: missing member \"algorithm\"");
}

Test(policy_parse, unsupported_version) {
    const char *j = pol(NULL);
    char *v2 = fmt("%s", j);
    memcpy(strstr(v2, "\"tseal_policy\": 1"), "\"tseal_policy\": 2", 17);
    parse_fails(v2, TSEAL_E_UNSUPPORTED, "tseal_policy: version 2 is not supported");
}

/* An array of `n` entries made by `entry(i)`, as JSON text. */
static const char *array_of(unsigned n, const char *(*entry)(unsigned)) {
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    cr_assert_not_null(f);
    fputc('[', f);
    for (unsigned i = 0; i < n; i++) fprintf(f, "%s%s", i ? ", " : "", entry(i));
    fputc(']', f);
    fclose(f);
    return own(s);
}

static const char *e_signer(unsigned i) {
    (void)i;
    return signer(VENDOR, NULL);
}
static const char *e_keyid(unsigned i) {
    return fmt("\"%032x\"", i);
}
static const char *e_model(unsigned i) {
    return fmt("{\"model_id\": \"m%u\", \"min_version\": 0}", i);
}
static const char *e_digest(unsigned i) {
    return fmt("\"%064x\"", i);
}
static const char *e_suite(unsigned i) {
    return fmt("\"s%u\"", i);
}
static const char *e_attest(unsigned i) {
    return fmt("{\"type\": \"audit-report\", \"auditor_key_id\": \"%032x\"}", i);
}

Test(policy_parse, huge_signers) {
    const char *arr = array_of(TSEAL_POLICY_MAX_SIGNERS + 1, e_signer);
    const char *j =
        fmt("{\"tseal_policy\": 1, \"policy_id\": \"x\", \"trusted_signers\": %s, \"models\": "
            "%s}",
            arr, DEFAULT_MODELS);
    parse_fails(j, TSEAL_E_LIMIT, "trusted_signers: more than 256 entries");
}

Test(policy_parse, huge_revoked) {
    parse_fails(
        pol(fmt(", \"revoked_key_ids\": %s", array_of(TSEAL_POLICY_MAX_REVOKED + 1, e_keyid))),
        TSEAL_E_LIMIT, "revoked_key_ids: more than 4096 entries");
    tseal_policy_free(parse_ok(
        pol(fmt(", \"revoked_key_ids\": %s", array_of(TSEAL_POLICY_MAX_REVOKED, e_keyid)))));
}

Test(policy_parse, huge_models) {
    parse_fails(pol3(NULL, array_of(TSEAL_POLICY_MAX_MODELS + 1, e_model), NULL), TSEAL_E_LIMIT,
                "models: more than 1024 entries");
    tseal_policy_free(parse_ok(pol3(NULL, array_of(TSEAL_POLICY_MAX_MODELS, e_model), NULL)));
}

Test(policy_parse, huge_pins) {
    parse_fails(pol3(NULL,
                     fmt("[{\"model_id\": \"m\", \"min_version\": 0, \"artifact_digests\": %s}]",
                         array_of(TSEAL_POLICY_MAX_PINS + 1, e_digest)),
                     NULL),
                TSEAL_E_LIMIT, "models[0].artifact_digests: more than 256 entries");
}

Test(policy_parse, huge_suites_and_attestations) {
    parse_fails(
        pol(fmt(", \"allowed_suites\": %s", array_of(TSEAL_POLICY_MAX_SUITES + 1, e_suite))),
        TSEAL_E_LIMIT, "allowed_suites: more than 8 entries");
    parse_fails(pol(fmt(", \"required_attestations\": %s",
                        array_of(TSEAL_POLICY_MAX_ATTEST + 1, e_attest))),
                TSEAL_E_LIMIT, "required_attestations: more than 16 entries");
}

Test(policy_parse, empty_arrays_where_entries_are_required) {
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": \"x\", \"trusted_signers\": [], "
                    "\"models\": " DEFAULT_MODELS "}"),
                TSEAL_E_CORRUPT, "trusted_signers: needs at least 1 entries");
    parse_fails(pol3(NULL, "[]", NULL), TSEAL_E_CORRUPT, "models: needs at least 1 entries");
    parse_fails(pol(", \"allowed_suites\": []"), TSEAL_E_CORRUPT, "allowed_suites: needs at least");
    parse_fails(
        pol3(NULL, "[{\"model_id\": \"m\", \"min_version\": 0, \"artifact_digests\": []}]", NULL),
        TSEAL_E_CORRUPT, "models[0].artifact_digests: needs at least 1");
}

Test(policy_parse, deep_nesting) {
    parse_fails(pol(", \"limits\": {\"max_tensors\": [[[[[[[[1]]]]]]]]}"), TSEAL_E_CORRUPT,
                "nested deeper than 8");
    char deep[64];
    memset(deep, '[', 40);
    strcpy(deep + 40, "]");
    parse_fails(fmt("{\"a\": %s}", deep), TSEAL_E_CORRUPT, "nested deeper");
}

Test(policy_parse, bad_hex) {
    char *up = fmt("%s", kid(OTHER));
    for (char *c = up; *c; c++)
        if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 32);
    parse_fails(pol(fmt(", \"revoked_key_ids\": [\"%s\"]", up)), TSEAL_E_CORRUPT,
                "revoked_key_ids[0]: is not a key id (32 lower-case hex digits)");
    parse_fails(pol(", \"revoked_key_ids\": [\"xyz\"]"), TSEAL_E_CORRUPT,
                "revoked_key_ids[0]: is not a key id");
    parse_fails(pol3(NULL,
                     fmt("[{\"model_id\": \"m\", \"min_version\": 0, \"artifact_digests\": "
                         "[\"%063d\"]}]",
                         0),
                     NULL),
                TSEAL_E_CORRUPT, "models[0].artifact_digests[0]: is not a SHA-256 digest");
    parse_fails(pol3(fmt("{\"name\": \"v\", \"key_id\": \"%.31s\", \"algorithm\": \"ed25519\", "
                         "\"public_key\": \"%s\"}",
                         kid(VENDOR), kpk(VENDOR)),
                     NULL, NULL),
                TSEAL_E_CORRUPT, "trusted_signers[0].key_id: is not a key id");
    parse_fails(pol(", \"required_attestations\": [{\"type\": \"audit-report\", "
                    "\"auditor_key_id\": \"00\"}]"),
                TSEAL_E_CORRUPT, "required_attestations[0].auditor_key_id: is not a key id");
}

static const char *signer_pk(const char *pk_b64) {
    return fmt("{\"name\": \"v\", \"key_id\": \"%s\", \"algorithm\": \"ed25519\", "
               "\"public_key\": \"%s\"}",
               kid(VENDOR), pk_b64);
}

Test(policy_parse, bad_base64) {
    char *b = fmt("%s", kpk(VENDOR));
    /* 32 bytes -> 43 characters + "=": the last character carries 2 unused bits */
    char *noncanon = fmt("%s", b);
    noncanon[42] = noncanon[42] == 'A' ? 'B' : (char)(noncanon[42] ^ 1);
    const char *cases[] = {fmt("%.43s", b), fmt("%.42s==", b), fmt("%s=", b), fmt("%.43s!", b), "",
                           noncanon,        fmt("%.40s", b)};
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *want = "trusted_signers[0].public_key: is not the canonical base64";
        if (i == 5) {
            /* either not canonical, or (if it decodes the same) a key_id mismatch */
            tseal_policy *p = NULL;
            const char *j = pol3(signer_pk(cases[i]), NULL, NULL);
            cr_assert_neq(
                tseal_policy_parse((const uint8_t *)j, strlen(j), "policy.json", NULL, 0, 0, &p),
                0);
            continue;
        }
        parse_fails(pol3(signer_pk(cases[i]), NULL, NULL), TSEAL_E_CORRUPT, want);
    }
}

Test(policy_parse, not_a_valid_point) {
    /* all-zero bytes: a small-order point */
    parse_fails(pol3(signer_pk("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), NULL, NULL),
                TSEAL_E_CORRUPT,
                "trusted_signers[0].public_key: is not a valid Ed25519 public key");
}

Test(policy_parse, bad_dates) {
    const char *bad[] = {"2027-02-29",
                         "2027-06-31",
                         "2027-13-01",
                         "2027-6-30",
                         "27-06-30",
                         "2027-06-30T24:00:00Z",
                         "2027-06-30T23:60:00Z",
                         "2027-06-30T23:59:60Z",
                         "2027-06-30T00:00:00",
                         "2027-06-30T00:00:00+01:00",
                         "2027-06-30 00:00:00Z",
                         "1969-12-31",
                         "2027-06-30Z",
                         "",
                         " 2027-06-30"};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
        parse_fails(pol(fmt(", \"expires\": \"%s\"", bad[i])), TSEAL_E_CORRUPT,
                    "expires: is not a date");
    parse_fails(pol3(signer(VENDOR, ", \"not_after\": \"2027-00-10\""), NULL, NULL),
                TSEAL_E_CORRUPT, "trusted_signers[0].not_after: is not a date");
    tseal_policy *p = parse_ok(pol(", \"expires\": \"2028-02-29T00:00:01Z\""));
    cr_assert_eq(p->expires, 1835395201ll);
    tseal_policy_free(p);
    p = parse_ok(pol(", \"expires\": null"));
    cr_assert_eq(p->has_expires, 0);
    tseal_policy_free(p);
}

Test(policy_parse, key_id_not_matching_public_key) {
    const char *wrong = fmt("{\"name\": \"c\", \"key_id\": \"%s\", \"algorithm\": \"ed25519\", "
                            "\"public_key\": \"%s\"}",
                            kid(VENDOR), kpk(COSIGN));
    parse_fails(pol3(fmt("%s, %s", signer(VENDOR, NULL), wrong), NULL, NULL), TSEAL_E_CORRUPT,
                "policy.json: trusted_signers[1].key_id: does not match public_key");
}

Test(policy_parse, bad_algorithm_and_names) {
    parse_fails(pol3(fmt("{\"name\": \"v\", \"key_id\": \"%s\", \"algorithm\": \"x25519\", "
                         "\"public_key\": \"%s\"}",
                         kid(VENDOR), kpk(VENDOR)),
                     NULL, NULL),
                TSEAL_E_CORRUPT, "trusted_signers[0].algorithm: must be \"ed25519\"");
    parse_fails(pol3(fmt("{\"name\": \"\", \"key_id\": \"%s\", \"algorithm\": \"ed25519\", "
                         "\"public_key\": \"%s\"}",
                         kid(VENDOR), kpk(VENDOR)),
                     NULL, NULL),
                TSEAL_E_CORRUPT, "trusted_signers[0].name: is empty");
    parse_fails(pol3(fmt("{\"name\": \"a\\u0085b\", \"key_id\": \"%s\", \"algorithm\": "
                         "\"ed25519\", \"public_key\": \"%s\"}",
                         kid(VENDOR), kpk(VENDOR)),
                     NULL, NULL),
                TSEAL_E_CORRUPT, "trusted_signers[0].name: has a control character");
    char id129[130];
    memset(id129, 'a', 129);
    id129[129] = 0;
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": \"%s\", \"trusted_signers\": [%s], "
                    "\"models\": " DEFAULT_MODELS "}",
                    id129, signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "policy_id: is too long (1..128 bytes");
    id129[128] = 0;
    tseal_policy_free(
        parse_ok(fmt("{\"tseal_policy\": 1, \"policy_id\": \"%s\", \"trusted_signers\": [%s], "
                     "\"models\": " DEFAULT_MODELS "}",
                     id129, signer(VENDOR, NULL))));
    parse_fails(pol3(NULL, "[{\"model_id\": \"a\\tb\", \"min_version\": 0}]", NULL),
                TSEAL_E_CORRUPT, "models[0].model_id: has a control character");
    parse_fails(pol(", \"allowed_suites\": [\"a b\"]"), TSEAL_E_CORRUPT,
                "allowed_suites[0]: is not a suite name");
    parse_fails(pol(", \"required_attestations\": [{\"type\": \"sbom\", \"auditor_key_id\": "
                    "\"00000000000000000000000000000000\"}]"),
                TSEAL_E_CORRUPT, "required_attestations[0].type: unknown attestation type");
}

Test(policy_parse, duplicates_in_lists) {
    parse_fails(pol3(fmt("%s, %s", signer(VENDOR, NULL), signer(VENDOR, NULL)), NULL, NULL),
                TSEAL_E_CORRUPT, "trusted_signers[1]: the same key as trusted_signers[0]");
    parse_fails(pol(fmt(", \"revoked_key_ids\": [\"%s\", \"%s\"]", kid(OTHER), kid(OTHER))),
                TSEAL_E_CORRUPT, fmt("revoked_key_ids: %s is listed twice", kid(OTHER)));
    parse_fails(pol3(NULL,
                     "[{\"model_id\": \"m\", \"min_version\": 0}, {\"model_id\": \"m\", "
                     "\"min_version\": 3}]",
                     NULL),
                TSEAL_E_CORRUPT, "models[1].model_id: the same model as models[0]");
    parse_fails(pol(fmt(", \"allowed_suites\": [\"%s\", \"%s\"]", TSEAL_SUITE_NAME_V1,
                        TSEAL_SUITE_NAME_V1)),
                TSEAL_E_CORRUPT, "allowed_suites[1]: the same suite");
    parse_fails(pol3(NULL,
                     fmt("[{\"model_id\": \"m\", \"min_version\": 0, \"artifact_digests\": "
                         "[\"%064d\", \"%064d\"]}]",
                         7, 7),
                     NULL),
                TSEAL_E_CORRUPT, "models[0].artifact_digests[1]: the same digest");
    parse_fails(pol(fmt(", \"required_attestations\": [%s, %s]", e_attest(1), e_attest(1))),
                TSEAL_E_CORRUPT, "required_attestations[1]: the same as");
}

Test(policy_parse, threshold_rules) {
    parse_fails(pol(", \"signature_threshold\": 2"), TSEAL_E_CORRUPT,
                "signature_threshold: 2 is more than the 1 trusted signers");
    parse_fails(pol(", \"signature_threshold\": 0"), TSEAL_E_CORRUPT,
                "signature_threshold: must be at least 1");
    parse_fails(pol(", \"limits\": {\"max_tensors\": 0}"), TSEAL_E_CORRUPT,
                "limits.max_tensors: must be a positive integer");
}

Test(policy_parse, numbers_must_be_plain_integers) {
    parse_fails(pol(", \"signature_threshold\": 1.0"), TSEAL_E_CORRUPT, "not a plain integer");
    parse_fails(pol(", \"signature_threshold\": 1e0"), TSEAL_E_CORRUPT, "not a plain integer");
    parse_fails(pol(", \"signature_threshold\": -1"), TSEAL_E_CORRUPT, "negative number");
    parse_fails(pol(", \"signature_threshold\": 01"), TSEAL_E_CORRUPT, "malformed number");
    parse_fails(pol3(NULL, "[{\"model_id\": \"m\", \"min_version\": 9007199254740993}]", NULL),
                TSEAL_E_CORRUPT, "larger than 2^53");
    parse_fails(
        pol3(NULL, "[{\"model_id\": \"m\", \"min_version\": 123456789012345678901234}]", NULL),
        TSEAL_E_CORRUPT, "larger than 2^53");
}

Test(policy_parse, trailing_garbage_bom_and_empty) {
    parse_fails(fmt("%s x", pol(NULL)), TSEAL_E_CORRUPT, "after the JSON value");
    parse_fails(fmt("%s{}", pol(NULL)), TSEAL_E_CORRUPT, "after the JSON value");
    parse_fails(fmt("%s\f", pol(NULL)), TSEAL_E_CORRUPT, "control character");
    parse_fails(fmt("\xEF\xBB\xBF%s", pol(NULL)), TSEAL_E_CORRUPT,
                "does not begin with a JSON object");
    parse_fails(fmt("x%s", pol(NULL)), TSEAL_E_CORRUPT, "does not begin with a JSON object");
    parse_fails_n("", 0, TSEAL_E_CORRUPT, "empty");
    parse_fails("   \n", TSEAL_E_CORRUPT, "only blanks");
    parse_fails("{\"tseal_policy\": 1,", TSEAL_E_CORRUPT, "not valid JSON");
}

Test(policy_parse, non_utf8_nul_and_escapes) {
    char *j = fmt("%s", pol(NULL));
    char *at = strstr(j, "bank-prod");
    at[0] = (char)0xFF;
    parse_fails(j, TSEAL_E_CORRUPT, "not valid UTF-8");
    at[0] = (char)0xC0; /* overlong */
    at[1] = (char)0x80;
    parse_fails(j, TSEAL_E_CORRUPT, "not valid UTF-8");
    char *k = fmt("%s", pol(NULL));
    size_t n = strlen(k);
    strstr(k, "bank-prod")[4] = 0; /* a raw NUL inside the string */
    parse_fails_n(k, n, TSEAL_E_CORRUPT, "not valid UTF-8 (or NUL)");
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": \"a\\u0000b\", \"trusted_signers\": "
                    "[%s], \"models\": " DEFAULT_MODELS "}",
                    signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "\\u0000");
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": \"a\tb\", \"trusted_signers\": [%s], "
                    "\"models\": " DEFAULT_MODELS "}",
                    signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "raw control character");
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": \"a\\ud800b\", \"trusted_signers\": "
                    "[%s], \"models\": " DEFAULT_MODELS "}",
                    signer(VENDOR, NULL)),
                TSEAL_E_CORRUPT, "not valid JSON");
}

Test(policy_parse, file_over_the_size_limit) {
    size_t n = TSEAL_POLICY_MAX_BYTES + 1;
    char *big = malloc(n);
    cr_assert_not_null(big);
    own(big);
    memset(big, ' ', n);
    const char *j = pol(NULL);
    memcpy(big, j, strlen(j));
    parse_fails_n(big, n, TSEAL_E_LIMIT, "over the limit of 1048576 bytes");
    tseal_policy_free(parse_ok(own(strndup(big, n - 1)))); /* blanks up to the limit: fine */
    tu_write(tu_path("big.json"), big, n);
    tseal_policy *p = NULL;
    tu_assert_err(tseal_policy_load(tu_path("big.json"), NULL, 0, 0, &p), TSEAL_E_LIMIT,
                  "over the limit");
}

/* ---- the envelope ------------------------------------------------------------------------- */

static const char *b64(const uint8_t *b, size_t n) {
    char *s = malloc(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL));
    cr_assert_not_null(s);
    sodium_bin2base64(s, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), b, n,
                      sodium_base64_VARIANT_ORIGINAL);
    return own(s);
}

/* One signature entry by key k over `payload` (sig_type: the payload type signed). */
static const char *sig_entry(int k, const void *payload, size_t n, const char *sig_type) {
    uint8_t d[32], sig[64];
    tseal_sha256(payload, n, d);
    cr_assert_eq(tseal_sign(K[k], sig_type, d, sig), 0);
    return fmt("{\"key_id\": \"%s\", \"public_key\": \"%s\", \"sig\": \"%s\"}", kid(k), kpk(k),
               b64(sig, 64));
}

static const char *envelope(const void *payload, size_t n, const char *sigs) {
    return fmt("{\"payloadType\": \"tseal/policy\", \"payload\": \"%s\", \"signatures\": [%s]}",
               b64(payload, n), sigs);
}

static int parse_req(const char *j, int key, tseal_policy **p) {
    return tseal_policy_parse((const uint8_t *)j, strlen(j), "policy.json", &K[key]->pub, 1, 1, p);
}

Test(policy_env, valid_envelope) {
    const char *payload = pol(NULL);
    const char *env = envelope(payload, strlen(payload),
                               sig_entry(POLKEY, payload, strlen(payload), "tseal/policy"));
    tseal_policy *p = NULL;
    cr_assert_eq(parse_req(env, POLKEY, &p), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_policy_is_signed(p), 1);
    cr_assert_str_eq(tseal_policy_id(p), "bank-prod");
    uint8_t d[32], want[32];
    tseal_policy_digest(p, d);
    tseal_sha256(env, strlen(env), want); /* the whole file, not the payload */
    cr_assert_arr_eq(d, want, 32);
    tseal_policy_free(p);
    /* signed by another key too: one trusted signature is enough */
    env = envelope(payload, strlen(payload),
                   fmt("%s, %s", sig_entry(OTHER, payload, strlen(payload), "tseal/policy"),
                       sig_entry(POLKEY, payload, strlen(payload), "tseal/policy")));
    cr_assert_eq(parse_req(env, POLKEY, &p), 0, "%s", tseal_errmsg());
    cr_assert_eq(p->n_sigs, 2);
    tseal_policy_free(p);
}

Test(policy_env, required_and_missing) {
    const char *j = pol(NULL);
    tseal_policy *p = (tseal_policy *)1;
    tu_assert_err(parse_req(j, POLKEY, &p), TSEAL_E_DENIED,
                  "policy.json: policy is unsigned but a signed policy is required");
    cr_assert_null(p);
}

Test(policy_env, signed_by_another_key) {
    const char *payload = pol(NULL);
    const char *env = envelope(payload, strlen(payload),
                               sig_entry(OTHER, payload, strlen(payload), "tseal/policy"));
    tseal_policy *p = NULL;
    tu_assert_err(parse_req(env, POLKEY, &p), TSEAL_E_DENIED,
                  "policy is not signed by a trusted policy key");
    /* not required: a validly signed policy loads, whoever signed it */
    cr_assert_eq(tseal_policy_parse((const uint8_t *)env, strlen(env), "p", NULL, 0, 0, &p), 0);
    cr_assert_eq(tseal_policy_is_signed(p), 1);
    tseal_policy_free(p);
    /* required with no policy key at all */
    cr_assert_eq(tseal_policy_parse((const uint8_t *)env, strlen(env), "p", NULL, 0, 1, &p),
                 TSEAL_E_DENIED);
}

Test(policy_env, tampered_payload_any_byte) {
    const char *payload = pol(NULL);
    size_t n = strlen(payload);
    const char *sig = sig_entry(POLKEY, payload, n, "tseal/policy");
    char *t = fmt("%s", payload);
    for (size_t i = 0; i < n; i++) {
        t[i] ^= 0x01;
        const char *env = envelope(t, n, sig);
        tseal_policy *p = NULL;
        int rc =
            tseal_policy_parse((const uint8_t *)env, strlen(env), "policy.json", NULL, 0, 0, &p);
        cr_assert_eq(rc, TSEAL_E_VERIFY, "byte %zu: rc %d %s", i, rc, tseal_errmsg());
        cr_assert_null(p);
        t[i] ^= 0x01;
        free(owned[--n_owned]); /* the envelope text */
        free(owned[--n_owned]); /* its base64 */
    }
    /* a shorter or longer payload */
    const char *env = envelope(payload, n - 1, sig);
    tseal_policy *p = NULL;
    tu_assert_err(
        tseal_policy_parse((const uint8_t *)env, strlen(env), "policy.json", NULL, 0, 0, &p),
        TSEAL_E_VERIFY, fmt("signatures[0]: signature by key %s is not valid", kid(POLKEY)));
    env = envelope(fmt("%s ", payload), n + 1, sig);
    cr_assert_eq(
        tseal_policy_parse((const uint8_t *)env, strlen(env), "policy.json", NULL, 0, 0, &p),
        TSEAL_E_VERIFY);
}

Test(policy_env, tampered_signature_any_byte) {
    const char *payload = pol(NULL);
    size_t n = strlen(payload);
    uint8_t d[32], sig[64];
    tseal_sha256(payload, n, d);
    cr_assert_eq(tseal_sign(K[POLKEY], "tseal/policy", d, sig), 0);
    for (size_t i = 0; i < 64; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            sig[i] ^= (uint8_t)(1 << bit);
            const char *env =
                envelope(payload, n,
                         fmt("{\"key_id\": \"%s\", \"public_key\": \"%s\", \"sig\": \"%s\"}",
                             kid(POLKEY), kpk(POLKEY), b64(sig, 64)));
            tseal_policy *p = NULL;
            int rc = tseal_policy_parse((const uint8_t *)env, strlen(env), "policy.json", NULL, 0,
                                        0, &p);
            cr_assert_eq(rc, TSEAL_E_VERIFY, "byte %zu bit %d: rc %d %s", i, bit, rc,
                         tseal_errmsg());
            sig[i] ^= (uint8_t)(1 << bit);
        }
    }
}

Test(policy_env, signature_for_another_purpose) {
    const char *payload = pol(NULL);
    const char *env =
        envelope(payload, strlen(payload),
                 sig_entry(POLKEY, payload, strlen(payload), "tseal/container-header"));
    tseal_policy *p = NULL;
    tu_assert_err(parse_req(env, POLKEY, &p), TSEAL_E_VERIFY, "is not valid");
}

Test(policy_env, one_invalid_signature_fails_the_load) {
    const char *payload = pol(NULL);
    size_t n = strlen(payload);
    const char *other = "{\"tseal_policy\": 1}";
    const char *env = envelope(payload, n,
                               fmt("%s, %s", sig_entry(POLKEY, payload, n, "tseal/policy"),
                                   sig_entry(OTHER, other, strlen(other), "tseal/policy")));
    tseal_policy *p = NULL;
    tu_assert_err(parse_req(env, POLKEY, &p), TSEAL_E_VERIFY, "signatures[1]: signature by key");
}

Test(policy_env, malformed_envelopes) {
    const char *payload = pol(NULL);
    size_t n = strlen(payload);
    const char *good = sig_entry(POLKEY, payload, n, "tseal/policy");
    const char *pb = b64((const uint8_t *)payload, n);
    tseal_policy *p = NULL;
#define ENV_FAILS(json, code, substr)                                                              \
    do {                                                                                           \
        const char *j_ = (json);                                                                   \
        tu_assert_err(                                                                             \
            tseal_policy_parse((const uint8_t *)j_, strlen(j_), "policy.json", NULL, 0, 0, &p),    \
            code, substr);                                                                         \
    } while (0)
    ENV_FAILS(fmt("{\"payloadType\": \"tseal/container\", \"payload\": \"%s\", \"signatures\": "
                  "[%s]}",
                  pb, good),
              TSEAL_E_CORRUPT, "payloadType: must be \"tseal/policy\"");
    ENV_FAILS(fmt("{\"payloadType\": \"tseal/policy\", \"payload\": \"%s\"}", pb), TSEAL_E_CORRUPT,
              "signed envelope: missing member \"signatures\"");
    ENV_FAILS(
        fmt("{\"payloadType\": \"tseal/policy\", \"payload\": \"%s\", \"signatures\": []}", pb),
        TSEAL_E_CORRUPT, "signatures: needs at least 1");
    ENV_FAILS(fmt("{\"payloadType\": \"tseal/policy\", \"payload\": \"%s\", \"signatures\": [%s], "
                  "\"note\": 1}",
                  pb, good),
              TSEAL_E_CORRUPT, "unknown member \"note\"");
    ENV_FAILS(fmt("{\"payloadType\": \"tseal/policy\", \"payload\": \"%s!\", \"signatures\": "
                  "[%s]}",
                  pb, good),
              TSEAL_E_CORRUPT, "payload: is not canonical padded base64");
    ENV_FAILS(envelope(payload, n, fmt("%s, %s", good, good)), TSEAL_E_CORRUPT,
              "signatures[1]: a second signature by the key of signatures[0]");
    /* key_id of another key */
    uint8_t d[32], sig[64];
    tseal_sha256(payload, n, d);
    tseal_sign(K[POLKEY], "tseal/policy", d, sig);
    ENV_FAILS(envelope(payload, n,
                       fmt("{\"key_id\": \"%s\", \"public_key\": \"%s\", \"sig\": \"%s\"}",
                           kid(OTHER), kpk(POLKEY), b64(sig, 64))),
              TSEAL_E_CORRUPT, "signatures[0].key_id: does not match public_key");
    ENV_FAILS(envelope(payload, n,
                       fmt("{\"key_id\": \"%s\", \"public_key\": \"%s\", \"sig\": \"%.80s\"}",
                           kid(POLKEY), kpk(POLKEY), b64(sig, 64))),
              TSEAL_E_CORRUPT, "signatures[0].sig: is not the canonical base64 of a 64-byte");
    /* 17 signatures */
    char *many = NULL;
    size_t mlen = 0;
    FILE *f = open_memstream(&many, &mlen);
    for (int i = 0; i < 17; i++) fprintf(f, "%s%s", i ? ", " : "", good);
    fclose(f);
    own(many);
    ENV_FAILS(envelope(payload, n, many), TSEAL_E_LIMIT, "signatures: more than 16 entries");
    /* an envelope inside an envelope */
    const char *inner = envelope(payload, n, good);
    ENV_FAILS(
        envelope(inner, strlen(inner), sig_entry(POLKEY, inner, strlen(inner), "tseal/policy")),
        TSEAL_E_CORRUPT, "payload: is itself a signed envelope");
    /* a malformed payload names it */
    const char *badp = pol(", \"x\": 1");
    ENV_FAILS(envelope(badp, strlen(badp), sig_entry(POLKEY, badp, strlen(badp), "tseal/policy")),
              TSEAL_E_CORRUPT, "policy.json: payload: unknown member \"x\"");
#undef ENV_FAILS
}

/* ---- the gate ----------------------------------------------------------------------------- */

static uint8_t PKS[8][TSEAL_PK_BYTES];

/* An artifact every default policy allows: the vendor's, MODEL version 12. */
static tseal_gate_input artifact(void) {
    tseal_gate_input in;
    memset(&in, 0, sizeof in);
    in.model_id = MODEL;
    in.version = 12;
    in.created = NOW - 3600;
    in.expires = 0;
    in.suite_name = TSEAL_SUITE_NAME_V1;
    in.header_bytes = 4096;
    in.recipients = 2;
    in.tensors = 10;
    in.largest_tensor_bytes = 1 << 20;
    memset(in.artifact_digest, 0xAB, sizeof in.artifact_digest);
    memcpy(PKS[0], K[VENDOR]->pub.pk, 32);
    in.signer_pks = (const uint8_t(*)[TSEAL_PK_BYTES])PKS;
    in.n_signers = 1;
    return in;
}

static void set_signers(tseal_gate_input *in, int n, ...) {
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) memcpy(PKS[i], K[va_arg(ap, int)]->pub.pk, 32);
    va_end(ap);
    in->n_signers = (unsigned)n;
}

static int gate(const char *json, const tseal_gate_input *in, const tseal_state *st,
                tseal_gate_result *res) {
    tseal_policy *p = parse_ok(json);
    int rc = tseal_policy_gate(p, in, st, NOW, res);
    tseal_policy_free(p);
    return rc;
}

static void assert_allowed(const char *json, const tseal_gate_input *in, const tseal_state *st) {
    tseal_gate_result res;
    int rc = gate(json, in, st, &res);
    cr_assert_eq(rc, 0, "denied: %s", tseal_errmsg());
    cr_assert_eq(res.n_reasons, 0);
    tseal_gate_result_free(&res);
}

static bool has_reason(const tseal_gate_result *r, const char *substr) {
    for (unsigned i = 0; i < r->n_reasons; i++)
        if (strstr(r->reasons[i], substr)) return true;
    return false;
}

/* Denied, with exactly `n` reasons, one of them containing `substr`. */
static void assert_denied(const char *json, const tseal_gate_input *in, const tseal_state *st,
                          unsigned n, const char *substr) {
    tseal_gate_result res;
    int rc = gate(json, in, st, &res);
    cr_assert_eq(rc, TSEAL_E_DENIED, "rc %d: %s", rc, tseal_errmsg());
    cr_assert(has_reason(&res, substr), "no reason \"%s\" in \"%s\"", substr, tseal_errmsg());
    cr_assert_eq(res.n_reasons, n, "%u reasons, expected %u: %s", res.n_reasons, n, tseal_errmsg());
    cr_assert_not_null(strstr(tseal_errmsg(), "denied by policy bank-prod: "), "%s",
                       tseal_errmsg());
    cr_assert_not_null(strstr(tseal_errmsg(), substr));
    tseal_gate_result_free(&res);
}

static tseal_state *state_of(const char *json) {
    tseal_state *s = NULL;
    cr_assert_eq(tseal_state_parse((const uint8_t *)json, strlen(json), "state.json", &s), 0, "%s",
                 tseal_errmsg());
    return s;
}

Test(policy_gate, allows_a_matching_artifact) {
    tseal_gate_input in = artifact();
    tseal_gate_result res;
    cr_assert_eq(gate(pol(NULL), &in, NULL, &res), 0, "%s", tseal_errmsg());
    cr_assert_eq(res.n_counted, 1);
    cr_assert_arr_eq(res.counted[0], K[VENDOR]->pub.key_id, 16);
    tseal_gate_result_free(&res);
}

Test(policy_gate, policy_expired) {
    tseal_gate_input in = artifact();
    assert_denied(pol(", \"expires\": \"2025-12-31\""), &in, NULL, 1,
                  "policy bank-prod expired 2025-12-31T23:59:59Z");
    /* the expiry second itself is still valid */
    assert_allowed(pol(", \"expires\": \"2026-01-01T00:00:00Z\""), &in, NULL);
}

Test(policy_gate, artifact_expired) {
    tseal_gate_input in = artifact();
    in.expires = NOW - 1;
    assert_denied(pol(NULL), &in, NULL, 1, "artifact expired 2025-12-31T23:59:59Z");
    in.expires = NOW;
    assert_allowed(pol(NULL), &in, NULL);
}

Test(policy_gate, artifact_created_in_the_future) {
    tseal_gate_input in = artifact();
    in.created = NOW + 301;
    assert_denied(pol(NULL), &in, NULL, 1, "artifact created in the future (2026-01-01T00:05:01Z)");
    in.created = NOW + 300; /* clock skew of up to 5 minutes is tolerated */
    assert_allowed(pol(NULL), &in, NULL);
    /* extreme values: no overflow */
    in.created = INT64_MAX;
    tseal_policy *p = parse_ok(pol(NULL));
    tseal_gate_result res;
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, INT64_MIN, &res), TSEAL_E_DENIED);
    cr_assert(has_reason(&res, "artifact created in the future"));
    tseal_gate_result_free(&res);
    in.created = INT64_MIN;
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, INT64_MAX, &res), 0, "%s", tseal_errmsg());
    tseal_gate_result_free(&res);
    tseal_policy_free(p);
}

Test(policy_gate, untrusted_only_signer) {
    tseal_gate_input in = artifact();
    set_signers(&in, 1, OTHER);
    assert_denied(pol(NULL), &in, NULL, 2, fmt("signer key %s... is not trusted", kid16(OTHER)));
    assert_denied(pol(NULL), &in, NULL, 2, "threshold not met: 0 of 1 required signatures");
}

Test(policy_gate, no_signers_at_all) {
    tseal_gate_input in = artifact();
    in.n_signers = 0;
    assert_denied(pol(NULL), &in, NULL, 1, "threshold not met: 0 of 1 required signatures");
}

Test(policy_gate, untrusted_extra_cosigner_is_allowed) {
    tseal_gate_input in = artifact();
    set_signers(&in, 2, OTHER, VENDOR);
    tseal_gate_result res;
    cr_assert_eq(gate(pol(NULL), &in, NULL, &res), 0, "%s", tseal_errmsg());
    cr_assert_eq(res.n_counted, 1);
    tseal_gate_result_free(&res);
}

Test(policy_gate, revoked_signer) {
    tseal_gate_input in = artifact();
    assert_denied(pol(fmt(", \"revoked_key_ids\": [\"%s\"]", kid(VENDOR))), &in, NULL, 2,
                  fmt("signer key %s... is revoked", kid16(VENDOR)));
}

Test(policy_gate, revoked_signer_denies_even_when_the_threshold_is_met) {
    tseal_gate_input in = artifact();
    set_signers(&in, 2, VENDOR, COSIGN);
    const char *j = pol3(fmt("%s, %s", signer(VENDOR, NULL), signer(COSIGN, NULL)), NULL,
                         fmt(", \"revoked_key_ids\": [\"%s\"]", kid(COSIGN)));
    assert_denied(j, &in, NULL, 1, fmt("signer key %s... is revoked", kid16(COSIGN)));
    /* a revoked key that the policy does not even trust denies as well */
    set_signers(&in, 2, VENDOR, OTHER);
    assert_denied(pol(fmt(", \"revoked_key_ids\": [\"%s\"]", kid(OTHER))), &in, NULL, 1,
                  fmt("signer key %s... is revoked", kid16(OTHER)));
}

Test(policy_gate, expired_signer_key) {
    tseal_gate_input in = artifact();
    const char *j = pol3(signer(VENDOR, ", \"not_after\": \"2025-06-30\""), NULL, NULL);
    assert_denied(j, &in, NULL, 2,
                  fmt("signer key %s... expired 2025-06-30T23:59:59Z", kid16(VENDOR)));
    assert_denied(j, &in, NULL, 2, "threshold not met: 0 of 1");
    tseal_gate_result res;
    gate(j, &in, NULL, &res);
    cr_assert_eq(res.n_counted, 0);
    tseal_gate_result_free(&res);
    /* not yet past not_after */
    assert_allowed(pol3(signer(VENDOR, ", \"not_after\": \"2026-01-01T00:00:00Z\""), NULL, NULL),
                   &in, NULL);
}

Test(policy_gate, threshold_not_met_and_met) {
    const char *j = pol3(fmt("%s, %s", signer(VENDOR, NULL), signer(COSIGN, NULL)), NULL,
                         ", \"signature_threshold\": 2");
    tseal_gate_input in = artifact();
    assert_denied(j, &in, NULL, 1, "threshold not met: 1 of 2 required signatures");
    /* the same key twice counts once */
    set_signers(&in, 2, VENDOR, VENDOR);
    assert_denied(j, &in, NULL, 1, "threshold not met: 1 of 2 required signatures");
    set_signers(&in, 2, COSIGN, VENDOR);
    tseal_gate_result res;
    cr_assert_eq(gate(j, &in, NULL, &res), 0, "%s", tseal_errmsg());
    cr_assert_eq(res.n_counted, 2);
    cr_assert_arr_eq(res.counted[0], K[COSIGN]->pub.key_id, 16);
    cr_assert_arr_eq(res.counted[1], K[VENDOR]->pub.key_id, 16);
    tseal_gate_result_free(&res);
}

Test(policy_gate, no_matching_model) {
    tseal_gate_input in = artifact();
    in.model_id = "acme/other";
    in.version = 1; /* no version or pin reason for a model that is not listed */
    assert_denied(pol3(NULL,
                       fmt("[{\"model_id\": \"%s\", \"min_version\": 12, \"artifact_digests\": "
                           "[\"%064d\"]}]",
                           MODEL, 0),
                       NULL),
                  &in, NULL, 1, "model acme/other is not allowed by policy bank-prod");
    in.model_id = "acme/credit-7B"; /* exact match only */
    in.version = 12;
    assert_denied(pol(NULL), &in, NULL, 1, "model acme/credit-7B is not allowed");
}

Test(policy_gate, version_below_minimum) {
    tseal_gate_input in = artifact();
    in.version = 11;
    assert_denied(pol(NULL), &in, NULL, 1, "version 11 < minimum 12 for model acme/credit-7b");
}

Test(policy_gate, pinned_digest_mismatch_and_match) {
    tseal_gate_input in = artifact();
    char hex[65];
    for (int i = 0; i < 64; i++) hex[i] = "ab"[i & 1];
    hex[64] = 0;
    const char *models = fmt("[{\"model_id\": \"%s\", \"min_version\": 12, \"artifact_digests\": "
                             "[\"%064d\", \"%s\"]}]",
                             MODEL, 1, hex);
    assert_allowed(pol3(NULL, models, NULL), &in, NULL);
    in.artifact_digest[31] ^= 1;
    assert_denied(pol3(NULL, models, NULL), &in, NULL, 1,
                  "artifact digest abababababababab... is not pinned for model acme/credit-7b");
}

Test(policy_gate, suite_not_allowed) {
    tseal_gate_input in = artifact();
    in.suite_name = "foo";
    assert_denied(pol(NULL), &in, NULL, 1, "suite foo is not allowed");
    assert_allowed(pol(", \"allowed_suites\": [\"bar\", \"foo\"]"), &in, NULL);
    in.suite_name = TSEAL_SUITE_NAME_V1;
    assert_denied(pol(", \"allowed_suites\": [\"foo\"]"), &in, NULL, 1,
                  "suite " TSEAL_SUITE_NAME_V1 " is not allowed");
}

Test(policy_gate, limit_header_bytes) {
    tseal_gate_input in = artifact();
    assert_denied(pol(", \"limits\": {\"max_header_bytes\": 4095}"), &in, NULL, 1,
                  "header is 4096 bytes > limit 4095");
    assert_allowed(pol(", \"limits\": {\"max_header_bytes\": 4096}"), &in, NULL);
}

Test(policy_gate, limit_recipients) {
    tseal_gate_input in = artifact();
    assert_denied(pol(", \"limits\": {\"max_recipients\": 1}"), &in, NULL, 1,
                  "2 recipients > limit 1");
    assert_allowed(pol(", \"limits\": {\"max_recipients\": 2}"), &in, NULL);
}

Test(policy_gate, limit_tensors) {
    tseal_gate_input in = artifact();
    assert_denied(pol(", \"limits\": {\"max_tensors\": 9}"), &in, NULL, 1, "10 tensors > limit 9");
    assert_allowed(pol(", \"limits\": {\"max_tensors\": 10}"), &in, NULL);
}

Test(policy_gate, limit_tensor_bytes) {
    tseal_gate_input in = artifact();
    assert_denied(pol(", \"limits\": {\"max_tensor_bytes\": 1048575}"), &in, NULL, 1,
                  "largest tensor is 1048576 bytes > limit 1048575");
    assert_allowed(pol(", \"limits\": {\"max_tensor_bytes\": 1048576}"), &in, NULL);
}

static const char *state_json(int k, const char *model, unsigned version) {
    return fmt("{\"tseal_state\": 1, \"accepted\": [{\"model_id\": \"%s\", \"signer_key_id\": "
               "\"%s\", \"version\": %u}]}",
               model, kid(k), version);
}

Test(policy_gate, rollback_denied_and_equal_version_allowed) {
    tseal_gate_input in = artifact();
    in.version = 11;
    const char *j = pol3(NULL, "[{\"model_id\": \"" MODEL "\", \"min_version\": 0}]", NULL);
    tseal_state *st = state_of(state_json(VENDOR, MODEL, 12));
    assert_denied(j, &in, st, 1,
                  fmt("rollback: version 11 < 12 already accepted for model acme/credit-7b by "
                      "signer %s...",
                      kid16(VENDOR)));
    in.version = 12;
    assert_allowed(j, &in, st);
    in.version = 13;
    assert_allowed(j, &in, st);
    tseal_state_free(st);
    /* another model's or another signer's history does not matter */
    in.version = 11;
    st = state_of(state_json(VENDOR, "acme/other", 99));
    assert_allowed(j, &in, st);
    tseal_state_free(st);
    st = state_of(state_json(OTHER, MODEL, 99));
    assert_allowed(j, &in, st);
    tseal_state_free(st);
}

Test(policy_gate, missing_required_state) {
    tseal_gate_input in = artifact();
    const char *j = pol(", \"require_rollback_state\": true");
    assert_denied(j, &in, NULL, 1, "policy requires a rollback state file (--state)");
    tseal_state *st = state_of("{\"tseal_state\": 1, \"accepted\": []}");
    assert_allowed(j, &in, st);
    tseal_state_free(st);
}

Test(policy_gate, required_attestation_missing_failed_present) {
    const char *j = pol(fmt(", \"required_attestations\": [{\"type\": \"audit-report\", "
                            "\"auditor_key_id\": \"%s\"}]",
                            kid(AUDITOR)));
    tseal_gate_input in = artifact();
    const char *missing = fmt("required audit report by key %s... is missing", kid16(AUDITOR));
    assert_denied(j, &in, NULL, 1, missing);
    tseal_attestation a;
    memset(&a, 0, sizeof a);
    memcpy(a.auditor_key_id, K[AUDITOR]->pub.key_id, 16);
    memcpy(a.subject_digest, in.artifact_digest, 32);
    a.passed = 0;
    in.attestations = &a;
    in.n_attestations = 1;
    assert_denied(j, &in, NULL, 1,
                  fmt("required audit report by key %s... records a failed audit", kid16(AUDITOR)));
    a.passed = 1;
    assert_allowed(j, &in, NULL);
    /* a report about another artifact, or by another auditor, does not count */
    a.subject_digest[0] ^= 1;
    assert_denied(j, &in, NULL, 1, missing);
    a.subject_digest[0] ^= 1;
    memcpy(a.auditor_key_id, K[OTHER]->pub.key_id, 16);
    assert_denied(j, &in, NULL, 1, missing);
}

Test(policy_gate, every_reason_in_one_denial) {
    const char *j =
        pol3(fmt("%s, %s", signer(VENDOR, NULL), signer(COSIGN, ", \"not_after\": \"2025-01-01\"")),
             fmt("[{\"model_id\": \"%s\", \"min_version\": 12, \"artifact_digests\": [\"%064d\"]}]",
                 MODEL, 0),
             fmt(", \"expires\": \"2025-12-31\", \"signature_threshold\": 2, \"revoked_key_ids\": "
                 "[\"%s\"], \"limits\": {\"max_header_bytes\": 1, \"max_tensors\": 1, "
                 "\"max_recipients\": 1, \"max_tensor_bytes\": 1}, \"required_attestations\": "
                 "[{\"type\": \"audit-report\", \"auditor_key_id\": \"%s\"}]",
                 kid(OTHER), kid(AUDITOR)));
    tseal_gate_input in = artifact();
    in.version = 11;
    in.expires = NOW - 10;
    in.suite_name = "foo";
    set_signers(&in, 3, VENDOR, COSIGN, OTHER);
    tseal_state *st = state_of(state_json(VENDOR, MODEL, 20));
    tseal_gate_result res;
    cr_assert_eq(gate(j, &in, st, &res), TSEAL_E_DENIED);
    const char *want[] = {
        "policy bank-prod expired 2025-12-31T23:59:59Z",
        "artifact expired",
        "version 11 < minimum 12 for model acme/credit-7b",
        "artifact digest abababababababab... is not pinned",
        "suite foo is not allowed",
        "header is 4096 bytes > limit 1",
        "2 recipients > limit 1",
        "10 tensors > limit 1",
        "largest tensor is 1048576 bytes > limit 1",
        fmt("signer key %s... expired 2025-01-01T23:59:59Z", kid16(COSIGN)),
        fmt("signer key %s... is revoked", kid16(OTHER)),
        "threshold not met: 1 of 2 required signatures",
        fmt("rollback: version 11 < 20 already accepted for model acme/credit-7b by signer %s...",
            kid16(VENDOR)),
        fmt("required audit report by key %s... is missing", kid16(AUDITOR)),
    };
    unsigned n = sizeof want / sizeof *want;
    cr_assert_eq(res.n_reasons, n, "%u reasons: %s", res.n_reasons, tseal_errmsg());
    for (unsigned i = 0; i < n; i++)
        cr_assert_not_null(strstr(res.reasons[i], want[i]), "reason %u: \"%s\", expected \"%s\"", i,
                           res.reasons[i], want[i]);
    cr_assert_eq(
        strncmp(tseal_errmsg(), "denied by policy bank-prod: policy bank-prod expired", 52), 0,
        "%s", tseal_errmsg());
    cr_assert_not_null(strstr(tseal_errmsg(), "; artifact expired"));
    tseal_gate_result_free(&res);
    tseal_state_free(st);
}

Test(policy_gate, hostile_names_are_quoted_in_reasons) {
    tseal_gate_input in = artifact();
    in.model_id = "evil\n\x1b[31mmodel";
    tseal_gate_result res;
    cr_assert_eq(gate(pol(NULL), &in, NULL, &res), TSEAL_E_DENIED);
    cr_assert_null(strchr(res.reasons[0], '\n'));
    cr_assert_null(strchr(res.reasons[0], '\x1b'));
    tseal_gate_result_free(&res);
}

Test(policy_gate, bad_arguments) {
    tseal_policy *p = parse_ok(pol(NULL));
    tseal_gate_input in = artifact();
    tseal_gate_result res;
    in.model_id = NULL;
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, NOW, &res), TSEAL_E_INVAL);
    in = artifact();
    in.signer_pks = NULL;
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, NOW, &res), TSEAL_E_INVAL);
    cr_assert_eq(tseal_policy_gate(NULL, &in, NULL, NOW, &res), TSEAL_E_INVAL);
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, NOW, NULL), TSEAL_E_INVAL);
    tseal_policy_free(p);
}

/* ---- rollback state ----------------------------------------------------------------------- */

static size_t count_tmp_files(void) {
    size_t n = 0;
    DIR *d = opendir(tu_dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

Test(policy_state, missing_file_is_empty) {
    tseal_state *s = NULL;
    cr_assert_eq(tseal_state_load(tu_path("state.json"), &s), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_state_count(s), 0);
    int found = 1;
    cr_assert_eq(tseal_state_get(s, MODEL, K[VENDOR]->pub.key_id, &found), 0);
    cr_assert_eq(found, 0);
    tseal_state_free(s);
}

Test(policy_state, unreadable_state_is_an_error_not_empty) {
    tseal_state *s = (tseal_state *)1;
    cr_assert_eq(mkdir(tu_path("state.json"), 0700), 0);
    tu_assert_err(tseal_state_load(tu_path("state.json"), &s), TSEAL_E_INVAL, "not a regular file");
    cr_assert_null(s);
}

Test(policy_state, record_load_and_never_lower) {
    const char *path = tu_path("state.json");
    tseal_state *s = NULL;
    cr_assert_eq(tseal_state_load(path, &s), 0);
    uint8_t ids[2][16];
    memcpy(ids[0], K[VENDOR]->pub.key_id, 16);
    memcpy(ids[1], K[COSIGN]->pub.key_id, 16);
    cr_assert_eq(tseal_state_record(s, path, MODEL, (const uint8_t(*)[16])ids, 2, 12), 0, "%s",
                 tseal_errmsg());
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(count_tmp_files(), 0);
    /* lower: nothing lowers; another model: added */
    cr_assert_eq(tseal_state_record(s, path, MODEL, (const uint8_t(*)[16])ids, 1, 5), 0);
    cr_assert_eq(tseal_state_record(s, path, "acme/b", (const uint8_t(*)[16])ids + 1, 1, 3), 0);
    cr_assert_eq(tseal_state_record(s, path, MODEL, (const uint8_t(*)[16])ids + 1, 1, 14), 0);
    tseal_state_free(s);
    cr_assert_eq(tseal_state_load(path, &s), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_state_count(s), 3);
    int found = 0;
    cr_assert_eq(tseal_state_get(s, MODEL, ids[0], &found), 12);
    cr_assert_eq(found, 1);
    cr_assert_eq(tseal_state_get(s, MODEL, ids[1], &found), 14);
    cr_assert_eq(tseal_state_get(s, "acme/b", ids[1], &found), 3);
    cr_assert_eq(tseal_state_get(s, "acme/b", ids[0], &found), 0);
    cr_assert_eq(found, 0);
    /* the written file is exactly what the encoder produces, and parses back */
    size_t len;
    uint8_t *b = tu_read(path, &len);
    char *enc;
    size_t elen;
    cr_assert_eq(pol_state_encode(s, &enc, &elen), 0);
    cr_assert_eq(elen, len);
    cr_assert_eq(memcmp(enc, b, len), 0);
    free(enc);
    free(b);
    tseal_state_free(s);
}

Test(policy_state, failed_update_keeps_the_old_file) {
    const char *path = tu_path("state.json");
    tseal_state *s = state_of(state_json(VENDOR, MODEL, 12));
    uint8_t ids[16][16];
    for (int i = 0; i < 16; i++) memset(ids[i], i + 1, 16);
    cr_assert_eq(tseal_state_record(s, path, MODEL, (const uint8_t(*)[16])ids, 1, 1), 0);
    size_t len0;
    uint8_t *before = tu_read(path, &len0);
    size_t n0 = tseal_state_count(s);
    /* the new file cannot be written in full (the file size limit is hit mid-write) */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {len0 + 64, len0 + 64};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    int rc = tseal_state_record(s, path, "acme/a-new-model", (const uint8_t(*)[16])ids, 16, 40);
    cr_assert_eq(rc, TSEAL_E_IO, "rc %d %s", rc, tseal_errmsg());
    size_t len1;
    uint8_t *after = tu_read(path, &len1);
    cr_assert_eq(len1, len0);
    cr_assert_eq(memcmp(before, after, len0), 0);
    cr_assert_eq(count_tmp_files(), 0);
    cr_assert_eq(tseal_state_count(s), n0, "the in-memory state changed on failure");
    int found;
    cr_assert_eq(tseal_state_get(s, "acme/a-new-model", ids[0], &found), 0);
    free(before);
    free(after);
    /* the target is a folder: rename fails, nothing is left behind */
    rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &rl);
    cr_assert_eq(mkdir(tu_path("dir.json"), 0700), 0);
    cr_assert_eq(
        tseal_state_record(s, tu_path("dir.json"), MODEL, (const uint8_t(*)[16])ids, 1, 50),
        TSEAL_E_IO);
    cr_assert_eq(count_tmp_files(), 0);
    cr_assert_eq(tseal_state_get(s, MODEL, ids[0], &found), 1);
    /* invalid arguments write nothing */
    cr_assert_eq(tseal_state_record(s, path, "", (const uint8_t(*)[16])ids, 1, 9), TSEAL_E_INVAL);
    cr_assert_eq(tseal_state_record(s, path, MODEL, (const uint8_t(*)[16])ids, 1, (1ull << 53) + 1),
                 TSEAL_E_INVAL);
    tseal_state_free(s);
}

static void state_fails(const char *json, int code, const char *substr) {
    tseal_state *s = (tseal_state *)1;
    tu_assert_err(tseal_state_parse((const uint8_t *)json, strlen(json), "state.json", &s), code,
                  substr);
    cr_assert_null(s);
}

Test(policy_state, malformed_state) {
    const char *id = kid(VENDOR);
    state_fails("{\"tseal_state\": 2, \"accepted\": []}", TSEAL_E_UNSUPPORTED,
                "state.json: tseal_state: version 2 is not supported");
    state_fails("{\"tseal_state\": 1}", TSEAL_E_CORRUPT, "missing member \"accepted\"");
    state_fails("{\"tseal_state\": 1, \"accepted\": {}}", TSEAL_E_CORRUPT,
                "accepted: is an object, not an array");
    state_fails("{\"tseal_state\": 1, \"accepted\": [], \"x\": 0}", TSEAL_E_CORRUPT,
                "unknown member \"x\"");
    state_fails("{\"tseal_state\": 1, \"accepted\": [], \"accepted\": []}", TSEAL_E_CORRUPT,
                "duplicate member \"accepted\"");
    state_fails(fmt("{\"tseal_state\": 1, \"accepted\": [{\"model_id\": \"m\", \"signer_key_id\": "
                    "\"%s\", \"version\": 1}, {\"model_id\": \"m\", \"signer_key_id\": \"%s\", "
                    "\"version\": 2}]}",
                    id, id),
                TSEAL_E_CORRUPT, "is listed twice");
    state_fails("{\"tseal_state\": 1, \"accepted\": [{\"model_id\": \"m\", \"signer_key_id\": "
                "\"00\", \"version\": 1}]}",
                TSEAL_E_CORRUPT, "accepted[0].signer_key_id: is not a key id");
    state_fails(fmt("{\"tseal_state\": 1, \"accepted\": [{\"model_id\": \"m\", \"signer_key_id\": "
                    "\"%s\", \"version\": -1}]}",
                    id),
                TSEAL_E_CORRUPT, "negative number");
    state_fails(fmt("{\"tseal_state\": 1, \"accepted\": [{\"model_id\": \"\", \"signer_key_id\": "
                    "\"%s\", \"version\": 1}]}",
                    id),
                TSEAL_E_CORRUPT, "accepted[0].model_id: is empty");
    state_fails(fmt("{\"tseal_state\": 1, \"accepted\": [{\"model_id\": \"m\", \"signer_key_id\": "
                    "\"%s\"}]}",
                    id),
                TSEAL_E_CORRUPT, "accepted[0]: missing member \"version\"");
    state_fails("{\"tseal_state\": 1, \"accepted\": []} x", TSEAL_E_CORRUPT,
                "after the JSON value");
    state_fails("[]", TSEAL_E_CORRUPT, "does not begin with a JSON object");
    tseal_state *s = NULL;
    tu_assert_err(tseal_state_parse((const uint8_t *)"", 0, "state.json", &s), TSEAL_E_CORRUPT,
                  "empty");
    /* on disk: a malformed file is an error, never an empty state */
    tu_write_str(tu_path("state.json"), "{\"tseal_state\": 1, \"accepted\": [1]}");
    tu_assert_err(tseal_state_load(tu_path("state.json"), &s), TSEAL_E_CORRUPT,
                  "accepted[0]: is a number, not an object");
    cr_assert_null(s);
}

/* ---- init, sign, explain ------------------------------------------------------------------ */

Test(policy_tools, init_output_loads_and_allows_a_matching_artifact) {
    tseal_pubkey keys[2] = {K[VENDOR]->pub, K[COSIGN]->pub};
    tseal_policy_init_opts o = {.trusted = keys,
                                .n_trusted = 2,
                                .model_id = MODEL,
                                .min_version = 12,
                                .expires = NOW + 86400,
                                .threshold = 2};
    const char *path = tu_path("policy.json");
    cr_assert_eq(tseal_policy_init(&o, path, 0), 0, "%s", tseal_errmsg());
    tseal_policy *p = NULL;
    cr_assert_eq(tseal_policy_load(path, NULL, 0, 0, &p), 0, "%s", tseal_errmsg());
    cr_assert_str_eq(tseal_policy_id(p), "site-policy");
    cr_assert_eq(p->threshold, 2);
    cr_assert_str_eq(p->signers[0].name, "vendor");
    cr_assert_str_eq(p->signers[1].name, "cosigner");
    cr_assert_eq(p->expires, NOW + 86400);
    tseal_gate_input in = artifact();
    set_signers(&in, 2, VENDOR, COSIGN);
    tseal_gate_result res;
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, NOW, &res), 0, "%s", tseal_errmsg());
    tseal_gate_result_free(&res);
    in.version = 11;
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, NOW, &res), TSEAL_E_DENIED);
    tseal_gate_result_free(&res);
    tseal_policy_free(p);
    /* no overwrite unless forced */
    o.policy_id = "other-id";
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "file exists");
    cr_assert_eq(tseal_policy_init(&o, path, 1), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_policy_load(path, NULL, 0, 0, &p), 0);
    cr_assert_str_eq(tseal_policy_id(p), "other-id");
    tseal_policy_free(p);
}

Test(policy_tools, init_rejects_bad_options) {
    tseal_pubkey keys[2] = {K[VENDOR]->pub, K[VENDOR]->pub};
    tseal_policy_init_opts o = {.trusted = keys, .n_trusted = 1, .model_id = MODEL, .threshold = 2};
    const char *path = tu_path("policy.json");
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "threshold 2 is more than");
    o.threshold = 0;
    o.n_trusted = 2;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "is the same as key 0");
    o.n_trusted = 0;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "trusted signing keys");
    o.n_trusted = 1;
    o.model_id = NULL;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "model id is required");
    o.model_id = MODEL;
    o.policy_id = "bad\nid";
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "policy id has a control");
    o.policy_id = NULL;
    keys[0].kind = TSEAL_KEY_RECIPIENT;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "not an Ed25519 signing key");
    keys[0] = K[VENDOR]->pub;
    keys[0].key_id[0] ^= 1;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "key_id does not match");
    cr_assert_not(tu_exists(path));
}

Test(policy_tools, sign_then_verify_and_add_a_signature) {
    tseal_pubkey keys[1] = {K[VENDOR]->pub};
    tseal_policy_init_opts o = {.trusted = keys, .n_trusted = 1, .model_id = MODEL};
    const char *bare = tu_path("policy.json"), *signed1 = tu_path("policy.signed.json"),
               *signed2 = tu_path("policy.signed2.json");
    cr_assert_eq(tseal_policy_init(&o, bare, 0), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_policy_sign(bare, K[POLKEY], signed1, 0), 0, "%s", tseal_errmsg());
    tseal_policy *p = NULL;
    cr_assert_eq(tseal_policy_load(signed1, &K[POLKEY]->pub, 1, 1, &p), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_policy_is_signed(p), 1);
    cr_assert_eq(p->n_sigs, 1);
    tseal_policy_free(p);
    /* the payload is the bare file, byte for byte */
    size_t blen;
    uint8_t *bb = tu_read(bare, &blen);
    char *sj = (char *)tu_read(signed1, NULL);
    cr_assert_not_null(strstr(sj, b64(bb, blen)));
    free(bb);
    free(sj);
    /* refuse to overwrite, refuse a second signature by the same key */
    tu_assert_err(tseal_policy_sign(bare, K[POLKEY], signed1, 0), TSEAL_E_INVAL, "file exists");
    tu_assert_err(tseal_policy_sign(signed1, K[POLKEY], signed2, 0), TSEAL_E_INVAL,
                  fmt("already signed by key %s", kid(POLKEY)));
    cr_assert_not(tu_exists(signed2));
    /* a second key adds a signature over the same payload */
    cr_assert_eq(tseal_policy_sign(signed1, K[COSIGN], signed2, 0), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_policy_load(signed2, &K[COSIGN]->pub, 1, 1, &p), 0, "%s", tseal_errmsg());
    cr_assert_eq(p->n_sigs, 2);
    cr_assert_arr_eq(p->sig_key_ids[0], K[POLKEY]->pub.key_id, 16);
    cr_assert_arr_eq(p->sig_key_ids[1], K[COSIGN]->pub.key_id, 16);
    tseal_policy_free(p);
    cr_assert_eq(tseal_policy_load(signed2, &K[POLKEY]->pub, 1, 1, &p), 0, "%s", tseal_errmsg());
    tseal_policy_free(p);
    /* in place, with force */
    cr_assert_eq(tseal_policy_sign(signed2, K[OTHER], signed2, 1), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_policy_load(signed2, &K[OTHER]->pub, 1, 1, &p), 0, "%s", tseal_errmsg());
    cr_assert_eq(p->n_sigs, 3);
    tseal_policy_free(p);
    cr_assert_eq(count_tmp_files(), 0);
    /* a malformed policy is never signed */
    tu_write_str(tu_path("bad.json"), pol(", \"x\": 1"));
    tu_assert_err(tseal_policy_sign(tu_path("bad.json"), K[POLKEY], tu_path("bad.signed"), 0),
                  TSEAL_E_CORRUPT, "unknown member \"x\"");
    cr_assert_not(tu_exists(tu_path("bad.signed")));
}

Test(policy_tools, explain_mentions_every_rule) {
    const char *payload =
        pol3(fmt("%s, %s", signer(VENDOR, ", \"not_after\": \"2027-01-01\""), signer(COSIGN, NULL)),
             fmt("[{\"model_id\": \"%s\", \"min_version\": 12, \"artifact_digests\": [\"%064d\"]}]",
                 MODEL, 5),
             fmt(", \"expires\": \"2027-06-30\", \"revoked_key_ids\": [\"%s\"], "
                 "\"signature_threshold\": 2, \"allowed_suites\": [\"x-suite\"], \"limits\": "
                 "{\"max_header_bytes\": 111, \"max_tensors\": 222, \"max_recipients\": 333, "
                 "\"max_tensor_bytes\": 444}, \"required_attestations\": [{\"type\": "
                 "\"audit-report\", \"auditor_key_id\": \"%s\"}], \"require_rollback_state\": true",
                 kid(OTHER), kid(AUDITOR)));
    const char *env = envelope(payload, strlen(payload),
                               sig_entry(POLKEY, payload, strlen(payload), "tseal/policy"));
    tseal_policy *p = NULL;
    cr_assert_eq(parse_req(env, POLKEY, &p), 0, "%s", tseal_errmsg());
    char *text = tseal_policy_explain(p);
    cr_assert_not_null(text);
    const char *want[] = {"bank-prod",
                          "expires: 2027-06-30T23:59:59Z",
                          fmt("signed: yes, by 1 key: %s", kid(POLKEY)),
                          fmt("vendor  key %s  not after: 2027-01-01T23:59:59Z", kid(VENDOR)),
                          fmt("cosigner  key %s  not after: never", kid(COSIGN)),
                          "threshold: 2 signatures required",
                          fmt("revoked keys:\n  %s", kid(OTHER)),
                          "allowed suites:\n  x-suite",
                          "acme/credit-7b  minimum version 12",
                          fmt("    %064d", 5),
                          "max_header_bytes: 111",
                          "max_tensors: 222",
                          "max_recipients: 333",
                          "max_tensor_bytes: 444",
                          fmt("audit-report passed, by auditor key %s", kid(AUDITOR)),
                          "rollback state file: required"};
    for (unsigned i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert_not_null(strstr(text, want[i]), "explain lacks \"%s\":\n%s", want[i], text);
    free(text);
    tseal_policy_free(p);
    /* a bare, minimal policy */
    p = parse_ok(pol(NULL));
    text = tseal_policy_explain(p);
    const char *want2[] = {"expires: never",
                           "signed: no",
                           "revoked keys: none",
                           TSEAL_SUITE_NAME_V1,
                           "pinned digests: any",
                           "limits: none",
                           "required attestations: none",
                           "rollback state file: optional"};
    for (unsigned i = 0; i < sizeof want2 / sizeof *want2; i++)
        cr_assert_not_null(strstr(text, want2[i]), "explain lacks \"%s\":\n%s", want2[i], text);
    free(text);
    tseal_policy_free(p);
}

/* ---- X.509 signers: trusted_cas, crl_files, the gate, init ---------------------------------- */

#define DAY      86400ll
#define YEAR     (365 * DAY)
#define BANK_IDS "[\"email:release@bank.example\", \"subject:CN=bank-release-*\"]"

/* The test PKI (pki_testutil.h): two roots, an issuing CA under the bank root. */
static pki_cert *ROOT, *ICA, *OTHER_ROOT;
/* Chains made by a test, freed by its fini. */
static tseal_x509_chain *CHAINS[32];
static unsigned n_chains;

/* A path in the test folder that stays valid for the whole test (tu_path rotates buffers). */
static const char *P(const char *name) {
    return fmt("%s", tu_path(name));
}

static void x509_setup(void) {
    setup();
    ROOT = make_root("Bank Root", NOW - YEAR, NOW + 10 * YEAR);
    ICA = make_intermediate(ROOT, "Bank Issuing CA", NOW - YEAR, NOW + 5 * YEAR);
    OTHER_ROOT = make_root("Other Root", NOW - YEAR, NOW + 10 * YEAR);
}

static void x509_teardown(void) {
    for (unsigned i = 0; i < n_chains; i++) tseal_x509_chain_free(CHAINS[i]);
    n_chains = 0;
    pki_free(ROOT);
    pki_free(ICA);
    pki_free(OTHER_ROOT);
    ROOT = ICA = OTHER_ROOT = NULL;
    teardown();
}

TestSuite(policy_x509_parse, .init = x509_setup, .fini = x509_teardown);
TestSuite(policy_x509_gate, .init = x509_setup, .fini = x509_teardown);
TestSuite(policy_x509_tools, .init = x509_setup, .fini = x509_teardown);

/* s as a JSON string literal (PEM line breaks as \n). */
static const char *jstr(const char *s) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert_not_null(f);
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\r')
            fputs("\\r", f);
        else if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
    fclose(f);
    return own(out);
}

static const char *cert_pem(const pki_cert *c) {
    return own(pki_cert_pem(c->cert, NULL));
}

/* A trusted_cas entry with certificate text `pem` (a JSON literal) and identities (JSON). */
static const char *ca_entry_raw(const char *name, const char *pem_json, const char *ids) {
    return fmt("{\"name\": \"%s\", \"certificate\": %s, \"identities\": %s}", name, pem_json, ids);
}

static const char *ca_entry(const char *name, const pki_cert *root, const char *ids) {
    return ca_entry_raw(name, jstr(cert_pem(root)), ids);
}

/* A FIPS policy: the vendor's Ed25519 key, the bank root for the bank identities, the FIPS
 * suite only; `extra` members appended. */
static const char *xpol(const char *extra) {
    return pol(fmt(", \"trusted_cas\": [%s], \"allowed_suites\": [\"%s\"]%s",
                   ca_entry("bank-pki", ROOT, BANK_IDS), TSEAL_SUITE_NAME_FIPS,
                   extra ? extra : ""));
}

/* A policy with only trusted_cas (no trusted_signers member). */
static const char *xpol_cas(const char *cas, const char *extra) {
    return fmt("{\"tseal_policy\": 1, \"policy_id\": \"bank-prod\", \"trusted_cas\": [%s], "
               "\"allowed_suites\": [\"%s\"], \"models\": " DEFAULT_MODELS "%s}\n",
               cas, TSEAL_SUITE_NAME_FIPS, extra ? extra : "");
}

static const char *const SAN_RELEASE[] = {"email:release@bank.example", NULL};
static const char *const SAN_OTHER[] = {"email:intern@bank.example", NULL};

/* A code-signing leaf under `issuer`, valid [nb, na]. */
static pki_cert *leaf(const pki_cert *issuer, const char *cn, const char *const *sans, int64_t nb,
                      int64_t na) {
    return make_leaf(issuer, cn, sans, "critical,digitalSignature", "codeSigning", (time_t)nb,
                     (time_t)na);
}

/* The chain leaf (+ intermediate) as a container would carry it, freed by the fini. */
static const tseal_x509_chain *chain(const pki_cert *l, const pki_cert *ica) {
    const char *lp = P(fmt("leaf%u.pem", n_chains)), *cp = P(fmt("ica%u.pem", n_chains));
    pki_write_cert(lp, l->cert);
    if (ica) pki_write_cert(cp, ica->cert);
    cr_assert_lt(n_chains, 32);
    tseal_x509_chain *c = NULL;
    cr_assert_eq(tseal_x509_chain_load(lp, ica ? cp : NULL, &c), 0, "%s", tseal_errmsg());
    CHAINS[n_chains++] = c;
    return c;
}

static void leaf_key_id(const tseal_x509_chain *c, uint8_t id[16]) {
    uint8_t pk[TSEAL_P256_PK_BYTES];
    cr_assert_eq(tseal_x509_leaf_pubkey(c, pk), 0, "%s", tseal_errmsg());
    tseal_p256_key_id(pk, id);
}

static const char *leaf_kid(const tseal_x509_chain *c) {
    uint8_t id[16];
    char hex[33];
    leaf_key_id(c, id);
    tseal_key_id_hex(id, hex);
    return fmt("%s", hex);
}

/* Signers of a FIPS artifact: Ed25519 keys (K index) or chains, in order. */
static const tseal_x509_chain *CH[8];
static uint8_t IDS[8][TSEAL_KEY_ID_BYTES];

static tseal_gate_input fips_artifact(void) {
    tseal_gate_input in = artifact();
    in.suite_name = TSEAL_SUITE_NAME_FIPS;
    memset(CH, 0, sizeof CH);
    in.signer_chains = CH;
    in.n_signers = 0;
    return in;
}

static void add_ed(tseal_gate_input *in, int k) {
    memcpy(PKS[in->n_signers], K[k]->pub.pk, 32);
    CH[in->n_signers++] = NULL;
}

static void add_cert(tseal_gate_input *in, const tseal_x509_chain *c) {
    memset(PKS[in->n_signers], 0, 32);
    CH[in->n_signers++] = c;
}

static const char *subj(const char *cn) {
    return fmt("signer certificate CN=%s,O=tseal test", cn);
}

/* ---- parsing ----------------------------------------------------------------------------- */

Test(policy_x509_parse, accepts_cas_identities_and_crls) {
    X509_CRL *crl_root = make_crl(ROOT, NULL, 0, NOW - DAY, NOW + 30 * DAY);
    X509_CRL *crl_ica = make_crl(ICA, NULL, 0, NOW - DAY, NOW + 30 * DAY);
    cr_assert_eq(mkdir(P("etc"), 0700), 0);
    pki_write_crl(P("etc/root.crl.pem"), crl_root);
    X509_CRL *both[2] = {crl_ica, crl_root};
    pki_write_crls(P("both.crl.pem"), both, 2); /* an absolute path, several CRLs */
    const char *j =
        pol(fmt(", \"trusted_cas\": [%s, %s], \"crl_files\": [\"root.crl.pem\", \"%s\"], "
                "\"signature_threshold\": 256, \"allowed_suites\": [\"%s\", \"%s\"]",
                ca_entry("bank-pki", ROOT, BANK_IDS),
                ca_entry("other", OTHER_ROOT,
                         "[\"uri:https://acme.example/*\", \"dns:*.acme.example\", "
                         "\"email:*\", \"subject:CN=x\"]"),
                P("both.crl.pem"), TSEAL_SUITE_NAME_V1, TSEAL_SUITE_NAME_FIPS));
    /* relative crl_files are relative to the policy file's folder, wherever the process is */
    tu_write_str(P("etc/policy.json"), j);
    tseal_policy *p = NULL;
    cr_assert_eq(tseal_policy_load(P("etc/policy.json"), NULL, 0, 0, &p), 0, "%s", tseal_errmsg());
    cr_assert_eq(p->n_cas, 2);
    cr_assert_str_eq(p->cas[0].name, "bank-pki");
    cr_assert_str_eq(p->cas[0].subject, "CN=Bank Root,O=tseal test");
    cr_assert_str_eq(p->cas[1].subject, "CN=Other Root,O=tseal test");
    cr_assert_eq(p->cas[1].n_identities, 4);
    cr_assert_eq(p->cas[0].not_after, NOW + 10 * YEAR);
    cr_assert_eq(p->n_crls, 2);
    cr_assert_str_eq(p->crl_paths[0], fmt("%s/etc/root.crl.pem", tu_dir));
    cr_assert_not_null(p->trust);
    cr_assert_eq(p->threshold, 256); /* X.509 signers are not listed: up to the limit */
    cr_assert(tseal_policy_allows_suite(p, TSEAL_SUITE_NAME_FIPS));
    cr_assert(tseal_policy_allows_suite(p, TSEAL_SUITE_NAME_V1));
    tseal_policy_free(p);
    /* over memory, the same relative path is relative to the current folder (not found) */
    tu_assert_err(tseal_policy_parse((const uint8_t *)j, strlen(j), "policy.json", NULL, 0, 0, &p),
                  TSEAL_E_IO, "policy.json: crl_files[0]: root.crl.pem: no such file");
    cr_assert_eq(tseal_policy_parse_in((const uint8_t *)j, strlen(j), "policy.json", P("etc"), NULL,
                                       0, 0, &p),
                 0, "%s", tseal_errmsg());
    tseal_policy_free(p);
    /* trusted_signers is optional (or empty) with trusted_cas */
    p = parse_ok(xpol_cas(ca_entry("bank-pki", ROOT, BANK_IDS), NULL));
    cr_assert_eq(p->n_signers, 0);
    cr_assert_null(p->trust == NULL ? NULL : (void *)0);
    tseal_policy_free(p);
    tseal_policy_free(parse_ok(xpol_cas(ca_entry("bank-pki", ROOT, BANK_IDS),
                                        ", \"trusted_signers\": [], \"crl_files\": []")));
    X509_CRL_free(crl_root);
    X509_CRL_free(crl_ica);
}

Test(policy_x509_parse, signers_or_cas_required_and_threshold) {
    parse_fails("{\"tseal_policy\": 1, \"policy_id\": \"x\", \"models\": " DEFAULT_MODELS "}",
                TSEAL_E_CORRUPT, "missing member \"trusted_signers\" (or \"trusted_cas\")");
    parse_fails(fmt("{\"tseal_policy\": 1, \"policy_id\": \"x\", \"trusted_signers\": [], "
                    "\"trusted_cas\": [], \"models\": " DEFAULT_MODELS "}"),
                TSEAL_E_CORRUPT, "trusted_cas: needs at least 1 entries");
    parse_fails(xpol(", \"signature_threshold\": 257"), TSEAL_E_CORRUPT,
                "signature_threshold: 257 is more than 256 (the limit)");
    parse_fails(pol(", \"signature_threshold\": 2"), TSEAL_E_CORRUPT,
                "signature_threshold: 2 is more than the 1 trusted signers");
}

Test(policy_x509_parse, malformed_members) {
    const char *ok = ca_entry("bank-pki", ROOT, BANK_IDS);
    const char *pem = jstr(cert_pem(ROOT));
    parse_fails(pol(fmt(", \"trusted_cas\": %s", ok)), TSEAL_E_CORRUPT,
                "trusted_cas: is an object, not an array");
    parse_fails(pol(", \"trusted_cas\": [\"bank\"]"), TSEAL_E_CORRUPT,
                "trusted_cas[0]: is a string, not an object");
    parse_fails(pol(fmt(", \"trusted_cas\": [%s, 7]", ok)), TSEAL_E_CORRUPT,
                "trusted_cas[1]: is a number, not an object");
    parse_fails(
        pol(", \"trusted_cas\": [{\"name\": \"x\", \"certificate\": 1, \"identities\": []}]"),
        TSEAL_E_CORRUPT, "trusted_cas[0].certificate: is a number, not a string");
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("x", pem, "\"email:a@b\""))),
                TSEAL_E_CORRUPT, "trusted_cas[0].identities: is a string, not an array");
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("x", pem, "[1]"))), TSEAL_E_CORRUPT,
                "trusted_cas[0].identities[0]: is a number, not a string");
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("x", pem, "[]"))), TSEAL_E_CORRUPT,
                "trusted_cas[0].identities: needs at least 1 entries");
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("", pem, BANK_IDS))),
                TSEAL_E_CORRUPT, "trusted_cas[0].name: ");
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("a\\u0007", pem, BANK_IDS))),
                TSEAL_E_CORRUPT, "trusted_cas[0].name: ");
    parse_fails(pol(fmt(", \"trusted_cas\": [{\"name\": \"x\", \"certificate\": %s}]", pem)),
                TSEAL_E_CORRUPT, "trusted_cas[0]: missing member \"identities\"");
    parse_fails(pol(fmt(", \"trusted_cas\": [{\"name\": \"x\", \"certificate\": %s, "
                        "\"identities\": " BANK_IDS ", \"path_len\": 1}]",
                        pem)),
                TSEAL_E_CORRUPT, "trusted_cas[0]: unknown member \"path_len\"");
    /* identity patterns */
    static const struct {
        const char *ids, *why;
    } bad[] = {
        {"[\"release@bank.example\"]", "[0]: is not an identity pattern"},
        {"[\"EMAIL:release@bank.example\"]", "[0]: is not an identity pattern"},
        {"[\"x509:CN=a\"]", "[0]: is not an identity pattern"},
        {"[\"email:\"]", "[0]: has no text after the type"},
        {"[\"uri:https://*.acme/*\"]", "[0]: has more than one '*'"},
        {"[\"subject:CN=a\\nO=b\"]", "[0]: is not 1..512 bytes of printable UTF-8"},
        {"[\"dns:a\", \"dns:b\", \"dns:a\"]", "identities[2]: the same pattern as "},
    };
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
        parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("x", pem, bad[i].ids))),
                    TSEAL_E_CORRUPT, bad[i].why);
    /* too many */
    char *ids = NULL, *cas = NULL, *crls = NULL;
    size_t l1, l2, l3;
    FILE *fi = open_memstream(&ids, &l1), *fc = open_memstream(&cas, &l2),
         *fr = open_memstream(&crls, &l3);
    for (unsigned i = 0; i <= TSEAL_POLICY_MAX_IDENTITIES; i++)
        fprintf(fi, "%s\"dns:h%u.example\"", i ? ", " : "[", i);
    fputc(']', fi);
    for (unsigned i = 0; i <= TSEAL_POLICY_MAX_CAS; i++) fprintf(fc, "%s%s", i ? ", " : "", ok);
    for (unsigned i = 0; i <= TSEAL_POLICY_MAX_CRLS; i++)
        fprintf(fr, "%s\"c%u.pem\"", i ? ", " : "[", i);
    fputc(']', fr);
    fclose(fi);
    fclose(fc);
    fclose(fr);
    own(ids), own(cas), own(crls);
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("x", pem, ids))), TSEAL_E_LIMIT,
                "trusted_cas[0].identities: more than 32 entries (the limit)");
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", cas)), TSEAL_E_LIMIT,
                "trusted_cas: more than 64 entries (the limit)");
    parse_fails(xpol(fmt(", \"crl_files\": %s", crls)), TSEAL_E_LIMIT,
                "crl_files: more than 16 entries (the limit)");
    /* duplicates */
    parse_fails(pol(fmt(", \"trusted_cas\": [%s, %s]", ok, ok)), TSEAL_E_CORRUPT,
                "trusted_cas[1].certificate: the same certificate as trusted_cas[0]");
    pki_cert *again = make_root("Bank Root", NOW - YEAR, NOW + YEAR); /* same subject, new key */
    parse_fails(pol(fmt(", \"trusted_cas\": [%s, %s]", ok, ca_entry("again", again, BANK_IDS))),
                TSEAL_E_CORRUPT, "trusted_cas[1].certificate: the same subject as trusted_cas[0]");
    pki_free(again);
    /* crl_files */
    parse_fails(xpol(", \"crl_files\": \"x.pem\""), TSEAL_E_CORRUPT,
                "crl_files: is a string, not an array");
    parse_fails(xpol(", \"crl_files\": [3]"), TSEAL_E_CORRUPT,
                "crl_files[0]: is a number, not a string");
    parse_fails(xpol(", \"crl_files\": [\"\"]"), TSEAL_E_CORRUPT, "crl_files[0]: is empty");
    parse_fails(xpol(", \"crl_files\": [\"a.pem\", \"a.pem\"]"), TSEAL_E_CORRUPT,
                "crl_files[1]: the same file as crl_files[0]");
    parse_fails(pol(", \"crl_files\": [\"a.pem\"]"), TSEAL_E_CORRUPT,
                "crl_files: listed without trusted_cas");
}

Test(policy_x509_parse, certificate_must_be_one_strict_pem_ca_root) {
    const char *root = cert_pem(ROOT), *other = cert_pem(OTHER_ROOT);
    size_t rl = strlen(root);
    static const char *const end = "-----END CERTIFICATE-----\n";
    const char *b64 = root + strlen("-----BEGIN CERTIFICATE-----\n");
    struct {
        const char *pem, *why;
        int code;
    } bad[] = {
        {"", "is empty", TSEAL_E_CORRUPT},
        {"hello", "text at offset 0 is not a PEM block", TSEAL_E_CORRUPT},
        {fmt("  %s", root), "text at offset 2 is not a PEM block", TSEAL_E_CORRUPT},
        {fmt("subject=CN=Bank Root\n%s", root), "text at offset 0 is not a PEM block",
         TSEAL_E_CORRUPT},
        {fmt("%s%s", root, other), "more than one certificate, or text after it", TSEAL_E_CORRUPT},
        {fmt("%sjunk\n", root), "more than one certificate, or text after it", TSEAL_E_CORRUPT},
        {fmt("-----BEGIN X509 CRL-----\n%.*s-----END X509 CRL-----\n",
             (int)(strlen(b64) - strlen(end)), b64),
         "PEM block at offset 0 is \"X509 CRL\", not \"CERTIFICATE\"", TSEAL_E_CORRUPT},
        {fmt("-----BEGIN CERTIFICATE\n%s", b64), "malformed PEM", TSEAL_E_CORRUPT},
        {fmt("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: "
             "AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n%s",
             b64),
         "PEM block at offset 0 has headers", TSEAL_E_CORRUPT},
        {fmt("-----BEGIN CERTIFICATE-----\nAAAA%s", b64), "", TSEAL_E_CORRUPT},
        {fmt("-----BEGIN CERTIFICATE-----\nTUlJ\n%s", end), "is not a DER X.509 certificate",
         TSEAL_E_CORRUPT},
        {fmt("%.*s\xc3\xa9\n", (int)rl - 1, root), "is not PEM text", TSEAL_E_CORRUPT},
    };
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
        parse_fails(
            pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("x", jstr(bad[i].pem), BANK_IDS))),
            bad[i].code, fmt("trusted_cas[0].certificate: %s", bad[i].why));
    /* blanks around the block are fine */
    tseal_policy_free(
        parse_ok(pol(fmt(", \"trusted_cas\": [%s]",
                         ca_entry_raw("x", jstr(fmt(" \r\n\n%s\n\n", root)), BANK_IDS)))));
    /* over the size limit */
    char *big = malloc(TSEAL_POLICY_MAX_CA_PEM + 2);
    cr_assert_not_null(big);
    memset(big, ' ', TSEAL_POLICY_MAX_CA_PEM + 1);
    memcpy(big, root, rl);
    big[TSEAL_POLICY_MAX_CA_PEM + 1] = 0;
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry_raw("x", jstr(own(big)), BANK_IDS))),
                TSEAL_E_LIMIT, "trusted_cas[0].certificate: more than 65536 bytes");
}

Test(policy_x509_parse, root_that_is_not_a_ca_is_refused) {
    pki_cert *l = leaf(ICA, "bank-release-1", SAN_RELEASE, NOW - DAY, NOW + DAY);
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry("x", l, BANK_IDS))), TSEAL_E_CORRUPT,
                "trusted_cas[0].certificate: is not a CA certificate (basicConstraints CA:TRUE "
                "is required)");
    /* a self-signed certificate without CA:TRUE */
    pki_cert *self = pki_make(NULL, "Self", pki_key_p256(), NOW - DAY, NOW + DAY, false, NULL,
                              "critical,digitalSignature", NULL);
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry("x", self, BANK_IDS))), TSEAL_E_CORRUPT,
                "is not a CA certificate");
    /* an intermediate is a CA, but not a root: chains are built up to a self-signed root */
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry("x", ICA, BANK_IDS))), TSEAL_E_CORRUPT,
                "trusted_cas[0].certificate: is not a root (self-signed) CA certificate");
    /* a CA with a second key usage extension: an invalid certificate */
    pki_cert *dup = pki_make(NULL, "Dup", pki_key_p256(), NOW - DAY, NOW + DAY, true, NULL,
                             "digitalSignature", NULL);
    parse_fails(pol(fmt(", \"trusted_cas\": [%s]", ca_entry("x", dup, BANK_IDS))), TSEAL_E_CORRUPT,
                "trusted_cas[0].certificate: has an invalid or duplicate extension");
    pki_free(l);
    pki_free(self);
    pki_free(dup);
}

Test(policy_x509_parse, crl_files_must_load) {
    const char *path = P("policy.json");
    tseal_policy *p = (tseal_policy *)1;
    /* missing */
    tu_write_str(path, xpol(", \"crl_files\": [\"missing.crl.pem\"]"));
    tu_assert_err(tseal_policy_load(path, NULL, 0, 0, &p), TSEAL_E_IO,
                  fmt("%s: crl_files[0]: %s: no such file", path, P("missing.crl.pem")));
    cr_assert_null(p);
    /* not PEM, not a CRL, empty, garbage after, a folder */
    X509_CRL *crl = make_crl(ICA, NULL, 0, NOW - DAY, NOW + DAY);
    pki_write_crl(P("good.crl.pem"), crl);
    char *good = (char *)tu_read(P("good.crl.pem"), NULL);
    own(good);
    unsigned char *der = NULL;
    int dl = i2d_X509_CRL(crl, &der);
    cr_assert_gt(dl, 0);
    tu_write(P("der.crl"), der, (size_t)dl);
    OPENSSL_free(der);
    tu_write_str(P("cert.pem"), cert_pem(ROOT));
    tu_write_str(P("empty.pem"), "");
    tu_write_str(P("trailing.pem"), fmt("%sjunk\n", good));
    cr_assert_eq(mkdir(P("dir.pem"), 0700), 0);
    static const struct {
        const char *file, *why;
        int code;
    } bad[] = {
        {"der.crl", "is not PEM text (a DER CRL converts with", TSEAL_E_CORRUPT},
        {"cert.pem", "PEM block at offset 0 is \"CERTIFICATE\", not \"X509 CRL\"", TSEAL_E_CORRUPT},
        {"empty.pem", "is empty", TSEAL_E_CORRUPT},
        {"trailing.pem", "text at offset", TSEAL_E_CORRUPT},
        {"dir.pem", "not a regular file", TSEAL_E_INVAL},
    };
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_write_str(path, xpol(fmt(", \"crl_files\": [\"good.crl.pem\", \"%s\"]", bad[i].file)));
        tu_assert_err(tseal_policy_load(path, NULL, 0, 0, &p), bad[i].code,
                      fmt("crl_files[1]: %s: %s", P(bad[i].file), bad[i].why));
        cr_assert_null(p);
    }
    tu_write_str(path, xpol(", \"crl_files\": [\"good.crl.pem\"]"));
    cr_assert_eq(tseal_policy_load(path, NULL, 0, 0, &p), 0, "%s", tseal_errmsg());
    tseal_policy_free(p);
    X509_CRL_free(crl);
}

/* ---- the gate ---------------------------------------------------------------------------- */

static int xgate(const char *json, const tseal_gate_input *in, tseal_gate_result *res) {
    return gate(json, in, NULL, res);
}

Test(policy_x509_gate, valid_chain_with_an_allowed_identity_counts) {
    pki_cert *l = leaf(ICA, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    const tseal_x509_chain *c = chain(l, ICA);
    tseal_gate_input in = fips_artifact();
    add_cert(&in, c);
    tseal_gate_result res;
    cr_assert_eq(xgate(xpol_cas(ca_entry("bank-pki", ROOT, BANK_IDS), NULL), &in, &res), 0, "%s",
                 tseal_errmsg());
    cr_assert_eq(res.n_counted, 1);
    uint8_t id[16];
    leaf_key_id(c, id);
    cr_assert_arr_eq(res.counted[0], id, 16);
    tseal_gate_result_free(&res);
    /* a subject pattern matches the common name, without any SAN; signer_pks may be NULL */
    pki_cert *l2 = leaf(ICA, "bank-release-7", NULL, NOW - DAY, NOW + YEAR);
    in.n_signers = 0;
    add_cert(&in, chain(l2, ICA));
    in.signer_pks = NULL;
    assert_allowed(xpol(NULL), &in, NULL);
    pki_free(l);
    pki_free(l2);
}

Test(policy_x509_gate, identity_mismatch_is_denied) {
    pki_cert *l = leaf(ICA, "intern", SAN_OTHER, NOW - DAY, NOW + YEAR);
    tseal_gate_input in = fips_artifact();
    add_cert(&in, chain(l, ICA));
    const char *j = xpol(NULL);
    assert_denied(j, &in, NULL, 2,
                  fmt("%s is not an allowed identity for CA bank-pki", subj("intern")));
    assert_denied(j, &in, NULL, 2, "threshold not met: 0 of 1 required signatures");
    /* as an extra co-signer of an artifact the vendor signed, it does not deny */
    in.n_signers = 0;
    add_ed(&in, VENDOR);
    add_cert(&in, CH[0] ? CH[0] : chain(l, ICA));
    tseal_gate_result res;
    cr_assert_eq(xgate(j, &in, &res), 0, "%s", tseal_errmsg());
    cr_assert_eq(res.n_counted, 1);
    tseal_gate_result_free(&res);
    pki_free(l);
}

Test(policy_x509_gate, untrusted_ca_is_denied) {
    pki_cert *l = leaf(OTHER_ROOT, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    tseal_gate_input in = fips_artifact();
    add_cert(&in, chain(l, NULL));
    assert_denied(xpol(NULL), &in, NULL, 2,
                  fmt("%s: not issued by a trusted CA", subj("release-bot")));
    /* a policy without any CA */
    assert_denied(
        pol(fmt(", \"allowed_suites\": [\"%s\"]", TSEAL_SUITE_NAME_FIPS)), &in, NULL, 2,
        fmt("%s: not issued by a trusted CA (the policy trusts no CA)", subj("release-bot")));
    /* a chain that carries a root of its own does not make that root trusted */
    pki_cert *l2 = leaf(ICA, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    in.n_signers = 0;
    add_cert(&in, chain(l2, ICA));
    assert_denied(xpol_cas(ca_entry("other", OTHER_ROOT, BANK_IDS), NULL), &in, NULL, 2,
                  "not issued by a trusted CA");
    pki_free(l);
    pki_free(l2);
}

Test(policy_x509_gate, expired_or_not_yet_valid_leaf_is_denied) {
    pki_cert *old = leaf(ICA, "release-bot", SAN_RELEASE, NOW - 30 * DAY, NOW - DAY);
    pki_cert *early = leaf(ICA, "release-bot", SAN_RELEASE, NOW + DAY, NOW + YEAR);
    tseal_gate_input in = fips_artifact();
    add_cert(&in, chain(old, ICA));
    assert_denied(xpol(NULL), &in, NULL, 2,
                  fmt("%s: certificate has expired", subj("release-bot")));
    in.n_signers = 0;
    add_cert(&in, chain(early, ICA));
    assert_denied(xpol(NULL), &in, NULL, 2, "certificate is not yet valid");
    pki_free(old);
    pki_free(early);
}

Test(policy_x509_gate, key_usage_must_allow_code_signing) {
    pki_cert *tls = make_leaf(ICA, "release-bot", SAN_RELEASE, "critical,digitalSignature",
                              "serverAuth", (time_t)(NOW - DAY), (time_t)(NOW + YEAR));
    tseal_gate_input in = fips_artifact();
    add_cert(&in, chain(tls, ICA));
    assert_denied(xpol(NULL), &in, NULL, 2, "extended key usage does not allow code signing");
    pki_free(tls);
}

Test(policy_x509_gate, revoked_leaf_always_denies) {
    pki_cert *ok = leaf(ICA, "bank-release-1", NULL, NOW - DAY, NOW + YEAR);
    pki_cert *bad = leaf(ICA, "bank-release-2", NULL, NOW - DAY, NOW + YEAR);
    X509_CRL *crl_ica = make_crl(ICA, &bad->serial, 1, NOW - DAY, NOW + 30 * DAY);
    X509_CRL *crl_root = make_crl(ROOT, NULL, 0, NOW - DAY, NOW + 30 * DAY);
    pki_write_crl(P("ica.crl.pem"), crl_ica);
    pki_write_crl(P("root.crl.pem"), crl_root);
    const char *j =
        xpol(fmt(", \"crl_files\": [\"%s\", \"%s\"]", P("ica.crl.pem"), P("root.crl.pem")));
    tseal_gate_input in = fips_artifact();
    /* a certificate the CRLs do not revoke counts */
    add_cert(&in, chain(ok, ICA));
    assert_allowed(j, &in, NULL);
    /* the revoked one denies, even next to valid signers that meet the threshold */
    add_ed(&in, VENDOR);
    add_cert(&in, chain(bad, ICA));
    assert_denied(j, &in, NULL, 1, fmt("%s: certificate is revoked", subj("bank-release-2")));
    /* once a CRL is listed, every issuer needs one: without the root's CRL nothing counts */
    in.n_signers = 0;
    add_cert(&in, CHAINS[0]);
    assert_denied(xpol(fmt(", \"crl_files\": [\"%s\"]", P("ica.crl.pem"))), &in, NULL, 2,
                  fmt("%s: no CRL for CN=Bank Root,O=tseal test", subj("bank-release-1")));
    /* an expired CRL fails closed */
    X509_CRL *stale = make_crl(ICA, NULL, 0, NOW - 30 * DAY, NOW - DAY);
    pki_write_crl(P("stale.crl.pem"), stale);
    assert_denied(
        xpol(fmt(", \"crl_files\": [\"%s\", \"%s\"]", P("stale.crl.pem"), P("root.crl.pem"))), &in,
        NULL, 2, "CRL has expired");
    X509_CRL_free(crl_ica);
    X509_CRL_free(crl_root);
    X509_CRL_free(stale);
    pki_free(ok);
    pki_free(bad);
}

Test(policy_x509_gate, revoked_key_ids_apply_to_leaf_keys) {
    pki_cert *l = leaf(ICA, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    const tseal_x509_chain *c = chain(l, ICA);
    tseal_gate_input in = fips_artifact();
    add_ed(&in, VENDOR);
    add_cert(&in, c);
    assert_denied(xpol(fmt(", \"revoked_key_ids\": [\"%s\"]", leaf_kid(c))), &in, NULL, 1,
                  fmt("signer key %.16s... is revoked", leaf_kid(c)));
    pki_free(l);
}

Test(policy_x509_gate, fips_only_refuses_a_downgrade) {
    const char *fips_only = pol(fmt(", \"allowed_suites\": [\"%s\"]", TSEAL_SUITE_NAME_FIPS));
    tseal_gate_input in = artifact(); /* a v1 artifact the trusted vendor signed */
    assert_denied(fips_only, &in, NULL, 1,
                  "suite ed25519-x25519-chacha20poly1305-sha256 is not allowed");
    in.suite_name = TSEAL_SUITE_NAME_FIPS;
    assert_allowed(fips_only, &in, NULL);
    /* and the other way: the default policy allows only v1 */
    assert_denied(pol(NULL), &in, NULL, 1, "suite fips-p256-aes256gcm-sha256 is not allowed");
    tseal_policy *p = parse_ok(fips_only);
    cr_assert(tseal_policy_allows_suite(p, TSEAL_SUITE_NAME_FIPS));
    cr_assert_not(tseal_policy_allows_suite(p, TSEAL_SUITE_NAME_V1));
    cr_assert_not(tseal_policy_allows_suite(p, NULL));
    tseal_policy_free(p);
    /* a FIPS artifact with a valid certificate, under a FIPS-only policy with a CA */
    pki_cert *l = leaf(ICA, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    in = fips_artifact();
    add_cert(&in, chain(l, ICA));
    assert_allowed(xpol(NULL), &in, NULL);
    in.suite_name = TSEAL_SUITE_NAME_V1;
    assert_denied(xpol(NULL), &in, NULL, 1,
                  "suite ed25519-x25519-chacha20poly1305-sha256 is not allowed");
    pki_free(l);
}

Test(policy_x509_gate, mixed_threshold_counts_distinct_keys_of_both_kinds) {
    pki_cert *l = leaf(ICA, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    const tseal_x509_chain *c = chain(l, ICA);
    const char *j = xpol(", \"signature_threshold\": 2");
    tseal_gate_input in = fips_artifact();
    add_ed(&in, VENDOR);
    add_cert(&in, c);
    tseal_gate_result res;
    cr_assert_eq(xgate(j, &in, &res), 0, "%s", tseal_errmsg());
    cr_assert_eq(res.n_counted, 2);
    cr_assert_arr_eq(res.counted[0], K[VENDOR]->pub.key_id, 16);
    uint8_t id[16];
    leaf_key_id(c, id);
    cr_assert_arr_eq(res.counted[1], id, 16);
    tseal_gate_result_free(&res);
    /* the same leaf key twice (another chain for it) counts once */
    in.n_signers = 0;
    add_cert(&in, c);
    add_cert(&in, chain(l, ICA));
    assert_denied(j, &in, NULL, 1, "threshold not met: 1 of 2 required signatures");
    /* one of each kind, but the certificate is of another identity */
    pki_cert *l2 = leaf(ICA, "intern", SAN_OTHER, NOW - DAY, NOW + YEAR);
    in.n_signers = 0;
    add_ed(&in, VENDOR);
    add_cert(&in, chain(l2, ICA));
    assert_denied(j, &in, NULL, 2, "threshold not met: 1 of 2 required signatures");
    assert_denied(j, &in, NULL, 2, "is not an allowed identity for CA bank-pki");
    pki_free(l);
    pki_free(l2);
}

Test(policy_x509_gate, signer_key_ids_are_checked) {
    pki_cert *l = leaf(ICA, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    const tseal_x509_chain *c = chain(l, ICA);
    tseal_gate_input in = fips_artifact();
    add_ed(&in, VENDOR);
    add_cert(&in, c);
    memcpy(IDS[0], K[VENDOR]->pub.key_id, 16);
    leaf_key_id(c, IDS[1]);
    in.signer_key_ids = (const uint8_t(*)[TSEAL_KEY_ID_BYTES])IDS;
    assert_allowed(xpol(NULL), &in, NULL);
    tseal_policy *p = parse_ok(xpol(NULL));
    tseal_gate_result res;
    IDS[1][0] ^= 1; /* not the leaf's key id */
    tu_assert_err(tseal_policy_gate(p, &in, NULL, NOW, &res), TSEAL_E_INVAL,
                  "signer_key_ids[1] is not the key id of signer 1");
    cr_assert_eq(res.n_reasons, 0);
    cr_assert_eq(res.n_counted, 0);
    IDS[1][0] ^= 1;
    IDS[0][0] ^= 1; /* not the Ed25519 key's id */
    tu_assert_err(tseal_policy_gate(p, &in, NULL, NOW, &res), TSEAL_E_INVAL,
                  "signer_key_ids[0] is not the key id of signer 0");
    /* an Ed25519 signer needs its public key */
    in.signer_key_ids = NULL;
    in.signer_pks = NULL;
    tu_assert_err(tseal_policy_gate(p, &in, NULL, NOW, &res), TSEAL_E_INVAL,
                  "signer 0 has no public key");
    tseal_policy_free(p);
    pki_free(l);
}

Test(policy_x509_gate, rollback_state_per_leaf_key) {
    pki_cert *l = leaf(ICA, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    const tseal_x509_chain *c = chain(l, ICA);
    tseal_gate_input in = fips_artifact();
    add_cert(&in, c);
    tseal_state *st = state_of(fmt("{\"tseal_state\": 1, \"accepted\": [{\"model_id\": \"%s\", "
                                   "\"signer_key_id\": \"%s\", \"version\": 13}]}",
                                   MODEL, leaf_kid(c)));
    assert_denied(xpol(NULL), &in, st, 1,
                  fmt("rollback: version 12 < 13 already accepted for model %s by signer %.16s...",
                      MODEL, leaf_kid(c)));
    tseal_state_free(st);
    pki_free(l);
}

/* ---- init, sign, explain ----------------------------------------------------------------- */

Test(policy_x509_tools, init_with_a_ca) {
    const char *ca = P("bank-root.pem"), *path = P("policy.json");
    /* an `openssl x509 -text` style dump around the block is fine; only the block is kept */
    tu_write_str(ca, fmt("Certificate:\n    Subject: CN=Bank Root\n%s", cert_pem(ROOT)));
    const char *ids[] = {"email:release@bank.example", "subject:CN=bank-release-*"};
    tseal_policy_init_opts o = {.model_id = MODEL,
                                .min_version = 12,
                                .ca_pem_path = ca,
                                .identities = ids,
                                .n_identities = 2};
    cr_assert_eq(tseal_policy_init(&o, path, 0), 0, "%s", tseal_errmsg());
    tseal_policy *p = NULL;
    cr_assert_eq(tseal_policy_load(path, NULL, 0, 0, &p), 0, "%s", tseal_errmsg());
    cr_assert_eq(p->n_signers, 0);
    cr_assert_eq(p->n_cas, 1);
    cr_assert_str_eq(p->cas[0].name, "bank-root");
    cr_assert_str_eq(p->cas[0].pem, cert_pem(ROOT));
    cr_assert_eq(p->cas[0].n_identities, 2);
    cr_assert_str_eq(p->cas[0].identities[1], "subject:CN=bank-release-*");
    cr_assert(tseal_policy_allows_suite(p, TSEAL_SUITE_NAME_V1));
    cr_assert(tseal_policy_allows_suite(p, TSEAL_SUITE_NAME_FIPS));
    pki_cert *l = leaf(ICA, "release-bot", SAN_RELEASE, NOW - DAY, NOW + YEAR);
    tseal_gate_input in = fips_artifact();
    add_cert(&in, chain(l, ICA));
    tseal_gate_result res;
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, NOW, &res), 0, "%s", tseal_errmsg());
    tseal_gate_result_free(&res);
    tseal_policy_free(p);
    /* --fips-only, with an Ed25519 key as well and a threshold of 2 */
    tseal_pubkey keys[1] = {K[VENDOR]->pub};
    o.trusted = keys;
    o.n_trusted = 1;
    o.threshold = 2;
    o.fips_only = 1;
    cr_assert_eq(tseal_policy_init(&o, path, 1), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_policy_load(path, NULL, 0, 0, &p), 0, "%s", tseal_errmsg());
    cr_assert_eq(p->n_signers, 1);
    cr_assert_eq(p->threshold, 2);
    cr_assert_eq(p->n_suites, 1);
    cr_assert_str_eq(p->suites[0], TSEAL_SUITE_NAME_FIPS);
    add_ed(&in, VENDOR);
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, NOW, &res), 0, "%s", tseal_errmsg());
    tseal_gate_result_free(&res);
    in.suite_name = TSEAL_SUITE_NAME_V1;
    cr_assert_eq(tseal_policy_gate(p, &in, NULL, NOW, &res), TSEAL_E_DENIED);
    cr_assert(has_reason(&res, "suite ed25519-x25519-chacha20poly1305-sha256 is not allowed"));
    tseal_gate_result_free(&res);
    tseal_policy_free(p);
    pki_free(l);
}

Test(policy_x509_tools, init_rejects_bad_ca_options) {
    const char *path = P("policy.json"), *ca = P("root.pem");
    const char *ids[] = {"email:release@bank.example", "bad", "email:release@bank.example"};
    tu_write_str(ca, cert_pem(ROOT));
    tseal_policy_init_opts o = {.model_id = MODEL, .ca_pem_path = ca, .identities = ids};
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL,
                  "a trusted CA needs 1..32 identities");
    o.n_identities = 2;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL,
                  "identity bad is not an identity pattern");
    ids[1] = "email:x@bank.example";
    o.n_identities = 3;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL,
                  "identity 2 is the same as identity 0");
    o.n_identities = 1;
    tu_write_str(ca, cert_pem(ICA));
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_CORRUPT, "is not a root");
    tu_write_str(ca, fmt("%s%s", cert_pem(ROOT), cert_pem(OTHER_ROOT)));
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "holds more than one certificate");
    tu_write_str(ca, "not a certificate\n");
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_CORRUPT, "holds no PEM certificate");
    o.ca_pem_path = P("none.pem");
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_NOTFOUND, "no such file");
    o.ca_pem_path = NULL;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL,
                  "identities are given without a trusted CA");
    o.n_identities = 0;
    tu_assert_err(tseal_policy_init(&o, path, 0), TSEAL_E_INVAL, "(or a trusted CA)");
    cr_assert_not(tu_exists(path));
}

Test(policy_x509_tools, explain_shows_cas_crls_and_suites) {
    X509_CRL *crl = make_crl(ROOT, NULL, 0, NOW - DAY, NOW + DAY);
    pki_write_crl(P("root.crl.pem"), crl);
    X509_CRL_free(crl);
    tu_write_str(P("policy.json"), xpol(", \"crl_files\": [\"root.crl.pem\"]"));
    tseal_policy *p = NULL;
    cr_assert_eq(tseal_policy_load(P("policy.json"), NULL, 0, 0, &p), 0, "%s", tseal_errmsg());
    char *text = tseal_policy_explain(p);
    cr_assert_not_null(text);
    unsigned char fp[32];
    unsigned fl = 32;
    cr_assert_eq(X509_digest(ROOT->cert, EVP_sha256(), fp, &fl), 1);
    char fhex[65];
    for (int i = 0; i < 32; i++) sprintf(fhex + 2 * i, "%02x", fp[i]);
    const char *want[] = {
        "trusted CAs (X.509 signers):\n  bank-pki  root CN=Bank Root,O=tseal test",
        fmt("SHA-256 fingerprint %s  not after: 2035-12-30T00:00:00Z", fhex),
        "allowed identities: email:release@bank.example, subject:CN=bank-release-*",
        fmt("CRL files: (revocation checked for every certificate of a chain)\n  root.crl.pem  "
            "(%s)",
            P("root.crl.pem")),
        "allowed suites:\n  fips-p256-aes256gcm-sha256\n"};
    for (unsigned i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert_not_null(strstr(text, want[i]), "explain lacks \"%s\":\n%s", want[i], text);
    free(text);
    tseal_policy_free(p);
    p = parse_ok(pol(NULL));
    text = tseal_policy_explain(p);
    cr_assert_not_null(strstr(text, "trusted CAs (X.509 signers): none"), "%s", text);
    cr_assert_null(strstr(text, "CRL files"), "%s", text);
    free(text);
    tseal_policy_free(p);
}

Test(policy_x509_tools, sign_a_policy_with_crl_files) {
    X509_CRL *crl = make_crl(ROOT, NULL, 0, NOW - DAY, NOW + DAY);
    pki_write_crl(P("root.crl.pem"), crl);
    X509_CRL_free(crl);
    const char *bare = P("policy.json");
    tu_write_str(bare, xpol(", \"crl_files\": [\"root.crl.pem\"]"));
    cr_assert_eq(tseal_policy_sign(bare, K[POLKEY], P("policy.signed.json"), 0), 0, "%s",
                 tseal_errmsg());
    tseal_policy *p = NULL;
    cr_assert_eq(tseal_policy_load(P("policy.signed.json"), &K[POLKEY]->pub, 1, 1, &p), 0, "%s",
                 tseal_errmsg());
    cr_assert_eq(p->n_crls, 1);
    tseal_policy_free(p);
    /* written elsewhere, its relative CRL would not be found: refused */
    cr_assert_eq(mkdir(P("out"), 0700), 0);
    tu_assert_err(tseal_policy_sign(bare, K[POLKEY], P("out/policy.signed.json"), 0), TSEAL_E_IO,
                  "would not load where it is written");
    cr_assert_not(tu_exists(P("out/policy.signed.json")));
}
