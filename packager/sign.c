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

int tseal_sign_add(const char *path, const char *sign_key, const char *passphrase_file,
                   const char *out) {
    if (!out) out = path;
    tseal_container *c = NULL;
    tseal_seckey *sk = NULL;
    char *pass = NULL;
    size_t pass_len = 0;
    int r = tseal_container_open(path, &c);
    if (!r) r = tseal_container_check_signatures(c, NULL, 0, NULL); /* never add to a broken set */
    if (!r && passphrase_file) r = tseal_passphrase_read(passphrase_file, &pass, &pass_len);
    if (!r) r = tseal_seckey_read(sign_key, pass, pass_len, &sk);
    tseal_secure_free(pass);
    if (!r && sk->pub.kind != TSEAL_KEY_SIGN)
        r = tseal_err(TSEAL_E_INVAL, "%s: not a signing key", sign_key);
    if (!r && c->n_sigs >= TSEAL_MAX_SIGNATURES)
        r = tseal_err(TSEAL_E_LIMIT, "%s: already %u signatures (the most a container holds)", path,
                      c->n_sigs);
    for (uint32_t i = 0; !r && i < c->n_sigs; i++)
        if (memcmp(c->sigs[i].key_id, sk->pub.key_id, TSEAL_KEY_ID_BYTES) == 0)
            r = tseal_err(TSEAL_E_INVAL, "%s: already signed by this key", path);
    uint32_t n = r ? 0 : c->n_sigs + 1, sblen = 4 + n * TSEAL_SIGENT_BYTES;
    uint8_t *sb = r ? NULL : calloc(1, sblen), prefix[12], len4[4];
    if (!r && !sb) r = tseal_err(TSEAL_E_NOMEM, "out of memory");
    if (!r) {
        sb[0] = (uint8_t)n;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t *e = sb + 4 + i * TSEAL_SIGENT_BYTES;
            e[0] = TSEAL_ALG_ED25519;
            if (i < c->n_sigs) {
                memcpy(e + 4, c->sigs[i].key_id, TSEAL_KEY_ID_BYTES);
                memcpy(e + 20, c->sigs[i].pk, TSEAL_PK_BYTES);
                memcpy(e + 52, c->sigs[i].sig, TSEAL_SIG_BYTES);
            } else {
                memcpy(e + 4, sk->pub.key_id, TSEAL_KEY_ID_BYTES);
                memcpy(e + 20, sk->pub.pk, TSEAL_PK_BYTES);
                r = tseal_sign(sk, TSEAL_SIG_TYPE_HEADER, c->header_digest, e + 52);
            }
        }
    }
    tseal_atomic_file af = {.fd = -1};
    if (!r) r = tseal_atomic_open(&af, out, 0644);
    if (!r) {
        memcpy(prefix, TSEAL_MAGIC, TSEAL_MAGIC_BYTES);
        tseal_store_le32(prefix + 8, (uint32_t)c->header_len);
        tseal_store_le32(len4, sblen);
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
    tseal_seckey_free(sk);
    tseal_container_close(c);
    return r;
}
