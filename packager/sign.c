/*
 * sign.c - `tseal sign --add`: append a signature to a container's signature block (for a
 * second signer such as an internal validation team, toward a policy's k-of-n threshold).
 * The signatures cover the public header only, so the header and payload bytes stay as they
 * are; the file is rewritten through a temporary file and renamed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "container.h"
#include "internal.h"

static int copy_range(int in, int out, uint64_t off, uint64_t len, const char *path) {
    uint8_t *buf = malloc(1 << 20);
    if (!buf) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int r = 0;
    for (uint64_t done = 0; done < len && !r; done += 1 << 20) {
        size_t k = len - done < (1u << 20) ? (size_t)(len - done) : 1u << 20;
        r = tseal_pread_full(in, buf, k, off + done, path);
        if (!r) r = tseal_write_full(out, buf, k, path);
    }
    free(buf);
    return r;
}

/* Serialize signature entry `s` into `e` (it has sigent_bytes(s) bytes). */
static uint64_t sigent_bytes(const tseal_sigent *s) {
    return s->alg == TSEAL_ALG_SIG_ECDSA_P256 ? TSEAL_SIGENT_ECDSA_FIXED + (uint64_t)s->chain_len
                                              : TSEAL_SIGENT_BYTES;
}

static void put_sigent(uint8_t *e, const tseal_sigent *s) {
    memset(e, 0, sigent_bytes(s));
    e[0] = s->alg;
    memcpy(e + 4, s->key_id, TSEAL_KEY_ID_BYTES);
    if (s->alg == TSEAL_ALG_SIG_ECDSA_P256) {
        memcpy(e + 20, s->sig, TSEAL_ECDSA_SIG_BYTES);
        tseal_store_le32(e + 84, s->chain_len);
        memcpy(e + TSEAL_SIGENT_ECDSA_FIXED, s->chain_der, s->chain_len);
    } else {
        memcpy(e + 20, s->pk, TSEAL_PK_BYTES);
        memcpy(e + 52, s->sig, TSEAL_SIG_BYTES);
    }
}

/* The new signer: an Ed25519 tseal key (suite 1) or a P-256 PEM key with its certificate
 * (suite 2); its signature entry is filled except for the signature itself. */
static int new_signer(const tseal_container *c, const char *key, const char *cert,
                      const char *chain, const char *passfile, tseal_seckey **sk, tseal_sigent *e) {
    char *pass = NULL;
    size_t pass_len = 0;
    tseal_x509_chain *ch = NULL;
    size_t len = 0;
    int fips = c->h.suite == TSEAL_SUITE_FIPS;
    int r = passfile ? tseal_passphrase_read(passfile, &pass, &pass_len) : 0;
    if (!r && fips && !cert)
        r = tseal_err(TSEAL_E_INVAL,
                      "a FIPS-suite container is signed with a certificate (--sign-cert)");
    if (!r && !fips && cert)
        r = tseal_err(TSEAL_E_INVAL, "%s: certificates only sign FIPS-suite containers", c->path);
    if (!r && fips) r = tseal_p256_seckey_read_pem(key, pass, pass_len, TSEAL_KEY_SIGN, sk);
    if (!r && !fips) r = tseal_seckey_read(key, pass, pass_len, sk);
    tseal_secure_free(pass);
    if (!r && (*sk)->pub.kind != TSEAL_KEY_SIGN)
        r = tseal_err(TSEAL_E_INVAL, "%s: not a signing key", key);
    memset(e, 0, sizeof *e);
    if (!r && fips) {
        r = tseal_x509_chain_load(cert, chain, &ch);
        uint8_t cert_pk[TSEAL_P256_PK_BYTES]; /* not tseal_x509_leaf_matches: it hides errors */
        if (!r && (r = tseal_x509_leaf_pubkey(ch, cert_pk)) != 0) tseal_err_context("%s: ", cert);
        if (!r && memcmp(cert_pk, (*sk)->pub.pk, sizeof cert_pk) != 0)
            r = tseal_err(TSEAL_E_INVAL, "%s: the certificate is not for the key %s", cert, key);
        if (!r) r = tseal_x509_chain_encode(ch, &e->chain_der, &len);
        e->chain_len = (uint32_t)len;
        tseal_x509_chain_free(ch);
        e->alg = TSEAL_ALG_SIG_ECDSA_P256;
    } else if (!r) {
        e->alg = TSEAL_ALG_ED25519;
        memcpy(e->pk, (*sk)->pub.pk, TSEAL_PK_BYTES);
    }
    if (!r) memcpy(e->key_id, (*sk)->pub.key_id, TSEAL_KEY_ID_BYTES);
    return r;
}

