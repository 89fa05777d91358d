/*
 * fuzz_x509chain.c - tseal_x509_chain_decode over arbitrary bytes (the certificate chain of a
 * container's signature block), then tseal_x509_leaf_pubkey and tseal_x509_verify against two
 * fixed trust stores built once: the test root "CN=Fuzz Root,O=tseal test" alone, and the
 * same root with the CRLs of the root and of its intermediate. Whatever decodes must
 * re-encode to the very same bytes; whatever verifies must give a well-formed identity.
 * The seeds (fuzz/corpus/x509chain/) were made with tests/pki_testutil.h: a valid
 * leaf + intermediate, a leaf alone, revoked, expired, serverAuth-only and P-384 leaves, a
 * leaf of the root, the chain with the root, and eight certificates.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tseal_fips.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

#define AT 1767225600 /* 2026-01-01: inside every seed certificate's validity but one */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char root_pem[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBpjCCAUugAwIBAgICEAAwCgYIKoZIzj0EAwIwKTETMBEGA1UECgwKdHNlYWwg\n"
                               "dGVzdDESMBAGA1UEAwwJRnV6eiBSb290MB4XDTI1MDEwMTAwMDAwMFoXDTQ1MTIy\n"
                               "NzAwMDAwMFowKTETMBEGA1UECgwKdHNlYWwgdGVzdDESMBAGA1UEAwwJRnV6eiBS\n"
                               "b290MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEoIQPukunL3s5DcrG95thBh2W\n"
                               "LMSVvMknZSBSrtpYqhZELqOaWDLws/UzufCT20GF9KucklI93LiF8URwnKRYmaNj\n"
                               "MGEwHQYDVR0OBBYEFHDTJ1f2MnUFHgNJyBJCYTS06xgUMB8GA1UdIwQYMBaAFHDT\n"
                               "J1f2MnUFHgNJyBJCYTS06xgUMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQD\n"
                               "AgEGMAoGCCqGSM49BAMCA0kAMEYCIQCwyhvlcX3gly9DK3HfJu1JY01+cyqCfOmq\n"
                               "2PcV70JU6AIhAOVeRzuFQI7fKhVUd3nC0D57IgJq2Utje6tvuwRVWfiE\n"
                               "-----END CERTIFICATE-----\n";

static const char crls_pem[] = "-----BEGIN X509 CRL-----\n"
                               "MIHVMH0CAQEwCgYIKoZIzj0EAwIwKTETMBEGA1UECgwKdHNlYWwgdGVzdDESMBAG\n"
                               "A1UEAwwJRnV6eiBSb290Fw0yNTEyMzEwMDAwMDBaFw00NTEyMjcwMDAwMDBaoCMw\n"
                               "ITAfBgNVHSMEGDAWgBRw0ydX9jJ1BR4DScgSQmE0tOsYFDAKBggqhkjOPQQDAgNI\n"
                               "ADBFAiEAhQ/tWs5pxB/FwbdpQ9wo5uNTJIsjOrAqwy/55sv73X4CIA8n5JWafLqk\n"
                               "V9uHZOp8Rur0HhfLUD7u+3T9N6PCRk9w\n"
                               "-----END X509 CRL-----\n"
                               "-----BEGIN X509 CRL-----\n"
                               "MIH1MIGcAgEBMAoGCCqGSM49BAMCMDExEzARBgNVBAoMCnRzZWFsIHRlc3QxGjAY\n"
                               "BgNVBAMMEUZ1enogSW50ZXJtZWRpYXRlFw0yNTEyMzEwMDAwMDBaFw00MDEyMjgw\n"
                               "MDAwMDBaMBUwEwICEAMXDTI1MTIzMTAwMDAwMFqgIzAhMB8GA1UdIwQYMBaAFHcx\n"
                               "BjPI3fylZcr4a6VNi8C0gGEmMAoGCCqGSM49BAMCA0gAMEUCIQDWB0QFLMSSOEbL\n"
                               "f9MFDxexPHE45dsic+KMut6hwjfC8QIgN0RKcO5UH7iO3GAPVRnpn2uMJeSGD5UZ\n"
                               "pJ/YrFZPXCM=\n"
                               "-----END X509 CRL-----\n";

static tseal_x509_trust *trust_plain, *trust_crl;

static void init_once(void) {
    if (trust_plain) return;
    CHECK(tseal_x509_trust_new(&trust_plain) == 0);
    CHECK(tseal_x509_trust_add_ca_pem(trust_plain, root_pem, sizeof root_pem - 1, "root") == 0);
    CHECK(tseal_x509_trust_new(&trust_crl) == 0);
    CHECK(tseal_x509_trust_add_ca_pem(trust_crl, root_pem, sizeof root_pem - 1, "root") == 0);
    CHECK(tseal_x509_trust_add_crl_pem(trust_crl, crls_pem, sizeof crls_pem - 1, "crls") == 0);
}

static void check_identity(const tseal_x509_identity *id) {
    CHECK(memchr(id->subject, 0, sizeof id->subject) != NULL);
    CHECK(memchr(id->common_name, 0, sizeof id->common_name) != NULL);
    CHECK(memchr(id->issuer_root, 0, sizeof id->issuer_root) != NULL);
    CHECK(strcmp(id->issuer_root, "CN=Fuzz Root,O=tseal test") == 0);
    CHECK(id->n_sans <= 16);
    for (unsigned i = 0; i < id->n_sans; i++) {
        CHECK(memchr(id->sans[i], 0, sizeof id->sans[i]) != NULL);
        CHECK(strncmp(id->sans[i], "email:", 6) == 0 || strncmp(id->sans[i], "URI:", 4) == 0 ||
              strncmp(id->sans[i], "DNS:", 4) == 0);
    }
    if (id->common_name[0]) CHECK(tseal_x509_identity_matches(id, "subject:*") == 1);
    (void)tseal_x509_identity_matches(id, "email:*@fuzz.example");
    (void)tseal_x509_identity_matches(id, "subject:CN=*,O=tseal test");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_once();
    tseal_x509_chain *c = NULL;
    if (tseal_x509_chain_decode(data, size, "fuzz", &c) != 0) {
        CHECK(c == NULL);
        return 0;
    }
    uint8_t *der = NULL;
    size_t len = 0;
    CHECK(tseal_x509_chain_encode(c, &der, &len) == 0);
    CHECK(len == size && memcmp(der, data, size) == 0);
    free(der);

    uint8_t pk[TSEAL_P256_PK_BYTES];
    if (tseal_x509_leaf_pubkey(c, pk) == 0) CHECK(pk[0] == 0x04);

    tseal_x509_trust *stores[2] = {trust_plain, trust_crl};
    for (int i = 0; i < 2; i++) {
        tseal_x509_identity id;
        memset(&id, 0xA5, sizeof id);
        if (tseal_x509_verify(stores[i], c, AT, &id) == 0) {
            check_identity(&id);
        } else {
            CHECK(id.subject[0] == 0 && id.n_sans == 0);
        }
    }
    tseal_x509_chain_free(c);
    return 0;
}
