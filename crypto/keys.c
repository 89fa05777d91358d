/*
 * keys.c - key ids, key generation, public key files (strict JSON), secret key files (fixed
 * binary layout, optionally sealed with Argon2id + XSalsa20-Poly1305) and passphrase files.
 * Formats: docs/FORMAT.md section 6.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "crypto_internal.h"
#include "internal.h"

#define KEY_ID_DOMAIN "tseal key id v1"

/* ---- names, kinds, algorithms ---------------------------------------------------------- */

const char *tseal_key_name_problem(const char *name, size_t len) {
    if (len == 0) return "is empty";
    if (len > TSEAL_KEY_NAME_MAX - 1) return "is longer than 63 bytes";
    const uint8_t *s = (const uint8_t *)name;
    if (!tseal_utf8_valid(s, len)) return "is not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7F) return "has a control character";
        if (s[i] == 0xC2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
            return "has a control character"; /* C1: U+0080..U+009F */
    }
    return NULL;
}

static const char *kind_name(int kind) {
    return kind == TSEAL_KEY_SIGN ? "sign" : kind == TSEAL_KEY_RECIPIENT ? "recipient" : "?";
}

static const char *alg_name(int alg) {
    return alg == TSEAL_ALG_ED25519 ? "ed25519" : alg == TSEAL_ALG_X25519 ? "x25519" : "?";
}

static uint8_t kind_alg(int kind) {
    return kind == TSEAL_KEY_SIGN ? TSEAL_ALG_ED25519 : TSEAL_ALG_X25519;
}

static size_t kind_sk_bytes(int kind) {
    return kind == TSEAL_KEY_SIGN ? TSEAL_SIGN_SK_BYTES : TSEAL_X25519_SK_BYTES;
}

/* ---- key ids and public key validity --------------------------------------------------- */

int tseal_key_id_len(uint8_t alg, const uint8_t *pk, size_t pk_len,
                     uint8_t id[TSEAL_KEY_ID_BYTES]) {
    uint8_t buf[sizeof KEY_ID_DOMAIN - 1 + 1 + TSEAL_PK_MAX_BYTES], h[TSEAL_HASH_BYTES];
    if (pk_len > TSEAL_PK_MAX_BYTES) {
        memset(id, 0, TSEAL_KEY_ID_BYTES);
        return tseal_err(TSEAL_E_INTERNAL, "key id of a %zu-byte public key", pk_len);
    }
    memcpy(buf, KEY_ID_DOMAIN, sizeof KEY_ID_DOMAIN - 1);
    buf[sizeof KEY_ID_DOMAIN - 1] = alg;
    memcpy(buf + sizeof KEY_ID_DOMAIN, pk, pk_len);
    int rc = tseal_sha256(buf, sizeof KEY_ID_DOMAIN + pk_len, h);
    if (rc) {
        memset(id, 0, TSEAL_KEY_ID_BYTES);
        return rc;
    }
    memcpy(id, h, TSEAL_KEY_ID_BYTES);
    return 0;
}

int tseal_key_id_checked(uint8_t alg, const uint8_t pk[TSEAL_PK_BYTES],
                         uint8_t id[TSEAL_KEY_ID_BYTES]) {
    return tseal_key_id_len(alg, pk, TSEAL_PK_BYTES, id);
}

void tseal_key_id(uint8_t alg, const uint8_t pk[TSEAL_PK_BYTES], uint8_t id[TSEAL_KEY_ID_BYTES]) {
    /* only fails when OpenSSL cannot allocate: the all-zero id then matches no real key */
    (void)tseal_key_id_checked(alg, pk, id);
}

void tseal_key_id_hex(const uint8_t id[TSEAL_KEY_ID_BYTES], char out[2 * TSEAL_KEY_ID_BYTES + 1]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < TSEAL_KEY_ID_BYTES; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * TSEAL_KEY_ID_BYTES] = 0;
}

static const char *pk_problem(uint8_t alg, const uint8_t pk[TSEAL_PK_BYTES]) {
    if (alg == TSEAL_ALG_ED25519) {
        /* canonical encoding, on the curve, in the prime-order subgroup, not of small order */
        if (!crypto_core_ed25519_is_valid_point(pk)) return "is not a valid Ed25519 public key";
        return NULL;
    }
    if (alg == TSEAL_ALG_X25519) {
        /* Clamped scalars are multiples of 8: the product is zero exactly for low-order points */
        static const uint8_t probe[crypto_scalarmult_SCALARBYTES] = {
            0x48, 0x6f, 0x6c, 0x61, 0x20, 0x74, 0x73, 0x65, 0x61, 0x6c, 0x20,
            0x6b, 0x65, 0x79, 0x20, 0x63, 0x68, 0x65, 0x63, 0x6b, 0x20, 0x73,
            0x63, 0x61, 0x6c, 0x61, 0x72, 0x21, 0x21, 0x21, 0x21, 0x41};
        uint8_t q[crypto_scalarmult_BYTES];
        int r = crypto_scalarmult(q, probe, pk);
        sodium_memzero(q, sizeof q);
        return r != 0 ? "is a low-order X25519 point" : NULL;
    }
    return "has an unknown algorithm";
}

