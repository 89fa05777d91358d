/*
 * fuzz_policy.c - the policy reader over arbitrary bytes (files are touched only when an input
 * lists crl_files, which are then read relative to the current folder, like a policy over
 * memory): tseal_policy_parse without a signature requirement, then with one (the fixed "site"
 * policy key below). Whatever is accepted must explain itself and go through the gate with a fixed
 * input (the fixed "vendor" and "cosigner" keys, with and without a rollback state), which
 * must allow or deny consistently: 0 with no reason, TSEAL_E_DENIED with at least one.
 * The seed corpus (fuzz/corpus/policy) trusts and is signed by these same keys. The gate input
 * has no X.509 signers: certificate chains are fuzzed by fuzz_x509chain, and the gate's X.509
 * path by tests/test_policy.c (policy_x509_gate).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

#define NOW 1767225600ll /* 2026-01-01T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed keys: seed bytes all 0xA5 (vendor), 0x3C (cosigner), 0x5A (site policy key). */
static tseal_seckey *keys[3];

static void init_keys(void) {
    static const uint8_t seeds[3] = {0xA5, 0x3C, 0x5A};
    static const char *const names[3] = {"vendor", "cosigner", "site"};
    for (int i = 0; i < 3; i++) {
        if (keys[i]) continue;
        tseal_rng r;
        memset(&r, 0, sizeof r);
        memset(r.seed, seeds[i], sizeof r.seed);
        CHECK(tseal_keygen(TSEAL_KEY_SIGN, names[i], &r, &keys[i]) == 0);
    }
}

static void run_gate(const tseal_policy *p, const tseal_state *st) {
    uint8_t pks[2][TSEAL_PK_BYTES];
    memcpy(pks[0], keys[0]->pub.pk, TSEAL_PK_BYTES);
    memcpy(pks[1], keys[1]->pub.pk, TSEAL_PK_BYTES);
    tseal_attestation att;
    memset(&att, 0, sizeof att);
    memcpy(att.auditor_key_id, keys[2]->pub.key_id, TSEAL_KEY_ID_BYTES);
    memset(att.subject_digest, 0xAB, TSEAL_HASH_BYTES);
    att.passed = 1;
    tseal_gate_input in;
    memset(&in, 0, sizeof in);
    in.model_id = "acme/credit-7b";
    in.version = 12;
    in.created = NOW - 3600;
    in.expires = NOW + 86400;
    in.suite_name = TSEAL_SUITE_NAME_V1;
    in.header_bytes = 4096;
    in.recipients = 2;
    in.tensors = 10;
    in.largest_tensor_bytes = 1u << 20;
    memset(in.artifact_digest, 0xAB, TSEAL_HASH_BYTES);
    in.signer_pks = (const uint8_t(*)[TSEAL_PK_BYTES])pks;
    in.n_signers = 2;
    in.attestations = &att;
    in.n_attestations = 1;
    tseal_gate_result res;
    int rc = tseal_policy_gate(p, &in, st, NOW, &res);
    CHECK(rc == 0 || rc == TSEAL_E_DENIED);
    CHECK(rc == 0 ? res.n_reasons == 0 : res.n_reasons > 0);
    CHECK(res.n_counted <= 2);
    for (unsigned i = 0; i < res.n_reasons; i++) CHECK(res.reasons[i] && res.reasons[i][0]);
    tseal_gate_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_keys();
    tseal_policy *p = NULL;
    if (tseal_policy_parse(data, size, "fuzz.json", NULL, 0, 0, &p) == 0) {
        CHECK(p && tseal_policy_id(p) && tseal_policy_id(p)[0]);
        char *text = tseal_policy_explain(p);
        CHECK(text != NULL);
        free(text);
        run_gate(p, NULL);
        static const char state_json[] =
            "{\"tseal_state\": 1, \"accepted\": [{\"model_id\": \"acme/credit-7b\", "
            "\"signer_key_id\": \"00000000000000000000000000000000\", \"version\": 13}]}";
        tseal_state *st = NULL;
        CHECK(tseal_state_parse((const uint8_t *)state_json, sizeof state_json - 1, "s", &st) == 0);
        /* a state naming the vendor key at version 13 */
        memcpy(st->e[0].signer, keys[0]->pub.key_id, TSEAL_KEY_ID_BYTES);
        run_gate(p, st);
        tseal_state_free(st);
        tseal_policy_free(p);
    } else {
        CHECK(p == NULL);
    }
    p = NULL;
    if (tseal_policy_parse(data, size, "fuzz.json", &keys[2]->pub, 1, 1, &p) == 0) {
        CHECK(tseal_policy_is_signed(p));
        run_gate(p, NULL);
        tseal_policy_free(p);
    } else {
        CHECK(p == NULL);
    }
    return 0;
}