int tseal_sign_add_cert(const char *path, const char *sign_key, const char *sign_cert,
                        const char *sign_chain, const char *passphrase_file, const char *out) {
    if (!out) out = path;
    tseal_container *c = NULL;
    tseal_seckey *sk = NULL;
    tseal_sigent add = {0};
    int r = tseal_container_open(path, &c);
    if (!r) r = tseal_container_check_signatures(c, NULL, 0, NULL); /* never add to a broken set */
    if (!r) r = new_signer(c, sign_key, sign_cert, sign_chain, passphrase_file, &sk, &add);
    if (!r && c->n_sigs >= TSEAL_MAX_SIGNATURES)
        r = tseal_err(TSEAL_E_LIMIT, "%s: already %u signatures (the most a container holds)", path,
                      c->n_sigs);
    for (uint32_t i = 0; !r && i < c->n_sigs; i++)
        if (memcmp(c->sigs[i].key_id, add.key_id, TSEAL_KEY_ID_BYTES) == 0)
            r = tseal_err(TSEAL_E_INVAL, "%s: already signed by this key", path);
    if (!r)
        r = add.alg == TSEAL_ALG_SIG_ECDSA_P256
                ? tseal_p256_sign(sk, TSEAL_SIG_TYPE_HEADER, c->header_digest, add.sig)
                : tseal_sign(sk, TSEAL_SIG_TYPE_HEADER, c->header_digest, add.sig);
    uint64_t sblen = 4 + (r ? 0 : sigent_bytes(&add));
    for (uint32_t i = 0; !r && i < c->n_sigs; i++) sblen += sigent_bytes(&c->sigs[i]);
    if (!r && sblen > TSEAL_SIGBLOCK_MAX)
        r = tseal_err(TSEAL_E_LIMIT, "%s: signature block too large", path);
    uint8_t *sb = r ? NULL : calloc(1, sblen), prefix[12], len4[4];
    if (!r && !sb) r = tseal_err(TSEAL_E_NOMEM, "out of memory");
    if (!r) {
        sb[0] = (uint8_t)(c->n_sigs + 1);
        uint64_t off = 4;
        for (uint32_t i = 0; i < c->n_sigs; i++) {
            put_sigent(sb + off, &c->sigs[i]);
            off += sigent_bytes(&c->sigs[i]);
        }
        put_sigent(sb + off, &add);
    }
    tseal_atomic_file af = {.fd = -1};
    if (!r) r = tseal_atomic_open(&af, out, 0644);
    if (!r) {
        memcpy(prefix, TSEAL_MAGIC, TSEAL_MAGIC_BYTES);
        tseal_store_le32(prefix + 8, (uint32_t)c->header_len);
        tseal_store_le32(len4, (uint32_t)sblen);
        r = tseal_write_full(af.fd, prefix, sizeof prefix, out);
        if (!r) r = tseal_write_full(af.fd, c->header_bytes, c->header_len, out);
        if (!r) r = tseal_write_full(af.fd, len4, 4, out);
        if (!r) r = tseal_write_full(af.fd, sb, sblen, out);
        if (!r) r = copy_range(c->fd, af.fd, c->payload_start, c->h.payload_bytes, path);
        if (!r)
            r = tseal_atomic_commit(&af);
        else
            tseal_atomic_abort(&af);
    }
    free(sb);
    free(add.chain_der);
    tseal_seckey_free(sk);
    tseal_container_close(c);
    return r;
}

int tseal_sign_add(const char *path, const char *sign_key, const char *passphrase_file,
                   const char *out) {
    return tseal_sign_add_cert(path, sign_key, NULL, NULL, passphrase_file, out);
}
