/*
 * tree.c - the tensor digest: a two-level SHA-256 tree over fixed 1 MiB leaves, so that the
 * place where a tensor is decoded (a GPU, or several CPU threads) can hash its leaves in
 * parallel (docs/FORMAT.md section 5.5):
 *
 *   leaf_i = SHA-256(bytes [i * 2^20, min((i + 1) * 2^20, n)))        for i < ceil(n / 2^20)
 *   root   = SHA-256("tseal-tree-v1" 0x00 || leaf_0 || ... || leaf_last || u64le(n))
 */
#include <stdlib.h>

#include "internal.h"
#include "tseal_crypto.h"

static const char tree_prefix[] = "tseal-tree-v1"; /* written with its NUL */

struct tseal_tree_ctx {
    tseal_sha256_ctx *leaf, *root;
    uint64_t leaf_fill, total;
};

static int root_start(tseal_tree_ctx *t) {
    t->leaf_fill = 0;
    t->total = 0;
    return tseal_sha256_update(t->root, tree_prefix, sizeof tree_prefix);
}

int tseal_tree_new(tseal_tree_ctx **out) {
    *out = NULL;
    tseal_tree_ctx *t = calloc(1, sizeof *t);
    if (!t) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int r = tseal_sha256_new(&t->leaf);
    if (!r) r = tseal_sha256_new(&t->root);
    if (!r) r = root_start(t);
    if (r) {
        tseal_tree_free(t);
        return r;
    }
    *out = t;
    return 0;
}

int tseal_tree_update(tseal_tree_ctx *t, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        size_t k =
            TSEAL_TREE_LEAF - t->leaf_fill < n ? (size_t)(TSEAL_TREE_LEAF - t->leaf_fill) : n;
        int r = tseal_sha256_update(t->leaf, b, k);
        if (r) return r;
        t->leaf_fill += k;
        t->total += k;
        b += k;
        n -= k;
        if (t->leaf_fill == TSEAL_TREE_LEAF) {
            uint8_t d[TSEAL_HASH_BYTES];
            if ((r = tseal_sha256_final(t->leaf, d)) ||
                (r = tseal_sha256_update(t->root, d, sizeof d)))
                return r;
            t->leaf_fill = 0;
        }
    }
    return 0;
}

int tseal_tree_final(tseal_tree_ctx *t, uint8_t out[TSEAL_HASH_BYTES]) {
    uint8_t d[TSEAL_HASH_BYTES], len[8];
    int r = 0;
    if (t->leaf_fill) { /* the last, short leaf */
        if ((r = tseal_sha256_final(t->leaf, d)) || (r = tseal_sha256_update(t->root, d, sizeof d)))
            return r;
    }
    tseal_store_le64(len, t->total);
    if ((r = tseal_sha256_update(t->root, len, 8)) || (r = tseal_sha256_final(t->root, out)))
        return r;
    return root_start(t);
}

void tseal_tree_free(tseal_tree_ctx *t) {
    if (!t) return;
    tseal_sha256_free(t->leaf);
    tseal_sha256_free(t->root);
    free(t);
}

typedef struct {
    const uint8_t *p;
    uint64_t n;
    uint8_t *leaves;
} tree_job;

#define LEAVES_PER_ITEM 8

static int hash_leaves(void *arg, unsigned item) {
    const tree_job *j = arg;
    uint64_t nl = (j->n + TSEAL_TREE_LEAF - 1) / TSEAL_TREE_LEAF;
    int r = 0;
    for (uint64_t i = (uint64_t)item * LEAVES_PER_ITEM;
         i < nl && i < ((uint64_t)item + 1) * LEAVES_PER_ITEM && !r; i++) {
        uint64_t off = i * TSEAL_TREE_LEAF,
                 k = j->n - off < TSEAL_TREE_LEAF ? j->n - off : TSEAL_TREE_LEAF;
        r = tseal_sha256(j->p + off, k, j->leaves + i * TSEAL_HASH_BYTES);
    }
    return r;
}

int tseal_tree_hash(const void *p, uint64_t n, unsigned nthreads, uint8_t out[TSEAL_HASH_BYTES]) {
    uint64_t nl = (n + TSEAL_TREE_LEAF - 1) / TSEAL_TREE_LEAF;
    uint8_t *leaves = malloc(nl ? nl * TSEAL_HASH_BYTES : 1);
    tseal_sha256_ctx *root = NULL;
    if (!leaves) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    tree_job j = {p, n, leaves};
    if (n < 4 * TSEAL_TREE_LEAF) nthreads = 1;
    int r = tseal_parallel((unsigned)((nl + LEAVES_PER_ITEM - 1) / LEAVES_PER_ITEM), nthreads,
                           hash_leaves, &j);
    uint8_t len[8];
    tseal_store_le64(len, n);
    if (!r) r = tseal_sha256_new(&root);
    if (!r) r = tseal_sha256_update(root, tree_prefix, sizeof tree_prefix);
    if (!r) r = tseal_sha256_update(root, leaves, nl * TSEAL_HASH_BYTES);
    if (!r) r = tseal_sha256_update(root, len, 8);
    if (!r) r = tseal_sha256_final(root, out);
    tseal_sha256_free(root);
    free(leaves);
    return r;
}