int tseal_pk_check(uint8_t alg, const uint8_t pk[TSEAL_PK_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    const char *p = pk_problem(alg, pk);
    return p ? tseal_err(TSEAL_E_CORRUPT, "public key %s", p) : 0;
}

/* Every invariant of a tseal_pubkey; failures are recorded with `code`. */
static int pubkey_consistent(const tseal_pubkey *pk, int code) {
    if (pk->kind != TSEAL_KEY_SIGN && pk->kind != TSEAL_KEY_RECIPIENT)
        return tseal_err(code, "unknown key kind %d", (int)pk->kind);
    if (pk->alg != kind_alg(pk->kind))
        return tseal_err(code, "kind \"%s\" needs alg \"%s\", not %u", kind_name(pk->kind),
                         alg_name(kind_alg(pk->kind)), pk->alg);
    size_t nlen = strnlen(pk->name, TSEAL_KEY_NAME_MAX);
    const char *p = tseal_key_name_problem(pk->name, nlen);
    if (p) return tseal_err(code, "key name %s", p);
    if ((p = pk_problem(pk->alg, pk->pk)) != NULL) return tseal_err(code, "key %s", p);
    uint8_t id[TSEAL_KEY_ID_BYTES];
    int rc = tseal_key_id_checked(pk->alg, pk->pk, id);
    if (rc) return rc;
    if (memcmp(id, pk->key_id, sizeof id) != 0)
        return tseal_err(code, "key_id does not match the key");
    return 0;
}

/* ---- key generation -------------------------------------------------------------------- */

static void x25519_clamp(uint8_t sk[TSEAL_X25519_SK_BYTES]) {
    sk[0] &= 248;
    sk[31] &= 127;
    sk[31] |= 64;
}

static bool x25519_clamped(const uint8_t sk[TSEAL_X25519_SK_BYTES]) {
    return (sk[0] & 7) == 0 && (sk[31] & 0xC0) == 0x40;
}

static tseal_seckey *seckey_new(tseal_key_kind kind) {
    tseal_seckey *k = calloc(1, sizeof *k);
    if (!k) {
        tseal_err(TSEAL_E_NOMEM, "out of memory");
        return NULL;
    }
    k->sk = tseal_secure_alloc(kind_sk_bytes(kind));
    if (!k->sk) {
        free(k);
        return NULL;
    }
    k->pub.kind = kind;
    k->pub.alg = kind_alg(kind);
    return k;
}

void tseal_seckey_free(tseal_seckey *sk) {
    if (!sk) return;
    tseal_secure_free(sk->sk);
    sodium_memzero(sk, sizeof *sk);
    free(sk);
}

int tseal_keygen(tseal_key_kind kind, const char *name, tseal_rng *rng, tseal_seckey **out) {
    *out = NULL;
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (kind != TSEAL_KEY_SIGN && kind != TSEAL_KEY_RECIPIENT)
        return tseal_err(TSEAL_E_INVAL, "unknown key kind %d", (int)kind);
    if (!name) return tseal_err(TSEAL_E_INVAL, "a key needs a name");
    size_t nlen = strnlen(name, TSEAL_KEY_NAME_MAX);
    const char *p = tseal_key_name_problem(name, nlen);
    if (p) return tseal_err(TSEAL_E_INVAL, "key name %s", p);
    tseal_seckey *k = seckey_new(kind);
    if (!k) return TSEAL_E_NOMEM;
    if (kind == TSEAL_KEY_SIGN) {
        uint8_t *seed = tseal_secure_alloc(crypto_sign_SEEDBYTES);
        if (!seed) {
            tseal_seckey_free(k);
            return TSEAL_E_NOMEM;
        }
        tseal_random(rng, seed, crypto_sign_SEEDBYTES);
        if (crypto_sign_seed_keypair(k->pub.pk, k->sk, seed) != 0)
            rc = tseal_err(TSEAL_E_CRYPTO, "Ed25519 key generation failed");
        tseal_secure_free(seed);
    } else {
        /* stored clamped, so that the stored bytes are the scalar actually used */
        tseal_random(rng, k->sk, TSEAL_X25519_SK_BYTES);
        x25519_clamp(k->sk);
        if (crypto_scalarmult_base(k->pub.pk, k->sk) != 0)
            rc = tseal_err(TSEAL_E_CRYPTO, "X25519 key generation failed");
    }
    memcpy(k->pub.name, name, nlen);
    if (!rc) rc = tseal_key_id_checked(k->pub.alg, k->pub.pk, k->pub.key_id);
    if (rc) {
        tseal_seckey_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* The public key a secret derives (and for Ed25519 the full 64-byte secret it implies);
 * 0 if sk->pub.pk is it. X25519 secrets must be stored clamped. */
static int secret_matches(const tseal_seckey *k) {
    int rc = 0;
    uint8_t pk[TSEAL_PK_BYTES];
    if (k->pub.kind == TSEAL_KEY_SIGN) {
        uint8_t *sk2 = tseal_secure_alloc(TSEAL_SIGN_SK_BYTES);
        if (!sk2) return TSEAL_E_NOMEM;
        /* libsodium's secret key is seed || pk: rebuild it from the seed */
        if (crypto_sign_seed_keypair(pk, sk2, k->sk) != 0)
            rc = tseal_err(TSEAL_E_CRYPTO, "Ed25519 key derivation failed");
        else if (!tseal_equal(pk, k->pub.pk, sizeof pk) ||
                 !tseal_equal(sk2, k->sk, TSEAL_SIGN_SK_BYTES))
            rc = tseal_err(TSEAL_E_CORRUPT, "public key does not match the secret key");
        tseal_secure_free(sk2);
    } else {
        if (!x25519_clamped(k->sk))
            rc = tseal_err(TSEAL_E_CORRUPT, "X25519 secret key is not clamped");
        else if (crypto_scalarmult_base(pk, k->sk) != 0)
            rc = tseal_err(TSEAL_E_CRYPTO, "X25519 key derivation failed");
        else if (!tseal_equal(pk, k->pub.pk, sizeof pk))
            rc = tseal_err(TSEAL_E_CORRUPT, "public key does not match the secret key");
    }
    return rc;
}

/* ---- files ----------------------------------------------------------------------------- */

/*
 * Reads at most `cap` bytes of `path` into buf; *got = bytes read. A file holding more than
 * `cap` bytes gives *got == cap (callers pass their limit + 1 to detect that).
 */
/* Read at most `cap` bytes; *mode receives the file's permission bits. */
static int read_capped(const char *path, uint8_t *buf, size_t cap, size_t *got, unsigned *mode) {
    *got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return tseal_err(errno == ENOENT ? TSEAL_E_NOTFOUND : TSEAL_E_IO, "%s: cannot open: %s",
                         path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tseal_err(TSEAL_E_IO, "%s: stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return tseal_err(TSEAL_E_INVAL, "%s: is a directory", path);
    }
    if (mode) *mode = (unsigned)(st.st_mode & 07777);
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return tseal_err(TSEAL_E_IO, "%s: read: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    *got = n;
    return 0;
}

static int write_file(const char *path, const void *data, size_t len, unsigned mode, int force) {
    struct stat st;
    if (!force && lstat(path, &st) == 0) return tseal_exists_error(path);
    tseal_atomic_file f;
    int rc = tseal_atomic_open(&f, path, mode);
    if (rc) return rc;
    rc = tseal_write_full(f.fd, data, len, path);
    if (rc) {
        tseal_atomic_abort(&f);
        return rc;
    }
    return force ? tseal_atomic_commit(&f) : tseal_atomic_commit_new(&f, path);
}

/* The two file helpers above, for the PEM key files of crypto/fips.c. */
int tseal_key_file_read(const char *path, uint8_t *buf, size_t cap, size_t *got, unsigned *mode) {
    return read_capped(path, buf, cap, got, mode);
}

int tseal_key_file_write(const char *path, const void *data, size_t len, unsigned mode, int force) {
    return write_file(path, data, len, mode, force);
}

/* ---- public key files ------------------------------------------------------------------ */

static const char *const pk_members[] = {"tseal",  "version", "kind", "alg",
                                         "key_id", "name",    "key"};
enum { M_TSEAL, M_VERSION, M_KIND, M_ALG, M_KEY_ID, M_NAME, M_KEY, M_COUNT };

#define B64_KEY_LEN (sodium_base64_ENCODED_LEN(TSEAL_PK_BYTES, sodium_base64_VARIANT_ORIGINAL))

int tseal_pubkey_encode(const tseal_pubkey *pk, char **json, size_t *len) {
    *json = NULL;
    if (len) *len = 0;
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if ((rc = pubkey_consistent(pk, TSEAL_E_INVAL)) != 0) return rc;
    char idhex[2 * TSEAL_KEY_ID_BYTES + 1], b64[B64_KEY_LEN], name[2 * TSEAL_KEY_NAME_MAX];
    tseal_key_id_hex(pk->key_id, idhex);
    sodium_bin2base64(b64, sizeof b64, pk->pk, TSEAL_PK_BYTES, sodium_base64_VARIANT_ORIGINAL);
    size_t k = 0; /* the name has no control character: only " and \ need escaping */
    for (const char *c = pk->name; *c; c++) {
        if (*c == '"' || *c == '\\') name[k++] = '\\';
        name[k++] = *c;
    }
    name[k] = 0;
    size_t cap = 256 + sizeof name;
    char *s = malloc(cap);
    if (!s) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int n = snprintf(s, cap,
                     "{\n  \"tseal\": \"public-key\",\n  \"version\": 1,\n  \"kind\": \"%s\",\n"
                     "  \"alg\": \"%s\",\n  \"key_id\": \"%s\",\n  \"name\": \"%s\",\n"
                     "  \"key\": \"%s\"\n}\n",
                     kind_name(pk->kind), alg_name(pk->alg), idhex, name, b64);
    if (n < 0 || (size_t)n >= cap) {
        free(s);
        return tseal_err(TSEAL_E_INTERNAL, "public key JSON does not fit");
    }
    *json = s;
    if (len) *len = (size_t)n;
    return 0;
}

static bool is_digit(uint8_t c) {
    return c >= '0' && c <= '9';
}

/*
 * What cJSON is lenient about, refused before it sees the text: \u0000 in a string (cJSON
 * would cut the string there), bad escapes, raw control characters, and numbers that are not
 * plain RFC 8259 integers (cJSON reads "01" or "1e0" as 1).
 */
static int json_lex(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '"') {
            size_t start = i++;
            for (;;) {
                if (i >= n) return tseal_err(TSEAL_E_CORRUPT, "unterminated string at %zu", start);
                c = s[i];
                if (c == '"') break;
                if (c < 0x20)
                    return tseal_err(TSEAL_E_CORRUPT, "control character 0x%02x in a string at %zu",
                                     c, i);
                if (c == '\\') {
                    uint8_t e = i + 1 < n ? s[i + 1] : 0;
                    if (e == 'u') {
                        if (n - i < 6 || memcmp(s + i + 2, "0000", 4) == 0)
                            return tseal_err(TSEAL_E_CORRUPT, "bad \\u escape at %zu", i);
                        i += 6;
                        continue;
                    }
                    if (!e || !strchr("\"\\/bfnrt", e))
                        return tseal_err(TSEAL_E_CORRUPT, "bad escape at %zu", i);
                    i += 2;
                    continue;
                }
                i++;
            }
            i++;
            continue;
        }
        if (c == '-' || is_digit(c)) {
            size_t j = i + (c == '-');
            if (j >= n || !is_digit(s[j]) || (s[j] == '0' && j + 1 < n && is_digit(s[j + 1])))
                return tseal_err(TSEAL_E_CORRUPT, "malformed number at %zu", i);
            while (j < n && is_digit(s[j])) j++;
            if (j < n && strchr(".eE+-", s[j]) && s[j])
                return tseal_err(TSEAL_E_CORRUPT, "number at %zu is not a plain integer", i);
            i = j;
            continue;
        }
        i++;
    }
    return 0;
}

static const char *json_type(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsBool(v)) return "a boolean";
    return "null";
}

/* A file's string, safe to echo in a message: at most 32 bytes, anything but printable ASCII
 * (escape sequences, control characters) shown as '?'. */
typedef struct {
    char s[40];
} echo_buf;

static const char *echo(const char *in, echo_buf *b) {
    size_t k = 0;
    for (; in && in[k] && k < 32; k++) b->s[k] = (in[k] >= 0x20 && in[k] <= 0x7E) ? in[k] : '?';
    if (in && in[k]) {
        memcpy(b->s + k, "...", 3);
        k += 3;
    }
    b->s[k] = 0;
    return b->s;
}

static int want_string(const cJSON *v, const char *member) {
    if (!cJSON_IsString(v) || !v->valuestring)
        return tseal_err(TSEAL_E_CORRUPT, "\"%s\" is %s, not a string", member, json_type(v));
    return 0;
}

static int pubkey_from_json(const cJSON *root, tseal_pubkey *out) {
    const cJSON *m[M_COUNT] = {0};
    echo_buf eb;
    if (!cJSON_IsObject(root)) return tseal_err(TSEAL_E_CORRUPT, "not a JSON object");
    for (const cJSON *c = root->child; c; c = c->next) {
        int idx = -1;
        for (int i = 0; i < M_COUNT && idx < 0; i++)
            if (c->string && strcmp(c->string, pk_members[i]) == 0) idx = i;
        if (idx < 0)
            return tseal_err(TSEAL_E_CORRUPT, "unknown member \"%s\"", echo(c->string, &eb));
        if (m[idx]) return tseal_err(TSEAL_E_CORRUPT, "duplicate member \"%s\"", pk_members[idx]);
        m[idx] = c;
    }
    for (int i = 0; i < M_COUNT; i++)
        if (!m[i]) return tseal_err(TSEAL_E_CORRUPT, "missing member \"%s\"", pk_members[i]);
    int rc;
    if ((rc = want_string(m[M_TSEAL], "tseal")) != 0) return rc;
    if (strcmp(m[M_TSEAL]->valuestring, "public-key") != 0)
        return tseal_err(TSEAL_E_CORRUPT, "not a tseal public key (\"tseal\" is \"%s\")",
                         echo(m[M_TSEAL]->valuestring, &eb));
    if (!cJSON_IsNumber(m[M_VERSION]))
        return tseal_err(TSEAL_E_CORRUPT, "\"version\" is %s, not a number",
                         json_type(m[M_VERSION]));
    if (m[M_VERSION]->valuedouble != 1.0)
        return tseal_err(TSEAL_E_UNSUPPORTED, "public key version %.0f is not supported",
                         m[M_VERSION]->valuedouble);
    if ((rc = want_string(m[M_KIND], "kind")) != 0) return rc;
    const char *kind = m[M_KIND]->valuestring;
    if (strcmp(kind, "sign") == 0)
        out->kind = TSEAL_KEY_SIGN;
    else if (strcmp(kind, "recipient") == 0)
        out->kind = TSEAL_KEY_RECIPIENT;
    else
        return tseal_err(TSEAL_E_CORRUPT, "unknown kind \"%s\"", echo(kind, &eb));
    if ((rc = want_string(m[M_ALG], "alg")) != 0) return rc;
    const char *alg = m[M_ALG]->valuestring;
    if (strcmp(alg, "ed25519") == 0)
        out->alg = TSEAL_ALG_ED25519;
    else if (strcmp(alg, "x25519") == 0)
        out->alg = TSEAL_ALG_X25519;
    else
        return tseal_err(TSEAL_E_CORRUPT, "unknown alg \"%s\"", echo(alg, &eb));
    if (out->alg != kind_alg(out->kind))
        return tseal_err(TSEAL_E_CORRUPT, "kind \"%s\" needs alg \"%s\", not \"%s\"", kind,
                         alg_name(kind_alg(out->kind)), alg);
    if ((rc = want_string(m[M_KEY_ID], "key_id")) != 0) return rc;
    const char *idhex = m[M_KEY_ID]->valuestring;
    bool hex_ok = strlen(idhex) == 2 * TSEAL_KEY_ID_BYTES;
    for (size_t i = 0; hex_ok && idhex[i]; i++)
        hex_ok = is_digit((uint8_t)idhex[i]) || (idhex[i] >= 'a' && idhex[i] <= 'f');
    if (!hex_ok) return tseal_err(TSEAL_E_CORRUPT, "key_id is not 32 lower-case hex digits");
    if (sodium_hex2bin(out->key_id, sizeof out->key_id, idhex, 2 * TSEAL_KEY_ID_BYTES, NULL, NULL,
                       NULL) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "key_id is not 32 lower-case hex digits");
    if ((rc = want_string(m[M_NAME], "name")) != 0) return rc;
    const char *name = m[M_NAME]->valuestring;
    size_t nlen = strnlen(name, TSEAL_KEY_NAME_MAX);
    const char *p = tseal_key_name_problem(name, nlen);
    if (p) return tseal_err(TSEAL_E_CORRUPT, "name %s", p);
    memcpy(out->name, name, nlen);
    if ((rc = want_string(m[M_KEY], "key")) != 0) return rc;
    const char *b64 = m[M_KEY]->valuestring;
    char canon[B64_KEY_LEN];
    size_t blen = 0;
    if (strlen(b64) != B64_KEY_LEN - 1 ||
        sodium_base642bin(out->pk, sizeof out->pk, b64, B64_KEY_LEN - 1, NULL, &blen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        blen != TSEAL_PK_BYTES)
        return tseal_err(TSEAL_E_CORRUPT, "key is not the base64 of a 32-byte key");
    sodium_bin2base64(canon, sizeof canon, out->pk, TSEAL_PK_BYTES, sodium_base64_VARIANT_ORIGINAL);
    if (strcmp(canon, b64) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "key is not in canonical base64");
    if ((p = pk_problem(out->alg, out->pk)) != NULL) return tseal_err(TSEAL_E_CORRUPT, "key %s", p);
    uint8_t id[TSEAL_KEY_ID_BYTES];
    if ((rc = tseal_key_id_checked(out->alg, out->pk, id)) != 0) return rc;
    if (memcmp(id, out->key_id, sizeof id) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "key_id does not match the key");
    return 0;
}

static int pubkey_parse(const uint8_t *s, size_t len, tseal_pubkey *out) {
    if (len > TSEAL_PUBKEY_FILE_MAX)
        return tseal_err(TSEAL_E_LIMIT, "%zu bytes, over the %d-byte limit of a public key file",
                         len, TSEAL_PUBKEY_FILE_MAX);
    if (len == 0) return tseal_err(TSEAL_E_CORRUPT, "empty file, not a tseal public key");
    if (!tseal_utf8_valid(s, len))
        return tseal_err(TSEAL_E_CORRUPT, "not valid UTF-8 (or has a NUL byte)");
    size_t i = 0;
    while (i < len && memchr(" \t\r\n", s[i], 4)) i++;
    if (i == len || s[i] != '{') return tseal_err(TSEAL_E_CORRUPT, "not a JSON object");
    int rc = json_lex(s, len);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)s, len, &end, 0);
    if (!root) {
        size_t at = end && end >= (const char *)s ? (size_t)(end - (const char *)s) : 0;
        return tseal_err(TSEAL_E_CORRUPT, "not valid JSON (error at offset %zu)", at);
    }
    for (size_t at = (size_t)(end - (const char *)s); !rc && at < len; at++)
        if (!memchr(" \t\r\n", s[at], 4))
            rc = tseal_err(TSEAL_E_CORRUPT, "data after the JSON object at offset %zu", at);
    if (!rc) rc = pubkey_from_json(root, out);
    cJSON_Delete(root);
    return rc;
}

int tseal_pubkey_parse(const void *buf, size_t len, const char *label, tseal_pubkey *out) {
    memset(out, 0, sizeof *out);
    int rc = tseal_crypto_init();
    if (!rc) rc = pubkey_parse(buf, len, out);
    if (rc) {
        memset(out, 0, sizeof *out);
        tseal_err_context("%s: ", label ? label : "public key");
    }
    return rc;
}

int tseal_pubkey_read(const char *path, tseal_pubkey *out) {
    memset(out, 0, sizeof *out);
    uint8_t *buf = malloc(TSEAL_PUBKEY_FILE_MAX + 1);
    if (!buf) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    size_t got;
    int rc = read_capped(path, buf, TSEAL_PUBKEY_FILE_MAX + 1, &got, NULL);
    if (!rc && got > TSEAL_PUBKEY_FILE_MAX)
        rc = tseal_err(TSEAL_E_LIMIT, "%s: larger than the %d-byte limit of a public key file",
                       path, TSEAL_PUBKEY_FILE_MAX);
    if (!rc) rc = tseal_pubkey_parse(buf, got, path, out);
    free(buf);
    return rc;
}

int tseal_pubkey_write(const tseal_pubkey *pk, const char *path, int force) {
    char *json;
    size_t len;
    int rc = tseal_pubkey_encode(pk, &json, &len);
    if (rc) {
        tseal_err_context("%s: ", path);
        return rc;
    }
    rc = write_file(path, json, len, 0644, force);
    free(json);
    return rc;
}

/* ---- secret key files ------------------------------------------------------------------ */

static void default_limits(uint64_t *ops, uint64_t *mem) {
    const char *e = getenv("TSEAL_PWHASH_INTERACTIVE");
    if (e && strcmp(e, "1") == 0) {
        *ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        *mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    } else {
        *ops = crypto_pwhash_OPSLIMIT_MODERATE;
        *mem = crypto_pwhash_MEMLIMIT_MODERATE;
    }
}

static const char *limits_problem(uint64_t ops, uint64_t mem) {
    if (ops < TSEAL_SK_OPSLIMIT_MIN || ops > TSEAL_SK_OPSLIMIT_MAX)
        return "Argon2id opslimit out of range [1, 16]";
    if (mem < TSEAL_SK_MEMLIMIT_MIN || mem > TSEAL_SK_MEMLIMIT_MAX)
        return "Argon2id memlimit out of range [8 KiB, 4 GiB]";
    return NULL;
}

/* secretbox key = BLAKE2b-256(key = Argon2id(passphrase, salt), message = header[0..180)) */
static int sealing_key(const uint8_t *header, const char *pass, size_t pass_len, uint8_t key[32]) {
    uint8_t *pw = tseal_secure_alloc(32);
    if (!pw) return TSEAL_E_NOMEM;
    int rc = 0;
    if (crypto_pwhash(pw, 32, pass, pass_len, header + TSEAL_SK_OFF_SALT,
                      tseal_load_le64(header + TSEAL_SK_OFF_OPSLIMIT),
                      (size_t)tseal_load_le64(header + TSEAL_SK_OFF_MEMLIMIT),
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        rc = tseal_err(TSEAL_E_NOMEM, "Argon2id failed (out of memory?)");
    else
        crypto_generichash(key, 32, header, TSEAL_SK_HEADER_BYTES, pw, 32);
    tseal_secure_free(pw);
    return rc;
}

int tseal_seckey_encode(const tseal_seckey *sk, const char *passphrase, size_t pass_len,
                        uint64_t opslimit, uint64_t memlimit, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (!sk || !sk->sk) return tseal_err(TSEAL_E_INVAL, "no secret key");
    if ((rc = pubkey_consistent(&sk->pub, TSEAL_E_INVAL)) != 0) return rc;
    if ((rc = secret_matches(sk)) != 0) return rc == TSEAL_E_CORRUPT ? TSEAL_E_INVAL : rc;
    if (passphrase && pass_len == 0) return tseal_err(TSEAL_E_INVAL, "the passphrase is empty");
    if (!passphrase && pass_len) return tseal_err(TSEAL_E_INVAL, "passphrase is NULL");
    bool prot = passphrase != NULL;
    if (prot && opslimit == 0 && memlimit == 0) default_limits(&opslimit, &memlimit);
    const char *p = prot ? limits_problem(opslimit, memlimit) : NULL;
    if (p) return tseal_err(TSEAL_E_INVAL, "%s", p);
    size_t sklen = kind_sk_bytes(sk->pub.kind), size = tseal_sk_file_size(sk->pub.kind, prot);
    uint8_t *b = tseal_secure_alloc(size);
    if (!b) return TSEAL_E_NOMEM;
    memset(b, 0, size);
    memcpy(b, TSEAL_SK_MAGIC, TSEAL_SK_MAGIC_BYTES);
    b[TSEAL_SK_OFF_KIND] = (uint8_t)sk->pub.kind;
    b[TSEAL_SK_OFF_ALG] = sk->pub.alg;
    b[TSEAL_SK_OFF_PROTECTION] = prot ? TSEAL_SK_PROT_ARGON2ID : TSEAL_SK_PROT_NONE;
    memcpy(b + TSEAL_SK_OFF_KEY_ID, sk->pub.key_id, TSEAL_KEY_ID_BYTES);
    memcpy(b + TSEAL_SK_OFF_PK, sk->pub.pk, TSEAL_PK_BYTES);
    memcpy(b + TSEAL_SK_OFF_NAME, sk->pub.name, strnlen(sk->pub.name, TSEAL_KEY_NAME_MAX));
    if (!prot) {
        memcpy(b + TSEAL_SK_OFF_SECRET, sk->sk, sklen);
    } else {
        tseal_store_le64(b + TSEAL_SK_OFF_OPSLIMIT, opslimit);
        tseal_store_le64(b + TSEAL_SK_OFF_MEMLIMIT, memlimit);
        tseal_random(NULL, b + TSEAL_SK_OFF_SALT, TSEAL_SK_SALT_BYTES);
        tseal_random(NULL, b + TSEAL_SK_OFF_NONCE, TSEAL_SK_NONCE_BYTES);
        uint8_t *key = tseal_secure_alloc(32);
        rc = key ? sealing_key(b, passphrase, pass_len, key) : TSEAL_E_NOMEM;
        if (!rc &&
            crypto_secretbox_detached(b + TSEAL_SK_OFF_SECRET, b + TSEAL_SK_OFF_SECRET + sklen,
                                      sk->sk, sklen, b + TSEAL_SK_OFF_NONCE, key) != 0)
            rc = tseal_err(TSEAL_E_CRYPTO, "sealing the secret key failed");
        tseal_secure_free(key);
    }
    if (rc) {
        tseal_secure_free(b);
        return rc;
    }
    *out = b;
    *out_len = size;
    return 0;
}

static int seckey_parse(const uint8_t *b, size_t len, const char *pass, size_t pass_len,
                        tseal_seckey **out) {
    if (len < TSEAL_SK_MAGIC_BYTES || memcmp(b, TSEAL_SK_MAGIC, TSEAL_SK_MAGIC_BYTES) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "not a tseal secret key (bad magic)");
    if (len < TSEAL_SK_HEADER_BYTES)
        return tseal_err(TSEAL_E_CORRUPT, "truncated secret key file (%zu bytes)", len);
    unsigned kind = b[TSEAL_SK_OFF_KIND], alg = b[TSEAL_SK_OFF_ALG];
    unsigned prot = b[TSEAL_SK_OFF_PROTECTION];
    if (kind != TSEAL_KEY_SIGN && kind != TSEAL_KEY_RECIPIENT)
        return tseal_err(TSEAL_E_CORRUPT, "unknown key kind %u", kind);
    if (alg != kind_alg((int)kind))
        return tseal_err(TSEAL_E_CORRUPT, "kind \"%s\" needs alg %u (%s), not %u",
                         kind_name((int)kind), kind_alg((int)kind), alg_name(kind_alg((int)kind)),
                         alg);
    if (prot != TSEAL_SK_PROT_NONE && prot != TSEAL_SK_PROT_ARGON2ID)
        return tseal_err(TSEAL_E_CORRUPT, "unknown protection %u", prot);
    if (b[TSEAL_SK_OFF_RESERVED] != 0)
        return tseal_err(TSEAL_E_CORRUPT, "reserved byte is 0x%02x, not 0",
                         b[TSEAL_SK_OFF_RESERVED]);
    size_t want = tseal_sk_file_size((tseal_key_kind)kind, prot != TSEAL_SK_PROT_NONE);
    if (len != want)
        return tseal_err(TSEAL_E_CORRUPT, "file is %zu bytes, a%s %s %s key is %zu", len,
                         prot ? " protected" : "n unprotected", alg_name((int)alg),
                         kind_name((int)kind), want);
    const char *name = (const char *)b + TSEAL_SK_OFF_NAME;
    size_t nlen = strnlen(name, TSEAL_KEY_NAME_MAX);
    const char *p = tseal_key_name_problem(name, nlen);
    if (p) return tseal_err(TSEAL_E_CORRUPT, "name %s", p);
    if (!tseal_all_zero((const uint8_t *)name + nlen, TSEAL_KEY_NAME_MAX - nlen))
        return tseal_err(TSEAL_E_CORRUPT, "name padding is not zero");
    uint64_t ops = tseal_load_le64(b + TSEAL_SK_OFF_OPSLIMIT);
    uint64_t mem = tseal_load_le64(b + TSEAL_SK_OFF_MEMLIMIT);
    if (prot == TSEAL_SK_PROT_NONE) {
        if (!tseal_all_zero(b + TSEAL_SK_OFF_OPSLIMIT,
                            TSEAL_SK_HEADER_BYTES - TSEAL_SK_OFF_OPSLIMIT))
            return tseal_err(TSEAL_E_CORRUPT,
                             "unprotected key has non-zero opslimit, memlimit, salt or nonce");
    } else if ((p = limits_problem(ops, mem)) != NULL) {
        return tseal_err(TSEAL_E_CORRUPT, "%s (opslimit %llu, memlimit %llu)", p,
                         (unsigned long long)ops, (unsigned long long)mem);
    }
    const uint8_t *pk = b + TSEAL_SK_OFF_PK;
    if ((p = pk_problem((uint8_t)alg, pk)) != NULL)
        return tseal_err(TSEAL_E_CORRUPT, "public key %s", p);
    uint8_t id[TSEAL_KEY_ID_BYTES];
    int rc = tseal_key_id_checked((uint8_t)alg, pk, id);
    if (rc) return rc;
    if (memcmp(id, b + TSEAL_SK_OFF_KEY_ID, sizeof id) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "key_id does not match the public key");
    if (prot && !pass)
        return tseal_err(TSEAL_E_INVAL, "key is protected by a passphrase (use --passphrase-file)");
    if (prot && pass_len == 0) return tseal_err(TSEAL_E_INVAL, "the passphrase is empty");

    tseal_seckey *k = seckey_new((tseal_key_kind)kind);
    if (!k) return TSEAL_E_NOMEM;
    memcpy(k->pub.key_id, id, sizeof id);
    memcpy(k->pub.pk, pk, TSEAL_PK_BYTES);
    memcpy(k->pub.name, name, nlen);
    size_t sklen = kind_sk_bytes((int)kind);
    if (!prot) {
        memcpy(k->sk, b + TSEAL_SK_OFF_SECRET, sklen);
    } else {
        uint8_t *key = tseal_secure_alloc(32);
        rc = key ? sealing_key(b, pass, pass_len, key) : TSEAL_E_NOMEM;
        if (!rc && crypto_secretbox_open_detached(k->sk, b + TSEAL_SK_OFF_SECRET,
                                                  b + TSEAL_SK_OFF_SECRET + sklen, sklen,
                                                  b + TSEAL_SK_OFF_NONCE, key) != 0)
            rc = tseal_err(TSEAL_E_VERIFY, "wrong passphrase (or the key file was modified)");
        tseal_secure_free(key);
    }
    if (!rc) rc = secret_matches(k);
    if (rc) {
        tseal_seckey_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

int tseal_seckey_parse(const void *buf, size_t len, const char *label, const char *passphrase,
                       size_t pass_len, tseal_seckey **out) {
    *out = NULL;
    int rc = tseal_crypto_init();
    if (!rc) rc = seckey_parse(buf, len, passphrase, pass_len, out);
    if (rc) tseal_err_context("%s: ", label ? label : "secret key");
    return rc;
}

int tseal_seckey_read(const char *path, const char *passphrase, size_t pass_len,
                      tseal_seckey **out) {
    *out = NULL;
    int rc = tseal_crypto_init();
    if (rc) return rc;
    uint8_t *buf = tseal_secure_alloc(TSEAL_SK_MAX_BYTES + 1);
    if (!buf) return TSEAL_E_NOMEM;
    size_t got;
    unsigned mode = 0;
    rc = read_capped(path, buf, TSEAL_SK_MAX_BYTES + 1, &got, &mode);
    if (!rc && got > TSEAL_SK_MAX_BYTES)
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: not a tseal secret key (more than %d bytes)", path,
                       TSEAL_SK_MAX_BYTES);
    /* A secret key must not be accessible by group or others (as ssh insists): a key left
     * world-readable is refused, not silently used. Checked once the file is known to be a
     * secret key, so that passing a public key gets the clearer message. */
    if (!rc && got >= 8 && memcmp(buf, TSEAL_SK_MAGIC, 8) == 0 && (mode & 077))
        rc = tseal_err(TSEAL_E_INVAL,
                       "%s: secret key file is accessible by group or others (mode %04o): "
                       "run chmod 600 %s",
                       path, mode, path);
    if (!rc) rc = tseal_seckey_parse(buf, got, path, passphrase, pass_len, out);
    tseal_secure_free(buf);
    return rc;
}

int tseal_seckey_write(const tseal_seckey *sk, const char *path, const char *passphrase,
                       size_t pass_len, int force) {
    uint8_t *b;
    size_t len;
    int rc = tseal_seckey_encode(sk, passphrase, pass_len, 0, 0, &b, &len);
    if (rc) {
        tseal_err_context("%s: ", path);
        return rc;
    }
    rc = write_file(path, b, len, 0600, force);
    tseal_secure_free(b);
    return rc;
}

/* ---- passphrase files ------------------------------------------------------------------ */

int tseal_passphrase_read(const char *path, char **pass, size_t *len) {
    *pass = NULL;
    *len = 0;
    int rc = tseal_crypto_init();
    if (rc) return rc;
    uint8_t *buf = tseal_secure_alloc(TSEAL_PASSPHRASE_FILE_MAX + 1);
    if (!buf) return TSEAL_E_NOMEM;
    size_t got, n = 0;
    rc = read_capped(path, buf, TSEAL_PASSPHRASE_FILE_MAX + 1, &got, NULL);
    if (!rc && got > TSEAL_PASSPHRASE_FILE_MAX)
        rc = tseal_err(TSEAL_E_LIMIT, "%s: passphrase file is larger than %d bytes", path,
                       TSEAL_PASSPHRASE_FILE_MAX);
    if (!rc) {
        const uint8_t *nl = memchr(buf, '\n', got);
        n = nl ? (size_t)(nl - buf) : got;
        if (nl && n > 0 && buf[n - 1] == '\r') n--;
        if (n == 0)
            rc = tseal_err(TSEAL_E_INVAL, "%s: the passphrase is empty", path);
        else if (memchr(buf, 0, n))
            rc = tseal_err(TSEAL_E_INVAL, "%s: the passphrase contains a NUL byte", path);
    }
    char *p = rc ? NULL : tseal_secure_alloc(n + 1);
    if (!rc && !p) rc = TSEAL_E_NOMEM;
    if (!rc) {
        memcpy(p, buf, n);
        p[n] = 0;
        *pass = p;
        *len = n;
    }
    tseal_secure_free(buf);
    return rc;
}
